// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "runtime/errc.hpp"
#include "runtime/value.hpp"
#include "runtime/value_json.hpp"
#include "runtime/value_wire.hpp"
#include "schema/value.capnp.h"
#include "tests/support/value_helpers.hpp"

using namespace joy::test;

namespace {

/// Random values of every kind except function, nested up to a given depth.
class value_generator {
public:
  explicit value_generator(uint64_t seed) : rng_(seed) {
    // nop
  }

  /// A value nested at most `levels` deep.
  value any(int levels) {
    if (levels > 0 && chance(0.35))
      return chance(0.5) ? list(levels) : map(levels);
    switch (between(0, 9)) {
      case 0:
        return value{};
      case 1:
        return value{chance(0.5)};
      case 2:
        return int64();
      case 3:
        return uint64();
      case 4:
        return value{float64()};
      case 5:
        return value{utf8()};
      case 6:
        return value{
          random_bytes(rng_, static_cast<std::size_t>(between(0, 40)))};
      case 7:
        return value{array()};
      case 8:
        return timestamp_value();
      default:
        return error();
    }
  }

  /// A list or map at the top, so that most samples have structure.
  value container(int levels) {
    return chance(0.5) ? list(levels) : map(levels);
  }

private:
  bool chance(double p) {
    return std::uniform_real_distribution<double>{0.0, 1.0}(rng_) < p;
  }

  int64_t between(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>{lo, hi}(rng_);
  }

  value list(int levels) {
    value_list xs;
    auto n = between(0, 5);
    for (int64_t i = 0; i < n; ++i)
      xs.push_back(any(levels - 1));
    return value{std::move(xs)};
  }

  value map(int levels) {
    value_map m;
    auto n = between(0, 5);
    for (int64_t i = 0; i < n; ++i)
      m.insert(key(), any(levels - 1));
    return value{std::move(m)};
  }

  std::string key() {
    switch (between(0, 5)) {
      case 0:
        return "_r" + utf8(3); // reserved: forces the wrapped encoding
      case 1:
        return "";
      default:
        return utf8(8);
    }
  }

  value int64() {
    switch (between(0, 4)) {
      case 0:
        return value{between(-100, 100)};
      case 1:
        return value{std::numeric_limits<int64_t>::min()};
      case 2:
        return value{std::numeric_limits<int64_t>::max()};
      default:
        return value{static_cast<int64_t>(rng_())};
    }
  }

  value uint64() {
    switch (between(0, 5)) {
      case 0:
        return value{static_cast<uint64_t>(between(0, 100))};
      case 1:
        return value{std::numeric_limits<uint64_t>::max()};
      case 2:
        return value{uint64_t{1} << 63};
      case 3:
        return value{
          static_cast<uint64_t>(std::numeric_limits<int64_t>::max())};
      default:
        return value{static_cast<uint64_t>(rng_())};
    }
  }

  double float64() {
    using lim = std::numeric_limits<double>;
    switch (between(0, 9)) {
      case 0: {
        static const double special[] = {lim::quiet_NaN(),
                                         -lim::quiet_NaN(),
                                         lim::infinity(),
                                         -lim::infinity(),
                                         0.0,
                                         -0.0,
                                         lim::denorm_min(),
                                         -lim::denorm_min(),
                                         lim::min(),
                                         lim::max(),
                                         lim::lowest(),
                                         1.0};
        return special[between(0, std::size(special) - 1)];
      }
      case 1: { // subnormal
        uint64_t bits = rng_() & ((uint64_t{1} << 52) - 1);
        bits |= rng_() & (uint64_t{1} << 63);
        return double_of(bits);
      }
      case 2: { // any bit pattern, NaNs with payloads included
        uint64_t bits = rng_();
        return double_of(bits);
      }
      case 3:
        return static_cast<double>(between(-1'000'000, 1'000'000));
      case 4:
        return static_cast<double>(between(-1000, 1000)) / 10.0;
      default:
        return std::ldexp(
          std::uniform_real_distribution<double>{-1.0, 1.0}(rng_),
          static_cast<int>(between(-1074, 1024)));
    }
  }

