// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include <cmath>
#include <cstring>
#include <limits>

#include <pybind11/numpy.h>

#include "nodes/python_host/python_host.hpp"

namespace py = pybind11;

namespace joy::python {

// python_host.cpp: function values.
py::object remote_to_python(python_host& h, const function_ref& f);
value function_to_value(python_host& h, py::handle fn);

namespace {

constexpr const char* buffer_capsule = "joy.buffer";

/// A numpy array over `data`, which a capsule keeps alive: no copy, and
/// shared memory stays mapped while numpy uses it.
py::array array_over(buffer data, dtype type,
                     const std::vector<uint64_t>& dims) {
  auto* keep = new buffer(std::move(data));
  py::capsule base(keep, buffer_capsule, [](PyObject* cap) {
    delete static_cast<buffer*>(PyCapsule_GetPointer(cap, buffer_capsule));
  });
  py::dtype dt{std::string{to_string(type)}};
  std::vector<py::ssize_t> shape;
  for (auto n : dims)
    shape.push_back(static_cast<py::ssize_t>(n));
  return py::array{dt, shape, {}, keep->data(), base};
}

py::object ndarray_to_python(const ndarray& arr) {
  auto out = array_over(arr.data, arr.type, arr.shape);
  // The bytes may be another process's shared memory: read-only (copy()
  // gives a writable array).
  out.attr("setflags")(py::arg("write") = false);
  return std::move(out);
}

/// The buffer behind an array made by array_over (through any views of
/// it), or null.
const buffer* joy_buffer_of(py::handle arr) {
  auto base = py::reinterpret_borrow<py::object>(arr);
  for (int depth = 0; depth < 64; ++depth) {
    base = py::getattr(base, "base", py::none());
    if (base.is_none())
      return nullptr;
    if (PyCapsule_IsValid(base.ptr(), buffer_capsule) != 0)
      return static_cast<buffer*>(
        PyCapsule_GetPointer(base.ptr(), buffer_capsule));
  }
  return nullptr;
}

caf::error unsupported(py::handle x) {
  std::string type = py::str(py::type::handle_of(x).attr("__name__"));
  return make_error(errc::invalid_argument,
                    "cannot send a value of type '" + type + "'");
}

caf::expected<value> ndarray_from_python(python_host& h, py::handle x) {
  auto np = py::module_::import("numpy");
  auto a = py::reinterpret_borrow<py::array>(x);
  auto dt = a.dtype();
  std::string name = py::str(dt.attr("name"));
  auto type = dtype_from_string(name);
  if (!type)
    return make_error(errc::invalid_argument,
                      "numpy arrays of dtype '" + name
                        + "' cannot be sent (Joy's ndarrays hold bool, "
                          "int8..int64, uint8..uint64, float16, float32 and "
                          "float64)");
  if (py::str(dt.attr("byteorder")).cast<std::string>() == ">")
    a = py::reinterpret_steal<py::array>(
      a.attr("astype")(dt.attr("newbyteorder")("<")).release());
  if ((a.flags() & py::array::c_style) == 0)
    a = py::reinterpret_steal<py::array>(
      np.attr("ascontiguousarray")(a).release());
  ndarray out;
  out.type = *type;
  for (py::ssize_t i = 0; i < a.ndim(); ++i)
    out.shape.push_back(static_cast<uint64_t>(a.shape(i)));
  auto bytes = static_cast<std::size_t>(a.nbytes());
  auto* data = static_cast<const std::byte*>(a.data());
  // An array that came in (or a shared_array), or a contiguous view of
  // one: its own buffer, so shared memory goes out as shared memory.
  if (auto* buf = joy_buffer_of(a);
      buf != nullptr && data >= buf->data()
      && data + bytes <= buf->data() + buf->size()) {
    if (data == buf->data() && bytes == buf->size())
      out.data = *buf;
    else if (buf->origin())
      out.data = buffer::in(buf->origin(), data, bytes);
    if (out.data.size() == bytes) // else: a heap buffer's slice, below
      return value{std::move(out)};
  }
  // A read-only array cannot change under the wire: its bytes stay numpy's,
  // kept alive by a reference that any thread may drop. A writable one may
  // change as soon as the function returns, so it is copied now, into
  // shared memory when large (where the wire would have copied it anyway).
  if (!a.writeable()) {
    auto owner = std::make_shared<py_ref>(h.inbox(), a.ptr());
    out.data = buffer::adopt(std::shared_ptr<const void>{owner}, data, bytes);
    return value{std::move(out)};
  }
  if (bytes > max_inline_bytes) {
    auto mem = h.allocate(bytes);
    if (!mem)
      return std::move(mem.error());
    std::memcpy(mem->data(), data, bytes);
    out.data = std::move(*mem).freeze();
  } else {
    out.data = buffer::copy_of(data, bytes);
  }
  return value{std::move(out)};
}

caf::expected<value> from_python_at(python_host& h, py::handle x,
                                    std::size_t depth) {
  if (depth > max_value_depth)
    return make_error(errc::too_large, "values nest at most "
                                         + std::to_string(max_value_depth)
                                         + " levels deep");
  auto* p = x.ptr();
  if (p == Py_None)
    return value{};
  if (PyBool_Check(p))
    return value{p == Py_True};
  if (PyLong_Check(p)) {
    int overflow = 0;
    auto v = PyLong_AsLongLongAndOverflow(p, &overflow);
    if (overflow == 0)
      return value{static_cast<int64_t>(v)};
    if (overflow > 0) {
      auto u = PyLong_AsUnsignedLongLong(p);
      if (!PyErr_Occurred())
        return value{static_cast<uint64_t>(u)};
      PyErr_Clear();
    }
    return make_error(errc::invalid_argument, "integer "
                                                + std::string{py::str(x)}
                                                + " does not fit in 64 bits");
  }
  if (PyFloat_Check(p))
    return value{PyFloat_AS_DOUBLE(p)};
  if (PyUnicode_Check(p)) {
    Py_ssize_t n = 0;
    const char* s = PyUnicode_AsUTF8AndSize(p, &n);
    if (s == nullptr) {
      PyErr_Clear();
      return make_error(errc::invalid_argument,
                        "a str that is not valid Unicode cannot be sent");
    }
    return value{std::string{s, static_cast<std::size_t>(n)}};
  }
  if (PyBytes_Check(p))
    return value{buffer::copy_of(
      PyBytes_AS_STRING(p), static_cast<std::size_t>(PyBytes_GET_SIZE(p)))};
  if (PyByteArray_Check(p))
    return value{
      buffer::copy_of(PyByteArray_AS_STRING(p),
                      static_cast<std::size_t>(PyByteArray_GET_SIZE(p)))};
  if (PyMemoryView_Check(p)) {
    auto bytes = py::reinterpret_steal<py::object>(PyBytes_FromObject(p));
    if (!bytes) {
      PyErr_Clear();
      return unsupported(x);
    }
    return value{
      buffer::copy_of(PyBytes_AS_STRING(bytes.ptr()),
                      static_cast<std::size_t>(PyBytes_GET_SIZE(bytes.ptr())))};
  }
  if (PyDict_Check(p)) {
    value_map out;
    out.reserve(static_cast<std::size_t>(PyDict_Size(p)));
    for (auto [k, v] : py::reinterpret_borrow<py::dict>(x)) {
      if (!PyUnicode_Check(k.ptr()))
        return make_error(
          errc::invalid_argument,
          "dict keys must be str to be sent, not '"
            + std::string{py::str(py::type::handle_of(k).attr("__name__"))}
            + "'");
      Py_ssize_t n = 0;
      const char* key = PyUnicode_AsUTF8AndSize(k.ptr(), &n);
      if (key == nullptr) {
        PyErr_Clear();
        return make_error(errc::invalid_argument,
                          "a dict key that is not valid Unicode cannot be "
                          "sent");
      }
      auto val = from_python_at(h, v, depth + 1);
      if (!val)
        return val;
      out.insert(std::string{key, static_cast<std::size_t>(n)},
                 std::move(*val));
    }
    return value{std::move(out)};
  }
  if (PyList_Check(p) || PyTuple_Check(p)) {
    value_list out;
    auto seq = py::reinterpret_borrow<py::sequence>(x);
    out.reserve(seq.size());
    for (auto item : seq) {
      auto val = from_python_at(h, item, depth + 1);
      if (!val)
        return val;
      out.push_back(std::move(*val));
    }
    return value{std::move(out)};
  }
  // numpy, when the plugin uses it (never imported for this check).
  auto* numpy = PyDict_GetItemString(PyImport_GetModuleDict(), "numpy");
  if (numpy != nullptr) {
    auto np = py::handle{numpy};
    if (py::isinstance(x, np.attr("ndarray")))
      return ndarray_from_python(h, x);
    if (py::isinstance(x, np.attr("generic"))) {
      // item() gives a Python scalar, except for types Python lacks
      // (longdouble), which stay numpy scalars.
      auto item = x.attr("item")();
      if (py::isinstance(item, np.attr("generic")))
        return unsupported(x);
      return from_python_at(h, item, depth + 1);
    }
  }
  auto datetime = py::module_::import("datetime");
  if (py::isinstance(x, datetime.attr("datetime"))) {
    double seconds = 0;
    try {
      seconds = x.attr("timestamp")().cast<double>();
    } catch (py::error_already_set&) {
      seconds = std::numeric_limits<double>::infinity();
    }
    // Nanoseconds in an int64: about the years 1678 to 2261.
    if (!(std::abs(seconds) < 9.2e9))
      return make_error(errc::invalid_argument,
                        "a datetime outside the years 1678-2261 cannot be "
                        "sent");
    return value{timestamp{static_cast<int64_t>(std::llround(seconds * 1e9))}};
  }
  if (PyExceptionInstance_Check(p)) {
    error_value e;
    e.code = errc::plugin_error;
    auto text = py::reinterpret_steal<py::object>(PyObject_Str(p));
    if (!text) {
      PyErr_Clear();
      e.message = "an exception";
    } else {
      Py_ssize_t n = 0;
      const char* s = PyUnicode_AsUTF8AndSize(text.ptr(), &n);
      if (s == nullptr)
        PyErr_Clear();
      e.message = s ? std::string{s, static_cast<std::size_t>(n)}
                    : std::string{"an exception"};
    }
    return value{std::move(e)};
  }
  if (PyCallable_Check(p) && !PyType_Check(p))
    return function_to_value(h, x);
  return unsupported(x);
}

} // namespace

py::object to_python(python_host& h, const value& x) {
  switch (x.type()) {
    case value::kind::null:
      return py::none();
    case value::kind::boolean:
      return py::bool_(*x.as_bool());
    case value::kind::int64:
      return py::int_(*x.as_int64());
    case value::kind::uint64:
      return py::int_(*x.as_uint64());
    case value::kind::float64:
      return py::float_(*x.as_float64());
    case value::kind::string:
      return py::str(*x.as_string());
    case value::kind::bytes: {
      auto& b = *x.as_bytes();
      return py::bytes(reinterpret_cast<const char*>(b.data()), b.size());
    }
    case value::kind::list: {
      py::list out;
      for (auto& item : *x.as_list())
        out.append(to_python(h, item));
      return std::move(out);
    }
    case value::kind::map: {
      auto out = h.module().attr("dotdict")();
      for (auto& [k, v] : *x.as_map())
        out[py::str(k)] = to_python(h, v);
      return out;
    }
    case value::kind::ndarray:
      return ndarray_to_python(*x.as_ndarray());
    case value::kind::timestamp: {
      auto datetime = py::module_::import("datetime");
      auto utc = datetime.attr("timezone").attr("utc");
      auto ns = x.as_timestamp()->ns;
      return datetime.attr("datetime")
        .attr("fromtimestamp")(static_cast<double>(ns) / 1e9, utc);
    }
    case value::kind::function:
      return remote_to_python(h, *x.as_function());
    case value::kind::error: {
      auto& e = *x.as_error();
      return h.module().attr("RemoteError")(std::string{to_string(e.code)},
                                            e.message);
    }
  }
  return py::none();
}

py::object shared_array(python_host& h, const std::string& type,
                        const std::vector<uint64_t>& shape) {
  auto t = dtype_from_string(type);
  if (!t)
    throw py::value_error("no Joy ndarray of dtype '" + type + "'");
  uint64_t n = itemsize(*t);
  for (auto d : shape)
    if (__builtin_mul_overflow(n, d, &n))
      throw py::value_error("shape too large");
  auto mem = h.allocate(n);
  if (!mem)
    throw py::value_error(message_of(mem.error()));
  return array_over(std::move(*mem).freeze(), *t, shape);
}

caf::expected<value> from_python(python_host& h, py::handle x) {
  return from_python_at(h, x, 0);
}

caf::expected<value_list> list_from_python(python_host& h, py::handle xs) {
  auto v = from_python_at(h, xs, 0);
  if (!v)
    return std::move(v.error());
  if (auto* l = v->as_list())
    return std::move(*l);
  return make_error(errc::invalid_argument, "arguments must be a list");
}

caf::expected<value_map> map_from_python(python_host& h, py::handle xs) {
  auto v = from_python_at(h, xs, 0);
  if (!v)
    return std::move(v.error());
  if (auto* m = v->as_map())
    return std::move(*m);
  return make_error(errc::invalid_argument, "keyword arguments must be a dict");
}

} // namespace joy::python
