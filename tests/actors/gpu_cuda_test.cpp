// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// The CUDA backend against the CPU functions it must agree with: random and
// edge shapes, every dtype, many operations in flight, inputs in read-only
// mappings, and the CPU's exact refusals. Those cases are tagged [gpu] and
// skip, with a warning, where device 0 does not open. The gpu actors over
// CPU backends are tested everywhere.
//
// Tolerances (docs/gpu.md): the blur computes as the CPU does (float32, the
// same order, no fused multiply-add), so it should agree exactly; it is held
// to 1e-5 of the input's range (float32) and 1 (uint8). matmul is held to
// the rounding bound of any summation order, with a margin: 1e-6 k (float32)
// and 1e-14 k (float64) times sum |a_ip b_pj|; TF32 is caught by an exact
// case. stats: min and max exact, mean and std within 1e-9 relative.

#include <catch2/catch.hpp>

#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <future>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/gpu/backend.hpp"
#include "actors/gpu/cpu_kernels.hpp"
#include "actors/gpu/gpu_actor.hpp"
#include "runtime/errc.hpp"
#include "runtime/system_config.hpp"
#include "tests/actors/gpu_test_support.hpp"

using joy::dtype;
using joy::ndarray;
using joy::value;
using joy::gpu::backend;

using joy::test::make;
using joy::test::read;

