// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// The gpu service's CPU functions against straightforward reference
// implementations: random shapes and edge sizes, NaN and infinities, and
// clear errors for empty arrays, wrong dtypes and shapes.

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "actors/gpu/cpu_kernels.hpp"
#include "tests/actors/gpu_test_support.hpp"

using Catch::Matchers::Contains;
using joy::dtype;
using joy::ndarray;

using joy::test::make;
using joy::test::read;

namespace {

std::mt19937& rng() {
  static std::mt19937 gen{42};
  return gen;
}

std::vector<float> random_floats(std::size_t n) {
  std::uniform_real_distribution<float> d{0.0f, 1.0f};
  std::vector<float> out(n);
  for (auto& x : out)
    x = d(rng());
  return out;
}

std::size_t product(const std::vector<uint64_t>& shape) {
  std::size_t n = 1;
  for (auto d : shape)
    n *= d;
  return n;
}

/// The blur by definition: every output pixel a weighted sum over the full
/// (not separated) Gaussian window, edges clamped, in double.
std::vector<double> reference_blur(const std::vector<double>& in,
                                   const std::vector<uint64_t>& shape,
                                   double sigma) {
  int r = static_cast<int>(std::ceil(3 * sigma));
  std::vector<double> w1(2 * r + 1);
  double sum = 0;
  for (int i = -r; i <= r; ++i)
    sum += w1[i + r] = std::exp(-(double(i) * i) / (2 * sigma * sigma));
  for (auto& x : w1)
    x /= sum;
  auto dims = shape;
  if (dims.size() == 2)
    dims.insert(dims.begin(), 1);
  auto D = static_cast<int>(dims[0]), H = static_cast<int>(dims[1]),
       W = static_cast<int>(dims[2]);
  bool three = shape.size() == 3;
  auto at = [&](int z, int y, int x) {
    z = std::clamp(z, 0, D - 1);
    y = std::clamp(y, 0, H - 1);
    x = std::clamp(x, 0, W - 1);
    return in[(static_cast<std::size_t>(z) * H + y) * W + x];
  };
  std::vector<double> out(in.size());
  int rz = three ? r : 0;
  for (int z = 0; z < D; ++z)
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) {
        double acc = 0;
        for (int dz = -rz; dz <= rz; ++dz)
          for (int dy = -r; dy <= r; ++dy)
            for (int dx = -r; dx <= r; ++dx)
              acc += (three ? w1[dz + r] : 1.0) * w1[dy + r] * w1[dx + r]
                     * at(z + dz, y + dy, x + dx);
        out[(static_cast<std::size_t>(z) * H + y) * W + x] = acc;
      }
  return out;
}

std::string refusal(caf::expected<ndarray> x) {
  REQUIRE_FALSE(x);
  CHECK(joy::code_of(x.error()) != joy::errc::internal);
  return joy::message_of(x.error());
}

} // namespace

TEST_CASE("gaussian_blur matches the full 2-D and 3-D convolution on random "
          "shapes and edge sizes",
          "[actors][gpu]") {
  std::vector<std::vector<uint64_t>> shapes{{1, 1},    {1, 17},  {23, 1},
                                            {9, 14},   {32, 5},  {1, 1, 1},
                                            {3, 4, 5}, {6, 1, 7}};
  std::uniform_int_distribution<int> side{1, 24};
  for (int i = 0; i < 4; ++i)
    shapes.push_back({uint64_t(side(rng())), uint64_t(side(rng()))});
  for (double sigma : {0.5, 1.0, 2.3}) {
    for (auto& shape : shapes) {
      INFO("sigma " << sigma << ", shape " << shape.size() << "-D " << shape[0]
                    << "x" << shape[1]);
      auto xs = random_floats(product(shape));
      auto out
        = joy::gpu::gaussian_blur(make(dtype::float32, shape, xs), sigma);
      REQUIRE(out);
      CHECK(out->type == dtype::float32);
      CHECK(out->shape == shape);
      auto ref = reference_blur(std::vector<double>(xs.begin(), xs.end()),
                                shape, sigma);
      auto got = read<float>(*out);
      double worst = 0;
      for (std::size_t j = 0; j < got.size(); ++j)
        worst = std::max(worst, std::abs(got[j] - ref[j]));
      // The documented tolerance: 1e-5 of the range, float32 arithmetic.
      CHECK(worst < 1e-5);
    }
  }
}