  /// A random code point of 1 to 4 UTF-8 bytes, never a surrogate.
  uint32_t code_point() {
    switch (between(0, 9)) {
      case 0: { // controls, quotes, backslash, DEL
        static const uint32_t tricky[] = {0x00, 0x01, 0x08, 0x09, 0x0A, 0x0C,
                                          0x0D, 0x1F, '"',  '\\', '/',  0x7F};
        return tricky[between(0, std::size(tricky) - 1)];
      }
      case 1:
      case 2:
        return static_cast<uint32_t>(between(0x80, 0x7FF));
      case 3:
      case 4: {
        auto cp = static_cast<uint32_t>(between(0x800, 0xFFFF - 0x800));
        return cp >= 0xD800 ? cp + 0x800 : cp;
      }
      case 5:
        return static_cast<uint32_t>(between(0x10000, 0x10FFFF));
      default:
        return static_cast<uint32_t>(between(0x20, 0x7E));
    }
  }

  std::string utf8(int max_length = 12) {
    std::string out;
    auto n = between(0, max_length);
    for (int64_t i = 0; i < n; ++i) {
      auto cp = code_point();
      if (cp < 0x80) {
        out += static_cast<char>(cp);
      } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
      } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
      } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
      }
    }
    return out;
  }

  ndarray array() {
    ndarray a;
    a.type = static_cast<dtype>(between(0, joy::dtype_count - 1));
    if (chance(0.2)) {
      a.typed_array = true;
      a.shape = {static_cast<uint64_t>(between(0, 6))};
    } else {
      auto ndim = between(0, 3);
      for (int64_t i = 0; i < ndim; ++i)
        a.shape.push_back(static_cast<uint64_t>(between(0, 4)));
    }
    a.data = random_bytes(rng_, *a.element_count() * joy::itemsize(a.type));
    return a;
  }

  value timestamp_value() {
    switch (between(0, 5)) {
      case 0:
        return value{timestamp{std::numeric_limits<int64_t>::min()}};
      case 1:
        return value{timestamp{std::numeric_limits<int64_t>::max()}};
      case 2: // whole milliseconds, the common case
        return value{timestamp{between(-4'000'000'000'000, 4'000'000'000'000)
                               * 1'000'000}};
      default: // every int64 is representable as an ISO 8601 string
        return value{timestamp{static_cast<int64_t>(rng_())}};
    }
  }

  value error() {
    static const errc codes[] = {errc::timeout,
                                 errc::overloaded,
                                 errc::disconnected,
                                 errc::unavailable,
                                 errc::cancelled,
                                 errc::invalid_argument,
                                 errc::not_found,
                                 errc::already_exists,
                                 errc::too_large,
                                 errc::permission_denied,
                                 errc::failed_precondition,
                                 errc::version_mismatch,
                                 errc::unimplemented,
                                 errc::plugin_error,
                                 errc::protocol_error,
                                 errc::io_error,
                                 errc::internal};
    error_value e;
    e.code = codes[between(0, std::size(codes) - 1)];
    e.message = utf8(20);
    if (chance(0.5))
      e.trace = utf8(30);
    return value{std::move(e)};
  }

  std::mt19937_64 rng_;
};

/// What JSON cannot keep: a uint64 that fits int64 reads back as int64.
value normalize_for_json(const value& x) {
  if (auto* u = x.as_uint64()) {
    if (*u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return value{static_cast<int64_t>(*u)};
    return x;
  }
  if (auto* xs = x.as_list()) {
    value_list out;
    out.reserve(xs->size());
    for (auto& y : *xs)
      out.push_back(normalize_for_json(y));
    return value{std::move(out)};
  }
  if (auto* m = x.as_map()) {
    value_map out;
    out.reserve(m->size());
    for (auto& [k, y] : *m)
      out.insert(k, normalize_for_json(y));
    return value{std::move(out)};
  }
  return x;
}

constexpr int samples_per_seed = 500;
constexpr int max_levels = 6;

} // namespace

