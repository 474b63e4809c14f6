// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The spawner: the one actor that starts processes. Spawning blocks for
/// ~0.5 ms, so it runs detached — and it lives as long as the daemon,
/// because `PR_SET_PDEATHSIG` fires when the *thread* that created the child
/// exits, not the process: a short-lived spawning thread would kill its
/// plugins as it ends.
#pragma once

#include <memory>

#include <caf/actor_system.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/plugin_host/process_launcher.hpp"
#include "runtime/type_ids.hpp"

namespace joy {

using spawner_actor = caf::typed_actor<
  /// Starts a process. Errors: not_found, io_error.
  caf::replies_to<start_atom, launch_spec>::with<launched_process>>;

/// Spawns the spawner, detached, using `launcher`.
spawner_actor spawn_spawner(caf::actor_system& sys,
                            std::shared_ptr<process_launcher> launcher);

} // namespace joy
