// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/plugin_host/plugin_method.hpp"

#include <kj/debug.h>

#include "actors/plugin_host/plugin_link.hpp"
#include "runtime/call_control.hpp"
#include "runtime/value_wire.hpp"

namespace joy {

namespace {

/// A call of `plugin`: to its link while it runs, else to the node actor.
kj::Promise<caf::expected<value>>
run(kj_context& ctx, const running_plugins& running, const caf::actor& node,
    const std::string& plugin, call_request req) {
  if (auto* link = running.find(plugin))
    return link->call(std::move(req));
  return ctx
    .request(node, unbounded_call, call_atom_v, plugin, std::move(req), true)
    .then([](caf::message msg) { return response_value(msg, "the node"); });
}

class method_callable final : public wire::Callable::Server {
public:
  method_callable(kj_context& ctx, std::shared_ptr<running_plugins> running,
                  caf::actor node, std::string plugin, std::string method)
    : ctx_(ctx),
      running_(std::move(running)),
      node_(std::move(node)),
      plugin_(std::move(plugin)),
      method_(std::move(method)) {
    // nop
  }

  kj::Promise<void> call(CallContext context) override {
    return serve_callable(ctx_, context, [this](arguments in) {
      call_request req;
      req.method = method_;
      req.args = std::move(in.args);
      req.kwargs = std::move(in.kwargs);
      return run(ctx_, *running_, node_, plugin_, std::move(req));
    });
  }

private:
  kj_context& ctx_;
  std::shared_ptr<running_plugins> running_;
  caf::actor node_;
  std::string plugin_;
  std::string method_;
};

} // namespace

plugin_method::plugin_method(kj_thread& kj,
                             std::shared_ptr<running_plugins> running,
                             caf::actor node, std::string plugin,
                             std::string method)
  : kj_(kj),
    running_(std::move(running)),
    node_(std::move(node)),
    plugin_(std::move(plugin)),
    method_(std::move(method)) {
  // nop
}

caf::actor plugin_method::target() const {
  return kj_.gateway();
}

wire::Callable::Client plugin_method::callable(kj_context& ctx) const {
  // The links it calls live on the node's kj thread, and only there.
  if (&ctx.thread() != &kj_)
    return wire::Callable::Client{KJ_EXCEPTION(
      DISCONNECTED, "a plugin method is served by its node's kj thread only")};
  return kj::heap<method_callable>(ctx, running_, node_, plugin_, method_);
}

bool plugin_method::invoke(kj_context& ctx, value_list& args, value_map& kwargs,
                           reply_handle& reply) const {
  if (&ctx.thread() != &kj_)
    return false;
  call_request req;
  req.method = method_;
  req.args = std::move(args);
  req.kwargs = std::move(kwargs);
  ctx.tasks().add(
    run(ctx, *running_, node_, plugin_, std::move(req))
      .then([reply = std::move(reply)](caf::expected<value> res) mutable {
        reply.deliver(std::move(res));
      }));
  return true;
}

function_ref make_plugin_method(kj_thread& kj,
                                std::shared_ptr<running_plugins> running,
                                caf::actor node, std::string plugin,
                                std::string method,
                                std::vector<std::string> params) {
  auto name = method;
  function_ref f{std::make_shared<const plugin_method>(
                   kj, std::move(running), std::move(node), std::move(plugin),
                   std::move(method)),
                 std::move(name)};
  f.params = std::move(params);
  return f;
}

} // namespace joy
