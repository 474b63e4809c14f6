// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "runtime/errc.hpp"
#include "runtime/value.hpp"
#include "tests/support/value_helpers.hpp"

using namespace joy::test;

// -- construction -------------------------------------------------------------

TEST_CASE("a value holds every kind and reports it", "[runtime][value]") {
  CHECK(value{}.type() == kind::null);
  CHECK(value{nullptr}.type() == kind::null);
  CHECK(value{}.is_null());
  CHECK(value{true}.type() == kind::boolean);
  CHECK(value{false}.type() == kind::boolean);
  CHECK(value{5}.type() == kind::int64);
  CHECK(value{int64_t{-5}}.type() == kind::int64);
  CHECK(value{uint64_t{5}}.type() == kind::uint64);
  CHECK(value{1.5}.type() == kind::float64);
  CHECK(value{"text"}.type() == kind::string);
  CHECK(value{std::string{"text"}}.type() == kind::string);
  CHECK(value{std::string_view{"text"}}.type() == kind::string);
  CHECK(value{buffer{}}.type() == kind::bytes);
  CHECK(value{value_list{}}.type() == kind::list);
  CHECK(value{value_map{}}.type() == kind::map);
  CHECK(value{ndarray{}}.type() == kind::ndarray);
  CHECK(value{timestamp{42}}.type() == kind::timestamp);
  CHECK(value{function_ref{nullptr, "f"}}.type() == kind::function);
  CHECK(value{error_value{errc::not_found, "gone", ""}}.type() == kind::error);
  CHECK(value{5}.is(kind::int64));
  CHECK_FALSE(value{5}.is(kind::uint64));
}

TEST_CASE("typed accessors return the alternative or nullptr",
          "[runtime][value]") {
  value b{true};
  REQUIRE(b.as_bool() != nullptr);
  CHECK(*b.as_bool());
  CHECK(b.as_int64() == nullptr);

  value i{-7};
  REQUIRE(i.as_int64() != nullptr);
  CHECK(*i.as_int64() == -7);
  CHECK(i.as_uint64() == nullptr);
  CHECK(i.as_float64() == nullptr);

  value d{2.5};
  REQUIRE(d.as_float64() != nullptr);
  CHECK(*d.as_float64() == 2.5);

  value s{"hi"};
  REQUIRE(s.as_string() != nullptr);
  CHECK(*s.as_string() == "hi");
  CHECK(s.as_bytes() == nullptr);

  value t{timestamp{99}};
  REQUIRE(t.as_timestamp() != nullptr);
  CHECK(t.as_timestamp()->ns == 99);

  value e{error_value{errc::timeout, "late", "trace"}};
  REQUIRE(e.as_error() != nullptr);
  CHECK(e.as_error()->code == errc::timeout);
  CHECK(e.as_error()->message == "late");
  CHECK(e.as_error()->trace == "trace");

  auto impl = joy::test::fake_function();
  value f{function_ref{impl, "callback"}};
  REQUIRE(f.as_function() != nullptr);
  CHECK(f.as_function()->impl == impl);
  CHECK(f.as_function()->name == "callback");

  value a{make_array(dtype::float32, {2}, zeros(8))};
  REQUIRE(a.as_ndarray() != nullptr);
  CHECK(a.as_ndarray()->type == dtype::float32);
  CHECK(a.as_ndarray()->shape == std::vector<uint64_t>{2});

  value n;
  CHECK(n.as_bool() == nullptr);
  CHECK(n.as_list() == nullptr);
  CHECK(n.as_map() == nullptr);
  CHECK(n.as_ndarray() == nullptr);
  CHECK(n.as_function() == nullptr);
  CHECK(n.as_error() == nullptr);
  CHECK(n.as_timestamp() == nullptr);
}

