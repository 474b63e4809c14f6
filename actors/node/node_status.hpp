// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// A node's answer to `joy status`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

#include "actors/node/plugin_info.hpp"

namespace joy {

/// A GPU of the node, as `joy status` shows it.
struct gpu_device {
  uint32_t index = 0;
  std::string name;
  uint64_t memory_bytes = 0;
  /// "9.0"; "" when unknown (a count given with --gpus).
  std::string compute_capability;
  /// The plugin it was given to, "" while free.
  std::string holder;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, gpu_device& x) {
  return f(caf::meta::type_name("joy::gpu_device"), x.index, x.name,
           x.memory_bytes, x.compute_capability, x.holder);
}

struct node_status {
  std::string node_id;
  std::string version;
  /// Where clients reach it (the control socket for now).
  std::string address;
  std::string home;
  int64_t started_at = 0; // ns since the Unix epoch
  uint64_t uptime_ms = 0;
  uint32_t cpus = 0;
  uint64_t memory_bytes = 0;
  uint32_t gpus = 0;
  /// How plugins are isolated; "none" until the sandbox lands.
  std::string sandbox;
  int32_t pid = 0;
  bool head = true;
  std::vector<plugin_info> plugins;
  std::vector<std::string> services;
  /// host:port of its cluster listener, "" without one.
  std::string listen;
  bool tls = false;
  /// The URL of its bridge, "" without one.
  std::string bridge;
  std::vector<gpu_device> gpu_devices;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_status& x) {
  return f(caf::meta::type_name("joy::node_status"), x.node_id, x.version,
           x.address, x.home, x.started_at, x.uptime_ms, x.cpus, x.memory_bytes,
           x.gpus, x.sandbox, x.pid, x.head, x.plugins, x.services, x.listen,
           x.tls, x.bridge, x.gpu_devices);
}

} // namespace joy
