// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "runtime/plugin.hpp"
#include "runtime/plugin_connection.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>

#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "runtime/kj_thread.hpp"
#include "runtime/log.hpp"
#include "runtime/protocol.hpp"
#include "runtime/rpc_link.hpp"
#include "runtime/system_config.hpp"
#include "runtime/value_wire.hpp"
#include "schema/plugin.capnp.h"

namespace joy {

// -- the plugin's actor -------------------------------------------------------

namespace {

caf::result<value> to_result(caf::expected<value> x) {
  if (!x)
    return std::move(x.error());
  return std::move(*x);
}

template <class F>
caf::expected<value> guarded_hook(const std::string& what, F&& f) {
  try {
    return f();
  } catch (const std::exception& ex) {
    return make_error(errc::plugin_error, what + " failed: " + ex.what());
  } catch (...) {
    return make_error(errc::plugin_error, what + " failed");
  }
}

plugin_actor::behavior_type plugin_behavior(plugin_actor::pointer self,
                                            std::shared_ptr<const plugin> def) {
  return {
    [def](call_atom, call_request& req) -> caf::result<value> {
      if (!req.service.empty() && req.service != "default")
        return make_error(errc::not_found, "plugin '" + def->name
                                             + "' has no service '"
                                             + req.service + "'");
      auto* fn = def->exports.find(req.method);
      if (fn == nullptr) {
        std::string known;
        for (auto& name : def->exports.names())
          known += (known.empty() ? "" : ", ") + name;
        return make_error(errc::not_found,
                          "plugin '" + def->name + "' has no method '"
                            + req.method + "' (it exports: "
                            + (known.empty() ? "nothing" : known) + ")");
      }
      return to_result(fn->invoke(req.args, req.kwargs));
    },
    [def](setup_atom) -> caf::result<value> {
      if (!def->setup)
        return value{};
      return to_result(guarded_hook("setup", def->setup));
    },
    [def](run_atom, value& ctx) -> caf::result<value> {
      if (!def->run)
        return value{};
      return to_result(guarded_hook("run", [&] { return def->run(ctx); }));
    },
    [def](describe_atom) -> caf::result<value> {
      return value{value_map{{"name", value{def->name}},
                             {"methods", def->exports.describe()}}};
    },
    [self, def](exit_atom) {
      if (def->exit) {
        try {
          def->exit();
        } catch (const std::exception& ex) {
          log(log_level::warning, def->name, "exit() failed: ", ex.what());
        }
      }
      self->quit();
    },
  };
}

// -- the Plugin capability, on the kj thread ----------------------------------

/// No deadline from the caller: the node cancels the call when it gives up,
/// so this only bounds a request that nobody answers.
constexpr auto unbounded_call = 24 * 3600 * kj::SECONDS;

/// Writes a CAF response message (a value or an error) into a Result.
void write_response(const caf::message& msg, wire::Result::Builder out) {
  if (msg.match_elements<value>()) {
    write_result(msg.get_as<value>(0), out);
  } else if (msg.match_elements<caf::error>()) {
    write_error(msg.get_as<caf::error>(0), out.initErr());
  } else {
    write_error(errc::internal, "unexpected response from the plugin actor", {},
                out.initErr());
  }
}

class plugin_server final : public wire::Plugin::Server {
public:
  plugin_server(kj_context& ctx, plugin_actor actor)
    : ctx_(ctx), actor_(std::move(actor)) {
    // nop
  }

  kj::Promise<void> call(CallContext context) override {
    context.allowCancellation();
    auto params = context.getParams();
    call_request req;
    auto service = params.getService();
    req.service.assign(service.begin(), service.size());
    auto method = params.getMethod();
    req.method.assign(method.begin(), method.size());
    auto args = read_list(params.getArgs());
    if (!args) {
      write_error(args.error(), context.getResults().initResult().initErr());
      return kj::READY_NOW;
    }
    auto kwargs = read_map(params.getKwargs());
    if (!kwargs) {
      write_error(kwargs.error(), context.getResults().initResult().initErr());
      return kj::READY_NOW;
    }
    req.args = std::move(*args);
    req.kwargs = std::move(*kwargs);
    auto timeout_ms = params.getTimeoutMs();
    req.timeout = std::chrono::milliseconds{timeout_ms};
    kj::Duration budget
      = timeout_ms > 0 ? static_cast<int64_t>(timeout_ms) * kj::MILLISECONDS
                       : unbounded_call;
    return ctx_.request(actor_, budget, call_atom_v, std::move(req))
      .then([context](caf::message msg) mutable {
        write_response(msg, context.getResults().initResult());
      });
  }

  kj::Promise<void> setup(SetupContext context) override {
    context.allowCancellation();
    return ctx_.request(actor_, unbounded_call, setup_atom_v)
      .then([context](caf::message msg) mutable {
        write_response(msg, context.getResults().initResult());
      });
  }

