// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "runtime/errc.hpp"
#include "runtime/value.hpp"
#include "runtime/value_json.hpp"
#include "tests/support/value_helpers.hpp"

using Catch::Matchers::StartsWith;
using namespace joy::test;

namespace {

constexpr int64_t ns_per_s = 1'000'000'000;

/// Renders `x`, failing the test on error.
std::string json_of(const value& x) {
  auto res = joy::to_json(x);
  if (!res)
    FAIL("to_json failed: " << joy::message_of(res.error()));
  return *res;
}

/// Parses `text`, failing the test on error.
value parse(const std::string& text) {
  auto res = joy::from_json(text);
  if (!res)
    FAIL("from_json(" << text << ") failed: " << joy::message_of(res.error()));
  return *res;
}

/// The error of a `from_json` that must fail.
caf::error parse_error(const std::string& text) {
  auto res = joy::from_json(text);
  if (res)
    FAIL("from_json(" << text << ") should have failed but gave "
                      << joy::to_string(*res));
  return res.error();
}

/// The error of a `to_json` that must fail.
caf::error render_error(const value& x) {
  auto res = joy::to_json(x);
  if (res)
    FAIL("to_json should have failed but gave " << *res);
  return res.error();
}

timestamp iso(const std::string& text) {
  auto res = joy::parse_iso8601(text);
  if (!res)
    FAIL("parse_iso8601(" << text
                          << ") failed: " << joy::message_of(res.error()));
  return *res;
}

caf::error iso_error(const std::string& text) {
  auto res = joy::parse_iso8601(text);
  if (res)
    FAIL("parse_iso8601(" << text << ") should have failed but gave "
                          << res->ns);
  return res.error();
}

/// Checks both directions of one row of the mapping table.
void check_row(const value& x, const std::string& text) {
  INFO("JSON " << text);
  CHECK(json_of(x) == text);
  CHECK(parse(text) == x);
}

std::string nested_brackets(std::size_t n, const std::string& leaf = "0") {
  return std::string(n, '[') + leaf + std::string(n, ']');
}

} // namespace

// -- the mapping table --------------------------------------------------------

TEST_CASE("JSON maps scalars to themselves", "[runtime][json]") {
  check_row(value{}, "null");
  check_row(value{true}, "true");
  check_row(value{false}, "false");
  check_row(value{0}, "0");
  check_row(value{42}, "42");
  check_row(value{-7}, "-7");
  check_row(value{1.5}, "1.5");
  check_row(value{-2.25}, "-2.25");
  check_row(value{"hello"}, "\"hello\"");
  check_row(value{""}, "\"\"");
}

TEST_CASE(
  "JSON writes uint64 as an integer that reads back as int64 when it fits",
  "[runtime][json]") {
  CHECK(json_of(value{uint64_t{5}}) == "5");
  CHECK(parse("5") == value{5});
  CHECK(json_of(value{std::numeric_limits<uint64_t>::max()})
        == "18446744073709551615");
  CHECK(parse("18446744073709551615")
        == value{std::numeric_limits<uint64_t>::max()});
}

TEST_CASE("JSON encodes non-finite floats with _rtype float",
          "[runtime][json]") {
  auto inf = std::numeric_limits<double>::infinity();
  check_row(value{inf}, R"({"_rtype":"float","_rvalue":"inf"})");
  check_row(value{-inf}, R"({"_rtype":"float","_rvalue":"-inf"})");
  auto nan = std::numeric_limits<double>::quiet_NaN();
  CHECK(json_of(value{nan}) == R"({"_rtype":"float","_rvalue":"nan"})");
  CHECK(json_of(value{-nan}) == R"({"_rtype":"float","_rvalue":"nan"})");
  auto back = parse(R"({"_rtype":"float","_rvalue":"nan"})");
  REQUIRE(back.as_float64() != nullptr);
  CHECK(std::isnan(*back.as_float64()));

  for (auto bad :
       {R"({"_rtype":"float","_rvalue":"NaN"})",
        R"({"_rtype":"float","_rvalue":"Infinity"})",
        R"({"_rtype":"float","_rvalue":1.5})", R"({"_rtype":"float"})"}) {
    INFO(bad);
    CHECK(joy::code_of(parse_error(bad)) == errc::invalid_argument);
  }
}

TEST_CASE("JSON encodes bytes as a base64 memoryview", "[runtime][json]") {
  check_row(value{bytes_of({0, 1, 255})},
            R"({"_rtype":"memoryview","_rvalue":"AAH/"})");
  check_row(value{buffer{}}, R"({"_rtype":"memoryview","_rvalue":""})");
  check_row(value{buffer::copy_of("hello", 5)},
            R"({"_rtype":"memoryview","_rvalue":"aGVsbG8="})");
  auto err = parse_error(R"({"_rtype":"memoryview","_rvalue":"!!!!"})");
  CHECK(joy::code_of(err) == errc::invalid_argument);
  CHECK_THAT(joy::message_of(err), Contains("base64"));
  err = parse_error(R"({"_rtype":"memoryview","_rvalue":[1,2]})");
  CHECK(joy::code_of(err) == errc::invalid_argument);
  CHECK_THAT(joy::message_of(err), Contains("base64"));
}

