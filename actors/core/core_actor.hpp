// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The core actor: on the head node, the directory of the services every
/// plugin provides (DESIGN §4). It knows *where* a service lives; calls never
/// go through it. The rest of the ImJoy `api` (events, config, UI calls)
/// joins this interface with the plugin api.
#pragma once

#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/core/service_info.hpp"
#include "runtime/type_ids.hpp"

namespace joy {

using core_actor = caf::typed_actor<
  /// Registers or replaces a service (by its full id). Errors:
  /// invalid_argument (malformed id).
  caf::replies_to<register_atom, service_info>::with<service_info>,
  /// Removes a service by full id. Errors: not_found.
  caf::replies_to<unregister_atom, std::string>::with<bool>,
  /// Resolves any id form; a bare or workspace-less id resolves in `public`,
  /// a missing service name means `default`. Errors: invalid_argument,
  /// not_found.
  caf::replies_to<get_atom, std::string>::with<service_info>,
  /// Every registered service, ordered by id.
  caf::replies_to<list_atom>::with<std::vector<service_info>>>;

core_actor spawn_core(caf::actor_system& sys);

} // namespace joy
