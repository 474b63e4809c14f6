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

#include <caf/actor_cast.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "runtime/allocator.hpp"
#include "runtime/call_control.hpp"
#include "runtime/function.hpp"
#include "runtime/kj_thread.hpp"
#include "runtime/log.hpp"
#include "runtime/protocol.hpp"
#include "runtime/rpc_link.hpp"
#include "runtime/system_config.hpp"
#include "runtime/value_codec.hpp"
#include "runtime/value_wire.hpp"
#include "schema/plugin.capnp.h"

namespace joy {

namespace {

/// The SDK's plugin actor: the plugin interface plus running its own
/// function values.

/// Writes a line to the plugin's log on its node (one-way).
using log_atom = caf::atom_constant<caf::atom("log")>;
constexpr log_atom log_atom_v = log_atom{};

/// The api's way out of the plugin actor: requests to the kj gateway, which
/// forwards them over the node link.
class sdk_backend final : public detail::api_backend,
                          public std::enable_shared_from_this<sdk_backend> {
public:
  explicit sdk_backend(plugin_node node) : node_(std::move(node)) {
    // nop
  }

  void attach(sdk_actor::pointer self) {
    self_ = self;
    api_ = std::make_unique<joy::api>(shared_from_this());
  }

  void detach() {
    self_ = nullptr;
  }

  api& owner_api() override {
    return *api_;
  }

  sdk_actor::pointer self() override {
    return self_;
  }

  caf::expected<writable_buffer> allocate(std::size_t bytes) override {
    if (node_.pool)
      return node_.pool->allocate(bytes);
    return writable_buffer::on_heap(bytes);
  }

  future<value> request(api_op op, value_list args, value_map kwargs,
                        caf::timespan timeout) override {
    if (self_ == nullptr || !node_.gateway)
      return make_error(errc::unavailable,
                        "this plugin is not connected to a node");
    promise<value> p;
    self_
      ->request(node_.gateway, timeout, api_atom_v, node_.link,
                static_cast<uint16_t>(op), std::move(args), std::move(kwargs))
      .then([p](value& x) mutable { p.set_value(std::move(x)); },
            [p](caf::error& err) mutable { p.set_error(std::move(err)); });
    return p.get_future();
  }

  future<value> invoke(const function_ref& f, value_list args, value_map kwargs,
                       caf::timespan timeout) override {
    if (self_ == nullptr || !f.impl)
      return make_error(errc::unavailable,
                        "cannot call function '" + f.name + "'");
    promise<value> p;
    self_
      ->request(f.impl->target(), timeout, invoke_atom_v, f, std::move(args),
                std::move(kwargs))
      .then([p](value& x) mutable { p.set_value(std::move(x)); },
            [p](caf::error& err) mutable { p.set_error(std::move(err)); });
    return p.get_future();
  }

  function_ref
  make_callback(std::string name,
                std::shared_ptr<const exported_function> fn) override {
    std::weak_ptr<sdk_backend> weak = shared_from_this();
    return make_function(
      caf::actor_cast<caf::actor>(self_), std::move(name),
      [weak, fn](value_list args, value_map kwargs, reply_handle reply) {
        auto backend = weak.lock();
        if (!backend) {
          reply.deliver(make_error(errc::unavailable, "the plugin is gone"));
          return;
        }
        context ctx{backend->owner_api()};
        answer(fn->invoke(ctx, args, kwargs), std::move(reply));
      });
  }

  void log(int level, std::string text) override {
    // The plugin's own log (`joy logs`) has it, and the node's too.
    joy::log_line(static_cast<log_level>(level), "api", text);
    if (self_ == nullptr || !node_.gateway)
      return;
    self_
      ->request(node_.gateway, std::chrono::seconds{10}, log_atom_v, node_.link,
                static_cast<int32_t>(level), std::move(text))
      .then([](bool) {}, [](caf::error&) {});
  }

  /// Delivers a future's outcome through `reply` when it is there.
  static void answer(future<value> fut, reply_handle reply) {
    if (fut.is_ready()) {
      reply.deliver(fut.take());
      return;
    }
    auto shared = std::make_shared<reply_handle>(std::move(reply));
    fut.on_complete(
      [shared](caf::expected<value> res) { shared->deliver(std::move(res)); });
  }

private:
  plugin_node node_;
  sdk_actor::pointer self_ = nullptr;
  std::unique_ptr<joy::api> api_;
};

/// Runs an adapted function in the actor and answers the current request.
caf::result<value> run_in_actor(sdk_actor::pointer self,
                                const std::shared_ptr<sdk_backend>& backend,
                                const exported_function& fn,
                                const value_list& args, const value_map& kwargs,
                                std::shared_ptr<call_control> control
                                = nullptr) {
  context ctx{backend->owner_api(), std::move(control)};
  auto fut = fn.invoke(ctx, args, kwargs);
  if (fut.is_ready()) {
    auto res = fut.take();
    if (!res)
      return std::move(res.error());
    return std::move(*res);
  }
  sdk_backend::answer(std::move(fut), reply_handle{self});
  return caf::delegated<value>{};
}

sdk_actor::behavior_type plugin_behavior(sdk_actor::pointer self,
                                         std::shared_ptr<const plugin> def,
                                         std::shared_ptr<sdk_backend> backend) {
  backend->attach(self);
  self->attach_functor([backend](const caf::error&) { backend->detach(); });
  return {
    [self, def, backend](call_atom, call_request& req) -> caf::result<value> {
      if (!req.service.empty() && req.service != "default")
        return make_error(errc::not_found, "plugin '" + def->name
                                             + "' has no service '"
                                             + req.service + "'");
      auto* fn = def->exports.find(req.method);
      // ImJoy's `run(ctx)` is callable like a method when the plugin has
      // one (the browser core's run form, `joy call p run '{...}'`).
      if (fn == nullptr && req.method == "run" && def->run)
        fn = &*def->run;
      if (fn == nullptr) {
        std::string known;
        for (auto& name : def->exports.names())
          known += (known.empty() ? "" : ", ") + name;
        return make_error(errc::not_found,
                          "plugin '" + def->name + "' has no method '"
                            + req.method + "' (it exports: "
                            + (known.empty() ? "nothing" : known) + ")");
      }
      return run_in_actor(self, backend, *fn, req.args, req.kwargs,
                          std::move(req.control));
    },
    [self, def, backend](setup_atom) -> caf::result<value> {
      if (!def->setup)
        return value{};
      return run_in_actor(self, backend, *def->setup, {}, {});
    },
    [self, def, backend](run_atom, value& ctx) -> caf::result<value> {
      if (!def->run)
        return value{};
      return run_in_actor(self, backend, *def->run, {std::move(ctx)}, {});
    },
    [def](describe_atom) -> caf::result<value> {
      auto methods = def->exports.describe();
      if (def->run && def->exports.find("run") == nullptr)
        if (auto* m = methods.as_map())
          m->insert("run", value_map{{"arity", value{int64_t{1}}},
                                     {"params", value_list{value{"ctx"}}}});
      return value{
        value_map{{"name", value{def->name}}, {"methods", std::move(methods)}}};
    },
    [self, def, backend](exit_atom) {
      if (!def->exit) {
        self->quit();
        return;
      }
      context ctx{backend->owner_api()};
      auto fut = def->exit->invoke(ctx, {}, {});
      // Finish once exit() did, however it ended.
      fut.on_complete([self, name = def->name](caf::expected<value> res) {
        if (!res)
          log(log_level::warning, name,
              "exit() failed: ", message_of(res.error()));
        self->quit();
      });
    },
    [self](invoke_atom, function_ref& f, value_list& args,
           value_map& kwargs) -> caf::result<value> {
      return run_local_function(self, f, std::move(args), std::move(kwargs));
    },
  };
}

// -- the Plugin capability, on the kj thread ----------------------------------

/// The connection to the node, kept on the kj thread.
class node_link final : public kj_resource {
public:
  explicit node_link(kj::Own<rpc_link> link) : link(kj::mv(link)) {
    // nop
  }