TEST_CASE("JSON encodes ndarrays with dtype, shape and base64 data",
          "[runtime][json]") {
  check_row(
    value{make_array(dtype::uint8, {2, 3})},
    R"({"_rtype":"ndarray","_rdtype":"uint8","_rshape":[2,3],"_rvalue":"AQIDBAUG"})");
  check_row(
    value{make_array(dtype::float32, {0})},
    R"({"_rtype":"ndarray","_rdtype":"float32","_rshape":[0],"_rvalue":""})");
  check_row(
    value{make_array(dtype::int16, {})},
    R"({"_rtype":"ndarray","_rdtype":"int16","_rshape":[],"_rvalue":"AQI="})");
}

TEST_CASE("JSON encodes typed arrays without a shape", "[runtime][json]") {
  check_row(value{make_array(dtype::uint8, {3}, true)},
            R"({"_rtype":"typedarray","_rdtype":"uint8","_rvalue":"AQID"})");
  check_row(value{make_array(dtype::float64, {0}, true)},
            R"({"_rtype":"typedarray","_rdtype":"float64","_rvalue":""})");
  // The element count follows from the data.
  auto v = parse(
    R"({"_rtype":"typedarray","_rdtype":"int16","_rvalue":"AQIDBAUG"})");
  REQUIRE(v.as_ndarray() != nullptr);
  CHECK(v.as_ndarray()->shape == std::vector<uint64_t>{3});
  CHECK(v.as_ndarray()->typed_array);
  // Three bytes are not a whole number of int16 elements.
  CHECK(joy::code_of(parse_error(
          R"({"_rtype":"typedarray","_rdtype":"int16","_rvalue":"AQID"})"))
        == errc::invalid_argument);
}

TEST_CASE("JSON encodes timestamps as ISO 8601 strings", "[runtime][json]") {
  constexpr int64_t may_first_noon = int64_t{1714564800} * ns_per_s;
  check_row(value{timestamp{may_first_noon}},
            R"({"_rtype":"timestamp","_rvalue":"2024-05-01T12:00:00Z"})");
  check_row(value{timestamp{may_first_noon + ns_per_s / 2}},
            R"({"_rtype":"timestamp","_rvalue":"2024-05-01T12:00:00.500Z"})");
  // The table's example, with the shortest fraction, reads the same.
  CHECK(parse(R"({"_rtype":"timestamp","_rvalue":"2024-05-01T12:00:00.5Z"})")
        == value{timestamp{may_first_noon + ns_per_s / 2}});
  for (auto bad :
       {R"({"_rtype":"timestamp","_rvalue":"yesterday"})",
        R"({"_rtype":"timestamp","_rvalue":12345})",
        R"({"_rtype":"timestamp","_rvalue":"2024-02-30T00:00:00Z"})"}) {
    INFO(bad);
    CHECK(joy::code_of(parse_error(bad)) == errc::invalid_argument);
  }
}

TEST_CASE("JSON encodes errors with code, message and optional trace",
          "[runtime][json]") {
  check_row(
    value{error_value{errc::not_found, "no such plugin", ""}},
    R"({"_rtype":"error","_rcode":"not_found","_rvalue":"no such plugin"})");
  check_row(
    value{error_value{errc::plugin_error, "boom", "at line 3\nat line 7"}},
    R"({"_rtype":"error","_rcode":"plugin_error","_rvalue":"boom","_rtrace":"at line 3\nat line 7"})");
  SECTION("binary messages are replaced and binary traces dropped") {
    CHECK(json_of(value{error_value{errc::internal, "\xff\xfe", "\xc0\x80"}})
          == R"({"_rtype":"error","_rcode":"internal","_rvalue":"<binary>"})");
  }
  SECTION("malformed errors are rejected") {
    for (
      auto bad :
      {R"({"_rtype":"error","_rcode":"no_such_code","_rvalue":"m"})",
       R"({"_rtype":"error","_rcode":10,"_rvalue":"m"})",
       R"({"_rtype":"error","_rvalue":"m"})",
       R"({"_rtype":"error","_rcode":"timeout"})",
       R"({"_rtype":"error","_rcode":"timeout","_rvalue":5})",
       R"({"_rtype":"error","_rcode":"timeout","_rvalue":"m","_rtrace":[]})"}) {
      INFO(bad);
      CHECK(joy::code_of(parse_error(bad)) == errc::invalid_argument);
    }
  }
}