namespace {

constexpr auto timeout = std::chrono::seconds{120};

using result = caf::expected<value>;

std::mt19937& rng() {
  static std::mt19937 gen{7};
  return gen;
}

std::size_t product(const std::vector<uint64_t>& shape) {
  std::size_t n = 1;
  for (auto d : shape)
    n *= d;
  return n;
}

std::string shape_text(const std::vector<uint64_t>& shape) {
  std::string out;
  for (auto d : shape)
    out += (out.empty() ? "" : "x") + std::to_string(d);
  return out;
}

std::vector<float> random_floats(std::size_t n, float lo = 0, float hi = 1) {
  std::uniform_real_distribution<float> d{lo, hi};
  std::vector<float> out(n);
  for (auto& x : out)
    x = d(rng());
  return out;
}

/// `n` random elements of `type`, as the array's bytes: integers over most
/// of their range, finite halves, floats in [-1000, 1000).
ndarray random_array(dtype type, std::vector<uint64_t> shape) {
  auto n = product(shape);
  std::vector<std::byte> bytes(n * joy::itemsize(type));
  auto put = [&](std::size_t i, auto x) {
    std::memcpy(bytes.data() + i * sizeof(x), &x, sizeof(x));
  };
  std::uniform_int_distribution<int64_t> i64{-(int64_t{1} << 60),
                                             int64_t{1} << 60};
  std::uniform_real_distribution<double> real{-1000, 1000};
  for (std::size_t i = 0; i < n; ++i) {
    auto r = i64(rng());
    switch (type) {
      case dtype::bool_:
        put(i, static_cast<uint8_t>(r & 1));
        break;
      case dtype::int8:
        put(i, static_cast<int8_t>(r));
        break;
      case dtype::uint8:
        put(i, static_cast<uint8_t>(r));
        break;
      case dtype::int16:
        put(i, static_cast<int16_t>(r));
        break;
      case dtype::uint16:
        put(i, static_cast<uint16_t>(r));
        break;
      case dtype::int32:
        put(i, static_cast<int32_t>(r));
        break;
      case dtype::uint32:
        put(i, static_cast<uint32_t>(r));
        break;
      case dtype::int64:
        put(i, r);
        break;
      case dtype::uint64:
        put(i, static_cast<uint64_t>(r) >> 2);
        break;
      case dtype::float16: {
        // Sign, exponent 0..30 (no infinity or NaN), mantissa.
        auto u = static_cast<uint64_t>(r);
        auto bits = static_cast<uint16_t>((u & 0x8000) | ((u >> 16) % 31) << 10
                                          | (u & 0x3ff));
        put(i, bits);
        break;
      }
      case dtype::float32:
        put(i, static_cast<float>(real(rng())));
        break;
      case dtype::float64:
        put(i, real(rng()));
        break;
    }
  }
  return ndarray{type, std::move(shape), joy::buffer::take(std::move(bytes))};
}

/// A copy of `a` whose bytes live in a read-only shared mapping, as an
/// array received from another process does.
ndarray in_read_only_mapping(const ndarray& a) {
  auto size = a.data.size();
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  REQUIRE(p != MAP_FAILED);
  std::memcpy(p, a.data.data(), size);
  REQUIRE(mprotect(p, size, PROT_READ) == 0);
  std::shared_ptr<const void> owner{
    p, [size](const void* q) { munmap(const_cast<void*>(q), size); }};
  auto out = a;
  out.data = joy::buffer::adopt(owner, static_cast<const std::byte*>(p), size);
  return out;
}

/// The CUDA backend of device 0, or null after a visible warning.
std::unique_ptr<backend> cuda_or_skip() {
  auto b = joy::gpu::make_cuda_backend(0);
  if (!b) {
    WARN("no CUDA device: " + joy::message_of(b.error()));
    return nullptr;
  }
  return std::move(*b);
}

/// Starts an operation (`f` gets its done_fn) and returns its future.
template <class F>
std::future<result> start(F f) {
  auto p = std::make_shared<std::promise<result>>();
  auto out = p->get_future();
  f([p](result r) { p->set_value(std::move(r)); });
  return out;
}

result wait(std::future<result> f) {
  REQUIRE(f.wait_for(timeout) == std::future_status::ready);
  return f.get();
}

std::future<result> start_blur(backend& b, const ndarray& x, double sigma) {
  return start([&](backend::done_fn done) { b.gaussian_blur(x, sigma, done); });
}

std::future<result> start_matmul(backend& b, const ndarray& x,
                                 const ndarray& y) {
  return start([&](backend::done_fn done) { b.matmul(x, y, done); });
}

std::future<result> start_stats(backend& b, const ndarray& x) {
  return start([&](backend::done_fn done) { b.stats(x, done); });
}

const ndarray& array_of(const result& r) {
  REQUIRE(r);
  auto* a = r->as_ndarray();
  REQUIRE(a != nullptr);
  return *a;
}

double stat(const value& v, const char* key) {
  auto* m = v.as_map();
  REQUIRE(m != nullptr);
  auto* x = m->find(key);
  REQUIRE(x != nullptr);
  REQUIRE(x->as_float64() != nullptr);
  return *x->as_float64();
}

// -- comparisons with the CPU -------------------------------------------------

void check_blur(const ndarray& gpu, const ndarray& image, double sigma) {
  auto cpu = joy::gpu::gaussian_blur(image, sigma);
  REQUIRE(cpu);
  REQUIRE(gpu.type == cpu->type);
  REQUIRE(gpu.shape == cpu->shape);
  if (image.type == dtype::uint8) {
    auto g = read<uint8_t>(gpu), c = read<uint8_t>(*cpu);
    int worst = 0;
    for (std::size_t i = 0; i < g.size(); ++i)
      worst = std::max(worst, std::abs(int{g[i]} - int{c[i]}));
    CHECK(worst <= 1);
    return;
  }
  auto in = read<float>(image);
  auto [lo, hi] = std::minmax_element(in.begin(), in.end());
  auto range = std::max(double(*hi) - double(*lo), 1e-30);
  auto g = read<float>(gpu), c = read<float>(*cpu);
  double worst = 0;
  for (std::size_t i = 0; i < g.size(); ++i)
    worst = std::max(worst, std::abs(double(g[i]) - double(c[i])));
  CHECK(worst <= 1e-5 * range);
}

template <class T>
void check_matmul_as(const ndarray& gpu, const ndarray& a, const ndarray& b,
                     double unit) {
  auto cpu = joy::gpu::matmul(a, b);
  REQUIRE(cpu);
  REQUIRE(gpu.type == cpu->type);
  REQUIRE(gpu.shape == cpu->shape);
  auto m = a.shape[0], k = a.shape[1], n = b.shape[1];
  auto x = read<T>(a), y = read<T>(b), g = read<T>(gpu), c = read<T>(*cpu);
  std::size_t bad = 0;
  for (uint64_t i = 0; i < m; ++i)
    for (uint64_t j = 0; j < n; ++j) {
      double magnitude = 0;
      for (uint64_t p = 0; p < k; ++p)
        magnitude += std::abs(double(x[i * k + p]) * double(y[p * n + j]));
      auto diff = std::abs(double(g[i * n + j]) - double(c[i * n + j]));
      if (!(diff <= unit * double(k) * magnitude))
        ++bad;
    }
  CHECK(bad == 0);
}

void check_matmul(const ndarray& gpu, const ndarray& a, const ndarray& b) {
  if (a.type == dtype::float32)
    check_matmul_as<float>(gpu, a, b, 1e-6);
  else
    check_matmul_as<double>(gpu, a, b, 1e-14);
}

/// Equal, NaN equal to NaN.
bool same(double x, double y) {
  return (std::isnan(x) && std::isnan(y)) || x == y;
}

void check_stats(const value& gpu, const ndarray& array) {
  auto cpu = joy::gpu::stats(array);
  REQUIRE(cpu);
  for (auto key : {"min", "max"}) {
    INFO(key);
    CHECK(same(stat(gpu, key), *cpu->find(key)->as_float64()));
  }
  // Relative to the value, and to the data's scale for a value near 0.
  auto scale = std::max(std::abs(*cpu->find("min")->as_float64()),
                        std::abs(*cpu->find("max")->as_float64()));
  for (auto key : {"mean", "std"}) {
    INFO(key);
    auto g = stat(gpu, key), c = *cpu->find(key)->as_float64();
    if (!std::isfinite(c))
      CHECK(same(g, c));
    else
      CHECK(std::abs(g - c) <= 1e-9 * std::abs(c) + 1e-12 * scale);
  }
}

/// Both backends refuse, with one code and one message.
void check_same_refusal(const result& gpu, const caf::error& cpu) {
  REQUIRE_FALSE(gpu);
  CHECK(joy::code_of(gpu.error()) == joy::code_of(cpu));
  CHECK(joy::message_of(gpu.error()) == joy::message_of(cpu));
}

// -- actors -------------------------------------------------------------------

template <class... Ts>
result ask(caf::scoped_actor& self, const joy::gpu::gpu_actor& to, Ts&&... xs) {
  result out = joy::make_error(joy::errc::internal, "no reply");
  self->request(to, timeout, std::forward<Ts>(xs)...)
    .receive([&](value& v) { out = std::move(v); },
             [&](caf::error& err) { out = std::move(err); });
  return out;
}

} // namespace

