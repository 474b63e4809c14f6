// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "runtime/system_config.hpp"

#include <malloc.h>

#include <caf/atom.hpp>

#include "runtime/plugin_actor.hpp"
#include "runtime/value.hpp"

namespace joy {

void configure_actor_system(caf::actor_system_config& cfg,
                            std::size_t workers) {
  cfg.set("scheduler.policy", caf::atom("sharing"));
  if (workers > 0)
    cfg.set("scheduler.max-threads", workers);
  // Values travel in local messages only; registering them gives CAF a name
  // for logs and a serializer should a message ever leave the process.
  cfg.add_message_type<value>("joy::value");
  cfg.add_message_type<value_map>("joy::value_map");
  cfg.add_message_type<call_request>("joy::call_request");
}

void tune_allocator() {
  // Setting any of these also stops glibc's own adjustment of the mmap
  // threshold, so all three are set.
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  mallopt(M_TOP_PAD, 512 << 10);
  mallopt(M_MMAP_THRESHOLD, static_cast<int>(heap_mmap_threshold));
}

} // namespace joy
