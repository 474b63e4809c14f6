// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// `joy::value`, the one type that crosses every boundary (DESIGN §3): null,
/// bool, int64, uint64, float64, string, bytes, list, map, ndarray, timestamp,
/// function and error. In a process it is a plain C++ value carried in CAF
/// messages; on the wire it is `schema/value.capnp` (see value_wire.hpp); in
/// the CLI and manifests it is JSON (see value_json.hpp).
///
/// Large payloads are shared and immutable: copying a value never copies the
/// bytes of a `buffer`, and ndarrays, functions and errors are shared too.
///
/// ```
/// joy::value_map m;
/// m.insert("name", "cell");
/// m.insert("pixels", joy::ndarray{joy::dtype::uint8, {2, 2},
///                                 joy::buffer::copy_of(px, 4)});
/// joy::value v{std::move(m)};
/// ```
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <caf/actor.hpp>
#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/save_callback.hpp>
#include <caf/meta/type_name.hpp>

#include "runtime/errc.hpp"

namespace joy {

/// Values nest at most this deep (a scalar has depth 0, `[1]` depth 1).
/// Decoders reject deeper input with `errc::too_large`.
constexpr std::size_t max_value_depth = 32;

/// Binary data up to this size travels inline in a Cap'n Proto message;
/// larger data must use the shm or stream arm.
constexpr std::size_t max_inline_bytes = std::size_t{16} << 20;

// -- dtype --------------------------------------------------------------------

/// Element type of an ndarray, named as numpy names it.
enum class dtype : uint8_t {
  bool_ = 0,
  int8 = 1,
  uint8 = 2,
  int16 = 3,
  uint16 = 4,
  int32 = 5,
  uint32 = 6,
  int64 = 7,
  uint64 = 8,
  float16 = 9,
  float32 = 10,
  float64 = 11,
};

/// The number of dtypes; wire values at or above it are invalid.
constexpr uint8_t dtype_count = 12;

/// numpy's name: "bool", "int8", ..., "float64".
std::string_view to_string(dtype x) noexcept;

/// Parses numpy's name.
std::optional<dtype> dtype_from_string(std::string_view name) noexcept;

/// Bytes per element.
std::size_t itemsize(dtype x) noexcept;

// -- buffer -------------------------------------------------------------------

/// Where a buffer's bytes live when the wire needs to know: a block of this
/// process's shared-memory pool, a block mapped from another process, or
/// bytes that stayed in another process (a node relays them without
/// mapping). See shared_memory.hpp and value_codec.hpp.
class buffer_origin {
public:
  virtual ~buffer_origin();
};

/// Immutable bytes shared by every copy. The memory is heap memory, a mapped
/// shared-memory block or a foreign array (numpy): whatever `owner` keeps
/// alive.
class buffer {
public:
  buffer() noexcept = default;

  /// Copies `size` bytes from `data`.
  static buffer copy_of(const void* data, std::size_t size);

  /// Takes ownership of `bytes` without copying.
  static buffer take(std::vector<std::byte>&& bytes);
  static buffer take(std::string&& bytes);

  /// Refers to `size` bytes at `data`, kept alive by `owner`.
  static buffer adopt(std::shared_ptr<const void> owner, const std::byte* data,
                      std::size_t size) noexcept;

  /// Refers to `size` bytes at `data` inside `origin`, which keeps them
  /// alive. `data` is null when the bytes are not in this process.
  static buffer in(std::shared_ptr<const buffer_origin> origin,
                   const std::byte* data, std::size_t size) noexcept;

  /// Null only for bytes that are not in this process (see `readable`).
  const std::byte* data() const noexcept {
    return data_.get();
  }

  /// False for bytes that stayed in another process: a relaying node holds
  /// them as a capability and passes them on, but cannot read them.
  bool readable() const noexcept {
    return size_ == 0 || data_ != nullptr;
  }

  /// The origin given to `in`, if any.
  const std::shared_ptr<const buffer_origin>& origin() const noexcept {
    return origin_;
  }

  std::size_t size() const noexcept {
    return size_;
  }

  bool empty() const noexcept {
    return size_ == 0;
  }

  std::string_view view() const noexcept {
    return {reinterpret_cast<const char*>(data()), size_};
  }

  friend bool operator==(const buffer& x, const buffer& y) noexcept;

  friend bool operator!=(const buffer& x, const buffer& y) noexcept {
    return !(x == y);
  }

private:
  std::shared_ptr<const std::byte> data_;
  std::size_t size_ = 0;
  std::shared_ptr<const buffer_origin> origin_;
};

// -- ndarray, timestamp, function, error --------------------------------------

/// A dense, contiguous, little-endian, C-order array.
struct ndarray {
  joy::dtype type = joy::dtype::uint8;
  std::vector<uint64_t> shape;
  joy::buffer data;
  /// It came from a JavaScript typed array (1-D) and goes back as one.
  bool typed_array = false;

  /// Product of `shape`, or nullopt on overflow.
  std::optional<uint64_t> element_count() const noexcept;

