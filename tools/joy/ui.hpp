// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// `joy ui`: the terminal UI provider. It attaches to the node and shows
/// the UI calls of every plugin (alert, show_message, show_status,
/// show_progress, progress) as lines on stdout, and answers prompt and
/// confirm with lines read from stdin — until the browser core takes over
/// that role.
#pragma once

#include <string>

namespace joy::cli {

/// Runs until the node goes away or the user interrupts; returns the exit
/// code.
int cmd_ui(const std::string& home);

} // namespace joy::cli
