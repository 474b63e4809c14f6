// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// `joy token`: access tokens for browsers and hypha-rpc clients that reach
/// a bridge from beyond loopback (which admits only loopback clients
/// without one). Tokens are signed with the bridge's secret in
/// `$JOY_HOME/bridge.secret`, so this runs on the bridge's machine.
///
///   joy token [--workspace WS] [--user NAME] [--expires-in SECONDS]
///             [--permission read|read_write|admin]
///
/// A browser opens `http://HOST:PORT/?token=TOKEN`; a hypha-rpc client
/// passes `token` (and the workspace) to `connectToServer`.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace joy::cli {

struct token_args {
  CLI::App* command = nullptr;
  std::string workspace;
  std::string user = "joy-user";
  int64_t expires_in = 24 * 3600;
  std::string permission = "read_write";
};

CLI::App* add_token_command(CLI::App& app, token_args& args);

/// Prints a token for the bridge of the node in `home`. Returns the exit
/// code.
int run_token_command(const token_args& args, const std::string& home);

} // namespace joy::cli