// -- everywhere ---------------------------------------------------------------

TEST_CASE("the gpu service's CUDA backend opens device 0, or refuses with "
          "unavailable and a reason",
          "[actors]") {
  auto b = joy::gpu::make_cuda_backend(0);
  if (b) {
    auto d = (*b)->describe();
    REQUIRE(d.as_map() != nullptr);
    CHECK(*d.as_map()->find("kind")->as_string() == "cuda");
  } else {
    CHECK(joy::code_of(b.error()) == joy::errc::unavailable);
    CHECK_FALSE(joy::message_of(b.error()).empty());
  }
  // A device that cannot exist.
  auto none = joy::gpu::make_cuda_backend(1000);
  REQUIRE_FALSE(none);
  CHECK(joy::code_of(none.error()) == joy::errc::unavailable);
  CHECK_FALSE(joy::message_of(none.error()).empty());
}

TEST_CASE("a gpu pool over a CPU backend answers as the CPU functions do",
          "[actors]") {
  joy::test::threaded_actors env;
  std::vector<std::unique_ptr<backend>> backends;
  backends.push_back(joy::gpu::make_cpu_backend());
  auto pool = joy::gpu::spawn_gpu_pool(*env.sys, std::move(backends));
  {
    caf::scoped_actor self{*env.sys};
    auto image = make(dtype::float32, {9, 13}, random_floats(9 * 13));
    auto blurred = ask(self, pool, joy::blur_atom_v, image, 1.5);
    CHECK(array_of(blurred) == *joy::gpu::gaussian_blur(image, 1.5));
    auto a = make(dtype::float64, {3, 4}, std::vector<double>(12, 0.5));
    auto b = make(dtype::float64, {4, 2}, std::vector<double>(8, 2.0));
    auto product = ask(self, pool, joy::matmul_atom_v, a, b);
    CHECK(array_of(product) == *joy::gpu::matmul(a, b));
    auto summary = ask(self, pool, joy::stats_atom_v, image);
    REQUIRE(summary);
    auto cpu = joy::gpu::stats(image);
    for (auto key : {"min", "max", "mean", "std"})
      CHECK(stat(*summary, key) == *cpu->find(key)->as_float64());
    // Refusals come back as the CPU's errors.
    auto empty = make<float>(dtype::float32, {0, 3}, {});
    auto refused = ask(self, pool, joy::stats_atom_v, empty);
    check_same_refusal(refused, joy::gpu::stats(empty).error());
  }
  caf::anon_send_exit(pool, caf::exit_reason::user_shutdown);
}