  /// Checks that `data` holds exactly `element_count() * itemsize(type)`
  /// bytes and that a typed array is 1-D.
  caf::error validate() const;

  friend bool operator==(const ndarray& x, const ndarray& y) noexcept;
};

/// A point in time, nanoseconds since the Unix epoch, UTC.
struct timestamp {
  int64_t ns = 0;

  friend bool operator==(timestamp x, timestamp y) noexcept {
    return x.ns == y.ns;
  }
};

/// What a function value refers to. Every copy of the value shares it;
/// the function is released when the last copy goes (see function.hpp).
class function_impl {
public:
  virtual ~function_impl();

  /// The actor that runs calls of this function: the owner of a function
  /// made in this process, the kj gateway for one living in another. A call
  /// is the request `(invoke_atom, function_ref, value_list, value_map) ->
  /// value` sent to it.
  virtual caf::actor target() const = 0;
};

/// A function passed as a value (DESIGN §3): callable any number of times,
/// from any process it reaches, until the last holder drops it.
struct function_ref {
  std::shared_ptr<const function_impl> impl;
  std::string name;
  /// Its parameters' names, when its maker knows them (for forms and
  /// schemas; calls do not need them).
  std::vector<std::string> params = {};

  /// Identity: two refs are equal when they share the function.
  friend bool operator==(const function_ref& x,
                         const function_ref& y) noexcept {
    return x.impl == y.impl;
  }
};

/// Functions are live objects: CAF may print them but never serializes one.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, function_ref& x) {
  return f(caf::meta::type_name("joy::function_ref"), x.name);
}

/// An error carried as a value (in-band errors, DESIGN §3).
struct error_value {
  errc code = errc::internal;
  std::string message;
  /// Stripped at trust boundaries.
  std::string trace;

  friend bool operator==(const error_value& x, const error_value& y) noexcept {
    return x.code == y.code && x.message == y.message && x.trace == y.trace;
  }
};

// -- value --------------------------------------------------------------------

class value;

using value_list = std::vector<value>;

/// A map with string keys that keeps insertion order. Keys are unique:
/// inserting an existing key replaces its value in place.
class value_map {
public:
  using entry = std::pair<std::string, value>;
  using value_type = entry;
  using container = std::vector<entry>;
  using const_iterator = container::const_iterator;

  value_map() = default;
  value_map(std::initializer_list<entry> xs);

  /// Inserts or replaces; returns a reference to the stored value.
  value& insert(std::string key, value x);

  /// The value under `key`, or nullptr.
  const value* find(std::string_view key) const noexcept;
  value* find(std::string_view key) noexcept;

  bool contains(std::string_view key) const noexcept {
    return find(key) != nullptr;
  }

  bool erase(std::string_view key);

  std::size_t size() const noexcept {
    return entries_.size();
  }

  bool empty() const noexcept {
    return entries_.empty();
  }

  void reserve(std::size_t n) {
    entries_.reserve(n);
  }

  /// Appends without checking for duplicates; for decoders that check keys
  /// themselves.
  void append_unchecked(std::string key, value x);

  const_iterator begin() const noexcept {
    return entries_.begin();
  }

  const_iterator end() const noexcept {
    return entries_.end();
  }

  friend bool operator==(const value_map& x, const value_map& y) noexcept;

private:
  container entries_;
};

/// The value model. Scalars and strings are stored inline; containers own
/// their elements; ndarrays, functions and errors are shared immutable
/// objects, so copying a value is cheap whenever it carries large data.
class value {
public:
  /// The alternatives, in wire order.
  enum class kind : uint8_t {
    null,
    boolean,
    int64,
    uint64,
    float64,
    string,
    bytes,
    list,
    map,
    ndarray,
    timestamp,
    function,
    error,
  };

  // -- construction -----------------------------------------------------------

  value() noexcept = default;
  value(std::nullptr_t) noexcept {
    // nop
  }
  value(bool x) noexcept : data_(x) {
    // nop
  }
  value(int x) noexcept : data_(int64_t{x}) {
    // nop
  }
  value(long x) noexcept : data_(int64_t{x}) {
    // nop
  }
  value(long long x) noexcept : data_(int64_t{x}) {
    // nop
  }
  value(unsigned x) noexcept : data_(int64_t{x}) {
    // nop
  }
  /// An unsigned 64-bit integer stays uint64 (even when small): the type is
  /// part of the value.
  value(unsigned long x) noexcept : data_(uint64_t{x}) {
    // nop
  }
  value(unsigned long long x) noexcept : data_(uint64_t{x}) {
    // nop
  }
  value(double x) noexcept : data_(x) {
    // nop
  }
  value(std::string x) noexcept : data_(std::move(x)) {
    // nop
  }
  value(std::string_view x) : data_(std::string{x}) {
    // nop
  }
  value(const char* x) : data_(std::string{x}) {
    // nop
  }
  /// Bytes.
  value(joy::buffer x) noexcept : data_(std::move(x)) {
    // nop
  }
  value(value_list x) noexcept : data_(std::move(x)) {
    // nop
  }
  value(value_map x) noexcept : data_(std::move(x)) {
    // nop
  }
  value(joy::ndarray x);
  value(joy::timestamp x) noexcept : data_(x) {
    // nop
  }
  value(function_ref x);
  value(error_value x);

