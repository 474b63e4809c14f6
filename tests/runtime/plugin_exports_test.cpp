// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/errc.hpp"
#include "runtime/plugin_api.hpp"
#include "runtime/plugin_exports.hpp"
#include "runtime/value.hpp"
#include "tests/support/value_helpers.hpp"

using joy::plugin_exports;
using namespace joy::test;

namespace {

constexpr int64_t int64_max = std::numeric_limits<int64_t>::max();
constexpr int64_t int64_min = std::numeric_limits<int64_t>::min();
constexpr uint64_t uint64_max = std::numeric_limits<uint64_t>::max();

int64_t twice(int64_t x) {
  return 2 * x;
}

caf::expected<value> invoke(const plugin_exports& ex, const std::string& name,
                            const value_list& args,
                            const value_map& kwargs = {}) {
  auto* fn = ex.find(name);
  if (fn == nullptr)
    FAIL("no function named " << name);
  // These functions take no context; an api without a node will do.
  joy::api no_node{nullptr};
  joy::context ctx{no_node};
  auto fut = fn->invoke(ctx, args, kwargs);
  REQUIRE(fut.is_ready());
  return fut.take();
}

/// The result of a call that must succeed.
value ok(const caf::expected<value>& res) {
  if (!res)
    FAIL("call failed: " << joy::message_of(res.error()));
  return *res;
}

/// The message of a call that must fail with `code`.
std::string failure(const caf::expected<value>& res,
                    errc code = errc::invalid_argument) {
  if (res)
    FAIL("call should have failed but gave " << joy::to_string(*res));
  CHECK(joy::code_of(res.error()) == code);
  return joy::message_of(res.error());
}

/// Functions with one parameter of each convertible type.
plugin_exports converters() {
  plugin_exports ex;
  ex.add("i64", [](int64_t x) { return x; }, {"x"});
  ex.add("u64", [](uint64_t x) { return x; }, {"x"});
  ex.add("i8", [](int8_t x) { return x; }, {"x"});
  ex.add("u8", [](uint8_t x) { return x; }, {"x"});
  ex.add("i32", [](int32_t x) { return x; }, {"x"});
  ex.add("u32", [](uint32_t x) { return x; }, {"x"});
  ex.add("f64", [](double x) { return x; }, {"x"});
  ex.add("f32", [](float x) { return x; }, {"x"});
  ex.add("flag", [](bool x) { return !x; }, {"x"});
  ex.add("text", [](const std::string& s) { return s + "!"; }, {"s"});
  ex.add("size", [](const buffer& b) { return static_cast<int64_t>(b.size()); },
         {"b"});
  ex.add("shape",
         [](const ndarray& a) { return std::vector<uint64_t>{a.shape}; },
         {"a"});
  ex.add("later", [](timestamp t) { return timestamp{t.ns + 1}; }, {"t"});
  ex.add("count", [](const value_list& xs) { return xs.size(); }, {"xs"});
  ex.add("keys", [](const value_map& m) { return keys_of(m); }, {"m"});
  ex.add("sum",
         [](const std::vector<int64_t>& xs) {
           int64_t total = 0;
           for (auto x : xs)
             total += x;
           return total;
         },
         {"xs"});
  ex.add("total",
         [](const std::map<std::string, double>& m) {
           double total = 0;
           for (auto& [k, v] : m)
             total += v;
           return total;
         },
         {"m"});
  ex.add("greet",
         [](std::optional<std::string> name) {
           return "hello " + name.value_or("stranger");
         },
         {"name"});
  return ex;
}

} // namespace

// -- calling ------------------------------------------------------------------

