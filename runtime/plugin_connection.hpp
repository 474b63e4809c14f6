// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The plugin process's half of the plugin protocol (DESIGN §7), on the kj
/// thread: `run_plugin` uses it over fd 3, and tests use it to serve plugins
/// inside the test process instead of spawning one.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <kj/async.h>

#include "runtime/kj_thread.hpp"
#include "runtime/plugin_actor.hpp"
#include "schema/plugin.capnp.h"

namespace joy {

/// The `Plugin` capability of a plugin actor: each call becomes a request to
/// `actor` (through the companion); dropping a call drops the request.
/// `link` is the node link (from connect_to_node) that carries progress of
/// the node's calls; 0: progress goes only to calls' own monitors.
kj::Own<wire::Plugin::Server>
make_plugin_server(kj_context& ctx, plugin_actor actor, uint64_t link = 0);

/// Connects to the node over the unix socket `fd` (taken over), says
/// `hello(version, plugin, name)` and keeps the link as resource `id`.
/// `done(0)` runs once the node closes the link; `done(1)` if the node
/// refused the hello. Call on the kj thread.
void connect_to_node(kj_context& ctx, uint64_t id, int fd,
                     wire::Plugin::Client plugin, std::string name,
                     uint32_t version, std::function<void(int)> done);

/// The wire's log level for the SDK's (0 debug ... 3 error).
wire::LogLevel to_wire_log_level(int level) noexcept;

/// How a plugin process moves large data: shared memory (a pool of its own
/// and a cache of mapped blocks) unless its node said `stream`
/// (JOY_LARGE_DATA).
large_data_policy plugin_large_data();

/// The node's `Api` for the link `id` (from connect_to_node), once the node
/// welcomed the plugin; null before, and after the link closed.
wire::Api::Client* node_api(kj_context& ctx, uint64_t id);

} // namespace joy
