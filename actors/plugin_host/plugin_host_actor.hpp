// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The plugin host: one actor per running plugin instance (DESIGN §2). It
/// owns the plugin's process and its Cap'n Proto link (through the kj
/// thread) and implements the plugin's own interface, so callers talk to it
/// exactly as to an in-process plugin actor.
///
/// A call to a stopped plugin, or one whose start failed, starts it and
/// waits; calls that arrive while it starts wait too (bounded). A call in
/// flight when the process dies fails at once with `errc::disconnected`. A
/// crash restarts the plugin under its budget (restart_budget.hpp); calls
/// during a backoff, or after the budget gave up, fail fast with
/// `errc::unavailable` naming the reason. `start` resets the budget.
#pragma once

#include <string>

#include <caf/actor_system.hpp>
#include <caf/replies_to.hpp>
#include <caf/timespan.hpp>
#include <caf/typed_actor.hpp>

#include "actors/plugin_host/kj_routes.hpp"
#include "actors/plugin_host/plugin_stats.hpp"
#include "actors/plugin_host/plugin_status.hpp"
#include "actors/plugin_host/process_launcher.hpp"
#include "actors/plugin_host/restart_budget.hpp"
#include "actors/plugin_host/spawner_actor.hpp"
#include "runtime/kj_thread.hpp"
#include "runtime/plugin_actor.hpp"
#include "runtime/value.hpp"

namespace joy {

/// Serves the ImJoy api of the plugins (the node implements it).
using api_handler = caf::typed_actor<
  /// One api call of a plugin: (plugin, op (api_op), args, kwargs). Errors:
  /// those of the call; unimplemented for an op this node does not serve.
  caf::replies_to<api_atom, std::string, uint16_t, value_list,
                  value_map>::with<value>>;

/// Receives a host's state changes (the node implements it).
using plugin_observer = caf::typed_actor<
  /// A plugin host's state changed.
  caf::reacts_to<state_atom, plugin_status>>;

using plugin_host_actor = plugin_actor::extend<
  /// Starts the process unless it runs; replies once it said hello and its
  /// setup() returned. Errors: unavailable (spawn failed, exited or setup
  /// failed during start), timeout.
  caf::replies_to<start_atom>::with<plugin_status>,
  /// Stops it: the plugin's exit(), a grace period, then SIGKILL. Replies
  /// when the process is gone.
  caf::replies_to<stop_atom>::with<plugin_status>,
  /// The current status.
  caf::replies_to<status_atom>::with<plugin_status>,
  // -- internal: from the kj thread and timers --------------------------------
  /// The link `id` finished its handshake; the process has `pid` and
  /// exports `methods`.
  caf::reacts_to<ready_atom, uint64_t, int32_t, std::vector<std::string>,
                 std::vector<std::vector<std::string>>>,
  /// The connection of link `id` broke while the plugin was in use; sent
  /// before any caller hears of it, so the next call starts a new process.
  caf::reacts_to<down_atom, uint64_t, std::string>,
  /// The process behind link `id` is gone, for `reason`.
  caf::reacts_to<exited_atom, uint64_t, std::string>,
  /// A backoff delay is over; restart unless the plugin was told otherwise
  /// meanwhile (`token` is stale then).
  caf::reacts_to<tick_atom, uint64_t>>;

struct plugin_host_config {
  /// What to run.
  launch_spec launch;
  /// Told to the plugin at hello.
  std::string node_id;
  /// Serves the plugin's api calls (may be invalid: calls then fail).
  api_handler api;
  /// From spawn to the end of setup(), on the kj timer.
  caf::timespan start_timeout = std::chrono::seconds{10};
  /// From exit() to SIGKILL.
  caf::timespan stop_grace = std::chrono::seconds{5};
  /// For calls that do not bring their own deadline.
  caf::timespan call_timeout = std::chrono::seconds{120};
  /// Calls waiting for a start beyond this fail with `overloaded`.
  std::size_t max_queued_calls = 1024;
  /// Calls in flight in the plugin beyond this fail with `overloaded`.
  std::size_t max_in_flight = 1024;
  /// Where the plugin's calls are counted (may be null).
  std::shared_ptr<plugin_stats> stats;
  /// Restarts after crashes.
  restart_policy restart;
  /// The node's shortcuts on the kj thread (kj_routes.hpp).
  kj_routes routes;
};

/// Spawns a host for one plugin; it starts the process on its first call
/// or `start`. `observer` (may be invalid) hears every state change.
plugin_host_actor spawn_plugin_host(caf::actor_system& sys, kj_thread& kj,
                                    spawner_actor spawner,
                                    plugin_host_config cfg,
                                    plugin_observer observer);

} // namespace joy