TEST_CASE("exported functions of various signatures can be called",
          "[runtime][exports]") {
  plugin_exports ex;
  ex.add("add", [](int64_t a, int64_t b) { return a + b; }, {"a", "b"})
    .add("answer", [] { return 42; })
    .add("twice", &twice, {"x"})
    .add("echo", [](value x) { return x; }, {"x"})
    .add("concat",
         [](std::string a, const std::string& b, int n) {
           std::string out;
           for (int i = 0; i < n; ++i)
             out += a + b;
           return out;
         },
         {"a", "b", "n"})
    .add("wrapped",
         std::function<double(double)>{[](double x) { return x / 2; }})
    .add("none", [](int64_t a) {
      return a > 0 ? std::optional<int64_t>{a} : std::nullopt;
    });

  CHECK(ok(invoke(ex, "add", {value{2}, value{3}})) == value{5});
  CHECK(ok(invoke(ex, "answer", {})) == value{42});
  CHECK(ok(invoke(ex, "twice", {value{21}})) == value{42});
  auto nested = value{value_map{{"a", value_list{value{1.5}, value{}}}}};
  CHECK(ok(invoke(ex, "echo", {nested})) == nested);
  CHECK(ok(invoke(ex, "concat", {value{"ab"}, value{"c"}, value{2}}))
        == value{"abcabc"});
  CHECK(ok(invoke(ex, "wrapped", {value{5.0}})) == value{2.5});
  CHECK(ok(invoke(ex, "none", {value{7}})) == value{7});
  CHECK(ok(invoke(ex, "none", {value{-7}})) == value{});
}

TEST_CASE("results convert to the matching value kinds", "[runtime][exports]") {
  auto ex = converters();
  auto i8 = ok(invoke(ex, "i8", {value{-5}}));
  CHECK(i8.type() == kind::int64);
  CHECK(i8 == value{-5});
  auto u64 = ok(invoke(ex, "u64", {value{5}}));
  CHECK(u64.type() == kind::uint64);
  CHECK(u64 == value{uint64_t{5}});
  auto u32 = ok(invoke(ex, "u32", {value{5}}));
  CHECK(u32.type() == kind::int64);
  auto f32 = ok(invoke(ex, "f32", {value{0.5}}));
  CHECK(f32 == value{0.5});
  CHECK(ok(invoke(ex, "flag", {value{false}})) == value{true});
  CHECK(ok(invoke(ex, "text", {value{"hi"}})) == value{"hi!"});
  CHECK(ok(invoke(ex, "size", {value{buffer::copy_of("abc", 3)}})) == value{3});
  ndarray a;
  a.type = dtype::uint8;
  a.shape = {2, 3};
  a.data = buffer::take(std::vector<std::byte>(6));
  CHECK(ok(invoke(ex, "shape", {value{a}}))
        == value{value_list{value{uint64_t{2}}, value{uint64_t{3}}}});
  CHECK(ok(invoke(ex, "later", {value{timestamp{41}}}))
        == value{timestamp{42}});
  CHECK(ok(invoke(ex, "count", {value{value_list{value{1}, value{}}}}))
        == value{uint64_t{2}});
  CHECK(ok(invoke(ex, "keys", {value{value_map{{"z", 1}, {"a", 2}}}}))
        == value{value_list{value{"z"}, value{"a"}}});
}

TEST_CASE("a wrong argument count is an invalid_argument error",
          "[runtime][exports]") {
  plugin_exports ex;
  ex.add("f", [](int64_t a, int64_t b) { return a - b; }, {"a", "b"});
  ex.add("g", [](int64_t a) { return a; });
  ex.add("h", [] { return 0; });
  CHECK_THAT(failure(invoke(ex, "f", {value{1}, value{2}, value{3}})),
             Contains("f takes 2 arguments, got 3"));
  CHECK_THAT(failure(invoke(ex, "f", {value{1}})),
             Contains("f takes 2 arguments, got 1"));
  CHECK_THAT(failure(invoke(ex, "g", {})),
             Contains("g takes 1 argument, got 0"));
  CHECK_THAT(failure(invoke(ex, "h", {value{1}})),
             Contains("h takes 0 arguments, got 1"));
}

