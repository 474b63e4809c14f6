// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <capnp/message.h>
#include <capnp/serialize.h>

#include "runtime/errc.hpp"
#include "runtime/value.hpp"
#include "runtime/value_wire.hpp"
#include "schema/value.capnp.h"
#include "tests/support/value_helpers.hpp"

using namespace joy::test;

namespace wire = joy::wire;

namespace {

/// The serialized bytes of a hand-built message.
std::vector<char> flat(capnp::MessageBuilder& msg) {
  auto words = capnp::messageToFlatArray(msg);
  auto bytes = words.asChars();
  return {bytes.begin(), bytes.end()};
}

/// Reads the root of a hand-built message.
caf::expected<value> read_root(capnp::MallocMessageBuilder& msg) {
  return joy::read_value(msg.getRoot<wire::Value>().asReader());
}

/// Checks both round trips and returns what came back through bytes.
value round_trip(const value& x) {
  auto a = through_builder(x);
  if (!a)
    FAIL("builder round trip failed: " << joy::message_of(a.error()));
  CHECK(*a == x);
  auto b = through_bytes(x);
  if (!b)
    FAIL("byte round trip failed: " << joy::message_of(b.error()));
  CHECK(*b == x);
  return *b;
}

/// The error of a write that must fail.
caf::error write_error_of(const value& x) {
  capnp::MallocMessageBuilder msg;
  auto err = joy::write_value(x, msg.initRoot<wire::Value>());
  if (!err)
    FAIL("write_value should have failed");
  // encode_bytes reports the same.
  auto bytes = joy::encode_bytes(x);
  CHECK_FALSE(bytes);
  if (!bytes)
    CHECK(joy::code_of(bytes.error()) == joy::code_of(err));
  return err;
}

/// The error of reading a hand-built message that must fail, checked both on
/// the builder and through serialized bytes.
caf::error read_error_of(capnp::MallocMessageBuilder& msg) {
  auto res = read_root(msg);
  if (res)
    FAIL("read_value should have failed but gave " << joy::to_string(*res));
  auto decoded = joy::decode_bytes(flat(msg));
  CHECK_FALSE(decoded);
  if (!decoded)
    CHECK(joy::code_of(decoded.error()) == joy::code_of(res.error()));
  return res.error();
}

/// Builds `n` nested lists by hand, around an int64 leaf.
void build_nested_lists(wire::Value::Builder out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    out = out.initList(1)[0];
  out.setInt64(0);
}

/// Builds `n` nested single-entry maps by hand, around an int64 leaf.
void build_nested_maps(wire::Value::Builder out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    auto entry = out.initMap(1)[0];
    entry.setKey("k");
    out = entry.initValue();
  }
  out.setInt64(0);
}

} // namespace

// -- round trips --------------------------------------------------------------

TEST_CASE("every kind round-trips through Cap'n Proto", "[runtime][wire]") {
  std::vector<value> xs{
    value{},
    value{true},
    value{false},
    value{42},
    value{uint64_t{42}},
    value{2.5},
    value{"hello"},
    value{counting(10)},
    value{value_list{value{1}, value{"two"}, value{}}},
    value{value_map{{"b", 1}, {"a", value_list{value{true}}}}},
    value{make_array(dtype::float32, {2, 3})},
    value{timestamp{1714564800000000000}},
    value{error_value{errc::not_found, "no such plugin", ""}},
  };
  for (auto& x : xs) {
    INFO(joy::to_string(x));
    auto back = round_trip(x);
    CHECK(back.type() == x.type());
  }
}

TEST_CASE("integers keep their type and extremes on the wire",
          "[runtime][wire]") {
  for (auto x : {std::numeric_limits<int64_t>::min(), int64_t{-1}, int64_t{0},
                 std::numeric_limits<int64_t>::max()}) {
    auto back = round_trip(value{x});
    REQUIRE(back.as_int64() != nullptr);
    CHECK(*back.as_int64() == x);
  }
  for (auto x : {uint64_t{0}, uint64_t{5}, uint64_t{1} << 63,
                 std::numeric_limits<uint64_t>::max()}) {
    auto back = round_trip(value{x});
    REQUIRE(back.as_uint64() != nullptr);
    CHECK(*back.as_uint64() == x);
  }
}

