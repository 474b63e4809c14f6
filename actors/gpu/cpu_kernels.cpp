// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/gpu/cpu_kernels.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace joy::gpu {

namespace {

/// Results larger than this are refused rather than attempted.
constexpr uint64_t max_result_bytes = uint64_t{4} << 30;

caf::error invalid(const std::string& what) {
  return make_error(errc::invalid_argument, what);
}

std::string shape_text(const std::vector<uint64_t>& shape) {
  std::string out = "(";
  for (std::size_t i = 0; i < shape.size(); ++i)
    out += (i ? " x " : "") + std::to_string(shape[i]);
  return out + ")";
}

/// IEEE half to float, subnormals, infinities and NaN included.
float half_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {
      // Subnormal: normalise.
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400) == 0);
      bits = sign | static_cast<uint32_t>(127 - 15 - e) << 23
             | (mant & 0x3ff) << 13;
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000 | mant << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

/// Element i of `a` as a double.
template <class T>
double load(const std::byte* p, std::size_t i) {
  T x;
  std::memcpy(&x, p + i * sizeof(T), sizeof(T));
  return static_cast<double>(x);
}

double element(const ndarray& a, std::size_t i) {
  auto* p = a.data.data();
  switch (a.type) {
    case dtype::bool_:
      return p[i] != std::byte{0} ? 1.0 : 0.0;
    case dtype::int8:
      return load<int8_t>(p, i);
    case dtype::uint8:
      return load<uint8_t>(p, i);
    case dtype::int16:
      return load<int16_t>(p, i);
    case dtype::uint16:
      return load<uint16_t>(p, i);
    case dtype::int32:
      return load<int32_t>(p, i);
    case dtype::uint32:
      return load<uint32_t>(p, i);
    case dtype::int64:
      return load<int64_t>(p, i);
    case dtype::uint64:
      return load<uint64_t>(p, i);
    case dtype::float16: {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      return half_to_float(h);
    }
    case dtype::float32:
      return load<float>(p, i);
    case dtype::float64:
      return load<double>(p, i);
  }
  return 0;
}

/// Checks what every function needs: a valid array with readable bytes
/// and at least one element.
caf::error check_array(const char* fn, const char* name, const ndarray& a) {
  if (auto err = a.validate())
    return invalid(std::string{fn} + ": " + name + ": " + message_of(err));
  if (!a.data.readable())
    return invalid(std::string{fn} + ": " + name
                   + ": its bytes are not in this process");
  if (a.element_count().value_or(0) == 0)
    return invalid(std::string{fn} + ": " + name + " is empty "
                   + shape_text(a.shape));
  return caf::none;
}

/// A finite sigma >= 0 whose kernel radius ceil(3 sigma) fits.
caf::error check_sigma(double sigma) {
  if (!std::isfinite(sigma) || sigma < 0)
    return invalid("gaussian_blur: sigma must be a finite number >= 0, not "
                   + std::to_string(sigma));
  if (std::ceil(3 * sigma) > max_blur_radius)
    return invalid("gaussian_blur: sigma " + std::to_string(sigma)
                   + " is too large (at most "
                   + std::to_string(max_blur_radius / 3) + ")");
  return caf::none;
}

/// Blurs `data` (C order, `shape`) along `axis` with `w`, edges clamped.
void blur_axis(std::vector<float>& data, const std::vector<uint64_t>& shape,
               std::size_t axis, const std::vector<float>& w) {
  auto n = static_cast<std::ptrdiff_t>(shape[axis]);
  std::size_t stride = 1;
  for (auto i = axis + 1; i < shape.size(); ++i)
    stride *= shape[i];
  auto outer = data.size() / (static_cast<std::size_t>(n) * stride);
  auto r = static_cast<std::ptrdiff_t>(w.size() / 2);
  std::vector<float> line(static_cast<std::size_t>(n));
  for (std::size_t o = 0; o < outer; ++o) {
    for (std::size_t s = 0; s < stride; ++s) {
      auto base = o * static_cast<std::size_t>(n) * stride + s;
      for (std::ptrdiff_t i = 0; i < n; ++i)
        line[static_cast<std::size_t>(i)]
          = data[base + static_cast<std::size_t>(i) * stride];
      for (std::ptrdiff_t i = 0; i < n; ++i) {
        float acc = 0;
        for (std::ptrdiff_t j = -r; j <= r; ++j) {
          auto at = std::clamp<std::ptrdiff_t>(i + j, 0, n - 1);
          acc += w[static_cast<std::size_t>(j + r)]
                 * line[static_cast<std::size_t>(at)];
        }
        data[base + static_cast<std::size_t>(i) * stride] = acc;
      }
    }
  }
}

template <class T>
ndarray matmul_as(const ndarray& a, const ndarray& b, uint64_t m, uint64_t k,
                  uint64_t n) {
  std::vector<T> c(m * n, T{0});
  std::vector<T> x(m * k), y(k * n);
  std::memcpy(x.data(), a.data.data(), x.size() * sizeof(T));
  std::memcpy(y.data(), b.data.data(), y.size() * sizeof(T));
  // i-k-j: the inner loop walks rows of b and c contiguously.
  for (uint64_t i = 0; i < m; ++i)
    for (uint64_t p = 0; p < k; ++p) {
      T aip = x[i * k + p];
      const T* brow = y.data() + p * n;
      T* crow = c.data() + i * n;
      for (uint64_t j = 0; j < n; ++j)
        crow[j] += aip * brow[j];
    }
  std::vector<std::byte> out(c.size() * sizeof(T));
  std::memcpy(out.data(), c.data(), out.size());
  return ndarray{a.type, {m, n}, buffer::take(std::move(out))};
}

} // namespace