TEST_CASE(
  "a wrong argument type names the argument, the expectation and the value",
  "[runtime][exports]") {
  plugin_exports ex;
  ex.add("f", [](int64_t a, int64_t b) { return a + b; }, {"a", "b"});
  ex.add("anon",
         [](int64_t a, const std::string& b) { return b + std::to_string(a); });

  auto msg = failure(invoke(ex, "f", {value{1}, value{"two"}}));
  CHECK_THAT(msg, Contains("f:"));
  CHECK_THAT(msg, Contains("argument 2 (b)"));
  CHECK_THAT(msg, Contains("expected an integer"));
  CHECK_THAT(msg, Contains("got string \"two\""));

  msg = failure(invoke(ex, "f", {value{true}, value{2}}));
  CHECK_THAT(msg, Contains("argument 1 (a)"));
  CHECK_THAT(msg, Contains("got bool true"));

  // Without parameter names only the position is known.
  msg = failure(invoke(ex, "anon", {value{1}, value{2}}));
  CHECK_THAT(msg, Contains("argument 2"));
  CHECK_FALSE(msg.find("argument 2 (") != std::string::npos);
  CHECK_THAT(msg, Contains("expected a string"));
  CHECK_THAT(msg, Contains("got int64 2"));

  // The first bad argument is reported.
  msg = failure(invoke(ex, "f", {value{"x"}, value{"y"}}));
  CHECK_THAT(msg, Contains("argument 1 (a)"));
}

// -- lossless conversions -----------------------------------------------------

TEST_CASE("integral floats convert to integer parameters, fractions do not",
          "[runtime][exports]") {
  auto ex = converters();
  CHECK(ok(invoke(ex, "i64", {value{2.0}})) == value{2});
  CHECK(ok(invoke(ex, "i64", {value{-0.0}})) == value{0});
  CHECK(ok(invoke(ex, "i64", {value{-9223372036854775808.0}}))
        == value{int64_min});
  auto msg = failure(invoke(ex, "i64", {value{2.5}}));
  CHECK_THAT(msg, Contains("argument 1 (x)"));
  CHECK_THAT(msg, Contains("got float64 2.5"));
  // 2^63 is just beyond int64.
  failure(invoke(ex, "i64", {value{9223372036854775808.0}}));
  failure(invoke(ex, "i64", {value{std::numeric_limits<double>::infinity()}}));
  failure(invoke(ex, "i64", {value{std::numeric_limits<double>::quiet_NaN()}}));
  CHECK(ok(invoke(ex, "u64", {value{9223372036854775808.0}}))
        == value{uint64_t{1} << 63});
  failure(invoke(ex, "u64", {value{18446744073709551616.0}}));
  failure(invoke(ex, "u64", {value{-1.0}}));
  CHECK(ok(invoke(ex, "i8", {value{-128.0}})) == value{-128});
  failure(invoke(ex, "i8", {value{128.0}}));
  failure(invoke(ex, "i8", {value{127.5}}));
}

TEST_CASE("integers convert to double parameters only when exact",
          "[runtime][exports]") {
  auto ex = converters();
  constexpr int64_t two_53 = int64_t{1} << 53;
  CHECK(ok(invoke(ex, "f64", {value{two_53}})) == value{9007199254740992.0});
  CHECK(ok(invoke(ex, "f64", {value{-two_53}})) == value{-9007199254740992.0});
  CHECK(ok(invoke(ex, "f64", {value{int64_min}}))
        == value{-9223372036854775808.0});
  CHECK(ok(invoke(ex, "f64", {value{uint64_t{1} << 63}}))
        == value{9223372036854775808.0});
  CHECK(ok(invoke(ex, "f64", {value{3}})) == value{3.0});

  auto msg = failure(invoke(ex, "f64", {value{two_53 + 1}}));
  CHECK_THAT(msg, Contains("argument 1 (x)"));
  CHECK_THAT(msg, Contains("without rounding"));
  // 2^63 - 1 is not representable: the nearest double is 2^63.
  msg = failure(invoke(ex, "f64", {value{int64_max}}));
  CHECK_THAT(msg, Contains("got int64 9223372036854775807"));
  msg = failure(invoke(ex, "f64", {value{uint64_max}}));
  CHECK_THAT(msg, Contains("got uint64 18446744073709551615"));
  msg = failure(invoke(ex, "f64", {value{"1.5"}}));
  CHECK_THAT(msg, Contains("expected a number"));
}

