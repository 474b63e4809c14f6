// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "runtime/large_data.hpp"

#include <algorithm>

#include "runtime/shared_memory.hpp"

namespace joy {

large_data_policy node_large_data_policy(bool shared_memory,
                                         uint64_t memory_bytes) {
  large_data_policy policy;
  policy.relay = true;
  policy.mappings
    = std::make_shared<shm_mapping_cache>(std::size_t{1} << 30, 4);
  if (shared_memory) {
    shm_pool::options opts;
    opts.max_cached = static_cast<std::size_t>(
      std::min<uint64_t>(opts.max_cached, memory_bytes / 8));
    policy.landing = shm_pool::make(opts);
    policy.landing_max_bytes = static_cast<std::size_t>(
      std::min<uint64_t>(policy.landing_max_bytes, memory_bytes / 4));
  }
  return policy;
}

} // namespace joy
