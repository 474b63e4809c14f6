// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/bridge/hypha_envelope.hpp"

#include <msgpack.hpp>

#include "actors/bridge/msgpack_value.hpp"
#include "runtime/errc.hpp"

namespace joy {

namespace {

caf::error malformed(std::string what) {
  return make_error(errc::protocol_error, "bad frame: " + std::move(what));
}

struct string_sink {
  std::string* out;
  void write(const char* data, std::size_t size) {
    out->append(data, size);
  }
};

/// The main part as a msgpack object (strings point into `frame`).
caf::expected<msgpack::object_handle> unpack_main(std::string_view frame,
                                                  std::size_t& pos) {
  auto count = std::max<std::size_t>(frame.size(), 16);
  msgpack::unpack_limit limits{count,      count,      0xffffffff,
                               0xffffffff, 0xffffffff, max_value_depth + 2};
  try {
    pos = 0;
    auto handle = msgpack::unpack(
      frame.data(), frame.size(), pos,
      [](msgpack::type::object_type, std::size_t, void*) { return true; },
      nullptr, limits);
    if (handle.get().type != msgpack::type::MAP)
      return malformed("the main part is not a map");
    return handle;
  } catch (const std::exception& e) {
    return malformed(e.what());
  }
}

bool is_key(const msgpack::object& k, std::string_view name) {
  return k.type == msgpack::type::STR
         && std::string_view{k.via.str.ptr, k.via.str.size} == name;
}

void pack_str(msgpack::packer<string_sink>& pk, std::string_view s) {
  pk.pack_str(static_cast<uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
}

} // namespace

caf::expected<envelope> read_envelope(std::string_view frame) {
  envelope env;
  auto handle = unpack_main(frame, env.main_size);
  if (!handle)
    return std::move(handle.error());
  auto& m = handle->get().via.map;
  bool has_type = false;
  for (uint32_t i = 0; i < m.size; ++i) {
    auto& kv = m.ptr[i];
    if (kv.key.type != msgpack::type::STR)
      return malformed("a key that is not a string");
    std::string_view key{kv.key.via.str.ptr, kv.key.via.str.size};
    std::string* slot = nullptr;
    if (key == "type") {
      slot = &env.type;
      has_type = true;
    } else if (key == "from") {
      slot = &env.from;
    } else if (key == "to") {
      slot = &env.to;
    } else if (key == "method") {
      slot = &env.method;
    } else if (key == "session") {
      slot = &env.session;
    } else if (key == "parent") {
      slot = &env.parent;
    }
    if (slot == nullptr || kv.val.type == msgpack::type::NIL)
      continue;
    if (kv.val.type != msgpack::type::STR)
      return malformed("'" + std::string{key} + "' is not a string");
    slot->assign(kv.val.via.str.ptr, kv.val.via.str.size);
  }
  if (!has_type)
    return malformed("no 'type'");
  return env;
}

caf::expected<std::string>
rewrite_envelope(std::string_view frame, const envelope& env,
                 std::string_view from, std::string_view to,
                 std::string_view ws, const value& user) {
  std::size_t pos = 0;
  auto handle = unpack_main(frame, pos);
  if (!handle)
    return std::move(handle.error());
  auto& m = handle->get().via.map;
  std::string out;
  out.reserve(frame.size() + 128);
  string_sink sink{&out};
  msgpack::packer<string_sink> pk{sink};
  uint32_t kept = 0;
  for (uint32_t i = 0; i < m.size; ++i) {
    auto& k = m.ptr[i].key;
    if (!is_key(k, "from") && !is_key(k, "to") && !is_key(k, "ws")
        && !is_key(k, "user"))
      ++kept;
  }
  pk.pack_map(kept + 4);
  for (uint32_t i = 0; i < m.size; ++i) {
    auto& kv = m.ptr[i];
    if (is_key(kv.key, "from") || is_key(kv.key, "to") || is_key(kv.key, "ws")
        || is_key(kv.key, "user"))
      continue;
    pk.pack(kv.key);
    pk.pack(kv.val);
  }
  pack_str(pk, "from");
  pack_str(pk, from);
  pack_str(pk, "to");
  pack_str(pk, to);
  pack_str(pk, "ws");
  pack_str(pk, ws);
  pack_str(pk, "user");
  if (auto err = pack_value(out, user))
    return err;
  out.append(frame.substr(env.main_size));
  return out;
}

caf::expected<value_map> read_extra(std::string_view frame, const envelope& env,
                                    function_codec* functions) {
  value_map out;
  if (env.main_size < frame.size()) {
    auto offset = env.main_size;
    auto extra = unpack_value(frame, offset, functions);
    if (!extra)
      return std::move(extra.error());
    if (auto* m = extra->as_map())
      out = std::move(*m);
    else
      return malformed("the extra part is not a map");
  }
  return out;
}

caf::expected<std::string> first_arg_bytes(std::string_view frame,
                                           const envelope& env) {
  std::string out;
  string_sink sink{&out};
  msgpack::packer<string_sink> pk{sink};
  if (env.main_size >= frame.size()) {
    pk.pack_nil();
    return out;
  }
  auto rest = frame.substr(env.main_size);
  std::size_t pos = 0;
  auto handle = unpack_main(rest, pos);
  if (!handle)
    return std::move(handle.error());
  auto& m = handle->get().via.map;
  for (uint32_t i = 0; i < m.size; ++i) {
    auto& kv = m.ptr[i];
    if (!is_key(kv.key, "args") || kv.val.type != msgpack::type::ARRAY)
      continue;
    if (kv.val.via.array.size == 0)
      break;
    pk.pack(kv.val.via.array.ptr[0]);
    return out;
  }
  pk.pack_nil();
  return out;
}

caf::expected<std::string> make_frame(const value_map& main,
                                      const value_map& extra,
                                      function_codec* functions) {
  std::string out;
  if (auto err = pack_value(out, value{main}))
    return err;
  if (!extra.empty())
    if (auto err = pack_value(out, value{extra}, functions))
      return err;
  return out;
}

std::pair<std::string_view, std::string_view>
split_promise_method(std::string_view method) noexcept {
  auto dot = method.rfind('.');
  if (dot == std::string_view::npos || dot == 0)
    return {};
  auto verb = method.substr(dot + 1);
  if (verb != "resolve" && verb != "reject" && verb != "heartbeat")
    return {};
  return {method.substr(0, dot), verb};
}

} // namespace joy
