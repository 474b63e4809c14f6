// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "runtime/large_data.hpp"

#include "runtime/shared_memory.hpp"

namespace joy {

large_data_policy node_large_data_policy(bool shared_memory) {
  large_data_policy policy;
  policy.relay = true;
  policy.mappings
    = std::make_shared<shm_mapping_cache>(std::size_t{1} << 30, 4);
  if (shared_memory)
    policy.landing = shm_pool::make();
  return policy;
}

} // namespace joy