TEST_CASE("JSON writes functions as methods and cannot read them back",
          "[runtime][json]") {
  CHECK(json_of(value{function_ref{nullptr, "f"}})
        == R"({"_rtype":"method","_rname":"f"})");
  auto err = parse_error(R"({"_rtype":"method","_rname":"f"})");
  CHECK(joy::code_of(err) == errc::invalid_argument);
  CHECK_THAT(joy::message_of(err), Contains("function"));
  CHECK_THAT(joy::message_of(err), Contains("cannot be read"));
}

TEST_CASE("JSON writes a function with a binary name as valid JSON",
          "[runtime][json]") {
  auto text = json_of(value{function_ref{nullptr, "\xff"}});
  CHECK(text == R"({"_rtype":"method","_rname":"<binary>"})");
}

TEST_CASE("JSON maps lists to arrays and maps to objects", "[runtime][json]") {
  check_row(value{value_list{}}, "[]");
  check_row(value{value_list{value{1}, value{"a"}, value{}}},
            R"([1,"a",null])");
  check_row(value{value_map{}}, "{}");
  check_row(value{value_map{{"b", 1}, {"a", 2}}}, R"({"b":1,"a":2})");
  check_row(value{value_list{value{value_list{}},
                             value{value_map{{"x", value_list{}}}}}},
            R"([[],{"x":[]}])");
}

// -- integers -----------------------------------------------------------------

TEST_CASE("JSON integers read as int64 unless only uint64 holds them",
          "[runtime][json]") {
  auto check_int = [](const std::string& text, const value& expected) {
    INFO(text);
    auto v = parse(text);
    CHECK(v.type() == expected.type());
    CHECK(v == expected);
  };
  check_int("5", value{5});
  check_int("0", value{0});
  check_int("-0", value{0});
  check_int("9223372036854775807", value{std::numeric_limits<int64_t>::max()});
  check_int("9223372036854775808", value{uint64_t{9223372036854775808ULL}});
  check_int("18446744073709551615",
            value{std::numeric_limits<uint64_t>::max()});
  check_int("-9223372036854775808", value{std::numeric_limits<int64_t>::min()});
  CHECK(json_of(value{std::numeric_limits<int64_t>::min()})
        == "-9223372036854775808");
  CHECK(json_of(value{std::numeric_limits<int64_t>::max()})
        == "9223372036854775807");
}

TEST_CASE("JSON integers beyond 64 bits are errors, not floats",
          "[runtime][json]") {
  for (auto text : {"18446744073709551616", "-9223372036854775809",
                    "100000000000000000000000", "[1,18446744073709551616]"}) {
    INFO(text);
    auto err = parse_error(text);
    CHECK(joy::code_of(err) == errc::invalid_argument);
    CHECK_THAT(joy::message_of(err), Contains("does not fit"));
  }
  // parse_json, for plain documents, checks the same.
  auto doc = joy::parse_json("{\"n\": 18446744073709551616}");
  REQUIRE_FALSE(doc);
  CHECK(joy::code_of(doc.error()) == errc::invalid_argument);
  // With a fraction or an exponent it is a float.
  CHECK(parse("18446744073709551616.0") == value{18446744073709551616.0});
  CHECK(parse("1e20") == value{1e20});
}

// -- floats -------------------------------------------------------------------

TEST_CASE("JSON floats keep their type and their exact value",
          "[runtime][json]") {
  auto one = parse("1.0");
  CHECK(one.type() == kind::float64);
  CHECK(one == value{1.0});
  CHECK(json_of(one) == "1.0");
  CHECK(json_of(value{1.0}) == "1.0");
  CHECK(json_of(value{100.0}) == "100.0");
  CHECK(parse("1e2") == value{100.0});
  CHECK(parse("1E2") == value{100.0});

  CHECK(parse("0.1") == value{0.1});
  CHECK(json_of(value{0.1}) == "0.1");
  CHECK(json_of(value{0.1 + 0.2}) == "0.30000000000000004");
  CHECK(parse("0.30000000000000004") == value{0.1 + 0.2});

  auto neg_zero = parse("-0.0");
  REQUIRE(neg_zero.as_float64() != nullptr);
  CHECK(std::signbit(*neg_zero.as_float64()));
  CHECK(json_of(value{-0.0}) == "-0.0");

  for (double d : {std::numeric_limits<double>::max(),
                   std::numeric_limits<double>::lowest(),
                   std::numeric_limits<double>::min(),
                   std::numeric_limits<double>::denorm_min(),
                   -std::numeric_limits<double>::denorm_min(), 1e-310,
                   123456789.125, 1e300, -2.5e-8, 1.0 / 3.0}) {
    auto text = json_of(value{d});
    INFO(text);
    auto back = parse(text);
    REQUIRE(back.as_float64() != nullptr);
    CHECK(bits_of(*back.as_float64()) == bits_of(d));
  }
}

// -- strings ------------------------------------------------------------------