TEST_CASE("a gpu pool of three CPU backends spreads concurrent requests over "
          "all of them",
          "[actors]") {
  joy::test::threaded_actors env;
  std::vector<std::unique_ptr<backend>> backends;
  for (int i = 0; i < 3; ++i)
    backends.push_back(joy::gpu::make_cpu_backend());
  auto pool = joy::gpu::spawn_gpu_pool(*env.sys, std::move(backends));
  {
    caf::scoped_actor self{*env.sys};
    auto array = make(dtype::float32, {300, 300}, random_floats(300 * 300));
    auto cpu = joy::gpu::stats(array);
    using handle
      = decltype(self->request(pool, timeout, joy::stats_atom_v, array));
    std::vector<handle> pending;
    for (int i = 0; i < 30; ++i)
      pending.push_back(self->request(pool, timeout, joy::stats_atom_v, array));
    for (auto& h : pending)
      h.receive(
        [&](value& v) {
          CHECK(stat(v, "mean") == *cpu->find("mean")->as_float64());
        },
        [&](caf::error& err) { FAIL(joy::message_of(err)); });
    auto described = ask(self, pool, joy::describe_atom_v);
    REQUIRE(described);
    auto* devices = described->as_list();
    REQUIRE(devices != nullptr);
    REQUIRE(devices->size() == 3);
    int64_t total = 0;
    for (auto& d : *devices) {
      auto done = *d.as_map()->find("done")->as_int64();
      CHECK(done > 0);
      CHECK(*d.as_map()->find("in_flight")->as_int64() == 0);
      total += done;
    }
    CHECK(total == 30);
  }
  caf::anon_send_exit(pool, caf::exit_reason::user_shutdown);
}

// -- on a CUDA device ---------------------------------------------------------

TEST_CASE("the CUDA backend describes its device and answers a ping",
          "[actors][gpu]") {
  auto b = cuda_or_skip();
  if (!b)
    return;
  auto d = b->describe();
  auto* m = d.as_map();
  REQUIRE(m != nullptr);
  CHECK(*m->find("kind")->as_string() == "cuda");
  CHECK(*m->find("index")->as_int64() == 0);
  CHECK_FALSE(m->find("name")->as_string()->empty());
  CHECK(*m->find("memory_bytes")->as_uint64() > 0);
  CHECK_THAT(*m->find("compute_capability")->as_string(),
             Catch::Matchers::Matches("[0-9]+\\.[0-9]+"));
  auto pong = wait(start([&](backend::done_fn done) { b->ping(done); }));
  REQUIRE(pong);
  CHECK(pong->is_null());
}

