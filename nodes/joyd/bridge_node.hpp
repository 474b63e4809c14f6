// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// What `joyd --bridge HOST:PORT` adds to a node: the HTTP/WebSocket server
/// (the browser core and the hypha-rpc endpoint), the bridge actor, and a
/// ws_session actor per client (actors/bridge).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/error.hpp>

#include "actors/bridge/bridge_actor.hpp"
#include "actors/bridge/http_server.hpp"

namespace joy {

struct bridge_options {
  /// HOST[:PORT]; the port defaults to 9527, 0 picks a free one.
  std::string address;
  /// Extra browser origins allowed to connect (exact).
  std::vector<std::string> origins;
  /// The URL clients are told (default http://HOST:PORT).
  std::string url;
  /// Accept connections without a token from beyond loopback.
  bool anonymous_remote = false;
  /// The longest a client's call into a native plugin may take before the
  /// bridge answers it with a timeout (the plugin's own deadline, the
  /// node's --call-timeout, normally ends it first).
  std::chrono::seconds call_timeout{600};
  /// Most bytes of chunked messages all clients may hold open at once.
  std::size_t chunked_total = std::size_t{1} << 30;
  /// The browser core's files (default: next to the programs).
  std::string web_root;
};

class bridge_node {
public:
  /// Binds the server; nothing is served before `run`, so the node can
  /// show the address before it starts. Errors: invalid_argument,
  /// io_error.
  caf::error start(caf::actor_system& sys, const bridge_options& opts,
                   const std::string& home, const std::string& node_id,
                   core_actor core, caf::actor kj_gateway);

  /// Serves clients, who reach the cluster's plugins through `node`.
  void run(node_actor node);

  /// What clients connect to, e.g. "http://127.0.0.1:9527".
  const std::string& url() const noexcept {
    return url_;
  }

  /// Closes every connection and the listener; ends the bridge actor.
  void stop();

  ~bridge_node();

private:
  std::unique_ptr<http_server> server_;
  std::shared_ptr<bridge_settings> settings_;
  bridge_actor bridge_;
  std::string url_;
};

/// Where the browser core's files are: `<programs>/../web` in a build
/// tree, `<programs>/../share/joy/web` once installed.
std::string default_web_root();

} // namespace joy