TEST_CASE("containers can be built through mutable accessors",
          "[runtime][value]") {
  value xs{value_list{}};
  xs.as_list()->push_back(value{1});
  xs.as_list()->push_back(value{"two"});
  CHECK(xs == value{value_list{value{1}, value{"two"}}});

  value m{value_map{}};
  m.as_map()->insert("a", 1);
  CHECK(m == value{value_map{{"a", 1}}});
}

TEST_CASE("signed integers are int64 and 64-bit unsigned integers are uint64",
          "[runtime][value]") {
  CHECK(value{5}.type() == kind::int64);
  CHECK(value{5L}.type() == kind::int64);
  CHECK(value{5LL}.type() == kind::int64);
  // 32-bit unsigned values always fit int64 and become int64.
  CHECK(value{5u}.type() == kind::int64);
  CHECK(value{uint64_t{5}}.type() == kind::uint64);
  CHECK(value{5UL}.type() == kind::uint64);
  CHECK(value{5ULL}.type() == kind::uint64);
  CHECK(*value{std::numeric_limits<uint32_t>::max()}.as_int64() == 4294967295);
  CHECK(*value{std::numeric_limits<uint64_t>::max()}.as_uint64()
        == std::numeric_limits<uint64_t>::max());
  CHECK(*value{std::numeric_limits<int64_t>::min()}.as_int64()
        == std::numeric_limits<int64_t>::min());
  SECTION("the type is part of the value") {
    CHECK(value{5} != value{uint64_t{5}});
    CHECK(value{5} != value{5.0});
    CHECK(value{uint64_t{5}} == value{5ULL});
  }
}

TEST_CASE("kinds have human names", "[runtime][value]") {
  CHECK(joy::to_string(kind::null) == "null");
  CHECK(joy::to_string(kind::boolean) == "bool");
  CHECK(joy::to_string(kind::int64) == "int64");
  CHECK(joy::to_string(kind::uint64) == "uint64");
  CHECK(joy::to_string(kind::float64) == "float64");
  CHECK(joy::to_string(kind::string) == "string");
  CHECK(joy::to_string(kind::bytes) == "bytes");
  CHECK(joy::to_string(kind::list) == "list");
  CHECK(joy::to_string(kind::map) == "map");
  CHECK(joy::to_string(kind::ndarray) == "ndarray");
  CHECK(joy::to_string(kind::timestamp) == "timestamp");
  CHECK(joy::to_string(kind::function) == "function");
  CHECK(joy::to_string(kind::error) == "error");
}

// -- sharing ------------------------------------------------------------------

TEST_CASE("copying a value shares the bytes of a large buffer",
          "[runtime][value]") {
  std::vector<std::byte> big(1 << 20, std::byte{0xAB});
  auto* original = big.data();
  auto buf = buffer::take(std::move(big));
  // take() adopts the vector's memory instead of copying it.
  CHECK(buf.data() == original);
  CHECK(buf.size() == std::size_t{1} << 20);

  value v{buf};
  value copy = v;
  REQUIRE(copy.as_bytes() != nullptr);
  CHECK(copy.as_bytes()->data() == v.as_bytes()->data());
  CHECK(copy.as_bytes()->data() == original);
  CHECK(copy == v);

  value_list xs{v, v};
  value outer{xs};
  value outer_copy = outer;
  CHECK((*outer_copy.as_list())[1].as_bytes()->data() == original);
}

TEST_CASE("copying a value shares the ndarray and its data",
          "[runtime][value]") {
  value v{make_array(dtype::float64, {512, 256}, zeros(512 * 256 * 8))};
  value copy = v;
  CHECK(copy.as_ndarray() == v.as_ndarray());
  CHECK(copy.as_ndarray()->data.data() == v.as_ndarray()->data.data());
  CHECK(copy == v);
}

