// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/plugin_host/plugin_link.hpp"

#include <kj/debug.h>

#include "runtime/api_op.hpp"
#include "runtime/log.hpp"
#include "runtime/protocol.hpp"
#include "runtime/value_codec.hpp"
#include "runtime/value_wire.hpp"

namespace joy {

namespace {

/// The node's side of `Host`: the bootstrap capability the plugin greets.
class host_server final : public wire::Host::Server {
public:
  explicit host_server(plugin_link& link) : link_(link) {
    // nop
  }

  kj::Promise<void> hello(HelloContext context) override {
    return link_.hello(context);
  }

private:
  plugin_link& link_;
};

/// Waits until `*deadline`, which may move later while it waits.
kj::Promise<void> wait_until(kj::Timer& timer,
                             std::shared_ptr<kj::TimePoint> deadline) {
  auto at = *deadline;
  return timer.atTime(at).then([&timer, deadline, at]() -> kj::Promise<void> {
    if (*deadline > at)
      return wait_until(timer, deadline);
    return kj::READY_NOW;
  });
}

/// A person may take a while to answer a prompt; every other api call is
/// quick. The plugin's own deadline is usually shorter.
constexpr auto api_time = 60 * kj::MINUTES;

/// The `Api` one plugin gets; the capability itself is its identity, so
/// every request knows its caller.
class api_server final : public wire::Api::Server {
public:
  api_server(kj_context& ctx, std::string name, api_handler api,
             std::shared_ptr<plugin_link::progress_table> progress,
             kj_routes routes)
    : ctx_(ctx),
      name_(std::move(name)),
      api_(std::move(api)),
      progress_(std::move(progress)),
      routes_(std::move(routes)) {
    // nop
  }

  /// Progress of a call to this plugin: renews its deadline, tells its
  /// caller. Reports for calls that already ended are dropped.
  kj::Promise<void> callProgress(CallProgressContext context) override {
    auto params = context.getParams();
    auto i = progress_->find(params.getCallId());
    if (i == progress_->end())
      return kj::READY_NOW;
    auto& call = i->second;
    *call.deadline = ctx_.timer().now() + call.window;
    if (call.upstream)
      call.upstream->progress(params.getFraction(), params.getMessage());
    return kj::READY_NOW;
  }

  kj::Promise<void> log(LogContext context) override {
    auto params = context.getParams();
    auto level = log_level::info;
    switch (params.getLevel()) {
      case wire::LogLevel::DEBUG:
        level = log_level::debug;
        break;
      case wire::LogLevel::WARNING:
        level = log_level::warning;
        break;
      case wire::LogLevel::ERROR:
        level = log_level::error;
        break;
      default:
        break;
    }
    joy::log(level, "plugin " + name_, params.getMessage().cStr());
    return kj::READY_NOW;
  }

  kj::Promise<void> request(RequestContext context) override {
    context.allowCancellation();
    auto params = context.getParams();
    auto raw_op = static_cast<uint16_t>(params.getOp());
    auto op = api_op_from_wire(raw_op);
    auto out = context.getResults().initResult();
    if (!op) {
      write_error(errc::unimplemented,
                  "this node does not know api call #" + std::to_string(raw_op),
                  {}, out.initErr());
      return kj::READY_NOW;
    }
    if (auto* object = own_service(*op, params.getArgs())) {
      if (*op == api_op::call_service)
        return call_service(context, *object);
      value_codec codec{ctx_};
      if (auto err = write_value(*object, out.initOk(), &codec))
        write_error(err, out.initErr());
      return kj::READY_NOW;
    }
    value_codec codec{ctx_};
    auto in = read_arguments(params.getArgs(), params.getKwargs(), &codec);
    if (!in) {
      write_error(in.error(), out.initErr());
      return kj::READY_NOW;
    }
    if (*op == api_op::call) {
      if (auto* link = running_target(in->args))
        return call_running(context, *link, std::move(*in));
      if (auto where = remote_target(in->args))
        return call_remote(context, *where, std::move(*in));
    }
    if (!api_) {
      write_error(errc::unavailable, "this node serves no api", {},
                  out.initErr());
      return kj::READY_NOW;
    }
    // Until the node has this plugin's own changes of the directory, its
    // lookups wait behind them in the node actor, as they would have.
    auto changes
      = *op == api_op::register_service || *op == api_op::unregister_service;
    if (changes)
      ++changing_;
    return ctx_
      .request(api_, api_time, api_atom_v, name_, raw_op, std::move(in->args),
               std::move(in->kwargs))
      .then([this, context](caf::message msg) mutable {
        value_codec codec{ctx_};
        write_response(msg, context.getResults().initResult(), &codec,
                       "the node's api");
      })
      .attach(kj::defer([this, changes] {
        if (changes)
          --changing_;
      }));
  }

private:
  /// The object of a service of this node that a `get_service` or
  /// `call_service` names, from the snapshot; null where the node actor
  /// answers (any other op, a service the snapshot lacks, malformed
  /// arguments, which it explains).
  const value* own_service(api_op op, capnp::List<wire::Value>::Reader args) {
    if (!routes_.services || changing_ > 0)
      return nullptr;
    if (op == api_op::call_service) {
      if (args.size() != 3 || !args[1].isString() || !args[2].isList())
        return nullptr;
    } else if (op != api_op::get_service || args.size() != 1) {
      return nullptr;
    }
    if (!args[0].isString())
      return nullptr;
    auto id = args[0].getString();
    return routes_.services->find(std::string_view{id.begin(), id.size()});
  }

