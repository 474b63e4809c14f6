// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// `joy::value` as hypha-rpc's msgpack (../shared/reference/hypha-protocol.md
/// §5.4), converted directly, never through JSON:
///
/// | value      | msgpack |
/// |------------|---------|
/// | null, bool, int64, uint64, float64, string, list | themselves |
/// | map        | a map (string keys) |
/// | bytes      | `{_rtype:"memoryview", _rvalue:bin}`; a plain bin reads as
/// bytes | | ndarray    | `{_rtype:"ndarray", _rvalue:bin, _rshape:[...],
/// _rdtype}` | | typed array| `{_rtype:"typedarray", _rvalue:bin, _rdtype}` |
/// | timestamp  | the timestamp extension (type -1) |
/// | error      | `{_rtype:"error", _rvalue:message, _rtrace:""}` (no traces
/// leave) | | function   | `{_rtype:"method", ...}`, made by a function_codec |
///
/// `set` and `orderedmap` read as a list and a map. Other `_rtype` maps
/// (generators, blobs) stay maps: nothing in Joy can use them yet.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <caf/expected.hpp>

#include "runtime/value.hpp"

namespace joy {

/// How functions cross: each side of the bridge keeps its own table.
class function_codec {
public:
  virtual ~function_codec();

  /// The `_rtype: "method"` map that stands for `f`.
  virtual caf::expected<value_map> encode(const function_ref& f) = 0;

  /// The value a received `_rtype: "method"` map stands for.
  virtual caf::expected<value> decode(value_map method) = 0;
};

/// Appends `x` as one msgpack object. Without a codec a function is an
/// error (invalid_argument).
caf::error pack_value(std::string& out, const value& x,
                      function_codec* functions = nullptr);

/// Decodes one msgpack object at `data[offset]`, advancing `offset` past
/// it. Without a codec `_rtype: "method"` maps stay maps. Errors:
/// protocol_error (malformed msgpack, non-string map keys, bad encodings),
/// too_large (nesting).
caf::expected<value> unpack_value(std::string_view data, std::size_t& offset,
                                  function_codec* functions = nullptr);

/// Shorthand: one whole message.
caf::expected<std::string> pack(const value& x,
                                function_codec* functions = nullptr);

} // namespace joy