TEST_CASE("a buffer keeps its owner alive until the last copy goes",
          "[runtime][value]") {
  auto owner = std::make_shared<std::vector<std::byte>>(16, std::byte{1});
  std::weak_ptr<std::vector<std::byte>> watch = owner;
  auto* ptr = owner->data();
  auto buf = buffer::adopt(owner, ptr, owner->size());
  owner.reset();
  CHECK_FALSE(watch.expired());
  {
    value v{buf};
    buf = buffer{};
    CHECK_FALSE(watch.expired());
    CHECK(v.as_bytes()->data() == ptr);
  }
  CHECK(watch.expired());
}

TEST_CASE("buffers compare by content", "[runtime][value]") {
  CHECK(bytes_of({1, 2, 3}) == bytes_of({1, 2, 3}));
  CHECK(bytes_of({1, 2, 3}) != bytes_of({1, 2, 4}));
  CHECK(bytes_of({1, 2}) != bytes_of({1, 2, 3}));
  CHECK(buffer{} == buffer::copy_of("", 0));
  CHECK(buffer::copy_of("abc", 3).view() == "abc");
  CHECK(buffer::take(std::string{"hello"}).view() == "hello");
  CHECK(buffer{}.empty());
  CHECK(buffer::take(std::string{}).empty());
}

// -- value_map ----------------------------------------------------------------

TEST_CASE("a value_map keeps insertion order", "[runtime][value]") {
  value_map m;
  m.insert("zebra", 1);
  m.insert("apple", 2);
  m.insert("mango", 3);
  CHECK(m.size() == 3);
  CHECK(keys_of(m) == std::vector<std::string>{"zebra", "apple", "mango"});
}

TEST_CASE("inserting an existing key replaces its value in place",
          "[runtime][value]") {
  value_map m{{"a", 1}, {"b", 2}, {"c", 3}};
  auto& stored = m.insert("b", "two");
  CHECK(stored == value{"two"});
  CHECK(m.size() == 3);
  CHECK(keys_of(m) == std::vector<std::string>{"a", "b", "c"});
  REQUIRE(m.find("b") != nullptr);
  CHECK(*m.find("b") == value{"two"});
  // The returned reference is the stored value.
  stored = value{22};
  CHECK(*m.find("b") == value{22});

  SECTION("an initializer list with a repeated key keeps the first position") {
    value_map d{{"x", 1}, {"y", 2}, {"x", 3}};
    CHECK(keys_of(d) == std::vector<std::string>{"x", "y"});
    CHECK(*d.find("x") == value{3});
  }
}

TEST_CASE("a value_map finds and erases keys", "[runtime][value]") {
  value_map m{{"a", 1}, {"b", 2}, {"c", 3}};
  CHECK(m.contains("a"));
  CHECK_FALSE(m.contains("z"));
  CHECK(m.find("z") == nullptr);
  const auto& cm = m;
  REQUIRE(cm.find("c") != nullptr);
  CHECK(*cm.find("c") == value{3});

  auto* b = m.find("b");
  REQUIRE(b != nullptr);
  *b = value{"changed"};
  CHECK(*m.find("b") == value{"changed"});

  CHECK(m.erase("b"));
  CHECK_FALSE(m.erase("b"));
  CHECK_FALSE(m.erase("missing"));
  CHECK(m.size() == 2);
  CHECK(keys_of(m) == std::vector<std::string>{"a", "c"});
  CHECK(m.erase("a"));
  CHECK(m.erase("c"));
  CHECK(m.empty());
}

TEST_CASE("value_map equality depends on order", "[runtime][value]") {
  value_map ab{{"a", 1}, {"b", 2}};
  value_map ba{{"b", 2}, {"a", 1}};
  CHECK(ab == value_map{{"a", 1}, {"b", 2}});
  CHECK_FALSE(ab == ba);
  CHECK_FALSE(ab == value_map{{"a", 1}});
  CHECK_FALSE(ab == value_map{{"a", 1}, {"b", 3}});
}

// -- equality -----------------------------------------------------------------