  /// Calls the method at once, on this thread: the arguments go to the
  /// provider as they came, and its answer comes back the same way,
  /// capabilities and all, as Cap'n Proto forwards a call on a function
  /// value this node relays.
  kj::Promise<void> call_service(RequestContext context, const value& object) {
    auto params = context.getParams();
    auto args = params.getArgs();
    auto method = method_of(object, args[1].getString().cStr());
    auto callable
      = method
          ? callable_for(ctx_, *method)
          : caf::expected<wire::Callable::Client>{std::move(method.error())};
    if (!callable) {
      write_error(callable.error(), context.getResults().getResult().initErr());
      return kj::READY_NOW;
    }
    auto req = callable->callRequest();
    req.setArgs(args[2].getList());
    req.setKwargs(params.getKwargs());
    auto name = method->name;
    return req.send().then(
      [context](capnp::Response<wire::Callable::CallResults> resp) mutable {
        context.getResults().setResult(resp.getResult());
      },
      [context, name](kj::Exception&& ex) mutable {
        write_error(error_from_exception(ex, "function '" + name + "'"),
                    context.getResults().getResult().initErr());
      });
  }

  /// The link of the plugin an `api.call` names, if it runs here.
  plugin_link* running_target(const value_list& args) {
    if (!routes_.running || args.size() < 2 || args[1].as_string() == nullptr)
      return nullptr;
    auto* target = args[0].as_string();
    return target != nullptr ? routes_.running->find(*target) : nullptr;
  }

  /// Where the plugin an `api.call` names was reached on another node, if
  /// the node actor need not be asked again (remote_plugins.hpp).
  std::optional<location> remote_target(const value_list& args) {
    if (!routes_.remote || args.size() < 2 || args[1].as_string() == nullptr)
      return std::nullopt;
    auto* target = args[0].as_string();
    if (target == nullptr)
      return std::nullopt;
    return routes_.remote->find(*target, ctx_.timer().now());
  }

  /// `api.call`'s arguments (plugin, method, args...) as a call request.
  static call_request request_of(arguments& in) {
    call_request req;
    req.method = *in.args[1].as_string();
    req.args.assign(std::make_move_iterator(in.args.begin() + 2),
                    std::make_move_iterator(in.args.end()));
    req.kwargs = std::move(in.kwargs);
    return req;
  }

  /// `api.call` of a plugin running on this node, straight to its link:
  /// the path `joy call` and the node actor end in, without the actors.
  kj::Promise<void> call_running(RequestContext context, plugin_link& link,
                                 arguments in) {
    return answer(context, link.call(request_of(in)));
  }

  /// `api.call` of a plugin reached on another node before, straight to
  /// the link to that node, as the node actor would have sent it.
  kj::Promise<void> call_remote(RequestContext context, const location& where,
                                arguments in) {
    auto plugin = *in.args[0].as_string();
    return answer(context,
                  routes_.remote->call(where, std::move(plugin), request_of(in),
                                       ctx_.timer(), api_time));
  }

  kj::Promise<void> answer(RequestContext context,
                           kj::Promise<caf::expected<value>> result) {
    return result.then([this, context](caf::expected<value> res) mutable {
      value_codec codec{ctx_};
      write_result(res, context.getResults().getResult(), &codec);
    });
  }

