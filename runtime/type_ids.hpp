// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// Joy's CAF vocabulary: one type-ID block and every atom, in one place
/// (CAF 0.17.6's `CAF_BEGIN_TYPE_ID_BLOCK` / `CAF_ADD_ATOM`, kept for
/// forward compatibility with CAF 0.18+). Atom texts are at most 10
/// characters in CAF 0.17.
#pragma once

#include <caf/atom.hpp>
#include <caf/type_id.hpp>

CAF_BEGIN_TYPE_ID_BLOCK(joy, caf::first_custom_type_id)

// -- plugin interface -------------------------------------------------------
CAF_ADD_ATOM(joy, joy, call_atom, "call")
CAF_ADD_ATOM(joy, joy, setup_atom, "setup")
CAF_ADD_ATOM(joy, joy, run_atom, "run")
CAF_ADD_ATOM(joy, joy, exit_atom, "exit")
CAF_ADD_ATOM(joy, joy, describe_atom, "describe")
CAF_ADD_ATOM(joy, joy, invoke_atom, "invoke")

// -- node, plugin host, registry, core --------------------------------------
CAF_ADD_ATOM(joy, joy, status_atom, "status")
CAF_ADD_ATOM(joy, joy, install_atom, "install")
CAF_ADD_ATOM(joy, joy, list_atom, "list")
CAF_ADD_ATOM(joy, joy, start_atom, "start")
CAF_ADD_ATOM(joy, joy, stop_atom, "stop")
CAF_ADD_ATOM(joy, joy, get_atom, "get")
CAF_ADD_ATOM(joy, joy, put_atom, "put")
CAF_ADD_ATOM(joy, joy, remove_atom, "remove")
CAF_ADD_ATOM(joy, joy, meta_atom, "meta")
CAF_ADD_ATOM(joy, joy, register_atom, "register")
CAF_ADD_ATOM(joy, joy, unregister_atom, "unregister")
CAF_ADD_ATOM(joy, joy, shutdown_atom, "shutdown")
CAF_ADD_ATOM(joy, joy, api_atom, "api")
CAF_ADD_ATOM(joy, joy, ui_atom, "ui")
CAF_ADD_ATOM(joy, joy, attach_atom, "attach")
CAF_ADD_ATOM(joy, joy, emit_atom, "emit")
CAF_ADD_ATOM(joy, joy, on_atom, "on")
CAF_ADD_ATOM(joy, joy, off_atom, "off")
CAF_ADD_ATOM(joy, joy, forget_atom, "forget")
CAF_ADD_ATOM(joy, joy, config_atom, "config")
CAF_ADD_ATOM(joy, joy, uninstall_atom, "uninstall")
CAF_ADD_ATOM(joy, joy, rollback_atom, "rollback")

// -- internal notifications -------------------------------------------------
CAF_ADD_ATOM(joy, joy, ready_atom, "ready")
CAF_ADD_ATOM(joy, joy, exited_atom, "exited")
CAF_ADD_ATOM(joy, joy, down_atom, "down")
CAF_ADD_ATOM(joy, joy, spawned_atom, "spawned")
CAF_ADD_ATOM(joy, joy, state_atom, "state")
CAF_ADD_ATOM(joy, joy, tick_atom, "tick")

// -- cluster ------------------------------------------------------------------
CAF_ADD_ATOM(joy, joy, join_atom, "join")
CAF_ADD_ATOM(joy, joy, heartbeat_atom, "heartbeat")
CAF_ADD_ATOM(joy, joy, publish_atom, "publish")
CAF_ADD_ATOM(joy, joy, locate_atom, "locate")
CAF_ADD_ATOM(joy, joy, place_atom, "place")
CAF_ADD_ATOM(joy, joy, peer_atom, "peer")
CAF_ADD_ATOM(joy, joy, nodes_atom, "nodes")
CAF_ADD_ATOM(joy, joy, archive_atom, "archive")

// -- bridge -----------------------------------------------------------------
CAF_ADD_ATOM(joy, joy, frame_atom, "frame")
CAF_ADD_ATOM(joy, joy, closed_atom, "closed")
CAF_ADD_ATOM(joy, joy, admit_atom, "admit")
CAF_ADD_ATOM(joy, joy, leave_atom, "leave")
CAF_ADD_ATOM(joy, joy, forward_atom, "forward")
CAF_ADD_ATOM(joy, joy, deliver_atom, "deliver")
CAF_ADD_ATOM(joy, joy, event_atom, "event")
CAF_ADD_ATOM(joy, joy, ping_atom, "ping")
CAF_ADD_ATOM(joy, joy, token_atom, "token")
CAF_ADD_ATOM(joy, joy, subscribe_atom, "subscribe")
CAF_ADD_ATOM(joy, joy, client_atom, "client")
CAF_ADD_ATOM(joy, joy, auth_atom, "auth")
CAF_ADD_ATOM(joy, joy, fetch_atom, "fetch")

// -- gpu service ------------------------------------------------------------

CAF_ADD_ATOM(joy, joy, blur_atom, "blur")
CAF_ADD_ATOM(joy, joy, matmul_atom, "matmul")
CAF_ADD_ATOM(joy, joy, stats_atom, "stats")
CAF_ADD_ATOM(joy, joy, done_atom, "done")

CAF_END_TYPE_ID_BLOCK(joy)