TEST_CASE("JSON strings carry unicode and escapes", "[runtime][json]") {
  // é, snowman, grinning face
  std::string unicode = "h\xc3\xa9llo \xe2\x98\x83 \xf0\x9f\x98\x80";
  CHECK(json_of(value{unicode}) == "\"" + unicode + "\"");
  CHECK(parse("\"" + unicode + "\"") == value{unicode});

  std::string escaped = R"("q\"b\\s\/n\nt\tr\rz\u0000e\u00e9g\ud83d\ude00")";
  std::string expected{"q\"b\\s/n\nt\tr\rz"};
  expected += '\0';
  expected += "e\xc3\xa9g\xf0\x9f\x98\x80";
  auto v = parse(escaped);
  CHECK(v == value{expected});
  CHECK(json_of(v)
        == R"("q\"b\\s/n\nt\tr\rz\u0000e)"
           "\xc3\xa9g\xf0\x9f\x98\x80\"");
  CHECK(parse(json_of(v)) == v);
}

TEST_CASE("JSON text with invalid UTF-8 or lone surrogates is rejected",
          "[runtime][json]") {
  for (auto text : {"\"\xff\"", "\"\xc3\"", "\"\xed\xa0\x80\"", R"("\ud800")",
                    R"("\udc00x")"}) {
    INFO(text);
    CHECK(joy::code_of(parse_error(text)) == errc::invalid_argument);
  }
}

TEST_CASE("a string that is not valid UTF-8 cannot be written as JSON",
          "[runtime][json]") {
  auto err = render_error(value{value_list{value{std::string{"\xff\xfe"}}}});
  CHECK(joy::code_of(err) == errc::invalid_argument);
  CHECK_THAT(joy::message_of(err), Contains("$[0]"));
  CHECK_THAT(joy::message_of(err), Contains("UTF-8"));

  err = render_error(value{
    value_map{{"a", value_list{value{1}, value{std::string{"\xc0\x80"}}}}}});
  CHECK_THAT(joy::message_of(err), Contains("$.a[1]"));

  err = render_error(value{value_map{{"ok", 1}, {std::string{"\xff"}, 2}}});
  CHECK(joy::code_of(err) == errc::invalid_argument);
  CHECK_THAT(joy::message_of(err), Contains("key"));
}

TEST_CASE("is_valid_utf8 accepts well-formed UTF-8 only", "[runtime][json]") {
  CHECK(joy::is_valid_utf8(""));
  CHECK(joy::is_valid_utf8("plain ascii"));
  CHECK(joy::is_valid_utf8(std::string{"nul\0inside", 10}));
  CHECK(joy::is_valid_utf8("\xc3\xa9"));
  CHECK(joy::is_valid_utf8("\xe2\x82\xac"));
  CHECK(joy::is_valid_utf8("\xf0\x9f\x98\x80"));
  CHECK(joy::is_valid_utf8("\xef\xbf\xbf"));           // U+FFFF
  CHECK(joy::is_valid_utf8("\xf4\x8f\xbf\xbf"));       // U+10FFFF
  CHECK_FALSE(joy::is_valid_utf8("\x80"));             // lone continuation
  CHECK_FALSE(joy::is_valid_utf8("\xc3"));             // truncated
  CHECK_FALSE(joy::is_valid_utf8("\xe2\x82"));         // truncated
  CHECK_FALSE(joy::is_valid_utf8("\xc3\x28"));         // bad continuation
  CHECK_FALSE(joy::is_valid_utf8("\xc0\x80"));         // overlong NUL
  CHECK_FALSE(joy::is_valid_utf8("\xe0\x80\xaf"));     // overlong
  CHECK_FALSE(joy::is_valid_utf8("\xf0\x80\x80\xaf")); // overlong
  CHECK_FALSE(joy::is_valid_utf8("\xed\xa0\x80"));     // surrogate U+D800
  CHECK_FALSE(joy::is_valid_utf8("\xed\xbf\xbf"));     // surrogate U+DFFF
  CHECK_FALSE(joy::is_valid_utf8("\xf4\x90\x80\x80")); // above U+10FFFF
  CHECK_FALSE(joy::is_valid_utf8("\xf5\x80\x80\x80"));
  CHECK_FALSE(joy::is_valid_utf8("\xf8\x88\x80\x80\x80"));
  CHECK_FALSE(joy::is_valid_utf8("\xff"));
}

// -- maps ---------------------------------------------------------------------

TEST_CASE("JSON maps keep their order", "[runtime][json]") {
  auto v = parse(R"({"zebra":1,"apple":2,"mango":{"y":1,"b":2}})");
  REQUIRE(v.as_map() != nullptr);
  std::vector<std::string> keys;
  for (auto& [k, x] : *v.as_map())
    keys.push_back(k);
  CHECK(keys == std::vector<std::string>{"zebra", "apple", "mango"});
  CHECK(json_of(v) == R"({"zebra":1,"apple":2,"mango":{"y":1,"b":2}})");
}

