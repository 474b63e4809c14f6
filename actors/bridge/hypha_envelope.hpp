// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// hypha-rpc's binary frames: `msgpack(main) ‖ msgpack(extra)`
/// (hypha-protocol.md §4). The bridge reads only `main` of what it
/// forwards, rewrites the trusted fields (`from`, `to`, `ws`, `user`) and
/// passes the extra bytes on untouched.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <caf/expected.hpp>

#include "runtime/value.hpp"

namespace joy {

class function_codec;

/// The routing fields of a frame's main part.
struct envelope {
  std::string type;
  std::string from;
  std::string to;
  std::string method;
  std::string session;
  std::string parent;
  /// Bytes of the main part; the extra part starts here.
  std::size_t main_size = 0;
};

/// Reads the main part. Errors: protocol_error (not msgpack, not a map,
/// `type` missing or not a string).
caf::expected<envelope> read_envelope(std::string_view frame);

/// The frame with `from`, `to`, `ws` and `user` set (every other field and
/// the extra bytes as they were).
caf::expected<std::string>
rewrite_envelope(std::string_view frame, const envelope& env,
                 std::string_view from, std::string_view to,
                 std::string_view ws, const value& user);

/// The extra part merged with the main one, decoded (args, kwargs,
/// promise, ...). A frame without extra yields the main part's fields.
caf::expected<value_map> read_extra(std::string_view frame, const envelope& env,
                                    function_codec* functions);

/// The msgpack bytes of `args[0]` in the extra part, exactly as sent (nil
/// when there is none).
caf::expected<std::string> first_arg_bytes(std::string_view frame,
                                           const envelope& env);

/// Builds a frame: `main` (strings only) then `extra` (values, with
/// functions through `functions`).
caf::expected<std::string> make_frame(const value_map& main,
                                      const value_map& extra,
                                      function_codec* functions = nullptr);

/// `"<sid>.resolve"` and friends: the session id (which may hold dots) and
/// the verb, or empty strings when `method` is no promise callback. Check
/// for `services.` paths first: a service may have a method `resolve`.
std::pair<std::string_view, std::string_view>
split_promise_method(std::string_view method) noexcept;

} // namespace joy