TEST_CASE("floats are equal when their bits are equal or both are NaN",
          "[runtime][value]") {
  auto nan = std::numeric_limits<double>::quiet_NaN();
  CHECK(value{nan} == value{nan});
  CHECK(value{nan} == value{-nan});
  // A NaN with another payload is still a NaN.
  CHECK(value{nan} == value{double_of(0x7FF0000000000001ULL)});
  CHECK(value{nan} != value{0.0});
  CHECK(value{0.0} != value{nan});
  CHECK(value{0.0} == value{0.0});
  CHECK(value{-0.0} == value{-0.0});
  CHECK(value{-0.0} != value{0.0});
  auto inf = std::numeric_limits<double>::infinity();
  CHECK(value{inf} == value{inf});
  CHECK(value{inf} != value{-inf});
  CHECK(value{0.1 + 0.2} != value{0.3});
  CHECK(value{std::numeric_limits<double>::denorm_min()}
        == value{std::numeric_limits<double>::denorm_min()});
}

TEST_CASE("values of different kinds are never equal", "[runtime][value]") {
  std::vector<value> xs{value{},
                        value{false},
                        value{0},
                        value{uint64_t{0}},
                        value{0.0},
                        value{""},
                        value{buffer{}},
                        value{value_list{}},
                        value{value_map{}},
                        value{make_array(dtype::uint8, {0}, zeros(0))},
                        value{timestamp{0}},
                        value{function_ref{nullptr, ""}},
                        value{error_value{}}};
  for (std::size_t i = 0; i < xs.size(); ++i) {
    for (std::size_t j = 0; j < xs.size(); ++j) {
      INFO(i << " vs " << j);
      CHECK((xs[i] == xs[j]) == (i == j));
    }
  }
}

TEST_CASE("nested values compare structurally", "[runtime][value]") {
  auto make = [](double x) {
    value_map inner{{"x", x}, {"tags", value_list{value{"a"}, value{"b"}}}};
    return value{value_list{value{1}, value{inner}, value{bytes_of({1, 2})}}};
  };
  auto nan = std::numeric_limits<double>::quiet_NaN();
  CHECK(make(1.5) == make(1.5));
  CHECK(make(nan) == make(nan));
  CHECK(make(1.5) != make(2.5));
  CHECK(make(0.0) != make(-0.0));
  CHECK(value{value_list{value{1}, value{2}}} != value{value_list{value{1}}});
  CHECK(value{value_list{value{1}, value{2}}}
        != value{value_list{value{2}, value{1}}});
}

TEST_CASE("ndarrays, timestamps, errors and functions compare as documented",
          "[runtime][value]") {
  auto a = make_array(dtype::int16, {2, 2}, zeros(8));
  auto b = a;
  b.data = zeros(8);
  CHECK(value{a} == value{b});
  b.shape = {4};
  CHECK(value{a} != value{b});
  b = a;
  b.type = dtype::uint16;
  CHECK(value{a} != value{b});
  b = a;
  b.data = bytes_of({0, 0, 0, 0, 0, 0, 0, 1});
  CHECK(value{a} != value{b});
  auto typed = make_array(dtype::uint8, {4}, zeros(4), true);
  auto plain = make_array(dtype::uint8, {4}, zeros(4), false);
  CHECK(value{typed} != value{plain});

  CHECK(value{timestamp{1}} == value{timestamp{1}});
  CHECK(value{timestamp{1}} != value{timestamp{2}});

  CHECK(value{error_value{errc::timeout, "m", "t"}}
        == value{error_value{errc::timeout, "m", "t"}});
  CHECK(value{error_value{errc::timeout, "m", "t"}}
        != value{error_value{errc::timeout, "m", ""}});
  CHECK(value{error_value{errc::timeout, "m", ""}}
        != value{error_value{errc::cancelled, "m", ""}});

  // Functions compare by identity (the shared function), not by name.
  auto impl = joy::test::fake_function();
  CHECK(value{function_ref{impl, "f"}} == value{function_ref{impl, "g"}});
  CHECK(value{function_ref{impl, "f"}}
        != value{function_ref{joy::test::fake_function(), "f"}});
}

