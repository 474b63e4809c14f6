// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "nodes/joyd/bridge_node.hpp"

#include <filesystem>

#include <caf/send.hpp>
#include <unistd.h>

#include "actors/bridge/ws_session.hpp"
#include "runtime/errc.hpp"
#include "runtime/log.hpp"
#include "runtime/paths.hpp"

namespace joy {

namespace fs = std::filesystem;

std::string default_web_root() {
  auto dir = fs::path{self_dir()};
  for (auto candidate :
       {dir / ".." / "web", dir / ".." / "share" / "joy" / "web"})
    if (fs::exists(candidate / "index.html"))
      return fs::weakly_canonical(candidate).string();
  return {};
}

caf::error bridge_node::start(caf::actor_system& sys,
                              const bridge_options& opts,
                              const std::string& home,
                              const std::string& node_id, core_actor core,
                              caf::actor kj_gateway) {
  http_server_config hcfg;
  auto address = opts.address;
  auto colon = address.rfind(':');
  std::string port = "9527";
  if (colon != std::string::npos && address.back() != ']') {
    port = address.substr(colon + 1);
    address = address.substr(0, colon);
  }
  if (address.size() > 2 && address.front() == '[' && address.back() == ']')
    address = address.substr(1, address.size() - 2);
  hcfg.host = address.empty() ? "127.0.0.1" : address;
  try {
    auto n = std::stoul(port);
    if (n > 65535)
      throw std::out_of_range{"port"};
    hcfg.port = static_cast<uint16_t>(n);
  } catch (const std::exception&) {
    return make_error(errc::invalid_argument,
                      "--bridge: '" + port + "' is not a port");
  }
  hcfg.origins = opts.origins;
  hcfg.web_root = opts.web_root.empty() ? default_web_root() : opts.web_root;
  if (hcfg.web_root.empty())
    log(log_level::warning, "bridge",
        "the browser core's files were not found; serving the WebSocket "
        "endpoint only (pass --web-root)");
  auto tokens = load_or_make_secret(home + "/bridge.secret");
  if (!tokens)
    return std::move(tokens.error());
  auto settings = std::make_shared<bridge_settings>();
  settings->node_id = node_id;
  settings->manager_id = "manager-" + node_id;
  settings->anonymous_remote = opts.anonymous_remote;
  settings->messages_max_total = opts.chunked_total;
  settings->call_timeout = opts.call_timeout;
  settings->tokens = std::make_shared<token_signer>(std::move(*tokens));
  settings->core = core;
  settings->kj_gateway = std::move(kj_gateway);
  settings_ = settings;
  bridge_ = spawn_bridge(sys, settings);
  auto bridge = bridge_;
  server_ = std::make_unique<http_server>(
    hcfg, [&sys, settings, bridge](ws_connection_ptr conn) {
      return caf::actor_cast<caf::actor>(
        spawn_ws_session(sys, settings, bridge, std::move(conn)));
    });
  if (auto err = server_->start()) {
    caf::anon_send_exit(bridge_, caf::exit_reason::user_shutdown);
    return err;
  }
  auto shown = hcfg.host;
  if (shown == "0.0.0.0" || shown == "::") {
    char host[256] = "localhost";
    ::gethostname(host, sizeof(host) - 1);
    shown = host;
  } else if (shown.find(':') != std::string::npos) {
    shown = "[" + shown + "]";
  }
  url_ = opts.url.empty()
           ? "http://" + shown + ":" + std::to_string(server_->port())
           : opts.url;
  settings->public_url = url_;
  return {};
}

void bridge_node::run(node_actor node) {
  if (!server_)
    return;
  settings_->node = std::move(node);
  server_->run();
}

void bridge_node::stop() {
  if (server_) {
    server_->stop();
    server_.reset();
  }
  if (bridge_) {
    caf::anon_send_exit(bridge_, caf::exit_reason::user_shutdown);
    bridge_ = nullptr;
  }
}

bridge_node::~bridge_node() {
  stop();
}

} // namespace joy