  kj_context& ctx_;
  std::string name_;
  api_handler api_;
  std::shared_ptr<plugin_link::progress_table> progress_;
  kj_routes routes_;
  /// This plugin's register/unregister_service calls not yet answered.
  std::size_t changing_ = 0;
};

} // namespace

plugin_link::plugin_link(kj_context& ctx, uint64_t id, plugin_host_actor host,
                         launched_process proc, std::string name,
                         std::string node_id, api_handler api,
                         kj::Duration start_timeout, std::size_t max_in_flight,
                         stream_limits limits, kj_routes routes,
                         kj::Duration call_timeout)
  : ctx_(ctx),
    id_(id),
    host_(std::move(host)),
    proc_(std::move(proc.proc)),
    name_(std::move(name)),
    node_id_(std::move(node_id)),
    api_(std::move(api)),
    max_in_flight_(max_in_flight),
    routes_(std::move(routes)),
    call_timeout_(call_timeout),
    tasks_(*this) {
  shared_ = std::make_shared<shared_state>();
  shared_->host = host_;
  shared_->id = id_;
  auto stream = ctx_.low_level().wrapUnixSocketFd(
    proc.socket->release(), kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP
                              | kj::LowLevelAsyncIoProvider::ALREADY_CLOEXEC);
  link_ = rpc_link::serve(kj::mv(stream), limits, kj::heap<host_server>(*this));
  tasks_.add(link_->on_disconnect().then([this] { on_disconnect(); }));
  exit_observer_ = kj::heap<kj::UnixEventPort::FdObserver>(
    ctx_.event_port(), proc_->exit_fd(),
    kj::UnixEventPort::FdObserver::OBSERVE_READ);
  if (proc.output && *proc.output) {
    drain_ = kj::heap<log_drain>(ctx_.event_port(), std::move(*proc.output),
                                 proc.log_file, proc.log_cap);
    tasks_.add(drain_->run());
  }
  tasks_.add(exit_observer_->whenBecomesReadable().then([this] {
    // Its last words first, then why it went.
    if (drain_)
      drain_->flush();
    auto status = proc_->reap();
    // A pidfd is readable only once the process exited; reap cannot miss.
    on_exit(status ? *status : exit_status{exit_status::how::signaled, 0});
  }));
  tasks_.add(ctx_.timer().afterDelay(start_timeout).then([this, start_timeout] {
    if (!ready_ && !exited_)
      fail("did not say hello and finish setup() within "
           + std::to_string(start_timeout / kj::MILLISECONDS) + " ms");
  }));
}

plugin_link::~plugin_link() noexcept(false) {
  // Members go in reverse order: the tasks first (they use everything
  // else), then the exit watch, the connection, and last the process, whose
  // destructor kills and reaps it if it still runs.
  unlist();
}

void plugin_link::unlist() {
  if (routes_.running)
    routes_.running->remove(name_, this);
}

void plugin_link::shared_state::report_down(std::string reason) {
  if (down_sent)
    return;
  down_sent = true;
  kj_context::send(host, down_atom_v, id, std::move(reason));
}

void plugin_link::taskFailed(kj::Exception&& ex) {
  if (ex.getType() != kj::Exception::Type::DISCONNECTED)
    log(log_level::warning, "plugin " + name_, ex.getDescription().cStr());
}

namespace {

/// The method names of a plugin's `describe()` answer, each with its
/// parameter names where the plugin gave them.
void read_methods(const value& desc, std::vector<std::string>& methods,
                  std::vector<std::vector<std::string>>& params) {
  auto* d = desc.as_map();
  auto* m = d != nullptr ? d->find("methods") : nullptr;
  if (m == nullptr || m->as_map() == nullptr)
    return;
  for (auto& [name, info] : *m->as_map()) {
    methods.push_back(name);
    auto& names = params.emplace_back();
    auto* i = info.as_map();
    auto* ps = i != nullptr ? i->find("params") : nullptr;
    if (ps == nullptr || ps->as_list() == nullptr)
      continue;
    for (auto& p : *ps->as_list())
      if (p.as_string() != nullptr)
        names.push_back(*p.as_string());
  }
}

} // namespace

kj::Promise<void> plugin_link::hello(
  capnp::CallContext<wire::Host::HelloParams, wire::Host::HelloResults>
    context) {
  auto params = context.getParams();
  auto result = context.getResults().initResult();
  if (said_hello_) {
    write_error(errc::failed_precondition, "hello was already said", {},
                result.initErr());
    return kj::READY_NOW;
  }
  said_hello_ = true;
  if (params.getVersion() != protocol_version) {
    auto why = "plugin speaks protocol " + std::to_string(params.getVersion())
               + ", this node speaks " + std::to_string(protocol_version)
               + "; rebuild the plugin against this Joy";
    write_error(errc::version_mismatch, why, {}, result.initErr());
    fail(why);
    return kj::READY_NOW;
  }
  auto plugin = params.getPlugin();
  plugin_ = plugin;
  auto ok = result.initOk();
  ok.setApi(kj::heap<api_server>(ctx_, name_, api_, progress_, routes_));
  auto identity = ok.initIdentity();
  identity.setPlugin(name_);
  identity.setNode(node_id_);
  identity.setWorkspace("public");
  // ImJoy's lifecycle: setup() once, before the first call. Its methods,
  // which make the plugin's default service, are asked for at once: they
  // were fixed when it exported them, and the answer then waits for setup
  // instead of costing a round trip after it (B8).
  auto setup = plugin.setupRequest().send();
  auto describe = plugin.describeRequest().send();
  tasks_.add(setup.then(
    [this, describe = kj::mv(describe)](
      capnp::Response<wire::Plugin::SetupResults> resp) mutable
    -> kj::Promise<void> {
      auto res = read_result(resp.getResult());
      if (!res) {
        fail("setup() failed: " + message_of(res.error()));
        return kj::READY_NOW;
      }
      if (exited_ || stopping_)
        return kj::READY_NOW;
      return describe.then(
        [this](capnp::Response<wire::Plugin::DescribeResults> resp) {
          std::vector<std::string> methods;
          std::vector<std::vector<std::string>> params;
          if (auto desc = read_result(resp.getResult()))
            read_methods(*desc, methods, params);
          if (exited_ || stopping_)
            return;
          ready_ = true;
          if (routes_.running)
            routes_.running->add(name_, this);
          kj_context::send(host_, ready_atom_v, id_,
                           static_cast<int32_t>(proc_->pid()),
                           std::move(methods), std::move(params));
        },
        [this](kj::Exception&& ex) {
          fail(std::string{"describe() failed: "} + ex.getDescription().cStr());
        });
    },
    [this](kj::Exception&& ex) {
      fail(std::string{"setup() failed: "} + ex.getDescription().cStr());
    }));
  return kj::READY_NOW;
}

void plugin_link::call(call_request req, reply_handle rh,
                       kj::Duration timeout) {
  ctx_.tasks().add(
    send_call(std::move(req), timeout)
      .then([rh = std::move(rh)](caf::expected<value> res) mutable {
        rh.deliver(std::move(res));
      }));
}

kj::Promise<caf::expected<value>> plugin_link::call(call_request req) {
  auto timeout = req.timeout.count() > 0 ? req.timeout.count() * kj::NANOSECONDS
                                         : call_timeout_;
  return send_call(std::move(req), timeout);
}

kj::Promise<caf::expected<value>> plugin_link::send_call(call_request req,
                                                         kj::Duration timeout) {
  using result = caf::expected<value>;
  wire::Plugin::Client* plugin = nullptr;
  KJ_IF_MAYBE (p, plugin_) {
    plugin = p;
  }
  if (plugin == nullptr || exited_)
    return result{
      make_error(errc::unavailable, "plugin '" + name_ + "' is not running")};
  if (*in_flight_counter_ >= max_in_flight_) {
    // Bounded: beyond this a busy plugin gets an error, not our memory.
    return result{
      make_error(errc::overloaded, "plugin '" + name_ + "' has "
                                     + std::to_string(max_in_flight_)
                                     + " calls in flight; try again later")};
  }
  auto request = plugin->callRequest();
  request.setService(req.service);
  request.setMethod(req.method);
  value_codec codec{ctx_};
  if (auto err = write_list(
        req.args, request.initArgs(static_cast<unsigned>(req.args.size())),
        &codec))
    return result{std::move(err)};
  if (auto err = write_map(
        req.kwargs,
        request.initKwargs(static_cast<unsigned>(req.kwargs.size())), &codec))
    return result{std::move(err)};
  request.setTimeoutMs(static_cast<uint64_t>(timeout / kj::MILLISECONDS));
  // The deadline moves each time the plugin reports progress.
  auto deadline = std::make_shared<kj::TimePoint>(ctx_.timer().now() + timeout);
  auto call_id = ++last_call_id_;
  request.setCallId(call_id);
  progress_->emplace(call_id, call_progress{deadline, timeout, req.control});
  auto name = name_;
  auto method = req.method;
  auto sent = request.send().then(
    [&ctx = ctx_](capnp::Response<wire::Plugin::CallResults> resp) {
      value_codec codec{ctx};
      return read_result(resp.getResult(), &codec);
    },
    [name, shared = shared_](kj::Exception&& ex) -> caf::expected<value> {
      // The host hears first; see the file comment.
      if (ex.getType() == kj::Exception::Type::DISCONNECTED)
        shared->report_down("the plugin's connection broke during a call");
      return error_from_exception(ex, "plugin '" + name + "'");
    });
  // Dropping the losing branch cancels the call in the plugin: the
  // deadline passing, or the caller giving up.
  auto expired = wait_until(ctx_.timer(), deadline)
                   .then([name, method, timeout]() -> caf::expected<value> {
                     return make_error(
                       errc::timeout,
                       name + "." + method
                         + " did not return or report progress "
                           "within "
                         + std::to_string(timeout / kj::MILLISECONDS) + " ms");
                   });
  auto race = sent.exclusiveJoin(kj::mv(expired));
  if (req.control)
    race = race.exclusiveJoin(
      when_cancelled(*req.control)
        .then([name, method]() -> caf::expected<value> {
          return make_error(errc::cancelled, "the caller of " + name + "."
                                               + method + " gave up");
        }));
  ++*in_flight_counter_;
  return race
    .then([stats = stats_, started = std::chrono::steady_clock::now()](
            caf::expected<value> res) {
      if (stats)
        stats->record(std::chrono::steady_clock::now() - started,
                      static_cast<bool>(res));
      return res;
    })
    .attach(
      kj::defer([counter = in_flight_counter_, progress = progress_, call_id] {
        --*counter;
        progress->erase(call_id);
      }));
}

void plugin_link::fail(std::string reason) {
  if (failure_.empty())
    failure_ = std::move(reason);
  // A plugin that cannot be used is of no use running.
  stop(0 * kj::NANOSECONDS);
}

void plugin_link::stop(kj::Duration grace) {
  unlist();
  if (exited_)
    return;
  if (!stopping_) {
    stopping_ = true;
    KJ_IF_MAYBE (p, plugin_) {
      // Ask for exit(); close the connection once it answered (or failed),
      // and the plugin exits when its connection closes.
      tasks_.add(p->exitRequest()
                   .send()
                   .ignoreResult()
                   .catch_([](kj::Exception&&) {})
                   .then([this] { close_connection(); }));
    } else {
      close_connection();
    }
  }
  if (grace == 0 * kj::NANOSECONDS) {
    kill();
    return;
  }
  tasks_.add(ctx_.timer().afterDelay(grace).then([this] {
    if (!exited_) {
      log(log_level::warning, "plugin " + name_,
          "did not exit within its grace period; killing it");
      kill();
    }
  }));
}

void plugin_link::kill() {
  if (proc_ && !exited_)
    proc_->kill();
}

void plugin_link::close_connection() {
  plugin_ = nullptr;
  // Destroy the connection in a later turn: we may be inside one of its
  // callbacks.
  if (link_.get() != nullptr) {
    auto link = kj::mv(link_);
    tasks_.add(
      kj::evalLater([link = kj::mv(link)]() mutable { link = nullptr; }));
  }
}

namespace {

/// From a plugin's hang-up to SIGKILL, unless it exits by itself first.
constexpr kj::Duration hangup_grace = 500 * kj::MILLISECONDS;

} // namespace

void plugin_link::on_disconnect() {
  if (exited_)
    return;
  if (link_.get() != nullptr) {
    KJ_IF_MAYBE (reason, link_->stream().violation_reason()) {
      if (failure_.empty())
        failure_ = std::string{"protocol violation: "} + reason->cStr();
    }
  }
  plugin_ = nullptr;
  unlist();
  if (!stopping_)
    shared_->report_down(failure_.empty() ? "the plugin's connection closed"
                                          : failure_);
  // A plugin that broke the protocol goes at once. One that hung up is
  // useless too, but gets a moment to exit on its own, so that its exit
  // status (not our SIGKILL) says why it went.
  if (!failure_.empty()) {
    kill();
  } else if (!stopping_) {
    tasks_.add(ctx_.timer().afterDelay(hangup_grace).then([this] {
      if (!exited_)
        kill();
    }));
  }
}

void plugin_link::on_exit(exit_status status) {
  if (exited_)
    return;
  exited_ = true;
  plugin_ = nullptr;
  unlist();
  std::string reason = failure_.empty()
                         ? status.describe()
                         : failure_ + " (" + status.describe() + ")";
  if (stopping_ && failure_.empty())
    log(log_level::debug, "plugin " + name_, "stopped: ", reason);
  else
    log(log_level::info, "plugin " + name_, "exited: ", reason);
  kj_context::send(host_, exited_atom_v, id_, std::move(reason));
}

} // namespace joy
