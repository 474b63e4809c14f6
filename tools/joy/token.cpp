// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "tools/joy/token.hpp"

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "actors/bridge/bridge_token.hpp"
#include "actors/bridge/hypha_ids.hpp"
#include "runtime/cli_checks.hpp"
#include "runtime/errc.hpp"

namespace joy::cli {

CLI::App* add_token_command(CLI::App& app, token_args& args) {
  auto* cmd = app.add_subcommand(
    "token", "Issue an access token for a browser or hypha-rpc client of the "
             "bridge (needed beyond loopback)");
  cmd->add_option("--workspace", args.workspace,
                  "The workspace it grants (default ws-user-<user>)");
  cmd->add_option("--user", args.user, "Whom it stands for (default joy-user)");
  cmd
    ->add_option("--expires-in", args.expires_in,
                 "Seconds it is valid (default 86400)")
    ->check(joy::cli_checks::positive);
  cmd
    ->add_option("--permission", args.permission,
                 "read, read_write (default) or admin (a browser core "
                 "that answers plugins' questions needs admin)")
    ->check(CLI::IsMember({"read", "read_write", "admin"}));
  args.command = cmd;
  return cmd;
}

int run_token_command(const token_args& args, const std::string& home) {
  auto path = home + "/bridge.secret";
  if (!std::filesystem::exists(path)) {
    std::fprintf(stderr,
                 "joy: error (not_found): %s does not exist: start a bridge "
                 "here first (joy start --bridge HOST:PORT)\n",
                 path.c_str());
    return 1;
  }
  auto secret = load_or_make_secret(path);
  if (!secret) {
    std::fprintf(stderr, "joy: error: %s\n",
                 message_of(secret.error()).c_str());
    return 1;
  }
  if (!valid_name(args.user)
      || (!args.workspace.empty() && !valid_name(args.workspace))
      || args.workspace == "public") {
    std::fprintf(stderr,
                 "joy: error (invalid_argument): users and workspaces are "
                 "1-64 letters, digits, '-', '_' or '.' (and not 'public')\n");
    return 1;
  }
  token_claims claims;
  claims.kind = "access";
  claims.user = args.user;
  claims.workspace
    = args.workspace.empty() ? "ws-user-" + args.user : args.workspace;
  claims.permission = args.permission;
  claims.expires = std::chrono::duration_cast<std::chrono::seconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count()
                   + args.expires_in;
  auto token = token_signer{std::move(*secret)}.sign(claims);
  std::printf("%s\n", token.c_str());
  return 0;
}

} // namespace joy::cli
