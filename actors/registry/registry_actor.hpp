// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The registry actor: the node's only door to its sqlite `plugin_store`.
/// It runs detached (its own thread), because sqlite blocks; every write is
/// durable before the reply.
#pragma once

#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/registry/plugin_record.hpp"
#include "actors/registry/plugin_store.hpp"
#include "runtime/type_ids.hpp"

namespace joy {

using registry_actor = caf::typed_actor<
  /// Stores a record and makes it the active version; replies when durable.
  caf::replies_to<put_atom, plugin_record>::with<plugin_record>,
  /// The active version of a plugin. Errors: not_found.
  caf::replies_to<get_atom, std::string>::with<plugin_record>,
  /// The active version of every plugin.
  caf::replies_to<list_atom>::with<std::vector<plugin_record>>,
  /// Every version of a plugin, newest install first. Errors: not_found.
  caf::replies_to<list_atom, std::string>::with<std::vector<plugin_record>>,
  /// Makes the version before the active one active. Errors: not_found,
  /// failed_precondition.
  caf::replies_to<rollback_atom, std::string>::with<plugin_record>,
  /// Forgets a plugin. Errors: not_found.
  caf::replies_to<remove_atom, std::string>::with<bool>,
  /// Reads a node setting. Errors: not_found.
  caf::replies_to<meta_atom, std::string>::with<std::string>,
  /// Writes a node setting; replies when durable.
  caf::replies_to<meta_atom, std::string, std::string>::with<bool>,
  /// Reads a plugin's setting (JSON). Errors: not_found.
  caf::replies_to<config_atom, std::string, std::string>::with<std::string>,
  /// Writes a plugin's setting (JSON; `true` deletes it instead); replies
  /// when durable.
  caf::replies_to<config_atom, std::string, std::string, std::string,
                  bool>::with<bool>>;

/// Spawns the registry actor, detached, owning `store`.
registry_actor spawn_registry(caf::actor_system& sys, plugin_store store);

} // namespace joy
