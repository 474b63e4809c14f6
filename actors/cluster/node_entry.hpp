// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// What the cluster's directory knows of a node, a service and a place
/// (schema/node.capnp `NodeEntry`, `ServiceEntry`, `Location`).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

namespace joy {

/// CPUs, memory and GPUs: a node's total, or what plugins ask for.
struct resources {
  uint32_t cpus = 0;
  uint64_t memory_bytes = 0;
  uint32_t gpus = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, resources& x) {
  return f(caf::meta::type_name("joy::resources"), x.cpus, x.memory_bytes,
           x.gpus);
}

struct node_entry {
  std::string node_id;
  /// host:port where peers reach it.
  std::string address;
  std::string version;
  resources total;
  /// What the manifests of its plugins ask for, summed.
  resources committed;
  bool up = false;
  bool head = false;
  /// When the head last heard of it, ns since the Unix epoch.
  int64_t last_seen = 0;
  std::vector<std::string> plugins;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_entry& x) {
  return f(caf::meta::type_name("joy::node_entry"), x.node_id, x.address,
           x.version, x.total, x.committed, x.up, x.head, x.last_seen,
           x.plugins);
}

/// A service as the directory lists it: its object stays on its node.
struct service_entry {
  /// Full id, "workspace/client:service".
  std::string id;
  std::string name;
  std::string type;
  std::vector<std::string> methods;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, service_entry& x) {
  return f(caf::meta::type_name("joy::service_entry"), x.id, x.name, x.type,
           x.methods);
}

/// Where something lives.
struct location {
  std::string node_id;
  std::string address;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, location& x) {
  return f(caf::meta::type_name("joy::location"), x.node_id, x.address);
}

} // namespace joy