TEST_CASE("JSON map keys may hold escapes and NULs", "[runtime][json]") {
  value m{value_map{{std::string{"k\0a", 3}, 1},
                    {std::string{"k\0b", 3}, 2},
                    {"q\"\\", 3},
                    {"\xc3\xa9", 4}}};
  auto text = json_of(m);
  CHECK(text
        == R"({"k\u0000a":1,"k\u0000b":2,"q\"\\":3,)"
           "\"\xc3\xa9\":4}");
  CHECK(parse(text) == m);
}

TEST_CASE("a map with a key starting with _r is wrapped", "[runtime][json]") {
  value m{value_map{{"a", 1}, {"_rtype", "not a type"}, {"_rx", value_list{}}}};
  auto text = json_of(m);
  CHECK(
    text
    == R"({"_rtype":"map","_rvalue":{"a":1,"_rtype":"not a type","_rx":[]}})");
  CHECK(parse(text) == m);

  SECTION("wrapping applies at any depth") {
    value outer{
      value_list{value{value_map{{"_r", value_map{{"_rvalue", 1}}}}}}};
    auto t = json_of(outer);
    CHECK(
      t
      == R"([{"_rtype":"map","_rvalue":{"_r":{"_rtype":"map","_rvalue":{"_rvalue":1}}}}])");
    CHECK(parse(t) == outer);
  }
  SECTION("keys that merely start with _ or r are not reserved") {
    check_row(value{value_map{{"_x", 1}, {"r_", 2}, {"_", 3}}},
              R"({"_x":1,"r_":2,"_":3})");
  }
  SECTION("a wrapped map's _rvalue must be an object") {
    CHECK(joy::code_of(parse_error(R"({"_rtype":"map","_rvalue":[1]})"))
          == errc::invalid_argument);
  }
}

TEST_CASE(
  "an object with _r keys must be a known encoding with exactly its keys",
  "[runtime][json]") {
  SECTION("an _r key without _rtype") {
    auto err = parse_error(R"({"a":1,"_rvalue":2})");
    CHECK(joy::code_of(err) == errc::invalid_argument);
    CHECK_THAT(joy::message_of(err), Contains("_rvalue"));
    CHECK_THAT(joy::message_of(err), Contains("reserved"));
  }
  SECTION("an unknown _rtype") {
    auto err = parse_error(R"({"_rtype":"set","_rvalue":[]})");
    CHECK(joy::code_of(err) == errc::invalid_argument);
    CHECK_THAT(joy::message_of(err), Contains("unknown"));
    CHECK_THAT(joy::message_of(err), Contains("set"));
  }
  SECTION("an _rtype that is not a string") {
    CHECK(joy::code_of(parse_error(R"({"_rtype":1})"))
          == errc::invalid_argument);
  }
  SECTION("extra keys") {
    for (
      auto bad :
      {R"({"_rtype":"memoryview","_rvalue":"","extra":1})",
       R"({"_rtype":"map","_rvalue":{},"_rshape":[]})",
       R"({"_rtype":"typedarray","_rdtype":"uint8","_rshape":[0],"_rvalue":""})",
       R"({"_rtype":"timestamp","_rvalue":"1970-01-01T00:00:00Z","tz":"UTC"})"}) {
      INFO(bad);
      auto err = parse_error(bad);
      CHECK(joy::code_of(err) == errc::invalid_argument);
      CHECK_THAT(joy::message_of(err), Contains("unexpected key"));
    }
  }
  SECTION("missing keys") {
    auto err
      = parse_error(R"({"_rtype":"ndarray","_rdtype":"uint8","_rvalue":""})");
    CHECK(joy::code_of(err) == errc::invalid_argument);
    CHECK_THAT(joy::message_of(err), Contains("_rshape"));
  }
  SECTION("the error names the path") {
    auto err = parse_error(R"({"list":[0,{"_rtype":"bogus"}]})");
    CHECK_THAT(joy::message_of(err), Contains("$.list[1]"));
  }
}

// -- ndarrays -----------------------------------------------------------------

TEST_CASE("ndarrays of every dtype and shape round-trip through JSON",
          "[runtime][json]") {
  const std::vector<std::vector<uint64_t>> shapes{
    {2, 3}, {0}, {}, {3, 0}, {1, 1, 2}};
  for (uint8_t i = 0; i < joy::dtype_count; ++i) {
    auto type = static_cast<dtype>(i);
    for (auto& shape : shapes) {
      auto a = make_array(type, shape);
      REQUIRE_FALSE(a.validate());
      value v{a};
      auto text = json_of(v);
      INFO(text);
      CHECK_THAT(text, StartsWith(R"({"_rtype":"ndarray","_rdtype":")"
                                  + std::string{joy::to_string(type)} + "\""));
      std::string shape_text = "[";
      for (std::size_t k = 0; k < shape.size(); ++k)
        shape_text += (k ? "," : "") + std::to_string(shape[k]);
      shape_text += "]";
      CHECK_THAT(text, Contains("\"_rshape\":" + shape_text));
      CHECK(parse(text) == v);
    }
    auto typed = make_array(type, {3}, true);
    CHECK(parse(json_of(value{typed})) == value{typed});
  }
}