TEST_CASE("gaussian_blur of uint8 rounds and clamps, sigma 0 changes nothing",
          "[actors][gpu]") {
  std::vector<uint8_t> px{0, 255, 0, 255, 0, 255, 0, 255, 0};
  auto img = make(dtype::uint8, {3, 3}, px);
  auto out = joy::gpu::gaussian_blur(img, 1.0);
  REQUIRE(out);
  CHECK(out->type == dtype::uint8);
  auto ref
    = reference_blur(std::vector<double>(px.begin(), px.end()), {3, 3}, 1.0);
  auto got = read<uint8_t>(*out);
  for (std::size_t i = 0; i < got.size(); ++i)
    CHECK(std::abs(double(got[i]) - ref[i]) <= 0.5 + 1e-3);
  auto same = joy::gpu::gaussian_blur(img, 0);
  REQUIRE(same);
  CHECK(*same == img);
}

TEST_CASE("gaussian_blur spreads NaN and infinity to the window, as the "
          "arithmetic says",
          "[actors][gpu]") {
  // sigma 0.5: radius 2. The centre of 7 x 7 reaches all but the border.
  std::vector<float> xs(49, 1.0f);
  xs[24] = std::numeric_limits<float>::quiet_NaN();
  auto out = joy::gpu::gaussian_blur(make(dtype::float32, {7, 7}, xs), 0.5);
  REQUIRE(out);
  auto got = read<float>(*out);
  CHECK(std::isnan(got[24]));
  CHECK(std::isnan(got[8]));
  CHECK(got[0] == Approx(1.0f));
  xs[24] = std::numeric_limits<float>::infinity();
  out = joy::gpu::gaussian_blur(make(dtype::float32, {7, 7}, xs), 0.5);
  REQUIRE(out);
  got = read<float>(*out);
  CHECK(std::isinf(got[24]));
  CHECK(got[0] == Approx(1.0f));
}

TEST_CASE("gaussian_blur refuses empty arrays, wrong dtypes and shapes, and "
          "bad sigmas",
          "[actors][gpu]") {
  auto f = make<float>(dtype::float32, {2, 2}, {1, 2, 3, 4});
  CHECK_THAT(refusal(joy::gpu::gaussian_blur(
               make<float>(dtype::float32, {0, 4}, {}), 1)),
             Contains("image is empty (0 x 4)"));
  CHECK_THAT(refusal(joy::gpu::gaussian_blur(
               make<double>(dtype::float64, {1, 2}, {1, 2}), 1)),
             Contains("float32 or uint8, not float64"));
  CHECK_THAT(refusal(joy::gpu::gaussian_blur(
               make<float>(dtype::float32, {4}, {1, 2, 3, 4}), 1)),
             Contains("2-D or 3-D, not 1-D"));
  CHECK_THAT(refusal(joy::gpu::gaussian_blur(f, -1)), Contains("sigma"));
  CHECK_THAT(refusal(joy::gpu::gaussian_blur(f, std::nan(""))),
             Contains("sigma"));
  CHECK_THAT(refusal(joy::gpu::gaussian_blur(f, 1e6)), Contains("too large"));
  // Bytes that do not match the shape.
  CHECK_THAT(refusal(joy::gpu::gaussian_blur(
               make<float>(dtype::float32, {3, 3}, {1, 2}), 1)),
             Contains("image"));
}

