// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "runtime/value_wire.hpp"

#include <cstring>
#include <string_view>
#include <unordered_set>

#include <capnp/message.h>
#include <capnp/serialize.h>

namespace joy {

namespace {

caf::error too_deep() {
  return make_error(errc::too_large, "value nesting exceeds "
                                       + std::to_string(max_value_depth)
                                       + " levels");
}

capnp::Data::Reader data_of(const buffer& b) {
  return {reinterpret_cast<const kj::byte*>(b.data()), b.size()};
}

caf::error write_binary(const buffer& b, wire::Binary::Builder out,
                        wire_hooks* hooks) {
  if (hooks != nullptr)
    return hooks->write_binary(b, out);
  wire_hooks plain;
  return plain.write_binary(b, out);
}

caf::expected<buffer> read_binary(wire::Binary::Reader in, wire_hooks* hooks) {
  if (hooks != nullptr)
    return hooks->read_binary(in);
  wire_hooks plain;
  return plain.read_binary(in);
}

caf::error write_impl(const value& x, wire::Value::Builder out,
                      std::size_t level, wire_hooks* hooks);

caf::error write_list_impl(const value_list& xs,
                           capnp::List<wire::Value>::Builder out,
                           std::size_t level, wire_hooks* hooks) {
  for (std::size_t i = 0; i < xs.size(); ++i)
    if (auto err
        = write_impl(xs[i], out[static_cast<unsigned>(i)], level, hooks))
      return err;
  return caf::none;
}

caf::error write_map_impl(const value_map& xs,
                          capnp::List<wire::Entry>::Builder out,
                          std::size_t level, wire_hooks* hooks) {
  unsigned i = 0;
  for (auto& [k, v] : xs) {
    auto entry = out[i++];
    // With its size: converting a std::string would stop at an embedded NUL.
    entry.setKey(capnp::Text::Reader{k.data(), k.size()});
    if (auto err = write_impl(v, entry.initValue(), level, hooks))
      return err;
  }
  return caf::none;
}

caf::error write_impl(const value& x, wire::Value::Builder out,
                      std::size_t level, wire_hooks* hooks) {
  switch (x.type()) {
    case value::kind::null:
      out.setNull();
      return caf::none;
    case value::kind::boolean:
      out.setBool(*x.as_bool());
      return caf::none;
    case value::kind::int64:
      out.setInt64(*x.as_int64());
      return caf::none;
    case value::kind::uint64:
      out.setUint64(*x.as_uint64());
      return caf::none;
    case value::kind::float64:
      out.setFloat64(*x.as_float64());
      return caf::none;
    case value::kind::string: {
      auto& s = *x.as_string();
      out.setString(capnp::Text::Reader{s.data(), s.size()});
      return caf::none;
    }
    case value::kind::bytes:
      return write_binary(*x.as_bytes(), out.initBytes(), hooks);
    case value::kind::list: {
      if (level >= max_value_depth)
        return too_deep();
      auto& xs = *x.as_list();
      return write_list_impl(xs, out.initList(static_cast<unsigned>(xs.size())),
                             level + 1, hooks);
    }
    case value::kind::map: {
      if (level >= max_value_depth)
        return too_deep();
      auto& xs = *x.as_map();
      return write_map_impl(xs, out.initMap(static_cast<unsigned>(xs.size())),
                            level + 1, hooks);
    }
    case value::kind::ndarray: {
      auto& a = *x.as_ndarray();
      if (auto err = a.validate())
        return err;
      auto nd = out.initNdarray();
      nd.setDtype(static_cast<wire::DType>(a.type));
      auto shape = nd.initShape(static_cast<unsigned>(a.shape.size()));
      for (unsigned i = 0; i < a.shape.size(); ++i)
        shape.set(i, a.shape[i]);
      nd.setTypedArray(a.typed_array);
      return write_binary(a.data, nd.initData(), hooks);
    }
    case value::kind::timestamp:
      out.setTimestamp(x.as_timestamp()->ns);
      return caf::none;
    case value::kind::function:
      if (hooks == nullptr)
        return make_error(errc::unimplemented,
                          "function values cross processes only on a live "
                          "connection");
      return hooks->write_function(*x.as_function(), out.initFunction());
    case value::kind::error: {
      auto& e = *x.as_error();
      write_error(e.code, e.message, e.trace, out.initError());
      return caf::none;
    }
  }
  return make_error(errc::internal, "unknown value kind");
}

caf::expected<value> read_impl(wire::Value::Reader in, std::size_t level,
                               wire_hooks* hooks);

caf::expected<value_list> read_list_impl(capnp::List<wire::Value>::Reader in,
                                         std::size_t level, wire_hooks* hooks) {
  value_list xs;
  xs.reserve(in.size());
  for (auto item : in) {
    auto x = read_impl(item, level, hooks);
    if (!x)
      return x.error();
    xs.push_back(std::move(*x));
  }
  return xs;
}

caf::expected<value_map> read_map_impl(capnp::List<wire::Entry>::Reader in,
                                       std::size_t level, wire_hooks* hooks) {
  value_map xs;
  xs.reserve(in.size());
  // Small maps check duplicates by scanning; large ones with a hash set, so
  // a hostile peer cannot make decoding quadratic.
  std::unordered_set<std::string_view> seen;
  bool hashed = in.size() > 16;
  for (auto entry : in) {
    auto key = entry.getKey();
    std::string_view k{key.begin(), key.size()};
    bool dup = hashed ? !seen.insert(k).second : xs.contains(k);
    if (dup)
      return make_error(errc::invalid_argument,
                        "map has duplicate key '" + std::string{k} + "'");
    auto x = read_impl(entry.getValue(), level, hooks);
    if (!x)
      return x.error();
    xs.append_unchecked(std::string{k}, std::move(*x));
  }
  return xs;
}

caf::expected<value> read_impl(wire::Value::Reader in, std::size_t level,
                               wire_hooks* hooks) {
  switch (in.which()) {
    case wire::Value::NULL_:
      return value{};
    case wire::Value::BOOL:
      return value{in.getBool()};
    case wire::Value::INT64:
      return value{static_cast<int64_t>(in.getInt64())};
    case wire::Value::UINT64:
      return value{static_cast<uint64_t>(in.getUint64())};
    case wire::Value::FLOAT64:
      return value{in.getFloat64()};
    case wire::Value::STRING: {
      auto s = in.getString();
      return value{std::string{s.begin(), s.size()}};
    }
    case wire::Value::BYTES: {
      auto b = read_binary(in.getBytes(), hooks);
      if (!b)
        return b.error();
      return value{std::move(*b)};
    }
    case wire::Value::LIST: {
      if (level >= max_value_depth)
        return too_deep();
      auto xs = read_list_impl(in.getList(), level + 1, hooks);
      if (!xs)
        return xs.error();
      return value{std::move(*xs)};
    }
    case wire::Value::MAP: {
      if (level >= max_value_depth)
        return too_deep();
      auto xs = read_map_impl(in.getMap(), level + 1, hooks);
      if (!xs)
        return xs.error();
      return value{std::move(*xs)};
    }
    case wire::Value::NDARRAY: {
      auto nd = in.getNdarray();
      auto raw_type = static_cast<uint16_t>(nd.getDtype());
      if (raw_type >= dtype_count)
        return make_error(errc::invalid_argument, "ndarray has unknown dtype "
                                                    + std::to_string(raw_type));
      ndarray a;
      a.type = static_cast<dtype>(raw_type);
      auto shape = nd.getShape();
      a.shape.reserve(shape.size());
      for (auto dim : shape)
        a.shape.push_back(dim);
      a.typed_array = nd.getTypedArray();
      auto data = read_binary(nd.getData(), hooks);
      if (!data)
        return data.error();
      a.data = std::move(*data);
      if (auto err = a.validate())
        return err;
      return value{std::move(a)};
    }
    case wire::Value::TIMESTAMP:
      return value{timestamp{in.getTimestamp()}};
    case wire::Value::FUNCTION: {
      if (hooks == nullptr)
        return make_error(errc::unimplemented,
                          "function values cross processes only on a live "
                          "connection");
      auto f = hooks->read_function(in.getFunction());
      if (!f)
        return f.error();
      return value{std::move(*f)};
    }
    case wire::Value::ERROR: {
      auto e = in.getError();
      error_value ev;
      ev.code = errc_from_code(e.getCode());
      auto msg = e.getMessage();
      ev.message.assign(msg.begin(), msg.size());
      auto trace = e.getTrace();
      ev.trace.assign(trace.begin(), trace.size());
      return value{std::move(ev)};
    }
  }
  // A union tag from a newer peer: refuse rather than guess.
  return make_error(errc::protocol_error,
                    "value of unknown kind " + std::to_string(in.which()));
}

} // namespace

wire_hooks::~wire_hooks() {
  // nop
}

caf::error wire_hooks::write_function(const function_ref& f,
                                      wire::Function::Builder) {
  return make_error(errc::invalid_argument,
                    "function '" + f.name
                      + "' cannot travel on this connection");
}

caf::expected<function_ref> wire_hooks::read_function(wire::Function::Reader) {
  return make_error(errc::protocol_error,
                    "a function value arrived on a connection that cannot "
                    "carry functions");
}

caf::error wire_hooks::write_binary(const buffer& b,
                                    wire::Binary::Builder out) {
  if (!b.readable())
    return make_error(errc::too_large,
                      std::to_string(b.size())
                        + " bytes of binary data are in a plugin's shared "
                          "memory (shm) or stream, and this connection "
                          "carries at most "
                        + std::to_string(max_inline_bytes)
                        + " bytes inline: pass large arrays between "
                          "plugins, or return a smaller result");
  if (b.size() > max_inline_bytes)
    return make_error(
      errc::too_large,
      "binary data of " + std::to_string(b.size())
        + " bytes exceeds the inline limit of "
        + std::to_string(max_inline_bytes)
        + " bytes; large data travels by the shared-memory (shm) or stream "
          "arm, which only plugin connections carry (allocate it with "
          "joy::context::allocate, or let the SDK move it)");
  out.setInline(data_of(b));
  return caf::none;
}

caf::expected<buffer> wire_hooks::read_binary(wire::Binary::Reader in) {
  switch (in.which()) {
    case wire::Binary::INLINE: {
      auto data = in.getInline();
      if (data.size() > max_inline_bytes)
        return make_error(errc::too_large,
                          "inline binary data of " + std::to_string(data.size())
                            + " bytes exceeds the limit of "
                            + std::to_string(max_inline_bytes)
                            + " bytes; larger data travels by the shm or "
                              "stream arm");
      return buffer::copy_of(data.begin(), data.size());
    }
    case wire::Binary::SHM:
      return make_error(errc::too_large,
                        std::to_string(in.getShm().getSize())
                          + " bytes of binary data arrived in shared memory, "
                            "which this connection cannot receive (at most "
                          + std::to_string(max_inline_bytes)
                          + " bytes travel inline)");
    case wire::Binary::STREAM:
      return make_error(errc::too_large,
                        std::to_string(in.getStream().getSize())
                          + " bytes of binary data arrived as a stream, "
                            "which this connection cannot receive (at most "
                          + std::to_string(max_inline_bytes)
                          + " bytes travel inline)");
  }
  return make_error(errc::protocol_error, "unknown binary arm");
}

caf::error write_value(const value& x, wire::Value::Builder out,
                       wire_hooks* hooks) {
  return write_impl(x, out, 0, hooks);
}

namespace {

/// Cap'n Proto readers throw on malformed pointers; at this boundary that is
/// the peer's fault and becomes an error value.
template <class F>
auto guarded(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const kj::Exception& ex) {
    return make_error(errc::protocol_error, std::string{"malformed message: "}
                                              + ex.getDescription().cStr());
  }
}

} // namespace