  // -- observers --------------------------------------------------------------

  kind type() const noexcept {
    return static_cast<kind>(data_.index());
  }

  bool is_null() const noexcept {
    return type() == kind::null;
  }

  bool is(kind k) const noexcept {
    return type() == k;
  }

  /// Typed access; nullptr when the value holds another alternative.
  const bool* as_bool() const noexcept {
    return std::get_if<bool>(&data_);
  }
  const int64_t* as_int64() const noexcept {
    return std::get_if<int64_t>(&data_);
  }
  const uint64_t* as_uint64() const noexcept {
    return std::get_if<uint64_t>(&data_);
  }
  const double* as_float64() const noexcept {
    return std::get_if<double>(&data_);
  }
  const std::string* as_string() const noexcept {
    return std::get_if<std::string>(&data_);
  }
  const joy::buffer* as_bytes() const noexcept {
    return std::get_if<joy::buffer>(&data_);
  }
  const value_list* as_list() const noexcept {
    return std::get_if<value_list>(&data_);
  }
  const value_map* as_map() const noexcept {
    return std::get_if<value_map>(&data_);
  }
  const joy::ndarray* as_ndarray() const noexcept;
  const joy::timestamp* as_timestamp() const noexcept {
    return std::get_if<joy::timestamp>(&data_);
  }
  const function_ref* as_function() const noexcept;
  const error_value* as_error() const noexcept;

  /// Mutable access to containers, for builders.
  value_list* as_list() noexcept {
    return std::get_if<value_list>(&data_);
  }
  value_map* as_map() noexcept {
    return std::get_if<value_map>(&data_);
  }

  /// Structural equality. Floats compare equal when both are NaN or both
  /// have the same bits otherwise, so that round trips can be checked
  /// exactly; functions compare by identity.
  friend bool operator==(const value& x, const value& y) noexcept;

  friend bool operator!=(const value& x, const value& y) noexcept {
    return !(x == y);
  }

private:
  std::variant<
    std::monostate, bool, int64_t, uint64_t, double, std::string, joy::buffer,
    value_list, value_map, std::shared_ptr<const joy::ndarray>, joy::timestamp,
    std::shared_ptr<const function_ref>, std::shared_ptr<const error_value>>
    data_;
};

/// Human name of a kind, for messages: "int64", "map", ...
std::string_view to_string(value::kind x) noexcept;

/// Nesting depth, counting only up to `limit + 1` (so it stays cheap and
/// bounded on hostile input).
std::size_t depth(const value& x, std::size_t limit = max_value_depth);

/// Compact JSON (see value_json.hpp), for logs and CAF's `to_string`.
std::string to_string(const value& x);

// -- CAF inspection -----------------------------------------------------------

/// Serializes to Cap'n Proto bytes (flat array framing). Functions cannot be
/// serialized outside a live connection and yield `errc::unimplemented`.
caf::expected<std::vector<char>> encode_bytes(const value& x);

/// Inverse of `encode_bytes`, with the usual depth and size checks.
caf::expected<value> decode_bytes(const std::vector<char>& bytes);

/// CAF inspection: values travel in local messages without serialization;
/// when CAF does serialize one, it goes through the wire encoding.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, value& x) {
  std::vector<char> bytes;
  auto save = caf::meta::save_callback([&]() -> caf::error {
    auto res = encode_bytes(x);
    if (!res)
      return std::move(res.error());
    bytes = std::move(*res);
    return caf::none;
  });
  auto load = caf::meta::load_callback([&]() -> caf::error {
    auto res = decode_bytes(bytes);
    if (!res)
      return std::move(res.error());
    x = std::move(*res);
    return caf::none;
  });
  return f(caf::meta::type_name("joy::value"), save, bytes, load);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, value_map& x) {
  value tmp;
  auto save = caf::meta::save_callback([&]() -> caf::error {
    tmp = value{x};
    return caf::none;
  });
  auto load = caf::meta::load_callback([&]() -> caf::error {
    if (auto* m = tmp.as_map()) {
      x = std::move(*m);
      return caf::none;
    }
    return make_error(errc::invalid_argument, "expected a map");
  });
  return f(caf::meta::type_name("joy::value_map"), save, tmp, load);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ndarray& x) {
  value tmp;
  auto save = caf::meta::save_callback([&]() -> caf::error {
    tmp = value{x};
    return caf::none;
  });
  auto load = caf::meta::load_callback([&]() -> caf::error {
    if (auto* a = tmp.as_ndarray()) {
      x = *a;
      return caf::none;
    }
    return make_error(errc::invalid_argument, "expected an ndarray");
  });
  return f(caf::meta::type_name("joy::ndarray"), save, tmp, load);
}

/// The same rendering as `to_string(value)`.
std::string to_string(const value_map& x);

} // namespace joy