TEST_CASE("uint64 values convert to int64 parameters when in range",
          "[runtime][exports]") {
  auto ex = converters();
  CHECK(ok(invoke(ex, "i64", {value{uint64_t{5}}})) == value{5});
  CHECK(ok(invoke(ex, "i64", {value{static_cast<uint64_t>(int64_max)}}))
        == value{int64_max});
  auto msg = failure(invoke(ex, "i64", {value{uint64_t{1} << 63}}));
  CHECK_THAT(
    msg,
    Contains("an integer from -9223372036854775808 to 9223372036854775807"));
  CHECK_THAT(msg, Contains("got uint64 9223372036854775808"));
  failure(invoke(ex, "i64", {value{uint64_max}}));
}

TEST_CASE("negative values do not convert to unsigned parameters",
          "[runtime][exports]") {
  auto ex = converters();
  auto msg = failure(invoke(ex, "u64", {value{-1}}));
  CHECK_THAT(msg, Contains("an integer from 0 to 18446744073709551615"));
  CHECK_THAT(msg, Contains("got int64 -1"));
  failure(invoke(ex, "u32", {value{-1}}));
  failure(invoke(ex, "u8", {value{int64_min}}));
  CHECK(ok(invoke(ex, "u64", {value{0}})) == value{uint64_t{0}});
  CHECK(ok(invoke(ex, "u64", {value{int64_max}}))
        == value{static_cast<uint64_t>(int64_max)});
  CHECK(ok(invoke(ex, "u64", {value{uint64_max}})) == value{uint64_max});
}

TEST_CASE("small integer parameters check their range", "[runtime][exports]") {
  auto ex = converters();
  CHECK(ok(invoke(ex, "i8", {value{127}})) == value{127});
  CHECK(ok(invoke(ex, "i8", {value{-128}})) == value{-128});
  auto msg = failure(invoke(ex, "i8", {value{128}}));
  CHECK_THAT(msg, Contains("an integer from -128 to 127"));
  CHECK_THAT(msg, Contains("got int64 128"));
  failure(invoke(ex, "i8", {value{-129}}));
  failure(invoke(ex, "i8", {value{uint64_t{128}}}));
  CHECK(ok(invoke(ex, "i8", {value{uint64_t{127}}})) == value{127});
  CHECK(ok(invoke(ex, "u8", {value{255}})) == value{255});
  CHECK_THAT(failure(invoke(ex, "u8", {value{256}})),
             Contains("from 0 to 255"));
  CHECK(ok(invoke(ex, "i32", {value{int64_t{-2147483648}}}))
        == value{-2147483648LL});
  failure(invoke(ex, "i32", {value{int64_t{2147483648}}}));
  CHECK(ok(invoke(ex, "u32", {value{int64_t{4294967295}}}))
        == value{4294967295LL});
  failure(invoke(ex, "u32", {value{int64_t{4294967296}}}));
}

TEST_CASE("float parameters take doubles in float range",
          "[runtime][exports]") {
  auto ex = converters();
  CHECK(ok(invoke(ex, "f32", {value{0.1}}))
        == value{static_cast<double>(0.1f)});
  CHECK(ok(invoke(ex, "f32", {value{3}})) == value{3.0});
  auto inf
    = ok(invoke(ex, "f32", {value{std::numeric_limits<double>::infinity()}}));
  CHECK(inf == value{std::numeric_limits<double>::infinity()});
  CHECK_THAT(failure(invoke(ex, "f32", {value{1e300}})),
             Contains("float range"));
  failure(invoke(ex, "f32", {value{int64_t{(1 << 24) + 1}}}));
}

TEST_CASE("bool parameters take bools only", "[runtime][exports]") {
  auto ex = converters();
  CHECK(ok(invoke(ex, "flag", {value{true}})) == value{false});
  CHECK_THAT(failure(invoke(ex, "flag", {value{1}})),
             Contains("expected a bool, got int64 1"));
  failure(invoke(ex, "flag", {value{}}));
}

// -- containers ---------------------------------------------------------------