caf::expected<value> read_value(wire::Value::Reader in, wire_hooks* hooks) {
  return guarded([&] { return read_impl(in, 0, hooks); });
}

caf::error write_list(const value_list& xs,
                      capnp::List<wire::Value>::Builder out,
                      wire_hooks* hooks) {
  return write_list_impl(xs, out, 0, hooks);
}

caf::expected<value_list> read_list(capnp::List<wire::Value>::Reader in,
                                    wire_hooks* hooks) {
  return guarded([&] { return read_list_impl(in, 0, hooks); });
}

caf::error write_map(const value_map& xs, capnp::List<wire::Entry>::Builder out,
                     wire_hooks* hooks) {
  return write_map_impl(xs, out, 0, hooks);
}

caf::expected<value_map> read_map(capnp::List<wire::Entry>::Reader in,
                                  wire_hooks* hooks) {
  return guarded([&] { return read_map_impl(in, 0, hooks); });
}

void write_error(errc code, std::string_view message, std::string_view trace,
                 wire::Error::Builder out) {
  out.setCode(static_cast<uint16_t>(code));
  out.setMessage(capnp::Text::Reader{message.data(), message.size()});
  if (!trace.empty())
    out.setTrace(capnp::Text::Reader{trace.data(), trace.size()});
}

