// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// How the CLI prints what a node answers: tables for people, JSON (one
/// document, `--json`) for scripts.
#pragma once

#include <string>
#include <string_view>

#include "runtime/value_json.hpp"
#include "schema/node.capnp.h"

namespace joy::cli {

json plugin_json(wire::PluginInfo::Reader x);
json status_json(wire::NodeStatus::Reader x);

/// `NAME VERSION TYPE STATE SOURCE SHA256` rows, aligned.
std::string plugins_table(capnp::List<wire::PluginInfo>::Reader xs);

std::string status_text(wire::NodeStatus::Reader x);

/// "1h 2m 3s".
std::string format_duration_ms(uint64_t ms);

/// "23.4 GiB".
std::string format_bytes(uint64_t bytes);

/// `text` safe for a terminal: what plugins and callers wrote (errors,
/// alerts, progress) may hold escape sequences that would rewrite the
/// screen or the title. Control characters other than newline and tab show
/// as `\xNN`; over `max` bytes it is cut, saying so.
std::string printable(std::string_view text, std::size_t max = 64 * 1024);

} // namespace joy::cli
