// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// What a node tells about one installed plugin: its registry record and
/// the live status of its host.
#pragma once

#include <caf/meta/type_name.hpp>

#include "actors/plugin_host/plugin_status.hpp"
#include "actors/registry/plugin_record.hpp"

namespace joy {

struct plugin_info {
  plugin_record record;
  plugin_status status;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, plugin_info& x) {
  return f(caf::meta::type_name("joy::plugin_info"), x.record, x.status);
}

} // namespace joy