  kj::Promise<void> run(RunContext context) override {
    context.allowCancellation();
    auto ctx = read_value(context.getParams().getCtx());
    if (!ctx) {
      write_error(ctx.error(), context.getResults().initResult().initErr());
      return kj::READY_NOW;
    }
    return ctx_.request(actor_, unbounded_call, run_atom_v, std::move(*ctx))
      .then([context](caf::message msg) mutable {
        write_response(msg, context.getResults().initResult());
      });
  }

  kj::Promise<void> describe(DescribeContext context) override {
    return ctx_.request(actor_, 10 * kj::SECONDS, describe_atom_v)
      .then([context](caf::message msg) mutable {
        write_response(msg, context.getResults().initResult());
      });
  }

  kj::Promise<void> exit(ExitContext) override {
    kj_context::send(actor_, exit_atom_v);
    return kj::READY_NOW;
  }

private:
  kj_context& ctx_;
  plugin_actor actor_;
};

/// The connection to the node, kept on the kj thread.
class node_link final : public kj_resource {
public:
  explicit node_link(kj::Own<rpc_link> link) : link(kj::mv(link)) {
    // nop
  }

  kj::Own<rpc_link> link;
  kj::Maybe<wire::Api::Client> api;
};

/// Resolves the process's exit code once.
class exit_signal {
public:
  void set(int code) {
    if (!done_.exchange(true))
      promise_.set_value(code);
  }

  int wait() {
    return promise_.get_future().get();
  }

private:
  std::atomic<bool> done_{false};
  std::promise<int> promise_;
};

} // namespace

plugin_actor spawn_plugin_actor(caf::actor_system& sys,
                                std::shared_ptr<const plugin> def) {
  return sys.spawn(plugin_behavior, std::move(def));
}

kj::Own<wire::Plugin::Server> make_plugin_server(kj_context& ctx,
                                                 plugin_actor actor) {
  return kj::heap<plugin_server>(ctx, std::move(actor));
}

void connect_to_node(kj_context& ctx, uint64_t id, int fd,
                     wire::Plugin::Client plugin, std::string name,
                     uint32_t version, std::function<void(int)> done) {
  auto stream = ctx.low_level().wrapUnixSocketFd(
    fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP
          | kj::LowLevelAsyncIoProvider::ALREADY_CLOEXEC);
  auto link = rpc_link::connect(kj::mv(stream), stream_limits{});
  auto host = link->bootstrap_as<wire::Host>();
  auto disconnected = link->on_disconnect();
  auto res = kj::heap<node_link>(kj::mv(link));
  auto* state = res.get();
  ctx.adopt(id, kj::mv(res));
  auto req = host.helloRequest();
  req.setVersion(version);
  req.setPlugin(kj::mv(plugin));
  req.setName(name);
  ctx.tasks().add(req.send().then(
    [done, state, name](capnp::Response<wire::Host::HelloResults> resp) {
      auto result = resp.getResult();
      if (result.isErr()) {
        log(log_level::error, name, "the node refused this plugin: ",
            result.getErr().getMessage().cStr());
        done(1);
        return;
      }
      state->api = result.getOk().getApi();
      log(log_level::debug, name, "connected to node ",
          result.getOk().getIdentity().getNode().cStr());
    },
    [done, name](kj::Exception&& ex) {
      log(log_level::error, name, "hello failed: ", ex.getDescription().cStr());
      done(1);
    }));
  ctx.tasks().add(disconnected.then([done] { done(0); }));
}

int run_plugin(int, char** argv, plugin def) {
  auto name = def.name.empty() ? std::string{argv[0]} : def.name;
  struct stat st;
  if (::fstat(plugin_fd, &st) != 0 || !S_ISSOCK(st.st_mode)) {
    std::fprintf(stderr,
                 "%s: this is a Joy plugin: install it with `joy install "
                 "<folder>` and call it with `joy call %s <method> ...`\n",
                 name.c_str(), name.c_str());
    return 2;
  }
  // Nothing we exec may inherit the link.
  ::fcntl(plugin_fd, F_SETFD, FD_CLOEXEC);
  caf::actor_system_config cfg;
  // One worker: exported functions run one at a time in the plugin's actor.
  configure_actor_system(cfg, 1);
  caf::actor_system sys{cfg};
  auto actor
    = spawn_plugin_actor(sys, std::make_shared<const plugin>(std::move(def)));
  exit_signal done;
  int code = 0;
  {
    kj_thread kj{sys};
    auto link_id = kj.next_id();
    kj.post([&done, actor, name, link_id](kj_context& ctx) {
      connect_to_node(ctx, link_id, plugin_fd, make_plugin_server(ctx, actor),
                      name, protocol_version, [&done](int c) { done.set(c); });
    });
    code = done.wait();
    kj.stop();
  }
  // The node is gone or said goodbye: run exit() in the actor and finish.
  caf::anon_send(actor, exit_atom_v);
  return code;
}

} // namespace joy
