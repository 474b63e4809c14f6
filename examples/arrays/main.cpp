// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// arrays: large ndarrays between plugins. An array made with
// `ctx.allocate` lives in the plugin's shared-memory pool, so sending it to
// a plugin on the same host hands over the block, not the bytes; where the
// node streams (`joy start --large-data stream`) the same code sends it in
// chunks. Contents follow a seeded pattern, so every hop is checked.
//
//   joy install build/examples/arrays        # and a copy named arrays-2
//   joy call arrays send '"arrays-2"' 1073741824 7      # true
//   joy call arrays round_trip '"arrays-2"' 1073741824 7

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "runtime/plugin.hpp"

namespace {

uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/// Byte i of the pattern is byte (i % 8) of splitmix(seed + i / 8).
void fill(std::byte* out, uint64_t n, uint64_t seed) {
  uint64_t words = n / 8;
  for (uint64_t k = 0; k < words; ++k) {
    auto w = splitmix(seed + k);
    std::memcpy(out + 8 * k, &w, 8);
  }
  if (auto rest = n % 8) {
    auto w = splitmix(seed + words);
    std::memcpy(out + 8 * words, &w, rest);
  }
}

bool matches(const std::byte* in, uint64_t n, uint64_t seed) {
  uint64_t words = n / 8;
  for (uint64_t k = 0; k < words; ++k) {
    auto w = splitmix(seed + k);
    if (std::memcmp(in + 8 * k, &w, 8) != 0)
      return false;
  }
  if (auto rest = n % 8) {
    auto w = splitmix(seed + words);
    return std::memcmp(in + 8 * words, &w, rest) == 0;
  }
  return true;
}

caf::expected<joy::ndarray> make(joy::context& ctx, uint64_t n, uint64_t seed) {
  auto out = ctx.allocate(n);
  if (!out)
    return std::move(out.error());
  fill(out->data(), n, seed);
  return joy::ndarray{joy::dtype::uint8, {n}, std::move(*out).freeze()};
}

/// A 2-D uint8 diagonal gradient, black at the top left, white at the
/// bottom right.
caf::expected<joy::ndarray> gradient(joy::context& ctx, uint64_t height,
                                     uint64_t width) {
  if (height == 0 || width == 0 || height * width > (uint64_t{1} << 26))
    return caf::make_error(joy::errc::invalid_argument,
                           "gradient: 1 to 64 Mi pixels");
  auto out = ctx.allocate(height * width);
  if (!out)
    return std::move(out.error());
  auto* px = reinterpret_cast<uint8_t*>(out->data());
  for (uint64_t y = 0; y < height; ++y)
    for (uint64_t x = 0; x < width; ++x)
      px[y * width + x]
        = static_cast<uint8_t>((255 * x / std::max<uint64_t>(1, width - 1)
                                + 255 * y / std::max<uint64_t>(1, height - 1))
                               / 2);
  return joy::ndarray{
    joy::dtype::uint8, {height, width}, std::move(*out).freeze()};
}

bool check(const joy::ndarray& a, uint64_t seed) {
  return a.type == joy::dtype::uint8 && a.shape.size() == 1 && a.data.readable()
         && matches(a.data.data(), a.data.size(), seed);
}

/// Makes an array here and hands it, with its seed, to `to`'s `method`.
joy::future<joy::value> make_and_send(joy::context& ctx, const std::string& to,
                                      const std::string& method, uint64_t n,
                                      uint64_t seed) {
  auto a = make(ctx, n, seed);
  if (!a)
    return a.error();
  return ctx.api().call(to, method,
                        {joy::value{std::move(*a)}, joy::value{seed}});
}

} // namespace

int main(int argc, char** argv) {
  joy::plugin arrays{"arrays"};

  arrays.exports.add("make",
                     [](joy::context& ctx, uint64_t n, uint64_t seed) {
                       return make(ctx, n, seed);
                     },
                     {"bytes", "seed"});

  arrays.exports.add("check", &check, {"array", "seed"});

  // A picture: a 2-D uint8 diagonal gradient (the browser core draws it).
  arrays.exports.add("gradient", gradient, {"height", "width"});

  // ImJoy's run(ctx): the form the manifest's `ui` describes fills
  // ctx.config with `height` and `width`.
  arrays.on_run(
    [](joy::context& ctx, joy::value run_ctx) -> caf::expected<joy::ndarray> {
      auto size = [&](const char* key) -> uint64_t {
        auto* m = run_ctx.as_map();
        auto* config = m != nullptr ? m->find("config") : nullptr;
        auto* c = config != nullptr ? config->as_map() : nullptr;
        auto* x = c != nullptr ? c->find(key) : nullptr;
        if (x == nullptr)
          return 64;
        if (auto* i = x->as_int64())
          return *i > 0 ? static_cast<uint64_t>(*i) : 0;
        if (auto* d = x->as_float64())
          return *d >= 1 ? static_cast<uint64_t>(*d) : 0;
        return 0;
      };
      return gradient(ctx, size("height"), size("width"));
    });

  arrays.exports.add("mirror", [](joy::ndarray a) { return a; }, {"array"});

  // Makes an array here and lets another plugin check it.
  arrays.exports.add(
    "send",
    [](joy::context& ctx, std::string to, uint64_t n, uint64_t seed) {
      return make_and_send(ctx, to, "check", n, seed);
    },
    {"to", "bytes", "seed"});

  // The same from plain heap memory: the SDK moves it for us.
  arrays.exports.add(
    "send_heap",
    [](joy::context& ctx, std::string to, uint64_t n, uint64_t seed) {
      std::vector<std::byte> bytes(n);
      fill(bytes.data(), n, seed);
      joy::ndarray a{
        joy::dtype::uint8, {n}, joy::buffer::take(std::move(bytes))};
      return ctx.api().call(to, "check",
                            {joy::value{std::move(a)}, joy::value{seed}});
    },
    {"to", "bytes", "seed"});

  // There and back: another plugin returns what it got; both hops checked.
  arrays.exports.add(
    "round_trip",
    [](joy::context& ctx, std::string to, uint64_t n,
       uint64_t seed) -> joy::future<joy::value> {
      auto a = make(ctx, n, seed);
      if (!a)
        return a.error();
      return ctx.api()
        .call(to, "mirror", {joy::value{std::move(*a)}})
        .then([seed](joy::value back) -> caf::expected<joy::value> {
          auto* b = back.as_ndarray();
          if (b == nullptr)
            return joy::make_error(joy::errc::invalid_argument,
                                   "mirror returned no ndarray");
          return joy::value{check(*b, seed)};
        });
    },
    {"to", "bytes", "seed"});

  // Keeps arrays alive (to look at who maps them), until drop().
  auto kept = std::make_shared<std::vector<joy::ndarray>>();
  arrays.exports.add("keep",
                     [kept](joy::ndarray a, uint64_t seed) {
                       bool ok = check(a, seed);
                       kept->push_back(std::move(a));
                       return ok;
                     },
                     {"array", "seed"});
  arrays.exports.add(
    "send_to_keep",
    [](joy::context& ctx, std::string to, uint64_t n, uint64_t seed) {
      return make_and_send(ctx, to, "keep", n, seed);
    },
    {"to", "bytes", "seed"});
  arrays.exports.add("drop", [kept]() {
    auto n = static_cast<int64_t>(kept->size());
    kept->clear();
    return n;
  });

  return joy::run_plugin(argc, argv, std::move(arrays));
}