  kj::Own<rpc_link> link;
  kj::Maybe<wire::Api::Client> api;
};

class plugin_server final : public wire::Plugin::Server {
public:
  plugin_server(kj_context& ctx, plugin_actor actor, uint64_t link)
    : ctx_(ctx), actor_(std::move(actor)), link_(link) {
    // nop
  }

  kj::Promise<void> call(CallContext context) override {
    context.allowCancellation();
    auto params = context.getParams();
    value_codec codec{ctx_};
    call_request req;
    req.service = params.getService();
    req.method = params.getMethod();
    auto in = read_arguments(params.getArgs(), params.getKwargs(), &codec);
    if (!in) {
      write_error(in.error(), context.getResults().initResult().initErr());
      return kj::READY_NOW;
    }
    req.args = std::move(in->args);
    req.kwargs = std::move(in->kwargs);
    req.timeout = std::chrono::milliseconds{params.getTimeoutMs()};
    // The node cancels by dropping the call; the function sees it through
    // its context, and reports progress to the node's monitor.
    auto call_id = params.getCallId();
    call_control::reporter report;
    if (params.hasMonitor())
      report = report_to_monitor(ctx_, params.getMonitor());
    else if (call_id != 0 && link_ != 0)
      report = progress_to_node(link_, call_id);
    req.control
      = std::make_shared<call_control>(&ctx_.thread(), std::move(report));
    // Streamed arguments arrive before the function runs.
    return codec.settle().then([this, context, req = std::move(req)](
                                 caf::error err) mutable -> kj::Promise<void> {
      if (err) {
        write_error(err, context.getResults().initResult().initErr());
        return kj::READY_NOW;
      }
      auto control = req.control;
      // The node enforces the deadline (renewed by progress); this only
      // bounds an actor that never answers.
      auto reply
        = ctx_.request(actor_, unbounded_call, call_atom_v, std::move(req));
      return answer(cancel_on_drop(kj::mv(reply), std::move(control)), context);
    });
  }