TEST_CASE("special floats keep their bits on the wire", "[runtime][wire]") {
  auto inf = std::numeric_limits<double>::infinity();
  for (double d :
       {0.0, -0.0, inf, -inf, std::numeric_limits<double>::quiet_NaN(),
        double_of(0x7FF8000000000123ULL), double_of(0xFFF8000000000000ULL),
        std::numeric_limits<double>::denorm_min(),
        std::numeric_limits<double>::max(),
        std::numeric_limits<double>::lowest(), 0.1}) {
    INFO(bits_of(d));
    auto back = round_trip(value{d});
    REQUIRE(back.as_float64() != nullptr);
    CHECK(bits_of(*back.as_float64()) == bits_of(d));
  }
}

TEST_CASE("empty containers and strings round-trip", "[runtime][wire]") {
  round_trip(value{value_list{}});
  round_trip(value{value_map{}});
  round_trip(value{buffer{}});
  round_trip(value{""});
  round_trip(value{value_list{value{value_list{}}, value{value_map{}},
                              value{""}, value{buffer{}}}});
}

TEST_CASE("strings keep unicode and embedded NULs on the wire",
          "[runtime][wire]") {
  std::string s = "h\xc3\xa9llo \xf0\x9f\x98\x80";
  s += '\0';
  s += "after";
  auto back = round_trip(value{s});
  REQUIRE(back.as_string() != nullptr);
  CHECK(back.as_string()->size() == s.size());
}

TEST_CASE("arbitrary binary data travels as bytes", "[runtime][wire]") {
  std::mt19937_64 rng{7};
  for (std::size_t n : {1u, 7u, 8u, 255u, 4096u, 100000u}) {
    auto data = random_bytes(rng, n);
    auto back = round_trip(value{data});
    REQUIRE(back.as_bytes() != nullptr);
    CHECK(back.as_bytes()->size() == n);
    CHECK(*back.as_bytes() == data);
  }
}

TEST_CASE("maps keep order and _r keys on the wire", "[runtime][wire]") {
  value m{value_map{{"zebra", 1},
                    {"_rtype", "map"},
                    {"_rvalue", value_list{}},
                    {"apple", value_map{{"_r", 2}}}}};
  auto back = round_trip(m);
  std::vector<std::string> keys;
  for (auto& [k, v] : *back.as_map())
    keys.push_back(k);
  CHECK(keys
        == std::vector<std::string>{"zebra", "_rtype", "_rvalue", "apple"});
}

TEST_CASE("map keys keep embedded NULs on the wire", "[runtime][wire]") {
  std::string a{"k\0a", 3};
  std::string b{"k\0b", 3};
  value m{value_map{{a, 1}, {b, 2}, {std::string{"\0", 1}, 3}, {"", 4}}};
  auto back = round_trip(m);
  REQUIRE(back.as_map() != nullptr);
  REQUIRE(back.as_map()->size() == 4);
  CHECK(back.as_map()->begin()->first == a);
  CHECK(back.as_map()->contains(b));
}

TEST_CASE("large maps round-trip", "[runtime][wire]") {
  value_map m;
  for (int i = 0; i < 100; ++i)
    m.insert("key" + std::to_string(99 - i), i);
  round_trip(value{m});
}

TEST_CASE("ndarrays of every dtype round-trip", "[runtime][wire]") {
  const std::vector<std::vector<uint64_t>> shapes{
    {2, 3}, {0}, {3, 0}, {}, {4, 1, 2}};
  for (uint8_t i = 0; i < joy::dtype_count; ++i) {
    auto type = static_cast<dtype>(i);
    INFO(joy::to_string(type));
    for (auto& shape : shapes) {
      auto back = round_trip(value{make_array(type, shape)});
      REQUIRE(back.as_ndarray() != nullptr);
      CHECK(back.as_ndarray()->type == type);
      CHECK(back.as_ndarray()->shape == shape);
      CHECK_FALSE(back.as_ndarray()->typed_array);
    }
    auto typed = round_trip(value{make_array(type, {5}, true)});
    CHECK(typed.as_ndarray()->typed_array);
    round_trip(value{make_array(type, {0}, true)});
  }
}

TEST_CASE("timestamps round-trip over the whole int64 range",
          "[runtime][wire]") {
  for (auto ns : {std::numeric_limits<int64_t>::min(), int64_t{-1}, int64_t{0},
                  int64_t{1}, std::numeric_limits<int64_t>::max()}) {
    auto back = round_trip(value{timestamp{ns}});
    REQUIRE(back.as_timestamp() != nullptr);
    CHECK(back.as_timestamp()->ns == ns);
  }
}