TEST_CASE("matmul matches the triple loop for float32 and float64 on random "
          "shapes, and refuses what does not chain",
          "[actors][gpu]") {
  std::uniform_int_distribution<uint64_t> side{1, 33};
  for (int round = 0; round < 12; ++round) {
    auto m = side(rng()), k = side(rng()), n = side(rng());
    if (round == 0)
      m = k = n = 1;
    INFO(m << "x" << k << " * " << k << "x" << n);
    auto a = random_floats(m * k), b = random_floats(k * n);
    std::vector<double> ref(m * n, 0);
    for (uint64_t i = 0; i < m; ++i)
      for (uint64_t j = 0; j < n; ++j)
        for (uint64_t p = 0; p < k; ++p)
          ref[i * n + j] += double(a[i * k + p]) * b[p * n + j];
    auto c32 = joy::gpu::matmul(make(dtype::float32, {m, k}, a),
                                make(dtype::float32, {k, n}, b));
    REQUIRE(c32);
    CHECK(c32->shape == std::vector<uint64_t>{m, n});
    auto got32 = read<float>(*c32);
    auto c64 = joy::gpu::matmul(
      make(dtype::float64, {m, k}, std::vector<double>(a.begin(), a.end())),
      make(dtype::float64, {k, n}, std::vector<double>(b.begin(), b.end())));
    REQUIRE(c64);
    auto got64 = read<double>(*c64);
    for (std::size_t i = 0; i < ref.size(); ++i) {
      // float32: k products of values below 1, each rounded once or twice.
      CHECK(std::abs(got32[i] - ref[i]) <= 1e-6 * double(k) + 1e-6);
      CHECK(std::abs(got64[i] - ref[i]) <= 1e-12 * double(k));
    }
  }
  auto a = make<float>(dtype::float32, {2, 3}, {1, 2, 3, 4, 5, 6});
  auto b = make<float>(dtype::float32, {2, 2}, {1, 2, 3, 4});
  CHECK_THAT(refusal(joy::gpu::matmul(a, b)), Contains("do not chain"));
  CHECK_THAT(refusal(joy::gpu::matmul(
               a, make<double>(dtype::float64, {3, 1}, {1, 2, 3}))),
             Contains("a is float32 but b is float64"));
  CHECK_THAT(
    refusal(joy::gpu::matmul(make<int32_t>(dtype::int32, {1, 1}, {1}),
                             make<int32_t>(dtype::int32, {1, 1}, {1}))),
    Contains("float32 or float64, not int32"));
  CHECK_THAT(refusal(joy::gpu::matmul(
               make<float>(dtype::float32, {6}, {1, 2, 3, 4, 5, 6}), b)),
             Contains("must be 2-D"));
  CHECK_THAT(
    refusal(joy::gpu::matmul(make<float>(dtype::float32, {0, 3}, {}),
                             make<float>(dtype::float32, {3, 1}, {1, 2, 3}))),
    Contains("a is empty"));
}

TEST_CASE("stats gives min, max, mean and population std of every dtype, "
          "NaN spreading as in numpy",
          "[actors][gpu]") {
  auto s = joy::gpu::stats(make<int16_t>(dtype::int16, {2, 2}, {-3, 1, 2, 4}));
  REQUIRE(s);
  CHECK(*s->find("min")->as_float64() == -3);
  CHECK(*s->find("max")->as_float64() == 4);
  CHECK(*s->find("mean")->as_float64() == Approx(1.0));
  CHECK(*s->find("std")->as_float64() == Approx(std::sqrt(6.5)));
  // float16: 1.5 and -2 (0x3e00, 0xc000), and a subnormal.
  auto h = joy::gpu::stats(
    make<uint16_t>(dtype::float16, {3}, {0x3e00, 0xc000, 0x0001}));
  REQUIRE(h);
  CHECK(*h->find("max")->as_float64() == 1.5);
  CHECK(*h->find("min")->as_float64() == -2.0);
  auto b = joy::gpu::stats(make<uint8_t>(dtype::bool_, {4}, {1, 0, 1, 1}));
  REQUIRE(b);
  CHECK(*b->find("mean")->as_float64() == 0.75);
  auto big = random_floats(10000);
  auto r = joy::gpu::stats(make(dtype::float32, {100, 100}, big));
  REQUIRE(r);
  long double sum = 0;
  for (auto x : big)
    sum += x;
  CHECK(*r->find("mean")->as_float64()
        == Approx(double(sum / big.size())).epsilon(1e-12));
  auto nan = joy::gpu::stats(make<double>(
    dtype::float64, {3}, {1, std::numeric_limits<double>::quiet_NaN(), 2}));
  REQUIRE(nan);
  for (auto key : {"min", "max", "mean", "std"})
    CHECK(std::isnan(*nan->find(key)->as_float64()));
  auto inf = joy::gpu::stats(make<double>(
    dtype::float64, {2}, {1, std::numeric_limits<double>::infinity()}));
  REQUIRE(inf);
  CHECK(std::isinf(*inf->find("max")->as_float64()));
  CHECK(std::isinf(*inf->find("mean")->as_float64()));
  auto empty = joy::gpu::stats(make<float>(dtype::float32, {0}, {}));
  REQUIRE_FALSE(empty);
  CHECK_THAT(joy::message_of(empty.error()), Contains("array is empty"));
}