TEST_CASE("the CUDA blur agrees with the CPU on float32 and uint8, 2-D and "
          "3-D, random and edge shapes",
          "[actors][gpu]") {
  auto b = cuda_or_skip();
  if (!b)
    return;
  std::vector<std::vector<uint64_t>> shapes{
    {1, 1},    {1, 37},   {41, 1},   {17, 23},   {64, 64},  {1, 1, 1},
    {3, 4, 5}, {6, 1, 7}, {1, 9, 1}, {5, 33, 2}, {723, 515}};
  std::uniform_int_distribution<uint64_t> side{1, 90};
  for (int i = 0; i < 6; ++i)
    shapes.push_back({side(rng()), side(rng())});
  for (int i = 0; i < 3; ++i)
    shapes.push_back({side(rng()) % 9 + 1, side(rng()), side(rng())});
  for (double sigma : {0.4, 1.0, 2.3, 7.0}) {
    for (auto& shape : shapes) {
      INFO("sigma " << sigma << ", shape " << shape_text(shape));
      auto n = product(shape);
      auto f = make(dtype::float32, shape, random_floats(n, -50, 50));
      check_blur(array_of(wait(start_blur(*b, f, sigma))), f, sigma);
      std::vector<uint8_t> px(n);
      std::uniform_int_distribution<int> byte{0, 255};
      for (auto& p : px)
        p = static_cast<uint8_t>(byte(rng()));
      auto u = make(dtype::uint8, shape, px);
      check_blur(array_of(wait(start_blur(*b, u, sigma))), u, sigma);
    }
  }
  // sigma 0: the input itself, as on the CPU.
  auto f = make(dtype::float32, {4, 4}, random_floats(16));
  CHECK(array_of(wait(start_blur(*b, f, 0))) == f);
}

TEST_CASE("the CUDA matmul agrees with the CPU in float32 and float64, with "
          "no TF32",
          "[actors][gpu]") {
  auto b = cuda_or_skip();
  if (!b)
    return;
  std::vector<std::array<uint64_t, 3>> dims{
    {1, 1, 1},  {1, 300, 1},  {200, 1, 150},  {1, 64, 90},
    {77, 5, 1}, {33, 33, 33}, {129, 257, 65}, {600, 500, 700}};
  std::uniform_int_distribution<uint64_t> side{1, 200};
  for (int i = 0; i < 6; ++i)
    dims.push_back({side(rng()), side(rng()), side(rng())});
  for (auto [m, k, n] : dims) {
    INFO(m << "x" << k << " * " << k << "x" << n);
    auto x = random_floats(m * k, -1, 1), y = random_floats(k * n, -1, 1);
    auto a32 = make(dtype::float32, {m, k}, x);
    auto b32 = make(dtype::float32, {k, n}, y);
    check_matmul(array_of(wait(start_matmul(*b, a32, b32))), a32, b32);
    auto a64
      = make(dtype::float64, {m, k}, std::vector<double>(x.begin(), x.end()));
    auto b64
      = make(dtype::float64, {k, n}, std::vector<double>(y.begin(), y.end()));
    check_matmul(array_of(wait(start_matmul(*b, a64, b64))), a64, b64);
  }
  // 1 + 2^-16 needs 17 mantissa bits: TF32 (10) would round it to 1, and
  // every sum below is exact in float32.
  auto one_plus = 1.0f + std::ldexp(1.0f, -16);
  auto a
    = make(dtype::float32, {64, 64}, std::vector<float>(64 * 64, one_plus));
  auto ones = make(dtype::float32, {64, 64}, std::vector<float>(64 * 64, 1.0f));
  auto c = read<float>(array_of(wait(start_matmul(*b, a, ones))));
  for (auto x : c)
    REQUIRE(x == 64 * one_plus);
}

