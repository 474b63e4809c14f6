// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// Joy values and Python objects, both ways, in an embedded interpreter:
// what each kind becomes, that ndarrays are views and not copies, and that
// what cannot be sent is refused with an error naming it.

#include <catch2/catch.hpp>

#include <cstring>

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include "tests/python/python_fixture.hpp"

namespace py = pybind11;
using Catch::Matchers::Contains;
using joy::test::python_fixture;

namespace {

py::object eval(const char* expr) {
  python_fixture::host(); // the interpreter, before any Python
  return py::eval(expr, py::module_::import("__main__").attr("__dict__"));
}

void exec(const char* code) {
  python_fixture::host();
  py::exec(code, py::module_::import("__main__").attr("__dict__"));
}

std::string type_name(const py::handle& x) {
  return py::str(py::type::handle_of(x).attr("__name__"));
}

joy::value from(const py::handle& x) {
  auto v = joy::python::from_python(python_fixture::host(), x);
  REQUIRE(v);
  return std::move(*v);
}

std::string refusal(const char* expr) {
  auto v = joy::python::from_python(python_fixture::host(), eval(expr));
  REQUIRE_FALSE(v);
  return joy::message_of(v.error());
}

} // namespace

TEST_CASE("scalars, strings, lists and maps cross to Python and back "
          "unchanged",
          "[python][values]") {
  auto& h = python_fixture::host();
  joy::value_map m;
  m.insert("null", joy::value{});
  m.insert("yes", joy::value{true});
  m.insert("small", joy::value{int64_t{-7}});
  m.insert("big", joy::value{uint64_t{18446744073709551615ULL}});
  m.insert("pi", joy::value{3.25});
  m.insert("text", joy::value{"grüße"});
  m.insert("list", joy::value{joy::value_list{joy::value{1}, joy::value{"a"}}});
  joy::value x{std::move(m)};
  auto py_x = joy::python::to_python(h, x);
  // Maps read as attributes too (ImJoy's ctx.config.radius).
  CHECK(type_name(py_x) == "dotdict");
  CHECK(py_x.attr("small").cast<int64_t>() == -7);
  CHECK(type_name(py_x["yes"]) == "bool");
  CHECK(type_name(py_x["big"]) == "int");
  CHECK(type_name(py_x["null"]) == "NoneType");
  CHECK(from(py_x) == x);
}

TEST_CASE("Python's own kinds become the matching values: bools stay bools, "
          "tuples become lists, bytes-likes become bytes, datetimes "
          "timestamps",
          "[python][values]") {
  CHECK(from(eval("True")) == joy::value{true});
  CHECK(from(eval("2**63")) == joy::value{uint64_t{1} << 63});
  CHECK(from(eval("-2**63")) == joy::value{INT64_MIN});
  CHECK(from(eval("(1, 'x')"))
        == joy::value{joy::value_list{joy::value{1}, joy::value{"x"}}});
  auto bytes = joy::value{joy::buffer::copy_of("ab\0c", 4)};
  CHECK(from(eval("b'ab\\x00c'")) == bytes);
  CHECK(from(eval("bytearray(b'ab\\x00c')")) == bytes);
  CHECK(from(eval("memoryview(b'xab\\x00c')[1:]")) == bytes);
  exec("import datetime");
  auto t
    = from(eval("datetime.datetime(2024, 1, 2, tzinfo=datetime.timezone.utc)"));
  REQUIRE(t.as_timestamp() != nullptr);
  CHECK(t.as_timestamp()->ns == int64_t{1704153600} * 1000000000);
  exec("import numpy");
  CHECK(from(eval("numpy.float32(1.5)")) == joy::value{1.5});
  CHECK(from(eval("numpy.int16(-3)")) == joy::value{int64_t{-3}});
}

TEST_CASE("what cannot be sent is refused with an error naming it",
          "[python][values]") {
  CHECK_THAT(refusal("2**64"), Contains("does not fit in 64 bits"));
  CHECK_THAT(refusal("-2**63 - 1"), Contains("does not fit in 64 bits"));
  CHECK_THAT(refusal("{1: 'x'}"), Contains("dict keys must be str"));
  CHECK_THAT(refusal("{1, 2}"), Contains("type 'set'"));
  CHECK_THAT(refusal("object()"), Contains("type 'object'"));
  CHECK_THAT(refusal("'\\udc80'"), Contains("not valid Unicode"));
  exec("import numpy");
  CHECK_THAT(refusal("numpy.zeros(3, numpy.complex64)"),
             Contains("dtype 'complex64' cannot be sent"));
  CHECK_THAT(refusal("numpy.longdouble(1)"), Contains("type 'float128'"));
  exec("import datetime");
  CHECK_THAT(refusal("datetime.datetime.min"), Contains("1678-2261"));
  CHECK_THAT(refusal("{'\\udc80': 1}"), Contains("dict key"));
  // Nested deeper than the wire allows.
  exec("deep = []\nfor _ in range(40): deep = [deep]");
  CHECK_THAT(refusal("deep"), Contains("nest at most"));
}