TEST_CASE("vector, map and optional parameters convert element-wise",
          "[runtime][exports]") {
  auto ex = converters();
  SECTION("std::vector<int64_t>") {
    CHECK(
      ok(invoke(ex, "sum",
                {value{value_list{value{1}, value{2.0}, value{uint64_t{3}}}}}))
      == value{6});
    CHECK(ok(invoke(ex, "sum", {value{value_list{}}})) == value{0});
    auto msg
      = failure(invoke(ex, "sum", {value{value_list{value{1}, value{"x"}}}}));
    CHECK_THAT(msg, Contains("argument 1 (xs)"));
    CHECK_THAT(msg, Contains("at index 1"));
    CHECK_THAT(msg, Contains("got string \"x\""));
    CHECK_THAT(failure(invoke(ex, "sum", {value{5}})),
               Contains("expected a list"));
  }
  SECTION("std::map<std::string, double>") {
    CHECK(ok(invoke(ex, "total", {value{value_map{{"a", 1.5}, {"b", 2}}}}))
          == value{3.5});
    auto msg = failure(
      invoke(ex, "total", {value{value_map{{"a", 1.5}, {"b", "x"}}}}));
    CHECK_THAT(msg, Contains("at key 'b'"));
    CHECK_THAT(failure(invoke(ex, "total", {value{value_list{}}})),
               Contains("expected a map"));
  }
  SECTION("std::optional<std::string>") {
    CHECK(ok(invoke(ex, "greet", {value{}})) == value{"hello stranger"});
    CHECK(ok(invoke(ex, "greet", {value{"Ada"}})) == value{"hello Ada"});
    auto msg = failure(invoke(ex, "greet", {value{5}}));
    CHECK_THAT(msg, Contains("a string or null"));
    CHECK_THAT(msg, Contains("got int64 5"));
  }
  SECTION("other value kinds are type-checked") {
    failure(invoke(ex, "size", {value{"abc"}}));
    failure(invoke(ex, "shape", {value{value_list{}}}));
    failure(invoke(ex, "later", {value{5}}));
    failure(invoke(ex, "count", {value{value_map{}}}));
    failure(invoke(ex, "keys", {value{value_list{}}}));
  }
}

// -- keyword arguments --------------------------------------------------------

TEST_CASE("arguments can be passed by parameter name", "[runtime][exports]") {
  plugin_exports ex;
  ex.add("div", [](double num, double den) { return num / den; },
         {"num", "den"});
  ex.add("anon", [](int64_t a) { return a; });

  CHECK(ok(invoke(ex, "div", {}, value_map{{"num", 6.0}, {"den", 3.0}}))
        == value{2.0});
  CHECK(ok(invoke(ex, "div", {}, value_map{{"den", 3.0}, {"num", 6.0}}))
        == value{2.0});
  CHECK(ok(invoke(ex, "div", {value{6.0}}, value_map{{"den", 3.0}}))
        == value{2.0});

  SECTION("missing argument") {
    auto msg = failure(invoke(ex, "div", {}, value_map{{"num", 6.0}}));
    CHECK_THAT(msg, Contains("argument 2 (den)"));
    CHECK_THAT(msg, Contains("missing"));
  }
  SECTION("an argument given by position and by name") {
    auto msg
      = failure(invoke(ex, "div", {value{6.0}}, value_map{{"num", 3.0}}));
    CHECK_THAT(msg, Contains("argument 1 (num)"));
    CHECK_THAT(msg, Contains("twice"));
  }
  SECTION("unknown keyword") {
    auto msg = failure(
      invoke(ex, "div", {value{6.0}}, value_map{{"denominator", 3.0}}));
    CHECK_THAT(msg, Contains("no parameter named 'denominator'"));
    CHECK_THAT(failure(invoke(ex, "anon", {}, value_map{{"a", 1}})),
               Contains("no parameter named 'a'"));
  }
  SECTION("unknown keyword when only some parameters are named") {
    plugin_exports partial;
    partial.add("f", [](int64_t a, int64_t b) { return a + b; }, {"a"});
    auto msg = failure(invoke(partial, "f", {value{1}}, value_map{{"zzz", 2}}));
    CHECK_THAT(msg, Contains("no parameter named 'zzz'"));
    CHECK_THAT(failure(invoke(partial, "f", {}, value_map{{"a", 1}})),
               Contains("argument 2 is missing"));
  }
  SECTION("too many arguments in all") {
    auto msg = failure(invoke(ex, "div", {value{1.0}, value{2.0}, value{3.0}},
                              value_map{{"num", 1.0}}));
    CHECK_THAT(msg, Contains("div takes 2 arguments, got 4"));
  }
  SECTION("keyword arguments are type-checked under their name") {
    auto msg
      = failure(invoke(ex, "div", {value{6.0}}, value_map{{"den", "three"}}));
    CHECK_THAT(msg, Contains("argument 2 (den)"));
    CHECK_THAT(msg, Contains("expected a number"));
  }
}