  kj::Promise<void> setup(SetupContext context) override {
    context.allowCancellation();
    return answer(ctx_.request(actor_, unbounded_call, setup_atom_v), context);
  }

  kj::Promise<void> run(RunContext context) override {
    context.allowCancellation();
    value_codec codec{ctx_};
    auto ctx = read_value(context.getParams().getCtx(), &codec);
    if (!ctx) {
      write_error(ctx.error(), context.getResults().initResult().initErr());
      return kj::READY_NOW;
    }
    return codec.settle().then([this, context, ctx = std::move(*ctx)](
                                 caf::error err) mutable -> kj::Promise<void> {
      if (err) {
        write_error(err, context.getResults().initResult().initErr());
        return kj::READY_NOW;
      }
      return answer(
        ctx_.request(actor_, unbounded_call, run_atom_v, std::move(ctx)),
        context);
    });
  }

  kj::Promise<void> describe(DescribeContext context) override {
    return answer(ctx_.request(actor_, 10 * kj::SECONDS, describe_atom_v),
                  context);
  }

  kj::Promise<void> exit(ExitContext) override {
    kj_context::send(actor_, exit_atom_v);
    return kj::READY_NOW;
  }

private:
  /// Reports progress of the node's call `id` over the node link's Api.
  static call_control::reporter progress_to_node(uint64_t link, uint64_t id) {
    return [link, id](kj_context& ctx, double fraction, std::string message) {
      auto* state = ctx.find_as<node_link>(link);
      if (state == nullptr)
        return;
      KJ_IF_MAYBE (api, state->api) {
        auto req = api->callProgressRequest();
        req.setCallId(id);
        req.setFraction(fraction);
        req.setMessage(message);
        ctx.tasks().add(
          req.send().ignoreResult().catch_([](kj::Exception&&) {}));
      }
    };
  }

  template <class Context>
  kj::Promise<void> answer(kj::Promise<caf::message> reply, Context context) {
    return reply.then([this, context](caf::message msg) mutable {
      value_codec codec{ctx_};
      write_response(msg, context.getResults().initResult(), &codec,
                     "the plugin actor");
    });
  }