TEST_CASE("malformed ndarray encodings are rejected", "[runtime][json]") {
  for (
    auto bad : {
      // data does not match the shape
      R"({"_rtype":"ndarray","_rdtype":"uint8","_rshape":[2,3],"_rvalue":"AQID"})",
      // unknown dtype
      R"({"_rtype":"ndarray","_rdtype":"float128","_rshape":[0],"_rvalue":""})",
      R"({"_rtype":"ndarray","_rdtype":7,"_rshape":[0],"_rvalue":""})",
      // bad shapes
      R"({"_rtype":"ndarray","_rdtype":"uint8","_rshape":[-1],"_rvalue":""})",
      R"({"_rtype":"ndarray","_rdtype":"uint8","_rshape":[1.0],"_rvalue":"AQ=="})",
      R"({"_rtype":"ndarray","_rdtype":"uint8","_rshape":3,"_rvalue":"AQID"})",
      R"({"_rtype":"ndarray","_rdtype":"uint8","_rshape":["3"],"_rvalue":"AQID"})",
    }) {
    INFO(bad);
    CHECK(joy::code_of(parse_error(bad)) == errc::invalid_argument);
  }
  auto err = parse_error(
    R"({"_rtype":"ndarray","_rdtype":"float64","_rshape":[4294967296,4294967296],"_rvalue":""})");
  CHECK(joy::code_of(err) == errc::too_large);
}

TEST_CASE("an invalid ndarray cannot be written as JSON", "[runtime][json]") {
  ndarray a;
  a.type = dtype::float32;
  a.shape = {2};
  a.data = counting(7);
  auto err = render_error(value{value_list{value{a}}});
  CHECK(joy::code_of(err) == errc::invalid_argument);
  CHECK_THAT(joy::message_of(err), Contains("$[0]"));
}

// -- timestamps ---------------------------------------------------------------