TEST_CASE("error values keep code, message and trace on the wire",
          "[runtime][wire]") {
  auto back = round_trip(
    value{error_value{errc::plugin_error, "boom", "Traceback:\n  line 3"}});
  REQUIRE(back.as_error() != nullptr);
  CHECK(back.as_error()->code == errc::plugin_error);
  CHECK(back.as_error()->message == "boom");
  CHECK(back.as_error()->trace == "Traceback:\n  line 3");
  for (auto code : {errc::timeout, errc::invalid_argument, errc::internal,
                    errc::io_error}) {
    round_trip(value{error_value{code, "", ""}});
  }
}

TEST_CASE("an unknown error code on the wire reads as internal",
          "[runtime][wire]") {
  capnp::MallocMessageBuilder msg;
  auto e = msg.initRoot<wire::Value>().initError();
  e.setCode(999);
  e.setMessage("from the future");
  auto v = read_root(msg);
  REQUIRE(v);
  REQUIRE(v->as_error() != nullptr);
  CHECK(v->as_error()->code == errc::internal);
  CHECK(v->as_error()->message == "from the future");
}

TEST_CASE("values 32 levels deep round-trip", "[runtime][wire]") {
  round_trip(nested_list(32));
  round_trip(nested_map(32));
  // Deep maps around the most deeply nested leaves still fit the reader's
  // Cap'n Proto nesting limit.
  value v{make_array(dtype::uint8, {2})};
  for (int i = 0; i < 32; ++i) {
    value_map m;
    m.insert("k", std::move(v));
    v = value{std::move(m)};
  }
  round_trip(v);
  value e{error_value{errc::timeout, "m", "t"}};
  for (int i = 0; i < 32; ++i) {
    value_map m;
    m.insert("k", std::move(e));
    e = value{std::move(m)};
  }
  round_trip(e);
}

// -- malformed input ----------------------------------------------------------

TEST_CASE("an ndarray with an out-of-range dtype is rejected",
          "[runtime][wire]") {
  capnp::MallocMessageBuilder msg;
  auto nd = msg.initRoot<wire::Value>().initNdarray();
  nd.setDtype(static_cast<wire::DType>(200));
  nd.initShape(1).set(0, 1);
  auto data = nd.initData().initInline(1);
  data[0] = 7;
  auto err = read_error_of(msg);
  CHECK(joy::code_of(err) == errc::invalid_argument);
  CHECK_THAT(joy::message_of(err), Contains("dtype"));
  CHECK_THAT(joy::message_of(err), Contains("200"));

  SECTION("the first invalid value is refused too") {
    nd.setDtype(static_cast<wire::DType>(joy::dtype_count));
    CHECK(joy::code_of(read_error_of(msg)) == errc::invalid_argument);
  }
}

TEST_CASE("an ndarray whose data does not match its shape is rejected",
          "[runtime][wire]") {
  capnp::MallocMessageBuilder msg;
  auto nd = msg.initRoot<wire::Value>().initNdarray();
  nd.setDtype(wire::DType::FLOAT32);
  auto shape = nd.initShape(2);
  shape.set(0, 2);
  shape.set(1, 3);
  nd.initData().initInline(23);
  auto err = read_error_of(msg);
  CHECK(joy::code_of(err) == errc::invalid_argument);
  CHECK_THAT(joy::message_of(err), Contains("24"));

  SECTION("an overflowing shape is too_large") {
    shape.set(0, uint64_t{1} << 32);
    shape.set(1, uint64_t{1} << 32);
    CHECK(joy::code_of(read_error_of(msg)) == errc::too_large);
  }
  SECTION("a typed array must be one-dimensional") {
    nd.initData().initInline(24);
    nd.setTypedArray(true);
    CHECK(joy::code_of(read_error_of(msg)) == errc::invalid_argument);
  }
  SECTION("an invalid ndarray cannot be written either") {
    ndarray a;
    a.type = dtype::float32;
    a.shape = {2, 3};
    a.data = counting(23);
    CHECK(joy::code_of(write_error_of(value{a})) == errc::invalid_argument);
  }
}