// -- depth --------------------------------------------------------------------

TEST_CASE("depth counts container nesting", "[runtime][value]") {
  CHECK(joy::depth(value{}) == 0);
  CHECK(joy::depth(value{1}) == 0);
  CHECK(joy::depth(value{"s"}) == 0);
  CHECK(joy::depth(value{make_array(dtype::uint8, {2, 2}, zeros(4))}) == 0);
  CHECK(joy::depth(value{value_list{}}) == 1);
  CHECK(joy::depth(value{value_map{}}) == 1);
  CHECK(joy::depth(value{value_list{value{1}}}) == 1);
  CHECK(joy::depth(value{value_list{value{value_list{value{1}}}}}) == 2);
  CHECK(joy::depth(value{value_map{{"a", value_list{value{1}}}}}) == 2);
  // The deepest branch counts.
  value mixed{value_list{value{1},
                         value{value_list{value{2}, value{value_list{}}}},
                         value{value_map{}}}};
  CHECK(joy::depth(mixed) == 3);
  CHECK(joy::depth(nested_list(32)) == 32);
  CHECK(joy::depth(nested_map(32)) == 32);
  CHECK(joy::depth(nested_list(5), 10) == 5);
}

TEST_CASE("depth is bounded on deep input", "[runtime][value]") {
  // Counting stops at limit + 1, whatever the real depth.
  CHECK(joy::depth(nested_list(33)) == joy::max_value_depth + 1);
  CHECK(joy::depth(nested_list(2000)) == joy::max_value_depth + 1);
  CHECK(joy::depth(nested_map(2000)) == joy::max_value_depth + 1);
  CHECK(joy::depth(nested_list(2000), 5) == 6);
  CHECK(joy::depth(nested_list(6), 5) == 6);
  CHECK(joy::depth(nested_list(5), 5) == 5);
}

// -- ndarray ------------------------------------------------------------------

TEST_CASE("ndarray::validate accepts consistent arrays", "[runtime][value]") {
  CHECK_FALSE(make_array(dtype::uint8, {2, 3}, zeros(6)).validate());
  CHECK_FALSE(make_array(dtype::float32, {2, 3}, zeros(24)).validate());
  CHECK_FALSE(make_array(dtype::float64, {0}, zeros(0)).validate());
  CHECK_FALSE(make_array(dtype::int32, {3, 0}, zeros(0)).validate());
  // A scalar has shape [] and one element.
  CHECK_FALSE(make_array(dtype::int64, {}, zeros(8)).validate());
  CHECK_FALSE(make_array(dtype::uint16, {5}, zeros(10), true).validate());
  CHECK(make_array(dtype::uint8, {2, 3}, zeros(6)).element_count()
        == uint64_t{6});
  CHECK(make_array(dtype::uint8, {}, zeros(1)).element_count() == uint64_t{1});
  CHECK(make_array(dtype::uint8, {7, 0}, zeros(0)).element_count()
        == uint64_t{0});
}

TEST_CASE("ndarray::validate rejects a data size that does not match the shape",
          "[runtime][value]") {
  auto err = make_array(dtype::float32, {2, 3}, zeros(23)).validate();
  REQUIRE(err);
  CHECK(joy::code_of(err) == errc::invalid_argument);
  auto msg = joy::message_of(err);
  CHECK_THAT(msg, Contains("float32"));
  CHECK_THAT(msg, Contains("[2,3]"));
  CHECK_THAT(msg, Contains("24 bytes"));
  CHECK_THAT(msg, Contains("23"));

  CHECK(joy::code_of(make_array(dtype::int64, {}, zeros(0)).validate())
        == errc::invalid_argument);
  CHECK(joy::code_of(make_array(dtype::uint8, {0}, zeros(1)).validate())
        == errc::invalid_argument);
}