TEST_CASE("format_iso8601 renders UTC with the shortest fraction",
          "[runtime][json]") {
  CHECK(joy::format_iso8601(timestamp{0}) == "1970-01-01T00:00:00Z");
  CHECK(joy::format_iso8601(timestamp{ns_per_s}) == "1970-01-01T00:00:01Z");
  CHECK(joy::format_iso8601(timestamp{1'000'000})
        == "1970-01-01T00:00:00.001Z");
  CHECK(joy::format_iso8601(timestamp{500'000'000})
        == "1970-01-01T00:00:00.500Z");
  CHECK(joy::format_iso8601(timestamp{123'000'000})
        == "1970-01-01T00:00:00.123Z");
  CHECK(joy::format_iso8601(timestamp{1'000}) == "1970-01-01T00:00:00.000001Z");
  CHECK(joy::format_iso8601(timestamp{123'456'000})
        == "1970-01-01T00:00:00.123456Z");
  CHECK(joy::format_iso8601(timestamp{1}) == "1970-01-01T00:00:00.000000001Z");
  CHECK(joy::format_iso8601(timestamp{123'456'789})
        == "1970-01-01T00:00:00.123456789Z");
  CHECK(joy::format_iso8601(timestamp{int64_t{951782400} * ns_per_s})
        == "2000-02-29T00:00:00Z");
  CHECK(joy::format_iso8601(timestamp{int64_t{1714564800} * ns_per_s
                                      + 86399 * ns_per_s - 43200 * ns_per_s})
        == "2024-05-01T23:59:59Z");
}

TEST_CASE("format_iso8601 renders times before 1970", "[runtime][json]") {
  CHECK(joy::format_iso8601(timestamp{-1}) == "1969-12-31T23:59:59.999999999Z");
  CHECK(joy::format_iso8601(timestamp{-1'000'000})
        == "1969-12-31T23:59:59.999Z");
  CHECK(joy::format_iso8601(timestamp{-ns_per_s}) == "1969-12-31T23:59:59Z");
  CHECK(joy::format_iso8601(timestamp{-86400 * ns_per_s})
        == "1969-12-31T00:00:00Z");
  CHECK(joy::format_iso8601(timestamp{-86400 * ns_per_s - 1})
        == "1969-12-30T23:59:59.999999999Z");
  CHECK(joy::format_iso8601(timestamp{int64_t{-2208988800} * ns_per_s})
        == "1900-01-01T00:00:00Z");
}

TEST_CASE("format_iso8601 covers the whole int64 range", "[runtime][json]") {
  auto min = timestamp{std::numeric_limits<int64_t>::min()};
  auto max = timestamp{std::numeric_limits<int64_t>::max()};
  CHECK(joy::format_iso8601(min) == "1677-09-21T00:12:43.145224192Z");
  CHECK(joy::format_iso8601(max) == "2262-04-11T23:47:16.854775807Z");
  CHECK(iso(joy::format_iso8601(min)) == min);
  CHECK(iso(joy::format_iso8601(max)) == max);
}

TEST_CASE("parse_iso8601 reads UTC and offsets", "[runtime][json]") {
  CHECK(iso("1970-01-01T00:00:00Z").ns == 0);
  CHECK(iso("1970-01-01T00:00:00.5Z").ns == 500'000'000);
  CHECK(iso("1970-01-01T00:00:00,25Z").ns == 250'000'000);
  CHECK(iso("1970-01-01T00:00:00.000000001Z").ns == 1);
  CHECK(iso("1970-01-01T00:00:00.1234567890Z").ns == 123'456'789);
  CHECK(iso("1970-01-01t00:00:00z").ns == 0);
  CHECK(iso("1970-01-01 00:00:00Z").ns == 0);
  CHECK(iso("2024-05-01T12:00:00Z").ns == int64_t{1714564800} * ns_per_s);
  // An offset says how far local time is ahead of UTC.
  CHECK(iso("1970-01-01T02:00:00+02:00").ns == 0);
  CHECK(iso("1970-01-01T02:00:00+0200").ns == 0);
  CHECK(iso("1970-01-01T00:00:00+02:00").ns == -7200 * ns_per_s);
  CHECK(iso("1970-01-01T00:00:00-01:30").ns == 5400 * ns_per_s);
  CHECK(iso("2024-05-01T14:00:00.5+02:00").ns
        == int64_t{1714564800} * ns_per_s + ns_per_s / 2);
  CHECK(iso("1969-12-31T23:59:59.999999999Z").ns == -1);
  // Leap days.
  CHECK(iso("2000-02-29T00:00:00Z").ns == int64_t{951782400} * ns_per_s);
  CHECK(iso("2024-02-29T00:00:00Z").ns > 0);
  // Edges of the range, also reached through an offset.
  CHECK(iso("2262-04-11T23:47:16.854775807Z").ns
        == std::numeric_limits<int64_t>::max());
  CHECK(iso("2262-04-12T01:47:16.854775807+02:00").ns
        == std::numeric_limits<int64_t>::max());
  CHECK(iso("1677-09-21T00:12:43.145224192Z").ns
        == std::numeric_limits<int64_t>::min());
}

TEST_CASE("parse_iso8601 rejects invalid dates and times", "[runtime][json]") {
  for (auto bad : {
         "2023-02-29T00:00:00Z", // not a leap year
         "1900-02-29T00:00:00Z", // not a leap year either
         "2024-02-30T00:00:00Z",
         "2024-04-31T00:00:00Z",
         "2024-13-01T00:00:00Z",
         "2024-00-10T00:00:00Z",
         "2024-01-00T00:00:00Z",
         "2024-01-32T00:00:00Z",
         "2024-01-01T24:00:00Z",
         "2024-01-01T23:60:00Z",
         "2024-01-01T23:59:60Z", // no leap seconds
         "2024-01-01T00:00:00",  // no zone
         "2024-01-01T00:00:00Zjunk",
         "2024-01-01",
         "2024-01-01T00:00Z",
         "",
         "24-01-01T00:00:00Z",
         "2024/01/01T00:00:00Z",
         "2024-01-01T00:00:00.Z",
         "2024-01-01T00:00:00.1234567891Z", // beyond nanoseconds
         "2024-01-01T00:00:00+24:00",
         "2024-01-01T00:00:00+02:60",
         "2024-01-01T00:00:00+2",
         "-001-01-01T00:00:00Z",
         "+2024-01-01T00:00:00Z",
       }) {
    INFO(bad);
    auto err = iso_error(bad);
    CHECK(joy::code_of(err) == errc::invalid_argument);
    CHECK_THAT(joy::message_of(err), Contains("ISO 8601"));
  }
}

TEST_CASE("parse_iso8601 rejects years outside the int64 range",
          "[runtime][json]") {
  for (auto bad :
       {"1677-09-21T00:12:43.145224191Z", "2262-04-11T23:47:16.854775808Z",
        "2262-04-11T23:47:16.854775807-00:01", "1600-01-01T00:00:00Z",
        "2300-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
        "0000-01-01T00:00:00Z"}) {
    INFO(bad);
    auto err = iso_error(bad);
    CHECK(joy::code_of(err) == errc::invalid_argument);
    CHECK_THAT(joy::message_of(err), Contains("range"));
  }
}

// -- nesting ------------------------------------------------------------------

TEST_CASE("a JSON nesting bomb fails quickly with too_large",
          "[runtime][json]") {
  constexpr std::size_t n = 100000;
  auto start = std::chrono::steady_clock::now();
  SECTION("arrays") {
    auto err = parse_error(std::string(n, '[') + std::string(n, ']'));
    CHECK(joy::code_of(err) == errc::too_large);
    CHECK_THAT(joy::message_of(err), Contains("nesting"));
  }
  SECTION("objects") {
    std::string text;
    for (std::size_t i = 0; i < n; ++i)
      text += "{\"a\":";
    text += "1";
    text += std::string(n, '}');
    auto err = parse_error(text);
    CHECK(joy::code_of(err) == errc::too_large);
  }
  SECTION("unbalanced") {
    auto err = parse_error(std::string(n, '['));
    CHECK(joy::code_of(err) == errc::too_large);
  }
  SECTION("parse_json") {
    auto doc = joy::parse_json(std::string(n, '[') + std::string(n, ']'));
    REQUIRE_FALSE(doc);
    CHECK(joy::code_of(doc.error()) == errc::too_large);
  }
  auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(elapsed < std::chrono::seconds{2});
}

TEST_CASE("JSON values nest at most max_value_depth levels",
          "[runtime][json]") {
  REQUIRE(joy::max_value_depth == 32);
  SECTION("32 levels are fine") {
    auto v = parse(nested_brackets(32));
    CHECK(joy::depth(v) == 32);
    CHECK(json_of(v) == nested_brackets(32));
  }
  SECTION("33 levels are too_large when reading") {
    auto err = parse_error(nested_brackets(33));
    CHECK(joy::code_of(err) == errc::too_large);
    CHECK_THAT(joy::message_of(err), Contains("32"));
  }
  SECTION("33 levels are too_large when writing") {
    value v{0};
    for (int i = 0; i < 33; ++i) {
      value_list xs;
      xs.push_back(std::move(v));
      v = value{std::move(xs)};
    }
    auto err = render_error(v);
    CHECK(joy::code_of(err) == errc::too_large);
  }
  SECTION("objects count like arrays") {
    std::string text;
    for (int i = 0; i < 33; ++i)
      text += "{\"a\":";
    text += "0" + std::string(33, '}');
    CHECK(joy::code_of(parse_error(text)) == errc::too_large);
  }
  SECTION("wrapped maps nest 32 levels with an encoded leaf") {
    // Each wrapped map costs two JSON levels and the ndarray leaf two more:
    // the JSON depth limit must leave room for them.
    value v{make_array(dtype::uint8, {2, 1})};
    for (int i = 0; i < 32; ++i) {
      value_map m;
      m.insert("_rk", std::move(v));
      v = value{std::move(m)};
    }
    auto text = json_of(v);
    CHECK(parse(text) == v);
  }
}

TEST_CASE("parse_json honours its depth limit", "[runtime][json]") {
  CHECK(joy::parse_json("[[1]]", 2));
  auto doc = joy::parse_json("[[1]]", 1);
  REQUIRE_FALSE(doc);
  CHECK(joy::code_of(doc.error()) == errc::too_large);
  auto ok = joy::parse_json(R"({"b":1,"a":[true,null]})");
  REQUIRE(ok);
  CHECK(ok->dump() == R"({"b":1,"a":[true,null]})");
}

// -- invalid text -------------------------------------------------------------

TEST_CASE("invalid JSON text gives a readable invalid_argument error",
          "[runtime][json]") {
  for (auto bad : {"", "{\"a\":}", "[1,2", "1 2", "nul", "{'a':1}", "[1,]",
                   "{\"a\" 1}", "\"unterminated", "01"}) {
    INFO(bad);
    auto err = parse_error(bad);
    CHECK(joy::code_of(err) == errc::invalid_argument);
    auto msg = joy::message_of(err);
    CHECK_THAT(msg, StartsWith("invalid JSON"));
    CHECK_FALSE(msg.find("[json.exception") != std::string::npos);
  }
}

TEST_CASE("from_json_tree converts documents built in code",
          "[runtime][json]") {
  joy::json doc = {{"name", "cell"}, {"size", 3}, {"ratio", 0.5}};
  auto v = joy::from_json_tree(doc);
  REQUIRE(v);
  CHECK(*v == value{value_map{{"name", "cell"}, {"size", 3}, {"ratio", 0.5}}});
  auto tree = joy::to_json_tree(*v);
  REQUIRE(tree);
  CHECK(*tree == doc);
}

TEST_CASE("a key given twice in one JSON object is an error, not last-wins",
          "[runtime][json]") {
  auto res = joy::from_json(R"({"a":1,"b":2,"a":3})");
  REQUIRE_FALSE(res);
  CHECK(joy::code_of(res.error()) == joy::errc::invalid_argument);
  CHECK_THAT(joy::message_of(res.error()),
             Catch::Contains("'a' appears twice"));
  // The same key in different objects is fine.
  CHECK(joy::from_json(R"({"a":{"a":1},"b":{"a":2}})"));
}