// -- failures inside the function ---------------------------------------------

TEST_CASE("an error returned by the function passes through unchanged",
          "[runtime][exports]") {
  plugin_exports ex;
  ex.add("lookup",
         [](const std::string& key) -> caf::expected<int64_t> {
           if (key == "answer")
             return 42;
           return joy::make_error(errc::not_found, "no entry '" + key + "'");
         },
         {"key"});
  CHECK(ok(invoke(ex, "lookup", {value{"answer"}})) == value{42});
  auto res = invoke(ex, "lookup", {value{"other"}});
  REQUIRE_FALSE(res);
  CHECK(joy::code_of(res.error()) == errc::not_found);
  CHECK(joy::message_of(res.error()) == "no entry 'other'");
}

TEST_CASE("an exception thrown by the function is a plugin_error",
          "[runtime][exports]") {
  plugin_exports ex;
  ex.add(
    "fail",
    [](const std::string& what) -> int64_t { throw std::runtime_error(what); },
    {"what"});
  ex.add("weird", []() -> int64_t { throw 42; });
  auto msg
    = failure(invoke(ex, "fail", {value{"disk on fire"}}), errc::plugin_error);
  CHECK_THAT(msg, Contains("fail"));
  CHECK_THAT(msg, Contains("disk on fire"));
  msg = failure(invoke(ex, "weird", {}), errc::plugin_error);
  CHECK_THAT(msg, Contains("weird"));
  CHECK_THAT(msg, Contains("unknown exception"));
}

TEST_CASE("a void function returns null", "[runtime][exports]") {
  plugin_exports ex;
  int64_t seen = 0;
  ex.add("store", [&seen](int64_t x) { seen = x; }, {"x"});
  ex.add("noop", [] {});
  CHECK(ok(invoke(ex, "store", {value{9}})) == value{});
  CHECK(seen == 9);
  CHECK(ok(invoke(ex, "noop", {})) == value{});
}

// -- introspection ------------------------------------------------------------

TEST_CASE("describe lists names, arity and parameters", "[runtime][exports]") {
  plugin_exports ex;
  ex.add("zeta", [](int64_t a, int64_t b) { return a * b; }, {"a", "b"});
  ex.add("alpha", [] { return 1; });
  ex.add("mid", [](value x) { return x; });
  CHECK(ex.names() == std::vector<std::string>{"alpha", "mid", "zeta"});
  value expected{value_map{
    {"alpha", value_map{{"arity", 0}, {"params", value_list{}}}},
    {"mid", value_map{{"arity", 1}, {"params", value_list{}}}},
    {"zeta",
     value_map{{"arity", 2}, {"params", value_list{value{"a"}, value{"b"}}}}},
  }};
  CHECK(ex.describe() == expected);
  auto* zeta = ex.find("zeta");
  REQUIRE(zeta != nullptr);
  CHECK(zeta->name == "zeta");
  CHECK(zeta->arity == 2);
  CHECK(zeta->params == std::vector<std::string>{"a", "b"});
  CHECK(ex.find("missing") == nullptr);
  CHECK(plugin_exports{}.names().empty());
  CHECK(plugin_exports{}.describe() == value{value_map{}});
}

TEST_CASE("adding a name again replaces the function", "[runtime][exports]") {
  plugin_exports ex;
  ex.add("f", [] { return 1; });
  ex.add("f", [](int64_t x) { return x; }, {"x"});
  CHECK(ex.names() == std::vector<std::string>{"f"});
  CHECK(ex.find("f")->arity == 1);
  CHECK(ok(invoke(ex, "f", {value{7}})) == value{7});
}