TEST_CASE("ndarray::validate rejects shapes that overflow",
          "[runtime][value]") {
  auto count = make_array(dtype::uint8, {uint64_t{1} << 32, uint64_t{1} << 32},
                          zeros(0));
  CHECK_FALSE(count.element_count());
  auto err = count.validate();
  REQUIRE(err);
  CHECK(joy::code_of(err) == errc::too_large);
  CHECK_THAT(joy::message_of(err), Contains("overflow"));

  // The element count fits, the byte count does not.
  auto bytes = make_array(dtype::float64, {uint64_t{1} << 62}, zeros(0));
  CHECK(bytes.element_count());
  CHECK(joy::code_of(bytes.validate()) == errc::too_large);

  // Huge but representable: a size mismatch, not an overflow.
  auto huge = make_array(dtype::uint8, {uint64_t{1} << 40}, zeros(0));
  CHECK(joy::code_of(huge.validate()) == errc::invalid_argument);
}

TEST_CASE("a typed array must be one-dimensional", "[runtime][value]") {
  auto two_d = make_array(dtype::uint8, {2, 2}, zeros(4), true);
  auto err = two_d.validate();
  REQUIRE(err);
  CHECK(joy::code_of(err) == errc::invalid_argument);
  CHECK_THAT(joy::message_of(err), Contains("one-dimensional"));
  CHECK(joy::code_of(make_array(dtype::uint8, {}, zeros(1), true).validate())
        == errc::invalid_argument);
  CHECK_FALSE(make_array(dtype::uint8, {4}, zeros(4), true).validate());
  CHECK_FALSE(make_array(dtype::uint8, {0}, zeros(0), true).validate());
}

TEST_CASE("ndarray::validate rejects an invalid dtype", "[runtime][value]") {
  auto a = make_array(static_cast<dtype>(joy::dtype_count), {1}, zeros(1));
  auto err = a.validate();
  REQUIRE(err);
  CHECK(joy::code_of(err) == errc::invalid_argument);
  CHECK_THAT(joy::message_of(err), Contains("dtype"));
}

TEST_CASE("every dtype has its numpy item size", "[runtime][value]") {
  CHECK(joy::itemsize(dtype::bool_) == 1);
  CHECK(joy::itemsize(dtype::int8) == 1);
  CHECK(joy::itemsize(dtype::uint8) == 1);
  CHECK(joy::itemsize(dtype::int16) == 2);
  CHECK(joy::itemsize(dtype::uint16) == 2);
  CHECK(joy::itemsize(dtype::int32) == 4);
  CHECK(joy::itemsize(dtype::uint32) == 4);
  CHECK(joy::itemsize(dtype::int64) == 8);
  CHECK(joy::itemsize(dtype::uint64) == 8);
  CHECK(joy::itemsize(dtype::float16) == 2);
  CHECK(joy::itemsize(dtype::float32) == 4);
  CHECK(joy::itemsize(dtype::float64) == 8);
  CHECK(joy::itemsize(static_cast<dtype>(joy::dtype_count)) == 0);
  for (uint8_t i = 0; i < joy::dtype_count; ++i) {
    auto type = static_cast<dtype>(i);
    INFO(joy::to_string(type));
    auto size = joy::itemsize(type);
    CHECK_FALSE(make_array(type, {2, 3}, zeros(6 * size)).validate());
    CHECK(make_array(type, {2, 3}, zeros(6 * size + 1)).validate());
    CHECK_FALSE(make_array(type, {}, zeros(size)).validate());
  }
}

// -- names --------------------------------------------------------------------

