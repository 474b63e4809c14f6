// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The node's doors, on the kj thread: Cap'n Proto `Gate` → `Node`
/// (schema/node.capnp), and on a head also `Cluster`.
///
/// * The control socket, `<home>/joyd.sock`, for the `joy` CLI: local
///   only. It is created mode 0600 (under a 077 umask, so it is never
///   briefly wider), and every connection's `SO_PEERCRED` uid must be the
///   daemon's own or root's; others are closed before a byte is read.
/// * The cluster listener (`--listen host:port`), for other nodes: mutual
///   TLS first when configured (nothing reaches Cap'n Proto before the
///   handshake), then `hello` must bring the cluster token; a wrong one
///   gets an error and nothing else. Both sides log the refusal.
///
/// Every connection goes through the validating stream.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <caf/error.hpp>
#include <caf/timespan.hpp>

namespace kj {
class TlsContext;
}

#include "actors/cluster/cluster_actor.hpp"
#include "actors/node/node_actor.hpp"
#include "actors/plugin_host/kj_routes.hpp"
#include "actors/plugin_host/plugin_link.hpp"
#include "runtime/kj_thread.hpp"
#include "runtime/unique_fd.hpp"

namespace joy {

struct control_server_config {
  std::string socket_path;
  std::string node_id;
  node_actor node;
  /// Where `joy ui` attaches as the UI provider.
  core_actor core;
  /// Default deadline of calls that bring none (the node's call timeout).
  caf::timespan call_timeout = std::chrono::seconds{120};
  /// Calls of plugins running here go straight to their links (may be
  /// null: the node actor takes every call).
  std::shared_ptr<running_plugins> running;
  /// The CLI's calls of plugins other nodes run, once reached there, go
  /// straight to the link to that node (may be null).
  std::shared_ptr<remote_plugins> remote;
  /// Called (on the kj thread) when a client asks the daemon to shut down.
  std::function<void()> on_shutdown;

  // -- the cluster ------------------------------------------------------------

  /// The directory: the cluster actor on a head, the gateway's proxy of the
  /// head's on a worker.
  cluster_actor cluster;
  bool head = true;
  /// The cluster token every peer's hello must carry.
  std::string token;
  /// Mutual TLS on the listener, or null for plaintext (loopback only).
  kj::TlsContext* tls = nullptr;
  /// The cluster links' resource (for the status of other nodes).
  uint64_t links = 0;
  /// Where archives sent by other nodes are kept while they install.
  std::string downloads_dir;
};

/// Binds the control socket and starts serving it and `cluster_listener`
/// (from bind_listener; none when empty); call on the kj thread. The
/// server is the resource `id` (drop it to stop accepting and close every
/// connection). Errors: io_error (cannot bind, e.g. the path is too long or
/// taken).
caf::error start_control_server(kj_context& ctx, uint64_t id,
                                control_server_config cfg,
                                unique_fd cluster_listener);

/// Parses HOST:PORT ([v6]:PORT too) into its host and port. Errors:
/// invalid_argument, naming what is wrong.
caf::expected<std::pair<std::string, std::string>>
split_host_port(const std::string& text);

/// Binds the cluster listener on HOST:PORT (port 0 picks a free one) and
/// returns it with its actual address. Errors: invalid_argument (not
/// HOST:PORT, an unknown host), io_error (the port is taken).
caf::expected<std::pair<unique_fd, std::string>>
bind_listener(const std::string& host_port);

/// True for a listen address only this machine reaches (127.0.0.0/8, ::1,
/// localhost).
bool is_loopback(const std::string& host_port);

} // namespace joy
