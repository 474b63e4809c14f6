// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// YAML for ImJoy configs (`<config lang="yaml">`), read with libyaml into
/// the same JSON document a JSON config gives. Scalars resolve as YAML 1.2's
/// core schema does (what ImJoy's js-yaml does): `true`/`false`, `null`/`~`,
/// integers, floats, `.inf`/`.nan`; quoted scalars are always strings.
#pragma once

#include <string_view>

#include <caf/expected.hpp>

#include "runtime/value_json.hpp"

namespace joy {

/// Parses the first document of `text`. Errors: invalid_argument (not YAML,
/// with libyaml's line and reason; a key that is not a scalar; nesting
/// deeper than JSON configs allow; aliases that expand beyond a million
/// values or 16 MiB).
caf::expected<json> parse_yaml_config(std::string_view text);

} // namespace joy
