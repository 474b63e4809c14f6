// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "runtime/value.hpp"

#include <array>
#include <cmath>
#include <cstring>

#include "runtime/value_json.hpp"

namespace joy {

// -- dtype --------------------------------------------------------------------

namespace {

struct dtype_info {
  std::string_view name;
  std::size_t size;
};

constexpr std::array<dtype_info, dtype_count> dtype_table{{
  {"bool", 1},
  {"int8", 1},
  {"uint8", 1},
  {"int16", 2},
  {"uint16", 2},
  {"int32", 4},
  {"uint32", 4},
  {"int64", 8},
  {"uint64", 8},
  {"float16", 2},
  {"float32", 4},
  {"float64", 8},
}};

} // namespace

std::string_view to_string(dtype x) noexcept {
  auto i = static_cast<std::size_t>(x);
  return i < dtype_table.size() ? dtype_table[i].name : "invalid";
}

std::optional<dtype> dtype_from_string(std::string_view name) noexcept {
  for (std::size_t i = 0; i < dtype_table.size(); ++i)
    if (dtype_table[i].name == name)
      return static_cast<dtype>(i);
  return std::nullopt;
}

std::size_t itemsize(dtype x) noexcept {
  auto i = static_cast<std::size_t>(x);
  return i < dtype_table.size() ? dtype_table[i].size : 0;
}

// -- buffer -------------------------------------------------------------------

buffer buffer::copy_of(const void* data, std::size_t size) {
  if (size == 0)
    return {};
  std::vector<std::byte> bytes(size);
  std::memcpy(bytes.data(), data, size);
  return take(std::move(bytes));
}

buffer buffer::take(std::vector<std::byte>&& bytes) {
  if (bytes.empty())
    return {};
  auto owner = std::make_shared<std::vector<std::byte>>(std::move(bytes));
  auto* ptr = owner->data();
  auto size = owner->size();
  return adopt(std::move(owner), ptr, size);
}

buffer buffer::take(std::string&& bytes) {
  if (bytes.empty())
    return {};
  auto owner = std::make_shared<std::string>(std::move(bytes));
  auto* ptr = reinterpret_cast<const std::byte*>(owner->data());
  auto size = owner->size();
  return adopt(std::move(owner), ptr, size);
}

buffer buffer::adopt(std::shared_ptr<const void> owner, const std::byte* data,
                     std::size_t size) noexcept {
  buffer result;
  result.data_ = std::shared_ptr<const std::byte>(std::move(owner), data);
  result.size_ = size;
  return result;
}

buffer_origin::~buffer_origin() {
  // nop
}

buffer buffer::in(std::shared_ptr<const buffer_origin> origin,
                  const std::byte* data, std::size_t size) noexcept {
  buffer result;
  if (data != nullptr)
    result.data_ = std::shared_ptr<const std::byte>(origin, data);
  result.size_ = size;
  result.origin_ = std::move(origin);
  return result;
}

bool operator==(const buffer& x, const buffer& y) noexcept {
  if (x.size_ != y.size_)
    return false;
  if (x.size_ == 0 || x.data_ == y.data_)
    return x.size_ == 0 || x.data_ != nullptr || x.origin_ == y.origin_;
  if (!x.readable() || !y.readable())
    return false;
  return std::memcmp(x.data(), y.data(), x.size_) == 0;
}

// -- ndarray ------------------------------------------------------------------

std::optional<uint64_t> ndarray::element_count() const noexcept {
  // Any zero dimension makes the array empty, however large the others.
  for (auto dim : shape)
    if (dim == 0)
      return 0;
  uint64_t n = 1;
  for (auto dim : shape)
    if (__builtin_mul_overflow(n, dim, &n))
      return std::nullopt;
  return n;
}

caf::error ndarray::validate() const {
  if (static_cast<uint8_t>(type) >= dtype_count)
    return make_error(errc::invalid_argument, "ndarray has an invalid dtype");
  if (typed_array && shape.size() != 1)
    return make_error(errc::invalid_argument,
                      "a typed array must be one-dimensional");
  auto count = element_count();
  uint64_t bytes = 0;
  if (!count || __builtin_mul_overflow(*count, itemsize(type), &bytes))
    return make_error(errc::too_large, "ndarray shape overflows 64 bits");
  if (bytes != data.size())
    return make_error(
      errc::invalid_argument,
      "ndarray of " + std::string{to_string(type)} + " with shape " +
        [this] {
          std::string s = "[";
          for (std::size_t i = 0; i < shape.size(); ++i) {
            if (i > 0)
              s += ",";
            s += std::to_string(shape[i]);
          }
          return s + "]";
        }()
        + " needs " + std::to_string(bytes) + " bytes, has "
        + std::to_string(data.size()));
  return caf::none;
}

bool operator==(const ndarray& x, const ndarray& y) noexcept {
  return x.type == y.type && x.shape == y.shape
         && x.typed_array == y.typed_array && x.data == y.data;
}

// -- function_impl
// ---------------------------------------------------------------

function_impl::~function_impl() {
  // nop
}

// -- value_map ----------------------------------------------------------------

value_map::value_map(std::initializer_list<entry> xs) {
  entries_.reserve(xs.size());
  for (auto& x : xs)
    insert(x.first, x.second);
}

value& value_map::insert(std::string key, value x) {
  if (auto* existing = find(key)) {
    *existing = std::move(x);
    return *existing;
  }
  entries_.emplace_back(std::move(key), std::move(x));
  return entries_.back().second;
}

const value* value_map::find(std::string_view key) const noexcept {
  for (auto& [k, v] : entries_)
    if (k == key)
      return &v;
  return nullptr;
}

value* value_map::find(std::string_view key) noexcept {
  for (auto& [k, v] : entries_)
    if (k == key)
      return &v;
  return nullptr;
}

bool value_map::erase(std::string_view key) {
  for (auto i = entries_.begin(); i != entries_.end(); ++i) {
    if (i->first == key) {
      entries_.erase(i);
      return true;
    }
  }
  return false;
}

void value_map::append_unchecked(std::string key, value x) {
  entries_.emplace_back(std::move(key), std::move(x));
}

bool operator==(const value_map& x, const value_map& y) noexcept {
  return x.entries_ == y.entries_;
}

// -- value --------------------------------------------------------------------

value::value(joy::ndarray x)
  : data_(std::make_shared<const joy::ndarray>(std::move(x))) {
  // nop
}

value::value(function_ref x)
  : data_(std::make_shared<const function_ref>(std::move(x))) {
  // nop
}

value::value(error_value x)
  : data_(std::make_shared<const error_value>(std::move(x))) {
  // nop
}

const joy::ndarray* value::as_ndarray() const noexcept {
  auto* ptr = std::get_if<std::shared_ptr<const joy::ndarray>>(&data_);
  return ptr ? ptr->get() : nullptr;
}

const function_ref* value::as_function() const noexcept {
  auto* ptr = std::get_if<std::shared_ptr<const function_ref>>(&data_);
  return ptr ? ptr->get() : nullptr;
}

const error_value* value::as_error() const noexcept {
  auto* ptr = std::get_if<std::shared_ptr<const error_value>>(&data_);
  return ptr ? ptr->get() : nullptr;
}

namespace {

bool same_float(double x, double y) noexcept {
  if (std::isnan(x) || std::isnan(y))
    return std::isnan(x) && std::isnan(y);
  return std::memcmp(&x, &y, sizeof(double)) == 0;
}

} // namespace

bool operator==(const value& x, const value& y) noexcept {
  if (x.type() != y.type())
    return false;
  switch (x.type()) {
    case value::kind::null:
      return true;
    case value::kind::boolean:
      return *x.as_bool() == *y.as_bool();
    case value::kind::int64:
      return *x.as_int64() == *y.as_int64();
    case value::kind::uint64:
      return *x.as_uint64() == *y.as_uint64();
    case value::kind::float64:
      return same_float(*x.as_float64(), *y.as_float64());
    case value::kind::string:
      return *x.as_string() == *y.as_string();
    case value::kind::bytes:
      return *x.as_bytes() == *y.as_bytes();
    case value::kind::list:
      return *x.as_list() == *y.as_list();
    case value::kind::map:
      return *x.as_map() == *y.as_map();
    case value::kind::ndarray:
      return *x.as_ndarray() == *y.as_ndarray();
    case value::kind::timestamp:
      return *x.as_timestamp() == *y.as_timestamp();
    case value::kind::function:
      return *x.as_function() == *y.as_function();
    case value::kind::error:
      return *x.as_error() == *y.as_error();
  }
  return false;
}

std::string_view to_string(value::kind x) noexcept {
  switch (x) {
    case value::kind::null:
      return "null";
    case value::kind::boolean:
      return "bool";
    case value::kind::int64:
      return "int64";
    case value::kind::uint64:
      return "uint64";
    case value::kind::float64:
      return "float64";
    case value::kind::string:
      return "string";
    case value::kind::bytes:
      return "bytes";
    case value::kind::list:
      return "list";
    case value::kind::map:
      return "map";
    case value::kind::ndarray:
      return "ndarray";
    case value::kind::timestamp:
      return "timestamp";
    case value::kind::function:
      return "function";
    case value::kind::error:
      return "error";
  }
  return "invalid";
}

namespace {

std::size_t depth_impl(const value& x, std::size_t limit, std::size_t level) {
  if (level > limit)
    return level;
  std::size_t result = level;
  if (auto* xs = x.as_list()) {
    for (auto& y : *xs)
      result = std::max(result, depth_impl(y, limit, level + 1));
    return std::max(result, level + 1);
  }
  if (auto* xs = x.as_map()) {
    for (auto& [k, y] : *xs)
      result = std::max(result, depth_impl(y, limit, level + 1));
    return std::max(result, level + 1);
  }
  return result;
}

} // namespace

std::size_t depth(const value& x, std::size_t limit) {
  return depth_impl(x, limit, 0);
}

std::string to_string(const value& x) {
  auto res = to_json(x);
  if (res)
    return std::move(*res);
  return "<unprintable: " + message_of(res.error()) + ">";
}

std::string to_string(const value_map& x) {
  return to_string(value{x});
}

} // namespace joy
