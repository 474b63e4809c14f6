// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The ws_session actor: one per WebSocket client of a bridge. It speaks
/// hypha-rpc with its client (hypha-protocol.md): the handshake, the text
/// control frames, the workspace manager `*/<manager_id>` as this client
/// sees it, and the native plugins of the cluster, which appear as clients
/// `public/<plugin>` (DESIGN §4). Frames between WebSocket clients pass
/// through the bridge actor unchanged but for the trusted fields.
///
/// Functions cross both ways: a native function sent to the client becomes
/// `{_rtype: "method", _rtarget: "public/<plugin>", _rmethod: "fn.<id>"}`
/// kept in this session's table until the client leaves; a client's
/// function sent to a native plugin becomes a function value owned by this
/// session, which calls into the client when invoked.
#pragma once

#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/bridge/bridge_actor.hpp"
#include "actors/bridge/http_server.hpp"
#include "runtime/function.hpp"

namespace joy {

using ws_session_actor = caf::typed_actor<
  /// A frame from the client (text or binary).
  caf::reacts_to<frame_atom, std::string, bool>,
  /// The socket closed with a code and reason.
  caf::reacts_to<closed_atom, uint16_t, std::string>,
  /// A frame for the client (from another client or an event).
  caf::reacts_to<deliver_atom, std::string>,
  /// The bridge gave this client's id to another socket: close.
  caf::reacts_to<leave_atom, std::string>,
  /// The client must go for good (kicked): it is sent hypha's `force-exit`
  /// with the reason, which makes it disconnect without reconnecting; with
  /// `true` (sent to itself after a grace period) the socket closes if the
  /// client has not closed it.
  caf::reacts_to<exit_atom, std::string, bool>,
  /// Whether the client still answers (its built-in `ping`).
  caf::replies_to<ping_atom>::with<bool>,
  /// Calls method `method` of the client as `from` with context workspace
  /// `ws`; functions in the result stay `_rtype: "method"` maps. For the
  /// workspace manager's `get_service`.
  caf::replies_to<call_atom, std::string, std::string, std::string,
                  value_list>::with<value>,
  /// Runs a function this session made (a client's function held by a
  /// native plugin).
  caf::replies_to<invoke_atom, function_ref, value_list,
                  value_map>::with<value>,
  /// Time to check deadlines and send heartbeats; sent to itself.
  caf::reacts_to<tick_atom>,
  /// The client sent no authentication in time; sent to itself.
  caf::reacts_to<auth_atom>>;

/// Spawns the session of a fresh connection.
ws_session_actor spawn_ws_session(caf::actor_system& sys,
                                  bridge_settings_ptr cfg, bridge_actor bridge,
                                  ws_connection_ptr conn);

} // namespace joy
