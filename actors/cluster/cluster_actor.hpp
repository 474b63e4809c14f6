// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The cluster actor: on the head, the directory of nodes, plugins and
/// services (DESIGN §5, docs/cluster.md). It knows *where* things live, never
/// relays a call, and judges workers alive by their heartbeats with a
/// phi-accrual detector. A node that goes down leaves the directory with
/// its plugins and services at once; calls to it then fail fast.
///
/// On a worker the same interface is served by the kj thread's link to the
/// head (cluster_link.hpp), so the node actor uses one handle either way.
#pragma once

#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/replies_to.hpp>
#include <caf/timespan.hpp>
#include <caf/typed_actor.hpp>

#include "actors/cluster/node_entry.hpp"
#include "actors/cluster/phi_accrual.hpp"
#include "actors/registry/registry_actor.hpp"
#include "runtime/type_ids.hpp"
#include "runtime/value.hpp"

namespace joy {

using cluster_actor = caf::typed_actor<
  /// A node (re)joins: it is up, recorded durably; replies with the
  /// membership epoch. Errors: invalid_argument, already_exists (another
  /// live node uses that id).
  caf::replies_to<join_atom, node_entry>::with<uint64_t>,
  /// A worker's heartbeat; replies with the epoch. Errors: not_found (the
  /// head does not count it as up: join again).
  caf::replies_to<heartbeat_atom, std::string, uint64_t>::with<uint64_t>,
  /// Replaces the plugins (with what their manifests ask for) and services
  /// the directory holds of a node. Errors: not_found (not up).
  caf::replies_to<publish_atom, std::string, std::vector<std::string>,
                  resources, std::vector<service_entry>>::with<bool>,
  /// Where a plugin (by name, `true`) or a service (by id) lives; the
  /// asking node's own copy wins. Errors: not_found, disconnected (its
  /// node is down).
  caf::replies_to<locate_atom, std::string, bool, std::string>::with<location>,
  /// Every node the head knows, itself first.
  caf::replies_to<nodes_atom>::with<std::vector<node_entry>>,
  /// Descriptors of the services matching `query` on every node that is
  /// up (the same query forms as the core's).
  caf::replies_to<list_atom, value>::with<value>,
  /// The node with the most room left that fits `need`. Errors:
  /// unavailable (none does).
  caf::replies_to<place_atom, resources>::with<location>,
  /// The node's control connection closed: it is down now.
  caf::reacts_to<down_atom, std::string>,
  /// A worker stops on purpose: it leaves the directory and the known
  /// nodes; it is a new member if it joins again.
  caf::replies_to<leave_atom, std::string>::with<bool>,
  /// Time to judge the heartbeats; sent to itself.
  caf::reacts_to<tick_atom>>;

struct cluster_config {
  /// The head itself: always up, publishes like any node.
  node_entry self;
  phi_accrual_config detector;
  /// How often the detector is consulted.
  caf::timespan check_interval = std::chrono::milliseconds{250};
  /// Told `(peer_atom, down_atom, node_id)` when a node goes down, so that
  /// links to it are cut and calls on them fail at once (the kj gateway).
  caf::actor on_down;
  /// Where the known nodes are kept (meta `cluster_nodes`); may be null.
  registry_actor registry;
  /// Nodes known from before a restart: listed as down until they return.
  std::vector<node_entry> known;
};

cluster_actor spawn_cluster(caf::actor_system& sys, cluster_config cfg);

/// The known nodes as the registry keeps them (JSON), and back.
std::string nodes_to_json(const std::vector<node_entry>& nodes);
std::vector<node_entry> nodes_from_json(const std::string& text);

} // namespace joy