TEST_CASE("duplicate map keys are rejected", "[runtime][wire]") {
  auto build
    = [](capnp::MallocMessageBuilder& msg, std::size_t n, std::size_t dup) {
        auto entries
          = msg.initRoot<wire::Value>().initMap(static_cast<unsigned>(n));
        for (std::size_t i = 0; i < n; ++i) {
          auto key = "key" + std::to_string(i == n - 1 ? dup : i);
          entries[static_cast<unsigned>(i)].setKey(key);
          entries[static_cast<unsigned>(i)].initValue().setInt64(
            static_cast<int64_t>(i));
        }
      };
  for (std::size_t n : {2u, 3u, 16u, 17u, 40u}) {
    INFO(n << " entries");
    capnp::MallocMessageBuilder msg;
    build(msg, n, 0);
    auto err = read_error_of(msg);
    CHECK(joy::code_of(err) == errc::invalid_argument);
    CHECK_THAT(joy::message_of(err), Contains("duplicate"));
    CHECK_THAT(joy::message_of(err), Contains("'key0'"));
  }
  SECTION("distinct keys are fine, small or large") {
    for (std::size_t n : {2u, 16u, 17u, 40u}) {
      capnp::MallocMessageBuilder msg;
      build(msg, n, n - 1);
      auto v = read_root(msg);
      REQUIRE(v);
      CHECK(v->as_map()->size() == n);
    }
  }
  SECTION("duplicates inside nested maps") {
    capnp::MallocMessageBuilder msg;
    auto outer = msg.initRoot<wire::Value>().initList(1);
    auto entries = outer[0].initMap(2);
    entries[0].setKey("x");
    entries[0].initValue().setNull();
    entries[1].setKey("x");
    entries[1].initValue().setNull();
    CHECK(joy::code_of(read_error_of(msg)) == errc::invalid_argument);
  }
  SECTION("read_map checks too") {
    capnp::MallocMessageBuilder msg;
    build(msg, 20, 3);
    auto m = joy::read_map(msg.getRoot<wire::Value>().asReader().getMap());
    REQUIRE_FALSE(m);
    CHECK(joy::code_of(m.error()) == errc::invalid_argument);
  }
}

TEST_CASE("values nested 33 levels are too_large on write", "[runtime][wire]") {
  for (auto& v : {nested_list(33), nested_map(33), nested_list(500)}) {
    auto err = write_error_of(v);
    CHECK(joy::code_of(err) == errc::too_large);
    CHECK_THAT(joy::message_of(err), Contains("32"));
  }
}

TEST_CASE("messages nested 33 levels are too_large on read",
          "[runtime][wire]") {
  SECTION("32 levels of lists are fine") {
    capnp::MallocMessageBuilder msg;
    build_nested_lists(msg.initRoot<wire::Value>(), 32);
    auto v = read_root(msg);
    REQUIRE(v);
    CHECK(*v == nested_list(32));
    auto decoded = joy::decode_bytes(flat(msg));
    REQUIRE(decoded);
    CHECK(*decoded == nested_list(32));
  }
  SECTION("32 levels of maps are fine") {
    capnp::MallocMessageBuilder msg;
    build_nested_maps(msg.initRoot<wire::Value>(), 32);
    auto v = read_root(msg);
    REQUIRE(v);
    CHECK(*v == nested_map(32));
  }
  for (std::size_t n : {33u, 34u, 1000u}) {
    DYNAMIC_SECTION(n << " levels of lists") {
      capnp::MallocMessageBuilder msg;
      build_nested_lists(msg.initRoot<wire::Value>(), n);
      auto err = read_error_of(msg);
      CHECK(joy::code_of(err) == errc::too_large);
    }
    DYNAMIC_SECTION(n << " levels of maps") {
      capnp::MallocMessageBuilder msg;
      build_nested_maps(msg.initRoot<wire::Value>(), n);
      auto err = read_error_of(msg);
      CHECK(joy::code_of(err) == errc::too_large);
    }
  }
}