TEST_CASE("dtype names round-trip", "[runtime][value]") {
  const std::vector<std::string> names{
    "bool",   "int8",  "uint8",  "int16",   "uint16",  "int32",
    "uint32", "int64", "uint64", "float16", "float32", "float64"};
  REQUIRE(names.size() == joy::dtype_count);
  for (uint8_t i = 0; i < joy::dtype_count; ++i) {
    auto type = static_cast<dtype>(i);
    CHECK(joy::to_string(type) == names[i]);
    auto back = joy::dtype_from_string(names[i]);
    REQUIRE(back);
    CHECK(*back == type);
  }
  CHECK(joy::to_string(static_cast<dtype>(joy::dtype_count)) == "invalid");
  CHECK_FALSE(joy::dtype_from_string(""));
  CHECK_FALSE(joy::dtype_from_string("float128"));
  CHECK_FALSE(joy::dtype_from_string("Float32"));
  CHECK_FALSE(joy::dtype_from_string("bool_"));
  CHECK_FALSE(joy::dtype_from_string("invalid"));
}

TEST_CASE("errc names round-trip", "[runtime][value]") {
  const std::vector<std::pair<errc, std::string>> all{
    {errc::timeout, "timeout"},
    {errc::overloaded, "overloaded"},
    {errc::disconnected, "disconnected"},
    {errc::unavailable, "unavailable"},
    {errc::cancelled, "cancelled"},
    {errc::invalid_argument, "invalid_argument"},
    {errc::not_found, "not_found"},
    {errc::already_exists, "already_exists"},
    {errc::too_large, "too_large"},
    {errc::permission_denied, "permission_denied"},
    {errc::failed_precondition, "failed_precondition"},
    {errc::version_mismatch, "version_mismatch"},
    {errc::unimplemented, "unimplemented"},
    {errc::plugin_error, "plugin_error"},
    {errc::protocol_error, "protocol_error"},
    {errc::io_error, "io_error"},
    {errc::internal, "internal"},
  };
  for (auto& [code, name] : all) {
    INFO(name);
    CHECK(joy::to_string(code) == name);
    auto back = joy::errc_from_string(name);
    REQUIRE(back);
    CHECK(*back == code);
    CHECK(joy::errc_from_code(static_cast<uint16_t>(code)) == code);
  }
  CHECK_FALSE(joy::errc_from_string("no_such_code"));
  CHECK_FALSE(joy::errc_from_string(""));
  CHECK_FALSE(joy::errc_from_string("NOT_FOUND"));
}

TEST_CASE("unknown error codes map to internal", "[runtime][value]") {
  CHECK(joy::errc_from_code(0) == errc::internal);
  CHECK(joy::errc_from_code(6) == errc::internal);
  CHECK(joy::errc_from_code(99) == errc::internal);
  CHECK(joy::errc_from_code(256 + 11) == errc::internal);
  CHECK(joy::errc_from_code(65535) == errc::internal);
  CHECK(joy::to_string(static_cast<errc>(99)) == "internal");
}

TEST_CASE("Joy errors carry their code and message", "[runtime][value]") {
  auto err = joy::make_error(errc::not_found, "no plugin named 'hello'");
  CHECK(joy::code_of(err) == errc::not_found);
  CHECK(joy::message_of(err) == "no plugin named 'hello'");
  CHECK(joy::message_of(caf::error{}).empty());
}

TEST_CASE("to_string renders a value as compact JSON", "[runtime][value]") {
  value v{value_map{{"a", 1}, {"b", value_list{value{true}, value{}}}}};
  CHECK(joy::to_string(v) == R"({"a":1,"b":[true,null]})");
  CHECK(joy::to_string(*v.as_map()) == R"({"a":1,"b":[true,null]})");
  CHECK_THAT(joy::to_string(value{std::string{"\xff"}}),
             Contains("<unprintable"));
}

TEST_CASE(
  "an ndarray with a zero dimension is empty however large the others are",
  "[runtime][value]") {
  joy::ndarray a;
  a.type = joy::dtype::float64;
  a.shape = {uint64_t{1} << 40, uint64_t{1} << 40, 0};
  REQUIRE(a.element_count());
  CHECK(*a.element_count() == 0);
  CHECK_FALSE(a.validate());
}
