// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "runtime/system_config.hpp"

#include <caf/scheduler/coordinator.hpp>

#include "runtime/plugin_actor.hpp"
#include "runtime/scheduler_policy.hpp"
#include "runtime/value.hpp"

namespace joy {

void configure_actor_system(caf::actor_system_config& cfg,
                            std::size_t workers) {
  // A loaded scheduler takes the place of the one `scheduler.policy` names.
  cfg.load<caf::scheduler::coordinator<scheduler_policy>>();
  if (workers > 0)
    cfg.set("scheduler.max-threads", workers);
  add_message_types(cfg);
}

void add_message_types(caf::actor_system_config& cfg) {
  // Values travel in local messages only; registering them gives CAF a name
  // for logs and a serializer should a message ever leave the process.
  cfg.add_message_type<value>("joy::value");
  cfg.add_message_type<value_map>("joy::value_map");
  cfg.add_message_type<call_request>("joy::call_request");
}

} // namespace joy