TEST_CASE("inline bytes beyond max_inline_bytes are too_large",
          "[runtime][wire]") {
  constexpr auto limit = joy::max_inline_bytes;
  REQUIRE(limit == std::size_t{16} << 20);
  SECTION("writing bytes") {
    auto err
      = write_error_of(value{buffer::take(std::vector<std::byte>(limit + 1))});
    CHECK(joy::code_of(err) == errc::too_large);
    CHECK_THAT(joy::message_of(err), Contains("shm"));
    CHECK_THAT(joy::message_of(err), Contains("stream"));
  }
  SECTION("writing an ndarray") {
    ndarray a;
    a.type = dtype::uint8;
    a.shape = {limit + 1};
    a.data = buffer::take(std::vector<std::byte>(limit + 1));
    auto err = write_error_of(value{a});
    CHECK(joy::code_of(err) == errc::too_large);
    CHECK_THAT(joy::message_of(err), Contains("shm"));
  }
  SECTION("reading bytes") {
    capnp::MallocMessageBuilder msg;
    msg.initRoot<wire::Value>().initBytes().initInline(limit + 1);
    auto err = read_error_of(msg);
    CHECK(joy::code_of(err) == errc::too_large);
    CHECK_THAT(joy::message_of(err), Contains("shm"));
    CHECK_THAT(joy::message_of(err), Contains("stream"));
  }
  SECTION("reading an ndarray") {
    capnp::MallocMessageBuilder msg;
    auto nd = msg.initRoot<wire::Value>().initNdarray();
    nd.setDtype(wire::DType::UINT8);
    nd.initShape(1).set(0, limit + 1);
    nd.initData().initInline(limit + 1);
    CHECK(joy::code_of(read_error_of(msg)) == errc::too_large);
  }
  SECTION("exactly the limit is fine") {
    auto back = round_trip(value{buffer::take(std::vector<std::byte>(limit))});
    CHECK(back.as_bytes()->size() == limit);
  }
}

TEST_CASE("without a plugin connection the shm and stream arms are refused "
          "clearly",
          "[runtime][wire]") {
  SECTION("shm bytes") {
    capnp::MallocMessageBuilder msg;
    msg.initRoot<wire::Value>().initBytes().initShm().setSize(4);
    auto err = read_error_of(msg);
    CHECK(joy::code_of(err) == errc::too_large);
    CHECK_THAT(joy::message_of(err), Contains("shared memory"));
  }
  SECTION("streamed ndarray data") {
    capnp::MallocMessageBuilder msg;
    auto nd = msg.initRoot<wire::Value>().initNdarray();
    nd.setDtype(wire::DType::UINT8);
    nd.initShape(1).set(0, 4);
    nd.initData().initStream().setSize(4);
    auto err = read_error_of(msg);
    CHECK(joy::code_of(err) == errc::too_large);
    CHECK_THAT(joy::message_of(err), Contains("stream"));
  }
}

TEST_CASE("function values cannot cross the wire yet", "[runtime][wire]") {
  auto err = write_error_of(value{function_ref{nullptr, "f"}});
  CHECK(joy::code_of(err) == errc::unimplemented);
  CHECK(joy::code_of(write_error_of(
          value{value_list{value{1}, value{function_ref{nullptr, "f"}}}}))
        == errc::unimplemented);

  capnp::MallocMessageBuilder msg;
  msg.initRoot<wire::Value>().initFunction().setName("f");
  CHECK(joy::code_of(read_error_of(msg)) == errc::unimplemented);
}

TEST_CASE("malformed byte encodings are errors, not crashes",
          "[runtime][wire]") {
  auto good
    = joy::encode_bytes(value{value_map{{"a", value_list{value{"x"}}}}});
  REQUIRE(good);
  SECTION("a size that is not a whole number of words") {
    auto bytes = *good;
    bytes.pop_back();
    auto res = joy::decode_bytes(bytes);
    REQUIRE_FALSE(res);
    CHECK(joy::code_of(res.error()) == errc::invalid_argument);
  }
  SECTION("truncated by whole words") {
    auto bytes = *good;
    while (bytes.size() > 8) {
      bytes.resize(bytes.size() - 8);
      auto res = joy::decode_bytes(bytes);
      CHECK_FALSE(res);
    }
  }
  SECTION("random garbage") {
    std::mt19937_64 rng{42};
    for (int i = 0; i < 200; ++i) {
      std::vector<char> bytes(8 * (1 + rng() % 16));
      for (auto& c : bytes)
        c = static_cast<char>(rng() & 0xFF);
      auto res = joy::decode_bytes(bytes);
      if (!res) {
        auto code = joy::code_of(res.error());
        CHECK((code == errc::invalid_argument || code == errc::protocol_error
               || code == errc::too_large || code == errc::unimplemented));
      }
    }
  }
  SECTION("corrupted pointers") {
    std::mt19937_64 rng{43};
    for (int i = 0; i < 200; ++i) {
      auto bytes = *good;
      // Keep the segment table, corrupt one byte of the message.
      auto pos = 8 + rng() % (bytes.size() - 8);
      bytes[pos] = static_cast<char>(rng() & 0xFF);
      auto res = joy::decode_bytes(bytes);
      if (!res)
        CHECK_FALSE(joy::message_of(res.error()).empty());
    }
  }
}