  kj_context& ctx_;
  plugin_actor actor_;
  uint64_t link_;
};

/// Forwards the plugin actor's api requests for `link` to the node.
void serve_api(kj_context& ctx, uint64_t link) {
  ctx.on_request(
    [link](kj_context& ctx, caf::message& msg, reply_handle& reply) {
      bool is_api = msg.match_elements<api_atom, uint64_t, uint16_t, value_list,
                                       value_map>();
      bool is_log
        = msg.match_elements<log_atom, uint64_t, int32_t, std::string>();
      if ((!is_api && !is_log) || msg.get_as<uint64_t>(1) != link)
        return false;
      auto* state = ctx.find_as<node_link>(link);
      wire::Api::Client* api = nullptr;
      if (state != nullptr)
        KJ_IF_MAYBE (a, state->api) {
          api = a;
        }
      if (api == nullptr) {
        reply.deliver(make_error(errc::unavailable, "not connected to a node"));
        return true;
      }
      if (is_log) {
        auto req = api->logRequest();
        req.setLevel(to_wire_log_level(msg.get_as<int32_t>(2)));
        req.setMessage(msg.get_as<std::string>(3));
        ctx.tasks().add(req.send().ignoreResult());
        reply.deliver_value(true);
        return true;
      }
      value_codec codec{ctx};
      auto req = api->requestRequest();
      req.setOp(static_cast<wire::ApiOp>(msg.get_as<uint16_t>(2)));
      auto err = write_arguments(msg.get_as<value_list>(3),
                                 msg.get_as<value_map>(4), req, &codec);
      if (err) {
        reply.deliver(std::move(err));
        return true;
      }
      ctx.tasks().add(
        req.send()
          .then(
            [&ctx](capnp::Response<wire::Api::RequestResults> resp) {
              value_codec codec{ctx};
              return codec.finish(read_result(resp.getResult(), &codec));
            },
            [](kj::Exception&& ex) -> caf::expected<value> {
              return error_from_exception(ex, "the node");
            })
          .then([reply = std::move(reply)](caf::expected<value> res) mutable {
            reply.deliver(std::move(res));
          }));
      return true;
    });
}

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
                                std::shared_ptr<const plugin> def,
                                plugin_node node) {
  auto backend = std::make_shared<sdk_backend>(std::move(node));
  return caf::actor_cast<plugin_actor>(
    sys.spawn(plugin_behavior, std::move(def), std::move(backend)));
}

kj::Own<wire::Plugin::Server>
make_plugin_server(kj_context& ctx, plugin_actor actor, uint64_t link) {
  return kj::heap<plugin_server>(ctx, std::move(actor), link);
}

wire::LogLevel to_wire_log_level(int level) noexcept {
  return level >= 3   ? wire::LogLevel::ERROR
         : level == 2 ? wire::LogLevel::WARNING
         : level == 0 ? wire::LogLevel::DEBUG
                      : wire::LogLevel::INFO;
}

large_data_policy plugin_large_data() {
  // Shared memory unless the node says stream.
  large_data_policy large;
  large.mappings = std::make_shared<shm_mapping_cache>();
  const char* mode = std::getenv(std::string{large_data_env}.c_str());
  if (mode == nullptr || std::string_view{mode} != "stream")
    large.pool = shm_pool::make();
  return large;
}

wire::Api::Client* node_api(kj_context& ctx, uint64_t id) {
  auto* state = ctx.find_as<node_link>(id);
  if (state != nullptr)
    KJ_IF_MAYBE (api, state->api) {
      return api;
    }
  return nullptr;
}

void connect_to_node(kj_context& ctx, uint64_t id, int fd,
                     wire::Plugin::Client plugin, std::string name,
                     uint32_t version, std::function<void(int)> done) {
  auto stream = ctx.low_level().wrapUnixSocketFd(
    fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP
          | kj::LowLevelAsyncIoProvider::ALREADY_CLOEXEC);
  stream_limits limits;
  limits.max_fds = max_fds_per_message;
  auto link = rpc_link::connect(kj::mv(stream), limits);
  auto host = link->bootstrap_as<wire::Host>();
  auto disconnected = link->on_disconnect();
  auto res = kj::heap<node_link>(kj::mv(link));
  auto* state = res.get();
  ctx.adopt(id, kj::mv(res));
  serve_api(ctx, id);
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
  tune_allocator();
  caf::actor_system_config cfg;
  // One worker: exported functions run one at a time in the plugin's actor.
  configure_actor_system(cfg, 1);
  caf::actor_system sys{cfg};
  exit_signal done;
  int code = 0;
  auto large = plugin_large_data();
  {
    kj_thread kj{sys};
    auto link_id = kj.next_id();
    auto actor
      = spawn_plugin_actor(sys, std::make_shared<const plugin>(std::move(def)),
                           plugin_node{kj.gateway(), link_id, large.pool});
    kj.post([&done, actor, name, link_id, large](kj_context& ctx) {
      ctx.set_large_data(large);
      serve_remote_functions(ctx);
      connect_to_node(ctx, link_id, plugin_fd,
                      make_plugin_server(ctx, actor, link_id), name,
                      protocol_version, [&done](int c) { done.set(c); });
    });
    code = done.wait();
    // The node is gone or said goodbye: run exit() in the actor and finish.
    caf::anon_send(actor, exit_atom_v);
    sys.await_all_actors_done();
    kj.stop();
  }
  return code;
}

} // namespace joy