TEST_CASE("the generator covers every kind but function",
          "[runtime][roundtrip]") {
  value_generator gen{1};
  std::vector<int> seen(13, 0);
  std::size_t deepest = 0;
  auto visit = [&](const value& x, auto& self) -> void {
    ++seen[static_cast<std::size_t>(x.type())];
    if (auto* xs = x.as_list())
      for (auto& y : *xs)
        self(y, self);
    if (auto* m = x.as_map())
      for (auto& [k, y] : *m)
        self(y, self);
  };
  for (int i = 0; i < samples_per_seed; ++i) {
    auto v = gen.container(max_levels);
    CHECK(joy::depth(v) <= static_cast<std::size_t>(max_levels));
    deepest = std::max(deepest, joy::depth(v));
    visit(v, visit);
  }
  for (std::size_t k = 0; k < seen.size(); ++k) {
    INFO(joy::to_string(static_cast<kind>(k)));
    if (static_cast<kind>(k) == kind::function)
      CHECK(seen[k] == 0);
    else
      CHECK(seen[k] > 0);
  }
  CHECK(deepest >= 4);
}

TEST_CASE("random values round-trip through Cap'n Proto",
          "[runtime][roundtrip]") {
  for (uint64_t seed : {1u, 2u, 3u}) {
    value_generator gen{seed};
    for (int i = 0; i < samples_per_seed; ++i) {
      auto v = gen.container(max_levels);
      auto back = through_builder(v);
      if (!back)
        FAIL("seed " << seed << " sample " << i << ": "
                     << joy::message_of(back.error()));
      if (*back != v)
        FAIL("seed " << seed << " sample " << i << " differs after capnp");
      auto decoded = through_bytes(v);
      if (!decoded)
        FAIL("seed " << seed << " sample " << i << ": "
                     << joy::message_of(decoded.error()));
      if (*decoded != v)
        FAIL("seed " << seed << " sample " << i << " differs after bytes");
    }
  }
  SUCCEED("all samples round-tripped");
}

TEST_CASE("random values round-trip through JSON up to what JSON cannot keep",
          "[runtime][roundtrip]") {
  for (uint64_t seed : {11u, 12u, 13u}) {
    value_generator gen{seed};
    for (int i = 0; i < samples_per_seed; ++i) {
      auto v = gen.container(max_levels);
      auto text = joy::to_json(v);
      if (!text)
        FAIL("seed " << seed << " sample " << i << ": "
                     << joy::message_of(text.error()));
      auto back = joy::from_json(*text);
      if (!back)
        FAIL("seed " << seed << " sample " << i << ": "
                     << joy::message_of(back.error()) << "\nJSON: " << *text);
      if (*back != normalize_for_json(v))
        FAIL("seed " << seed << " sample " << i
                     << " differs after JSON: " << *text);
    }
  }
  SUCCEED("all samples round-tripped");
}

TEST_CASE("generated JSON survives a trip through Cap'n Proto unchanged",
          "[runtime][roundtrip]") {
  for (uint64_t seed : {21u, 22u, 23u}) {
    value_generator gen{seed};
    for (int i = 0; i < samples_per_seed; ++i) {
      auto text = joy::to_json(gen.container(max_levels));
      REQUIRE(text);
      auto v = joy::from_json(*text);
      if (!v)
        FAIL("seed " << seed << " sample " << i << ": "
                     << joy::message_of(v.error()) << "\nJSON: " << *text);
      auto back = through_bytes(*v);
      if (!back)
        FAIL("seed " << seed << " sample " << i << ": "
                     << joy::message_of(back.error()));
      auto again = joy::to_json(*back);
      REQUIRE(again);
      if (*again != *text)
        FAIL("seed " << seed << " sample " << i << ":\n  " << *text << "\n  "
                     << *again);
    }
  }
  SUCCEED("all samples kept their JSON text");
}

TEST_CASE("normalize_for_json turns only small uint64 values into int64",
          "[runtime][roundtrip]") {
  auto big = std::numeric_limits<uint64_t>::max();
  value v{value_list{value{uint64_t{5}}, value{big},
                     value{value_map{{"a", uint64_t{7}}}}, value{5}}};
  value expected{
    value_list{value{5}, value{big}, value{value_map{{"a", 7}}}, value{5}}};
  CHECK(normalize_for_json(v) == expected);
}
