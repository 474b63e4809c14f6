// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The bridge actor: the directory of a bridge node's WebSocket clients
/// (hypha-rpc, hypha-protocol.md). It knows which clients are connected,
/// the services they registered and the events they subscribed to, and
/// passes frames between clients; the protocol itself (handshake, the
/// workspace manager's methods, calls into native plugins) is spoken by
/// each connection's ws_session actor.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/bridge/bridge_token.hpp"
#include "actors/bridge/http_server.hpp"
#include "actors/core/core_actor.hpp"
#include "actors/node/node_actor.hpp"
#include "runtime/type_ids.hpp"
#include "runtime/value.hpp"

namespace joy {

/// A service a WebSocket client registered.
struct hypha_service {
  /// "ws/client:service".
  std::string id;
  std::string workspace;
  std::string client;
  std::string service;
  std::string app = "*";
  /// "public", "protected" or "unlisted".
  std::string visibility = "public";
  std::vector<std::string> authorized_workspaces;
  /// The ServiceInfo map as hypha lists it (id, name, type, config, ...).
  value info;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, hypha_service& x) {
  return f(caf::meta::type_name("joy::hypha_service"), x.id, x.workspace,
           x.client, x.service, x.app, x.visibility, x.authorized_workspaces,
           x.info);
}

/// Whether a client of `caller_ws` may see and use `x` (hypha §5.5).
bool may_access(const hypha_service& x, const std::string& caller_ws);

/// A service found for `get_service`, with the session of its client.
struct service_match {
  hypha_service service;
  caf::actor provider;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, service_match& x) {
  return f(caf::meta::type_name("joy::service_match"), x.service, x.provider);
}

using bridge_actor = caf::typed_actor<
  /// Admits client `ws/cid` with `user` (hypha's UserInfo); replies its
  /// generation. A reconnecting client supersedes its old socket; another
  /// live client with the same id makes this one fail with already_exists
  /// (a client that no longer answers a ping is evicted instead).
  caf::replies_to<admit_atom, std::string, std::string, value,
                  bool>::with<uint64_t>,
  /// Client `ws/cid` of `generation` went away: its services leave and
  /// subscribers hear `client_disconnected`. Ignored for a superseded
  /// generation.
  caf::reacts_to<leave_atom, std::string, std::string, uint64_t>,
  /// Passes a frame on to client `to` ("ws/cid"), or for "ws/*" to the
  /// clients of `ws` subscribed to event `type`. When the target is gone,
  /// a non-empty `reject` frame goes back to the sender.
  caf::reacts_to<forward_atom, std::string, std::string, std::string,
                 std::string>,
  /// Registers or replaces a service of a connected client.
  caf::replies_to<register_atom, hypha_service>::with<bool>,
  /// Removes service `id` of client `ws/cid`. Errors: not_found.
  caf::replies_to<unregister_atom, std::string, std::string,
                  std::string>::with<bool>,
  /// Finds one service for a caller in workspace `caller_ws`: workspace,
  /// client ("*" for any), service and app ("*" for any), and the mode
  /// ("exact", "random", "first" or "last"). Errors: not_found,
  /// permission_denied, invalid_argument (several in exact mode).
  caf::replies_to<get_atom, std::string, std::string, std::string, std::string,
                  std::string, std::string>::with<service_match>,
  /// The ServiceInfo maps a caller in `caller_ws` may see that match a
  /// `list_services` query (null, a string or a map; hypha §6.3). Errors:
  /// invalid_argument.
  caf::replies_to<list_atom, std::string, value>::with<value>,
  /// Subscribes (true) or unsubscribes client `ws/cid` to event `type`.
  caf::replies_to<subscribe_atom, std::string, std::string, std::string,
                  bool>::with<bool>,
  /// The session of client "ws/cid". Errors: not_found.
  caf::replies_to<client_atom, std::string>::with<caf::actor>>;

/// What every session of a bridge shares.
struct bridge_settings {
  /// This node's id; the manager is `*/manager-<node id>`.
  std::string node_id;
  std::string manager_id;
  /// What clients see as the server's URL (`http://host:port`).
  std::string public_url;
  /// Connections from beyond loopback need a token unless this is set.
  bool anonymous_remote = false;
  /// Largest message reassembled from chunks (all of one client's open
  /// chunked messages together).
  std::size_t message_max = std::size_t{256} << 20;
  /// Most bytes of chunked messages all clients may hold open at once, and
  /// what they hold now (sessions add and take off).
  std::size_t messages_max_total = std::size_t{1} << 30;
  mutable std::atomic<std::size_t> messages_open{0};
  /// Deadline of a native call made for a client, and of calls into a
  /// client that send no heartbeat.
  std::chrono::seconds call_timeout{600};
  std::chrono::seconds client_call_timeout{30};
  /// How long a fresh socket may take to send its authentication frame.
  std::chrono::milliseconds auth_timeout{5000};
  /// Life of reconnection tokens.
  std::chrono::seconds reconnection_life{2 * 24 * 3600};
  std::shared_ptr<const token_signer> tokens;
  node_actor node;
  core_actor core;
  /// The kj thread's gateway, which maps arrays the node relays
  /// (`fetch_atom`, runtime/value_codec.hpp) so they can go into msgpack.
  caf::actor kj_gateway;
};

using bridge_settings_ptr = std::shared_ptr<const bridge_settings>;

/// Spawns the directory of a bridge.
bridge_actor spawn_bridge(caf::actor_system& sys, bridge_settings_ptr cfg);

} // namespace joy
