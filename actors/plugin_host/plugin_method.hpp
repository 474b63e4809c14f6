// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// `plugin_method`: a method of a plugin of this node as a function value —
/// the members of the plugin's default service (`get_plugin`, the browser
/// core's native services). Its calls run on the kj thread: straight to the
/// plugin's link while the plugin runs (`running_plugins`), else through
/// the node actor, which starts it. Callers in actors reach it through the
/// kj gateway (`target()`), plugins and other nodes as a capability.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>

#include "actors/plugin_host/kj_routes.hpp"
#include "runtime/kj_thread.hpp"
#include "runtime/value_codec.hpp"

namespace joy {

class plugin_method final : public kj_callable_function {
public:
  /// `node` answers `(call_atom, plugin, call_request, true)` for calls of
  /// a plugin that is not running.
  plugin_method(kj_thread& kj, std::shared_ptr<running_plugins> running,
                caf::actor node, std::string plugin, std::string method);

  /// The kj gateway.
  caf::actor target() const override;

  wire::Callable::Client callable(kj_context& ctx) const override;

  bool invoke(kj_context& ctx, value_list& args, value_map& kwargs,
              reply_handle& reply) const override;

private:
  kj_thread& kj_;
  std::shared_ptr<running_plugins> running_;
  caf::actor node_;
  std::string plugin_;
  std::string method_;
};

/// The function value of `plugin`'s `method`, with its parameters' names.
function_ref make_plugin_method(kj_thread& kj,
                                std::shared_ptr<running_plugins> running,
                                caf::actor node, std::string plugin,
                                std::string method,
                                std::vector<std::string> params);

} // namespace joy