TEST_CASE("the CUDA stats agree with the CPU for every dtype, and NaN "
          "spreads as in numpy",
          "[actors][gpu]") {
  auto b = cuda_or_skip();
  if (!b)
    return;
  std::vector<std::vector<uint64_t>> shapes{
    {1}, {2}, {7}, {3, 5}, {1000, 3}, {4, 1, 999}, {1031, 1027}};
  for (uint8_t t = 0; t < joy::dtype_count; ++t) {
    auto type = static_cast<dtype>(t);
    for (auto& shape : shapes) {
      INFO(joy::to_string(type) << " " << shape_text(shape));
      auto array = random_array(type, shape);
      check_stats(*wait(start_stats(*b, array)), array);
    }
  }
  // One NaN anywhere: all four NaN.
  auto f64
    = std::vector<double>{1, 2, std::numeric_limits<double>::quiet_NaN(), 4};
  auto f32 = std::vector<float>(5000, 1.5f);
  f32[4321] = std::numeric_limits<float>::quiet_NaN();
  for (auto& array :
       {make(dtype::float64, {4}, f64), make(dtype::float32, {50, 100}, f32),
        make<uint16_t>(dtype::float16, {3}, {0x3c00, 0x7e00, 0})}) {
    auto r = wait(start_stats(*b, array));
    REQUIRE(r);
    for (auto key : {"min", "max", "mean", "std"})
      CHECK(std::isnan(stat(*r, key)));
  }
  // Infinities as on the CPU: inf - inf makes the std NaN.
  auto inf = make<double>(dtype::float64, {3},
                          {1, std::numeric_limits<double>::infinity(), -2});
  check_stats(*wait(start_stats(*b, inf)), inf);
  // A constant array: std exactly 0.
  auto flat = make(dtype::float32, {10, 10}, std::vector<float>(100, 0.25f));
  auto r = wait(start_stats(*b, flat));
  REQUIRE(r);
  CHECK(stat(*r, "mean") == 0.25);
  CHECK(stat(*r, "std") == 0.0);
}

TEST_CASE("the CUDA backend reads inputs in read-only shared mappings",
          "[actors][gpu]") {
  auto b = cuda_or_skip();
  if (!b)
    return;
  // Large enough to be registered in place rather than staged.
  auto image = make(dtype::float32, {1024, 700}, random_floats(1024 * 700));
  auto mapped = in_read_only_mapping(image);
  check_blur(array_of(wait(start_blur(*b, mapped, 1.2))), image, 1.2);
  check_stats(*wait(start_stats(*b, mapped)), image);
  // Two operations on one mapping in flight: the second finds the pages
  // registered and stages them instead.
  auto s1 = start_stats(*b, mapped);
  auto s2 = start_stats(*b, mapped);
  check_stats(*wait(std::move(s1)), image);
  check_stats(*wait(std::move(s2)), image);
  auto a = in_read_only_mapping(
    make(dtype::float64, {512, 300}, std::vector<double>(512 * 300, 0.5)));
  auto x = make(dtype::float64, {300, 3}, std::vector<double>(900, 2.0));
  check_matmul(array_of(wait(start_matmul(*b, a, x))), a, x);
}

TEST_CASE("the CUDA backend refuses what the CPU refuses, with the CPU's "
          "errors",
          "[actors][gpu]") {
  auto b = cuda_or_skip();
  if (!b)
    return;
  auto f = make<float>(dtype::float32, {2, 2}, {1, 2, 3, 4});
  auto empty = make<float>(dtype::float32, {0, 4}, {});
  auto f64 = make<double>(dtype::float64, {1, 2}, {1, 2});
  auto flat = make<float>(dtype::float32, {4}, {1, 2, 3, 4});
  auto short_bytes = make<float>(dtype::float32, {3, 3}, {1, 2});
  for (auto& [image, sigma] :
       std::vector<std::pair<ndarray, double>>{{empty, 1.0},
                                               {f64, 1.0},
                                               {flat, 1.0},
                                               {f, -1.0},
                                               {f, std::nan("")},
                                               {f, 1e6},
                                               {short_bytes, 1.0}}) {
    auto cpu = joy::gpu::gaussian_blur(image, sigma);
    REQUIRE_FALSE(cpu);
    check_same_refusal(wait(start_blur(*b, image, sigma)), cpu.error());
  }
  auto a = make<float>(dtype::float32, {2, 3}, {1, 2, 3, 4, 5, 6});
  auto i32 = make<int32_t>(dtype::int32, {1, 1}, {1});
  for (auto& [x, y] : std::vector<std::pair<ndarray, ndarray>>{
         {a, f},
         {a, make<double>(dtype::float64, {3, 1}, {1, 2, 3})},
         {i32, i32},
         {flat, f},
         {empty, f},
         // The result would be 70000 x 70000.
         {make(dtype::float32, {70000, 1}, std::vector<float>(70000, 1.0f)),
          make(dtype::float32, {1, 70000}, std::vector<float>(70000, 1.0f))}}) {
    auto cpu = joy::gpu::matmul(x, y);
    REQUIRE_FALSE(cpu);
    check_same_refusal(wait(start_matmul(*b, x, y)), cpu.error());
  }
  for (auto& x : {make<float>(dtype::float32, {0}, {}), short_bytes}) {
    auto cpu = joy::gpu::stats(x);
    REQUIRE_FALSE(cpu);
    check_same_refusal(wait(start_stats(*b, x)), cpu.error());
  }
}