// -- lists, maps and results --------------------------------------------------

TEST_CASE("write_list and write_map fill initialised lists",
          "[runtime][wire]") {
  capnp::MallocMessageBuilder msg;
  auto root = msg.initRoot<wire::Value>();
  value_list xs{value{1}, value{"a"}, value{value_list{}}};
  REQUIRE_FALSE(joy::write_list(xs, root.initList(3)));
  auto back = joy::read_list(msg.getRoot<wire::Value>().asReader().getList());
  REQUIRE(back);
  CHECK(*back == xs);

  capnp::MallocMessageBuilder msg2;
  auto root2 = msg2.initRoot<wire::Value>();
  value_map m{{"z", 1}, {"_ra", 2}};
  REQUIRE_FALSE(joy::write_map(m, root2.initMap(2)));
  auto back2 = joy::read_map(msg2.getRoot<wire::Value>().asReader().getMap());
  REQUIRE(back2);
  CHECK(*back2 == m);
}

TEST_CASE("results carry a value or an error", "[runtime][wire]") {
  SECTION("ok") {
    capnp::MallocMessageBuilder msg;
    joy::write_result(caf::expected<value>{value{value_list{value{42}}}},
                      msg.initRoot<wire::Result>());
    CHECK(msg.getRoot<wire::Result>().asReader().isOk());
    auto res = joy::read_result(msg.getRoot<wire::Result>().asReader());
    REQUIRE(res);
    CHECK(*res == value{value_list{value{42}}});
  }
  SECTION("err") {
    capnp::MallocMessageBuilder msg;
    joy::write_result(
      caf::expected<value>{joy::make_error(errc::not_found, "no method 'x'")},
      msg.initRoot<wire::Result>());
    CHECK(msg.getRoot<wire::Result>().asReader().isErr());
    auto res = joy::read_result(msg.getRoot<wire::Result>().asReader());
    REQUIRE_FALSE(res);
    CHECK(joy::code_of(res.error()) == errc::not_found);
    CHECK(joy::message_of(res.error()) == "no method 'x'");
  }
  SECTION("an ok value that cannot be written becomes an err") {
    capnp::MallocMessageBuilder msg;
    joy::write_result(caf::expected<value>{value{function_ref{nullptr, "f"}}},
                      msg.initRoot<wire::Result>());
    auto res = joy::read_result(msg.getRoot<wire::Result>().asReader());
    REQUIRE_FALSE(res);
    CHECK(joy::code_of(res.error()) == errc::unimplemented);
  }
  SECTION("an error value is an ok result") {
    capnp::MallocMessageBuilder msg;
    value ev{error_value{errc::timeout, "late", ""}};
    joy::write_result(caf::expected<value>{ev}, msg.initRoot<wire::Result>());
    auto res = joy::read_result(msg.getRoot<wire::Result>().asReader());
    REQUIRE(res);
    CHECK(*res == ev);
  }
  SECTION("an ok value that is malformed on the wire reads as its error") {
    capnp::MallocMessageBuilder msg;
    build_nested_lists(msg.initRoot<wire::Result>().initOk(), 40);
    auto res = joy::read_result(msg.getRoot<wire::Result>().asReader());
    REQUIRE_FALSE(res);
    CHECK(joy::code_of(res.error()) == errc::too_large);
  }
}

TEST_CASE("wire errors keep code, message and optional trace",
          "[runtime][wire]") {
  capnp::MallocMessageBuilder msg;
  auto e = msg.initRoot<wire::Error>();
  joy::write_error(errc::permission_denied, "nope", "trace here", e);
  auto r = msg.getRoot<wire::Error>().asReader();
  CHECK(r.getCode() == static_cast<uint16_t>(errc::permission_denied));
  CHECK(std::string{r.getMessage().cStr()} == "nope");
  CHECK(std::string{r.getTrace().cStr()} == "trace here");
  auto err = joy::read_error(r);
  CHECK(joy::code_of(err) == errc::permission_denied);
  CHECK(joy::message_of(err) == "nope");

  capnp::MallocMessageBuilder msg2;
  joy::write_error(joy::make_error(errc::io_error, "disk full"),
                   msg2.initRoot<wire::Error>());
  auto r2 = msg2.getRoot<wire::Error>().asReader();
  CHECK(r2.getCode() == static_cast<uint16_t>(errc::io_error));
  CHECK(std::string{r2.getMessage().cStr()} == "disk full");
  CHECK_FALSE(r2.hasTrace());
}