caf::expected<std::vector<float>> gaussian_weights(double sigma) {
  if (auto err = check_sigma(sigma))
    return err;
  if (sigma == 0)
    return std::vector<float>{1.0f};
  auto radius = static_cast<int>(std::ceil(3 * sigma));
  std::vector<double> w(static_cast<std::size_t>(2 * radius + 1));
  double sum = 0;
  for (int i = -radius; i <= radius; ++i) {
    auto x = std::exp(-(double(i) * i) / (2 * sigma * sigma));
    w[static_cast<std::size_t>(i + radius)] = x;
    sum += x;
  }
  std::vector<float> out;
  out.reserve(w.size());
  for (auto x : w)
    out.push_back(static_cast<float>(x / sum));
  return out;
}

caf::error check_blur(const ndarray& image, double sigma) {
  if (auto err = check_array("gaussian_blur", "image", image))
    return err;
  if (image.type != dtype::float32 && image.type != dtype::uint8)
    return invalid("gaussian_blur: image must be float32 or uint8, not "
                   + std::string{to_string(image.type)});
  if (image.shape.size() != 2 && image.shape.size() != 3)
    return invalid("gaussian_blur: image must be 2-D or 3-D, not "
                   + std::to_string(image.shape.size()) + "-D "
                   + shape_text(image.shape));
  return check_sigma(sigma);
}

caf::error check_matmul(const ndarray& a, const ndarray& b) {
  if (auto err = check_array("matmul", "a", a))
    return err;
  if (auto err = check_array("matmul", "b", b))
    return err;
  for (auto* x : {&a, &b})
    if (x->type != dtype::float32 && x->type != dtype::float64)
      return invalid("matmul: arrays must be float32 or float64, not "
                     + std::string{to_string(x->type)});
  if (a.type != b.type)
    return invalid("matmul: a is " + std::string{to_string(a.type)}
                   + " but b is " + std::string{to_string(b.type)});
  if (a.shape.size() != 2 || b.shape.size() != 2)
    return invalid("matmul: a and b must be 2-D, not " + shape_text(a.shape)
                   + " and " + shape_text(b.shape));
  auto m = a.shape[0], k = a.shape[1], n = b.shape[1];
  if (b.shape[0] != k)
    return invalid("matmul: shapes " + shape_text(a.shape) + " and "
                   + shape_text(b.shape) + " do not chain");
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(m, n, &bytes)
      || __builtin_mul_overflow(bytes, itemsize(a.type), &bytes)
      || bytes > max_result_bytes)
    return make_error(errc::too_large, "matmul: the result "
                                         + shape_text({m, n})
                                         + " would be larger than 4 GiB");
  return caf::none;
}

caf::error check_stats(const ndarray& array) {
  return check_array("stats", "array", array);
}

caf::expected<ndarray> gaussian_blur(const ndarray& image, double sigma) {
  if (auto err = check_blur(image, sigma))
    return err;
  auto w = gaussian_weights(sigma);
  if (!w)
    return w.error();
  if (w->size() == 1)
    return image;
  auto count = static_cast<std::size_t>(*image.element_count());
  std::vector<float> data(count);
  if (image.type == dtype::float32)
    std::memcpy(data.data(), image.data.data(), count * 4);
  else
    for (std::size_t i = 0; i < count; ++i)
      data[i]
        = static_cast<float>(std::to_integer<uint8_t>(image.data.data()[i]));
  for (std::size_t axis = 0; axis < image.shape.size(); ++axis)
    blur_axis(data, image.shape, axis, *w);
  if (image.type == dtype::float32) {
    std::vector<std::byte> out(count * 4);
    std::memcpy(out.data(), data.data(), out.size());
    return ndarray{dtype::float32, image.shape, buffer::take(std::move(out))};
  }
  std::vector<std::byte> out(count);
  for (std::size_t i = 0; i < count; ++i)
    out[i] = static_cast<std::byte>(
      static_cast<uint8_t>(std::clamp(std::nearbyint(data[i]), 0.0f, 255.0f)));
  return ndarray{dtype::uint8, image.shape, buffer::take(std::move(out))};
}

caf::expected<ndarray> matmul(const ndarray& a, const ndarray& b) {
  if (auto err = check_matmul(a, b))
    return err;
  auto m = a.shape[0], k = a.shape[1], n = b.shape[1];
  if (a.type == dtype::float32)
    return matmul_as<float>(a, b, m, k, n);
  return matmul_as<double>(a, b, m, k, n);
}

caf::expected<value_map> stats(const ndarray& array) {
  if (auto err = check_stats(array))
    return err;
  auto count = static_cast<std::size_t>(*array.element_count());
  double lo = std::numeric_limits<double>::infinity();
  double hi = -lo;
  double sum = 0;
  bool nan = false;
  for (std::size_t i = 0; i < count; ++i) {
    auto x = element(array, i);
    if (std::isnan(x))
      nan = true;
    lo = std::min(lo, x);
    hi = std::max(hi, x);
    sum += x;
  }
  auto mean = sum / static_cast<double>(count);
  double sq = 0;
  for (std::size_t i = 0; i < count; ++i) {
    auto d = element(array, i) - mean;
    sq += d * d;
  }
  auto std_dev = std::sqrt(sq / static_cast<double>(count));
  if (nan)
    lo = hi = mean = std_dev = std::numeric_limits<double>::quiet_NaN();
  value_map out;
  out.insert("min", value{lo});
  out.insert("max", value{hi});
  out.insert("mean", value{mean});
  out.insert("std", value{std_dev});
  return out;
}

} // namespace joy::gpu
