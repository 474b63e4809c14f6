// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The node's control socket, `<home>/joyd.sock`: Cap'n Proto `Gate` →
/// `Node` (schema/node.capnp) for the `joy` CLI. Lives on the kj thread.
///
/// Local control only: the socket is created mode 0600 (under a 077 umask,
/// so it is never briefly wider), and every connection's `SO_PEERCRED` uid
/// must be the daemon's own or root's; others are closed before a byte is
/// read. Each connection still goes through the validating stream.
#pragma once

#include <functional>
#include <string>

#include <caf/error.hpp>
#include <caf/timespan.hpp>

#include "actors/node/node_actor.hpp"
#include "runtime/kj_thread.hpp"

namespace joy {

struct control_server_config {
  std::string socket_path;
  std::string node_id;
  node_actor node;
  /// Where `joy ui` attaches as the UI provider.
  core_actor core;
  /// Default deadline of calls that bring none (the node's call timeout).
  caf::timespan call_timeout = std::chrono::seconds{120};
  /// Called (on the kj thread) when a client asks the daemon to shut down.
  std::function<void()> on_shutdown;
};

/// Binds and starts serving; call on the kj thread. The server is the
/// resource `id` (drop it to stop accepting and close every connection).
/// Errors: io_error (cannot bind, e.g. the path is too long or taken).
caf::error start_control_server(kj_context& ctx, uint64_t id,
                                control_server_config cfg);

} // namespace joy
