// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The core actor: on the head node, the directory of every service, the
/// event bus and the router of UI calls (DESIGN §4). It knows *where* a
/// service lives and hands out its service object, whose methods are
/// function values; calls never go through the core.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/core/service_info.hpp"
#include "runtime/function.hpp"
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
  caf::replies_to<list_atom>::with<std::vector<service_info>>,
  /// Descriptors (describe_service) of the services matching `query`: null
  /// for all, a string for a name or id, a map for exact matches on the
  /// descriptor's fields.
  caf::replies_to<list_atom, value>::with<value>,
  /// A UI call (alert, prompt, confirm, show_*, progress; by name) of a
  /// plugin, for the UI provider. Without one, calls that only show
  /// something are logged; calls that need an answer fail with
  /// `unavailable`.
  caf::replies_to<ui_atom, std::string, std::string, value_list>::with<value>,
  /// Makes a function the UI provider: it is called with (op, plugin,
  /// args...). The newest wins.
  caf::replies_to<attach_atom, function_ref>::with<bool>,
  /// Whether a UI provider is attached.
  caf::replies_to<attach_atom>::with<bool>,
  /// Emits an event: every handler subscribed to it runs; replies when all
  /// returned, with the errors of those that failed (plugin_error).
  caf::replies_to<emit_atom, std::string, value, std::string>::with<value>,
  /// Subscribes a plugin's handler to an event.
  caf::replies_to<on_atom, std::string, function_ref, std::string>::with<bool>,
  /// Drops a plugin's handlers of an event.
  caf::replies_to<off_atom, std::string, std::string>::with<bool>,
  /// A plugin went away: drops its services and event handlers.
  caf::replies_to<forget_atom, std::string>::with<bool>>;

/// One change of the core's directory.
struct directory_change {
  enum class kind { registered, unregistered, forgotten };
  kind what;
  /// `registered`: the service as stored; `unregistered`: its full `id`;
  /// `forgotten`: the `client` whose services all went.
  service_info service;
};

/// Hears every change of the directory, in order, on the core's thread and
/// before the core answers the request that made it. joyd mirrors them
/// onto its kj thread (service_snapshot.hpp).
using directory_listener = std::function<void(const directory_change&)>;

/// `listener` may be empty.
core_actor spawn_core(caf::actor_system& sys, directory_listener listener = {});

} // namespace joy