TEST_CASE("a CUDA device actor keeps 32 operations in flight and answers "
          "each",
          "[actors][gpu]") {
  auto b = cuda_or_skip();
  if (!b)
    return;
  joy::test::threaded_actors env;
  auto device = joy::gpu::spawn_gpu_device(*env.sys, std::move(b));
  {
    caf::scoped_actor self{*env.sys};
    std::vector<ndarray> images, lefts, rights;
    for (int i = 0; i < 32; ++i) {
      uint64_t h = 20 + i, w = 50 - i;
      images.push_back(make(dtype::float32, {h, w}, random_floats(h * w)));
      lefts.push_back(make(dtype::float32, {h, w}, random_floats(h * w)));
      rights.push_back(make(dtype::float32, {w, 7}, random_floats(w * 7)));
    }
    using handle
      = decltype(self->request(device, timeout, joy::stats_atom_v, images[0]));
    std::vector<handle> pending;
    for (int i = 0; i < 32; ++i) {
      if (i % 3 == 0)
        pending.push_back(
          self->request(device, timeout, joy::blur_atom_v, images[i], 1.5));
      else if (i % 3 == 1)
        pending.push_back(self->request(device, timeout, joy::matmul_atom_v,
                                        lefts[i], rights[i]));
      else
        pending.push_back(
          self->request(device, timeout, joy::stats_atom_v, images[i]));
    }
    for (int i = 0; i < 32; ++i) {
      INFO("operation " << i);
      result r = joy::make_error(joy::errc::internal, "no reply");
      pending[i].receive([&](value& v) { r = std::move(v); },
                         [&](caf::error& err) { r = std::move(err); });
      REQUIRE(r);
      if (i % 3 == 0)
        check_blur(array_of(r), images[i], 1.5);
      else if (i % 3 == 1)
        check_matmul(array_of(r), lefts[i], rights[i]);
      else
        check_stats(*r, images[i]);
    }
  }
  caf::anon_send_exit(device, caf::exit_reason::user_shutdown);
}

TEST_CASE("a CUDA backend destroyed with operations in flight answers them "
          "all first, and its results outlive it",
          "[actors][gpu]") {
  auto b = cuda_or_skip();
  if (!b)
    return;
  std::vector<ndarray> images;
  std::vector<std::future<result>> pending;
  for (int i = 0; i < 16; ++i) {
    images.push_back(make(dtype::float32, {300, 200 + uint64_t(i)},
                          random_floats(300 * (200 + i))));
    pending.push_back(start_blur(*b, images.back(), 2.0));
  }
  b.reset();
  std::vector<result> results;
  for (auto& f : pending) {
    REQUIRE(f.wait_for(std::chrono::seconds{0}) == std::future_status::ready);
    results.push_back(f.get());
  }
  for (std::size_t i = 0; i < results.size(); ++i)
    check_blur(array_of(results[i]), images[i], 2.0);
}
