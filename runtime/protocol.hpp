// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// Constants both ends of a link agree on.
#pragma once

#include <cstdint>
#include <string_view>

namespace joy {

/// Version of the wire protocol (schema/*.capnp semantics). Every link
/// starts with `hello(version, ...)`; a mismatch is refused with
/// `errc::version_mismatch`.
constexpr uint32_t protocol_version = 1;

/// The plugin's end of its socketpair with the node.
constexpr int plugin_fd = 3;

/// Environment variable carrying the plugin's name to its process.
constexpr std::string_view plugin_name_env = "JOY_PLUGIN_NAME";

/// Environment variable telling a plugin how to send large binary data:
/// `shm` (the default) or `stream` (large_data.hpp).
constexpr std::string_view large_data_env = "JOY_LARGE_DATA";

/// File descriptors a plugin link passes per message: shared-memory blocks
/// beyond it in one message arrive without their fd and are refused.
constexpr uint32_t max_fds_per_message = 64;

/// Joy's release, e.g. "0.1.0".
std::string_view version() noexcept;

} // namespace joy
