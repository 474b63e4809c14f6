// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The JSON mapping of `joy::value` (DESIGN §3), used by the CLI, manifests
/// and logs. It speaks ImJoy's `_rtype` vocabulary for what JSON lacks:
///
/// | value              | JSON |
/// |--------------------|----------------------------------------------------------|
/// | null, bool, string | themselves (strings must be valid UTF-8) | | int64 |
/// an integer                                               | | uint64 | an
/// integer (reads back as uint64 only above int64's range) | | float64 | a
/// number with a fraction or exponent; NaN and ±Inf as
/// `{"_rtype":"float","_rvalue":"nan"\|"inf"\|"-inf"}` | | bytes              |
/// `{"_rtype":"memoryview","_rvalue":"<base64>"}`           | | ndarray |
/// `{"_rtype":"ndarray","_rdtype":"float32","_rshape":[2,3],"_rvalue":"<base64>"}`
/// | | typed array        |
/// `{"_rtype":"typedarray","_rdtype":"uint8","_rvalue":"<base64>"}` | |
/// timestamp          |
/// `{"_rtype":"timestamp","_rvalue":"2024-05-01T12:00:00.500Z"}` | | error |
/// `{"_rtype":"error","_rcode":"not_found","_rvalue":"..."}` (+ `_rtrace`) | |
/// function           | `{"_rtype":"method","_rname":"..."}`, write-only | |
/// list               | an array | | map                | an object in
/// insertion order; a map with any key starting with `_r` is wrapped as
/// `{"_rtype":"map","_rvalue":{...}}` |
///
/// Reading is strict: an object with `_r` keys must be one of the encodings
/// above with exactly their keys; a key given twice in one object, or an
/// integer literal beyond uint64, is an error (not "last wins", not a
/// float); nesting beyond `max_value_depth` is `errc::too_large`.
#pragma once

#include <string>
#include <string_view>

#include <caf/expected.hpp>
#include <nlohmann/json.hpp>

#include "runtime/value.hpp"

namespace joy {

/// Insertion-ordered JSON documents.
using json = nlohmann::ordered_json;

/// Renders `x` as compact JSON text.
caf::expected<std::string> to_json(const value& x);

/// Renders `x` as a JSON document, for embedding in larger documents.
caf::expected<json> to_json_tree(const value& x);

/// Parses JSON text into a value.
caf::expected<value> from_json(std::string_view text);

/// Converts a parsed JSON document into a value.
caf::expected<value> from_json_tree(const json& doc);

/// Parses JSON text into a document with the same depth and integer-range
/// checks as `from_json` (for manifests and other plain JSON).
caf::expected<json> parse_json(std::string_view text,
                               std::size_t max_depth = 2 * max_value_depth + 4);

/// ISO 8601 UTC rendering with the shortest of 0, 3, 6 or 9 fraction digits.
std::string format_iso8601(timestamp t);

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
caf::expected<timestamp> parse_iso8601(std::string_view text);

/// True if `text` is well-formed UTF-8 (no overlongs, no surrogates).
bool is_valid_utf8(std::string_view text) noexcept;

} // namespace joy
