// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/plugin_host/spawner_actor.hpp"

#include <caf/typed_event_based_actor.hpp>

namespace joy {

spawner_actor spawn_spawner(caf::actor_system& sys,
                            std::shared_ptr<process_launcher> launcher) {
  return sys.spawn<caf::detached>(
    [launcher](spawner_actor::pointer) -> spawner_actor::behavior_type {
      return {
        [launcher](start_atom,
                   const launch_spec& spec) -> caf::result<launched_process> {
          auto res = launcher->launch(spec);
          if (!res)
            return std::move(res.error());
          return std::move(*res);
        },
      };
    });
}

} // namespace joy