void write_error(const caf::error& err, wire::Error::Builder out) {
  auto msg = message_of(err);
  write_error(code_of(err), msg, {}, out);
}

caf::error read_error(wire::Error::Reader in) {
  auto msg = in.getMessage();
  return make_error(errc_from_code(in.getCode()),
                    std::string{msg.begin(), msg.size()});
}

void write_result(const caf::expected<value>& x, wire::Result::Builder out,
                  wire_hooks* hooks) {
  if (!x) {
    write_error(x.error(), out.initErr());
    return;
  }
  if (auto err = write_value(*x, out.initOk(), hooks))
    write_error(err, out.initErr());
}

caf::expected<value> response_value(const caf::message& msg,
                                    std::string_view what) {
  if (msg.match_elements<value>())
    return msg.get_as<value>(0);
  if (msg.match_elements<caf::error>())
    return msg.get_as<caf::error>(0);
  return make_error(errc::internal,
                    "unexpected answer from " + std::string{what});
}

void write_response(const caf::message& msg, wire::Result::Builder out,
                    wire_hooks* hooks, std::string_view what) {
  write_result(response_value(msg, what), out, hooks);
}

caf::expected<arguments> read_arguments(capnp::List<wire::Value>::Reader args,
                                        capnp::List<wire::Entry>::Reader kwargs,
                                        wire_hooks* hooks) {
  auto xs = read_list(args, hooks);
  if (!xs)
    return std::move(xs.error());
  auto kw = read_map(kwargs, hooks);
  if (!kw)
    return std::move(kw.error());
  return arguments{std::move(*xs), std::move(*kw)};
}

