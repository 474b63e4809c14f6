// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// `service_snapshot`: the core's directory of this node's services, copied
/// onto the kj thread. The plugin links answer `get_service` and
/// `call_service` for those services from it, on the kj thread, so that
/// `get_service(x).f()` costs one round trip to the provider and no trip
/// through the node and core actors (DESIGN §3).
///
/// The core tells it every change (`mirror_on`) before it answers whoever
/// made the change, and the change reaches the kj thread first: a plugin
/// that heard of a service finds it here. A miss costs nothing but the slow
/// path: the node actor then asks the core, as before.
///
/// ```
/// auto services = std::make_shared<joy::service_snapshot>();
/// auto core = joy::spawn_core(sys, joy::mirror_on(kj, services));
/// ```
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "actors/core/core_actor.hpp"
#include "actors/core/service_info.hpp"
#include "runtime/kj_thread.hpp"

namespace joy {

/// Lives on the kj thread: create it anywhere, then touch it only there.
class service_snapshot {
public:
  void apply(const directory_change& change);

  /// The object of the service `id` names (any id form), or null: none
  /// here, or a plugin's default service (the node makes those itself and
  /// may have to start the plugin first).
  const value* find(std::string_view id) const;

  std::size_t size() const noexcept {
    return services_.size();
  }

private:
  struct entry {
    std::string client;
    value object;
  };

  /// By full id.
  std::unordered_map<std::string, entry> services_;
};

/// A core's listener that applies each change to `snapshot` on `kj`.
directory_listener mirror_on(kj_thread& kj,
                             std::shared_ptr<service_snapshot> snapshot);

} // namespace joy
