// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// `kj_routes`: what lets a node's kj thread answer calls without the
/// actors. `service_snapshot` (actors/core) answers `get_service(x).f()`;
/// `running_plugins` lists the plugin links that are ready for calls, by
/// plugin name; `remote_plugins` the plugins of other nodes calls reached.
/// A call that arrives on the kj thread for a running plugin (a plugin's
/// `api.call`, `joy call`, a call from another node) goes straight to its
/// link, one for a plugin of another node that was reached before straight
/// to the link to that node. Every other call takes the actors' path,
/// which starts plugins, queues calls while they start and explains why
/// one is not available (DESIGN §5: fewer thread hand-offs per call, the
/// remedy docs/benchmarks.md names for B6 and the plain call).
///
/// A link adds itself once its plugin is set up and removes itself when
/// it stops, fails or its process exits.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include "actors/core/service_snapshot.hpp"
#include "actors/plugin_host/remote_plugins.hpp"

namespace joy {

class plugin_link;

/// Lives on the kj thread: create it anywhere, then touch it only there.
class running_plugins {
public:
  void add(const std::string& name, plugin_link* link);

  /// Removes `link` if it is the one listed under `name`.
  void remove(const std::string& name, const plugin_link* link);

  /// The running plugin's link, or null.
  plugin_link* find(const std::string& name) const;

private:
  std::unordered_map<std::string, plugin_link*> links_;
};

/// Handed to every plugin link of a node; any part may be null (the
/// actors then answer what it would have).
struct kj_routes {
  std::shared_ptr<const service_snapshot> services;
  std::shared_ptr<running_plugins> running;
  std::shared_ptr<remote_plugins> remote;
};

} // namespace joy