TEST_CASE("a received ndarray is a read-only numpy view of the same bytes, "
          "and it, or a view of it, goes back without a copy",
          "[python][values]") {
  auto& h = python_fixture::host();
  int32_t px[6] = {1, 2, 3, 4, 5, 6};
  joy::ndarray a{joy::dtype::int32, {2, 3}, joy::buffer::copy_of(px, 24)};
  auto arr = joy::python::to_python(h, joy::value{a});
  CHECK(py::str(arr.attr("dtype")).cast<std::string>() == "int32");
  CHECK(arr.attr("shape").cast<std::vector<int>>() == std::vector<int>{2, 3});
  CHECK(arr.attr("flags").attr("writeable").cast<bool>() == false);
  auto addr = arr.attr("ctypes").attr("data").cast<uintptr_t>();
  CHECK(addr == reinterpret_cast<uintptr_t>(a.data.data()));
  CHECK(arr.attr("sum")().cast<int>() == 21);
  // Back as it came: the very same buffer.
  auto back = from(arr);
  REQUIRE(back.as_ndarray() != nullptr);
  CHECK(back.as_ndarray()->data.data() == a.data.data());
  CHECK(back == joy::value{a});
  // A contiguous view: the same memory, no copy either.
  auto row = from(arr[py::int_(1)]);
  REQUIRE(row.as_ndarray() != nullptr);
  CHECK(row.as_ndarray()->shape == std::vector<uint64_t>{3});
  CHECK(row.as_ndarray()->data.data() == a.data.data() + 12);
  int32_t second[3];
  std::memcpy(second, row.as_ndarray()->data.data(), 12);
  CHECK(second[0] == 4);
}

TEST_CASE("numpy arrays of every dtype convert, big-endian and strided ones "
          "are made little-endian and contiguous",
          "[python][values]") {
  exec("import numpy");
  for (auto dtype :
       {"bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64",
        "uint64", "float16", "float32", "float64"}) {
    INFO(dtype);
    py::dict locals;
    locals["dt"] = dtype;
    auto arr
      = py::eval("numpy.arange(5).astype(dt)",
                 py::module_::import("__main__").attr("__dict__"), locals);
    auto v = from(arr);
    REQUIRE(v.as_ndarray() != nullptr);
    CHECK(joy::to_string(v.as_ndarray()->type) == dtype);
    CHECK(v.as_ndarray()->shape == std::vector<uint64_t>{5});
    // numpy's own writable array is copied (it could change under the
    // wire); a read-only one is not.
    CHECK(reinterpret_cast<uintptr_t>(v.as_ndarray()->data.data())
          != arr.attr("ctypes").attr("data").cast<uintptr_t>());
    arr.attr("setflags")(py::arg("write") = false);
    auto frozen = from(arr);
    CHECK(reinterpret_cast<uintptr_t>(frozen.as_ndarray()->data.data())
          == arr.attr("ctypes").attr("data").cast<uintptr_t>());
    auto again = joy::python::to_python(python_fixture::host(), v);
    CHECK(py::module_::import("numpy")
            .attr("array_equal")(again, arr)
            .cast<bool>());
  }
  auto be = from(eval("numpy.array([1, 258], dtype='>u2')"));
  uint16_t words[2];
  std::memcpy(words, be.as_ndarray()->data.data(), 4);
  CHECK(words[0] == 1);
  CHECK(words[1] == 258);
  auto strided = from(eval("numpy.arange(10, dtype=numpy.int64)[::3]"));
  CHECK(strided.as_ndarray()->shape == std::vector<uint64_t>{4});
  int64_t xs[4];
  std::memcpy(xs, strided.as_ndarray()->data.data(), 32);
  CHECK(xs[3] == 9);
}

TEST_CASE("imjoy.shared_array makes a writable array that is sent as it is",
          "[python][values]") {
  exec("import imjoy, numpy\n"
       "shared = imjoy.shared_array((4, 2), numpy.float32)\n"
       "shared[...] = 7");
  auto shared = eval("shared");
  CHECK(shared.attr("flags").attr("writeable").cast<bool>());
  auto v = from(shared);
  REQUIRE(v.as_ndarray() != nullptr);
  CHECK(reinterpret_cast<uintptr_t>(v.as_ndarray()->data.data())
        == shared.attr("ctypes").attr("data").cast<uintptr_t>());
  float f;
  std::memcpy(&f, v.as_ndarray()->data.data(), 4);
  CHECK(f == 7.0f);
  CHECK_THROWS(eval("imjoy.shared_array(3, numpy.complex128)"));
}

TEST_CASE("Python callables become function values, and come back as "
          "themselves",
          "[python][values]") {
  auto& h = python_fixture::host();
  exec("def triple(x):\n    return 3 * x");
  auto fn = eval("triple");
  auto v = from(fn);
  REQUIRE(v.as_function() != nullptr);
  CHECK(v.as_function()->name == "triple");
  auto again = joy::python::to_python(h, v);
  CHECK(again.is(fn));
  // A class is not a function.
  CHECK_THAT(refusal("int"), Contains("type 'type'"));
}
