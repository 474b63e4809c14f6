// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/bridge/msgpack_value.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>

#include <msgpack.hpp>

#include "runtime/errc.hpp"

namespace joy {

function_codec::~function_codec() = default;

namespace {

/// msgpack's packer writes into a std::string.
struct string_sink {
  std::string* out;
  void write(const char* data, std::size_t size) {
    out->append(data, size);
  }
};

using packer = msgpack::packer<string_sink>;

void pack_str(packer& pk, std::string_view s) {
  pk.pack_str(static_cast<uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}

void pack_bin(packer& pk, const buffer& b) {
  pk.pack_bin(static_cast<uint32_t>(b.size()));
  pk.pack_bin_body(reinterpret_cast<const char*>(b.data()),
                   static_cast<uint32_t>(b.size()));
}

template <class T>
void put_be(char* out, T x) {
  for (std::size_t i = 0; i < sizeof(T); ++i)
    out[i] = static_cast<char>(static_cast<uint64_t>(x)
                               >> (8 * (sizeof(T) - 1 - i)));
}

template <class T>
T get_be(const char* in) {
  uint64_t x = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i)
    x = (x << 8) | static_cast<uint8_t>(in[i]);
  return static_cast<T>(x);
}

/// The msgpack timestamp extension (type -1), in its smallest form.
void pack_timestamp(packer& pk, timestamp t) {
  auto sec = t.ns / 1'000'000'000;
  auto nsec = t.ns % 1'000'000'000;
  if (nsec < 0) {
    nsec += 1'000'000'000;
    sec -= 1;
  }
  if (sec >= 0 && (sec >> 34) == 0) {
    if (nsec == 0 && (sec >> 32) == 0) {
      std::array<char, 4> b;
      put_be(b.data(), static_cast<uint32_t>(sec));
      pk.pack_ext(4, -1);
      pk.pack_ext_body(b.data(), 4);
    } else {
      std::array<char, 8> b;
      put_be(b.data(),
             (static_cast<uint64_t>(nsec) << 34) | static_cast<uint64_t>(sec));
      pk.pack_ext(8, -1);
      pk.pack_ext_body(b.data(), 8);
    }
    return;
  }
  std::array<char, 12> b;
  put_be(b.data(), static_cast<uint32_t>(nsec));
  put_be(b.data() + 4, static_cast<uint64_t>(sec));
  pk.pack_ext(12, -1);
  pk.pack_ext_body(b.data(), 12);
}

caf::error pack_into(packer& pk, const value& x, function_codec* functions,
                     std::size_t depth) {
  if (depth > max_value_depth)
    return make_error(errc::too_large, "value nests deeper than "
                                         + std::to_string(max_value_depth));
  switch (x.type()) {
    case value::kind::null:
      pk.pack_nil();
      return {};
    case value::kind::boolean:
      if (*x.as_bool())
        pk.pack_true();
      else
        pk.pack_false();
      return {};
    case value::kind::int64:
      pk.pack_int64(*x.as_int64());
      return {};
    case value::kind::uint64:
      pk.pack_uint64(*x.as_uint64());
      return {};
    case value::kind::float64:
      pk.pack_double(*x.as_float64());
      return {};
    case value::kind::string:
      pack_str(pk, *x.as_string());
      return {};
    case value::kind::bytes:
      pk.pack_map(2);
      pack_str(pk, "_rtype");
      pack_str(pk, "memoryview");
      pack_str(pk, "_rvalue");
      pack_bin(pk, *x.as_bytes());
      return {};
    case value::kind::list: {
      auto& xs = *x.as_list();
      pk.pack_array(static_cast<uint32_t>(xs.size()));
      for (auto& y : xs)
        if (auto err = pack_into(pk, y, functions, depth + 1))
          return err;
      return {};
    }
    case value::kind::map: {
      auto& xs = *x.as_map();
      pk.pack_map(static_cast<uint32_t>(xs.size()));
      for (auto& [k, y] : xs) {
        pack_str(pk, k);
        if (auto err = pack_into(pk, y, functions, depth + 1))
          return err;
      }
      return {};
    }
    case value::kind::ndarray: {
      auto& a = *x.as_ndarray();
      if (!a.data.readable())
        return make_error(errc::invalid_argument,
                          "an ndarray whose data cannot be read here");
      if (a.typed_array) {
        pk.pack_map(3);
        pack_str(pk, "_rtype");
        pack_str(pk, "typedarray");
      } else {
        pk.pack_map(4);
        pack_str(pk, "_rtype");
        pack_str(pk, "ndarray");
        pack_str(pk, "_rshape");
        pk.pack_array(static_cast<uint32_t>(a.shape.size()));
        for (auto n : a.shape)
          pk.pack_uint64(n);
      }
      pack_str(pk, "_rdtype");
      pack_str(pk, to_string(a.type));
      pack_str(pk, "_rvalue");
      pack_bin(pk, a.data);
      return {};
    }
    case value::kind::timestamp:
      pack_timestamp(pk, *x.as_timestamp());
      return {};
    case value::kind::function: {
      if (functions == nullptr)
        return make_error(errc::invalid_argument,
                          "a function cannot be sent here");
      auto m = functions->encode(*x.as_function());
      if (!m)
        return std::move(m.error());
      return pack_into(pk, value{std::move(*m)}, nullptr, depth);
    }
    case value::kind::error: {
      auto& e = *x.as_error();
      pk.pack_map(3);
      pack_str(pk, "_rtype");
      pack_str(pk, "error");
      pack_str(pk, "_rvalue");
      pack_str(pk, e.message);
      // Traces stay inside the trust boundary (V5).
      pack_str(pk, "_rtrace");
      pack_str(pk, "");
      return {};
    }
  }
  return make_error(errc::internal, "unknown value kind");
}

caf::error malformed(std::string what) {
  return make_error(errc::protocol_error, "msgpack: " + std::move(what));
}

const msgpack::object* field(const msgpack::object& m, std::string_view key) {
  for (uint32_t i = 0; i < m.via.map.size; ++i) {
    auto& kv = m.via.map.ptr[i];
    if (kv.key.type == msgpack::type::STR
        && std::string_view{kv.key.via.str.ptr, kv.key.via.str.size} == key)
      return &kv.val;
  }
  return nullptr;
}

std::optional<std::string_view> str_field(const msgpack::object& m,
                                          std::string_view key) {
  auto* x = field(m, key);
  if (x == nullptr || x->type != msgpack::type::STR)
    return std::nullopt;
  return std::string_view{x->via.str.ptr, x->via.str.size};
}

/// The bytes of a bin (or str) field.
std::optional<std::string_view> bin_field(const msgpack::object& m,
                                          std::string_view key) {
  auto* x = field(m, key);
  if (x == nullptr)
    return std::nullopt;
  if (x->type == msgpack::type::BIN)
    return std::string_view{x->via.bin.ptr, x->via.bin.size};
  if (x->type == msgpack::type::STR)
    return std::string_view{x->via.str.ptr, x->via.str.size};
  return std::nullopt;
}

caf::expected<value> convert(const msgpack::object& x,
                             function_codec* functions, std::size_t depth);

caf::expected<value> convert_ndarray(const msgpack::object& m, bool typed) {
  auto name = str_field(m, "_rdtype");
  auto bytes = bin_field(m, "_rvalue");
  if (!name || !bytes)
    return malformed(std::string{typed ? "typedarray" : "ndarray"}
                     + " needs _rdtype and a binary _rvalue");
  auto type = dtype_from_string(*name);
  if (!type)
    return make_error(errc::invalid_argument,
                      "unsupported dtype '" + std::string{*name} + "'");
  ndarray a;
  a.type = *type;
  a.typed_array = typed;
  a.data = buffer::copy_of(bytes->data(), bytes->size());
  if (typed) {
    if (bytes->size() % itemsize(*type) != 0)
      return make_error(errc::invalid_argument,
                        "typedarray of " + std::string{*name} + " with "
                          + std::to_string(bytes->size()) + " bytes");
    a.shape = {bytes->size() / itemsize(*type)};
  } else {
    auto* shape = field(m, "_rshape");
    if (shape == nullptr || shape->type != msgpack::type::ARRAY)
      return malformed("ndarray needs _rshape, a list");
    for (uint32_t i = 0; i < shape->via.array.size; ++i) {
      auto& n = shape->via.array.ptr[i];
      if (n.type != msgpack::type::POSITIVE_INTEGER)
        return malformed("ndarray _rshape holds a non-count");
      a.shape.push_back(n.via.u64);
    }
  }
  if (auto err = a.validate())
    return err;
  return value{std::move(a)};
}

caf::expected<value> convert_timestamp(const msgpack::object& x) {
  auto size = x.via.ext.size;
  auto* p = x.via.ext.data();
  int64_t sec = 0;
  int64_t nsec = 0;
  if (size == 4) {
    sec = get_be<uint32_t>(p);
  } else if (size == 8) {
    auto v = get_be<uint64_t>(p);
    nsec = static_cast<int64_t>(v >> 34);
    sec = static_cast<int64_t>(v & ((uint64_t{1} << 34) - 1));
  } else if (size == 12) {
    nsec = get_be<uint32_t>(p);
    sec = get_be<int64_t>(p + 4);
  } else {
    return malformed("timestamp of " + std::to_string(size) + " bytes");
  }
  if (nsec >= 1'000'000'000)
    return malformed("timestamp nanoseconds out of range");
  constexpr auto limit = std::numeric_limits<int64_t>::max() / 1'000'000'000;
  if (sec > limit || sec < -limit)
    return make_error(errc::too_large, "timestamp beyond year 2262");
  return value{timestamp{sec * 1'000'000'000 + nsec}};
}

caf::expected<value> convert_map(const msgpack::object& x,
                                 function_codec* functions, std::size_t depth) {
  auto& m = x.via.map;
  if (auto type = str_field(x, "_rtype")) {
    if (*type == "memoryview") {
      auto bytes = bin_field(x, "_rvalue");
      if (!bytes)
        return malformed("memoryview needs a binary _rvalue");
      return value{buffer::copy_of(bytes->data(), bytes->size())};
    }
    if (*type == "ndarray")
      return convert_ndarray(x, false);
    if (*type == "typedarray")
      return convert_ndarray(x, true);
    if (*type == "error") {
      error_value e;
      e.code = errc::plugin_error;
      if (auto msg = str_field(x, "_rvalue"))
        e.message = std::string{*msg};
      if (auto trace = str_field(x, "_rtrace"))
        e.trace = std::string{*trace};
      return value{std::move(e)};
    }
    if (*type == "set" || *type == "orderedmap") {
      auto* items = field(x, "_rvalue");
      if (items == nullptr || items->type != msgpack::type::ARRAY)
        return malformed(std::string{*type} + " needs a list _rvalue");
      auto list = convert(*items, functions, depth + 1);
      if (!list || *type == "set")
        return list;
      // A Map with string keys is a map; any other stays a list of pairs.
      value_map out;
      for (auto& pair : *list->as_list()) {
        auto* kv = pair.as_list();
        if (kv == nullptr || kv->size() != 2 || (*kv)[0].as_string() == nullptr)
          return list;
        out.insert(*(*kv)[0].as_string(), (*kv)[1]);
      }
      return value{std::move(out)};
    }
  }
  value_map out;
  out.reserve(m.size);
  for (uint32_t i = 0; i < m.size; ++i) {
    auto& kv = m.ptr[i];
    if (kv.key.type != msgpack::type::STR)
      return malformed("a map key that is not a string");
    auto v = convert(kv.val, functions, depth + 1);
    if (!v)
      return v;
    out.insert(std::string{kv.key.via.str.ptr, kv.key.via.str.size},
               std::move(*v));
  }
  if (functions != nullptr) {
    auto* type = out.find("_rtype");
    if (type != nullptr && type->as_string() != nullptr
        && *type->as_string() == "method")
      return functions->decode(std::move(out));
  }
  return value{std::move(out)};
}

caf::expected<value> convert(const msgpack::object& x,
                             function_codec* functions, std::size_t depth) {
  if (depth > max_value_depth)
    return make_error(errc::too_large, "value nests deeper than "
                                         + std::to_string(max_value_depth));
  switch (x.type) {
    case msgpack::type::NIL:
      return value{};
    case msgpack::type::BOOLEAN:
      return value{x.via.boolean};
    case msgpack::type::POSITIVE_INTEGER:
      if (x.via.u64
          > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return value{static_cast<unsigned long long>(x.via.u64)};
      return value{static_cast<long long>(x.via.u64)};
    case msgpack::type::NEGATIVE_INTEGER:
      return value{static_cast<long long>(x.via.i64)};
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      return value{x.via.f64};
    case msgpack::type::STR:
      return value{std::string{x.via.str.ptr, x.via.str.size}};
    case msgpack::type::BIN:
      return value{buffer::copy_of(x.via.bin.ptr, x.via.bin.size)};
    case msgpack::type::ARRAY: {
      value_list out;
      out.reserve(x.via.array.size);
      for (uint32_t i = 0; i < x.via.array.size; ++i) {
        auto v = convert(x.via.array.ptr[i], functions, depth + 1);
        if (!v)
          return v;
        out.push_back(std::move(*v));
      }
      return value{std::move(out)};
    }
    case msgpack::type::MAP:
      return convert_map(x, functions, depth);
    case msgpack::type::EXT:
      if (x.via.ext.type() == -1)
        return convert_timestamp(x);
      return malformed("extension type "
                       + std::to_string(int{x.via.ext.type()}));
  }
  return malformed("unknown object type");
}

/// Bins and strings point into the input instead of being copied into the
/// zone: convert copies what it keeps.
bool reference_all(msgpack::type::object_type, std::size_t, void*) {
  return true;
}

} // namespace

caf::error pack_value(std::string& out, const value& x,
                      function_codec* functions) {
  string_sink sink{&out};
  packer pk{sink};
  auto mark = out.size();
  auto err = pack_into(pk, x, functions, 0);
  if (err)
    out.resize(mark);
  return err;
}

caf::expected<std::string> pack(const value& x, function_codec* functions) {
  std::string out;
  if (auto err = pack_value(out, x, functions))
    return err;
  return out;
}

caf::expected<value> unpack_value(std::string_view data, std::size_t& offset,
                                  function_codec* functions) {
  // Bounds against hostile input: msgpack allocates per declared count,
  // and no element takes less than a byte.
  constexpr std::size_t big = std::numeric_limits<uint32_t>::max();
  auto count = std::max<std::size_t>(data.size() - offset, 16);
  msgpack::unpack_limit limits{count, count, big,
                               big,   big,   max_value_depth + 2};
  try {
    auto pos = offset;
    auto handle = msgpack::unpack(data.data(), data.size(), pos, reference_all,
                                  nullptr, limits);
    auto result = convert(handle.get(), functions, 0);
    if (result)
      offset = pos;
    return result;
  } catch (const msgpack::depth_size_overflow&) {
    return make_error(errc::too_large, "msgpack: value nests deeper than "
                                         + std::to_string(max_value_depth));
  } catch (const msgpack::insufficient_bytes&) {
    return malformed("truncated message");
  } catch (const std::exception& e) {
    return malformed(e.what());
  }
}

} // namespace joy
