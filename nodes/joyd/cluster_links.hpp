// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// A node's links to the rest of its cluster (docs/cluster.md), on the kj
/// thread:
///
/// * **Data links**, one per peer node, opened on first use: the `Node`
///   capability of the peer, over which this node calls its plugins, gets
///   its services and installs on it. Calls between two nodes go straight
///   between them, never through the head. A link to a node the directory
///   declares down is cut, so calls on it fail with `disconnected` at once.
/// * On a worker, the **control link** to the head: join, heartbeats and
///   the directory's queries, on a connection of its own that carries
///   nothing of size, so heartbeats never wait behind a transfer. A head
///   that stops answering (no heartbeat reply within `head_timeout`) or
///   goes away is dialled again with a doubling backoff; on every (re)join
///   the node publishes its plugins and services again.
///
/// Served through the kj gateway (`kj_thread::gateway()`):
/// * `(peer_atom, call_atom, location, plugin, call_request) -> value`
/// * `(peer_atom, get_atom, location, service id) -> value`
/// * `(peer_atom, install_atom, location, source, archive bytes)
///    -> plugin_info`
/// * `(peer_atom, down_atom, node id)`: cut the data link to a node.
/// * on a worker, `cluster_actor`'s queries, answered by the head.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <caf/actor.hpp>
#include <caf/error.hpp>

#include "actors/cluster/node_entry.hpp"
#include "actors/plugin_host/remote_plugins.hpp"
#include "runtime/kj_thread.hpp"
#include "schema/node.capnp.h"

namespace kj {
class TlsContext;
}

namespace joy {

class rpc_link;

/// One connection to another node, after a successful hello.
struct peer_connection {
  kj::Own<rpc_link> link;
  wire::Node::Client node = nullptr;
  /// The directory, when the peer is the head.
  wire::Cluster::Client cluster = nullptr;
  std::string node_id;
  std::string version;
  bool head = false;
};

/// How this node reaches and authenticates to its peers.
struct dial_options {
  /// This node's id (sent as the client's name).
  std::string node_id;
  /// The cluster token.
  std::string token;
  /// Mutual TLS, or null for plaintext (loopback-only clusters).
  kj::TlsContext* tls = nullptr;
  kj::Duration timeout = 10 * kj::SECONDS;
};

/// Sets TCP_NODELAY: calls and their small answers must not wait for
/// Nagle's algorithm behind an unacknowledged segment.
void no_delay(kj::AsyncIoStream& stream);

/// Connects to the node at `address` (host:port) and says hello. Fails
/// (never throws) with a Joy error saying what went wrong: unreachable,
/// TLS refused, token refused, version mismatch.
kj::Promise<caf::expected<kj::Own<peer_connection>>>
dial(kj_context& ctx, const std::string& address, const dial_options& opts);

struct cluster_links_config {
  dial_options dial;
  /// The head's host:port; empty on the head itself.
  std::string head;
  /// What this node tells the head about itself when it joins.
  node_entry self;
  /// Told `(down_atom, node_id)` when the link to a node is cut.
  caf::actor node;
  /// Where calls reached plugins of other nodes, for the kj thread's own
  /// calls; these links serve its calls (optional).
  std::shared_ptr<remote_plugins> remote;
  kj::Duration heartbeat = 1 * kj::SECONDS;
  /// No heartbeat reply for this long: the head counts as gone.
  kj::Duration head_timeout = 5 * kj::SECONDS;
  /// Redialling a lost head: a connect costs little, and a short ceiling
  /// brings the node back within seconds of a healed partition.
  kj::Duration backoff_min = 250 * kj::MILLISECONDS;
  kj::Duration backoff_max = 1 * kj::SECONDS;
  /// A dial of the head that is not through by then is given up (a
  /// partitioned network swallows SYNs; the next try starts afresh).
  kj::Duration head_dial_timeout = 2 * kj::SECONDS;
};

/// A worker's link to its head, as `joy status` shows it.
struct head_link_state {
  std::string address;
  bool joined = false;
  /// Why the last attempt to join failed, or how the head was lost; "" once
  /// joined.
  std::string error;
};

/// The head link of the links in resource `links`; none on a head (or a
/// node without links).
std::optional<head_link_state> head_link(kj_context& ctx, uint64_t links);

/// The status of the node at `where`, over the data link to it (resource
/// `links` made by start_cluster_links); fails as a kj exception.
kj::Promise<capnp::Response<wire::Node::StatusResults>>
peer_status(kj_context& ctx, uint64_t links, const location& where);

/// Installs the links as resource `id` and their gateway handlers. Call
/// once, on the kj thread.
void start_cluster_links(kj_context& ctx, uint64_t id,
                         cluster_links_config cfg);

} // namespace joy