caf::expected<value> read_result(wire::Result::Reader in, wire_hooks* hooks) {
  return guarded([&]() -> caf::expected<value> {
    switch (in.which()) {
      case wire::Result::OK:
        return read_impl(in.getOk(), 0, hooks);
      case wire::Result::ERR:
        return read_error(in.getErr());
    }
    return make_error(errc::protocol_error, "result of unknown kind");
  });
}

// -- CAF serialization --------------------------------------------------------

caf::expected<std::vector<char>> encode_bytes(const value& x) {
  capnp::MallocMessageBuilder msg;
  if (auto err = write_value(x, msg.initRoot<wire::Value>()))
    return err;
  auto words = capnp::messageToFlatArray(msg);
  auto bytes = words.asChars();
  return std::vector<char>(bytes.begin(), bytes.end());
}

caf::expected<value> decode_bytes(const std::vector<char>& bytes) {
  if (bytes.size() % sizeof(capnp::word) != 0)
    return make_error(errc::invalid_argument, "truncated value encoding");
  // Copy into word-aligned memory: the vector's data need not be aligned.
  auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  capnp::ReaderOptions opts;
  opts.traversalLimitInWords = words.size() + 1024;
  // A map level costs three Cap'n Proto levels (entry list, entry struct,
  // value struct), a leaf up to three more (ndarray -> binary -> data): a
  // valid value 32 levels deep needs 99, and deeper input is refused by the
  // depth check (errc::too_large) before this limit is reached.
  opts.nestingLimit = static_cast<int>(max_value_depth) * 3 + 8;
  try {
    capnp::FlatArrayMessageReader reader{words, opts};
    return read_value(reader.getRoot<wire::Value>());
  } catch (const kj::Exception& ex) {
    return make_error(errc::invalid_argument,
                      std::string{"malformed value encoding: "}
                        + ex.getDescription().cStr());
  }
}

} // namespace joy
