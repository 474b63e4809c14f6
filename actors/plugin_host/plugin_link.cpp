// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/plugin_host/plugin_link.hpp"

#include <kj/debug.h>

#include "runtime/log.hpp"
#include "runtime/protocol.hpp"
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

/// The `Api` one plugin gets; the capability itself is its identity.
class api_server final : public wire::Api::Server {
public:
  explicit api_server(std::string name) : name_(std::move(name)) {
    // nop
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

private:
  std::string name_;
};

caf::error from_kj(const kj::Exception& ex, const std::string& name) {
  switch (ex.getType()) {
    case kj::Exception::Type::DISCONNECTED:
      return make_error(errc::disconnected,
                        "plugin '" + name + "' went away during the call");
    case kj::Exception::Type::OVERLOADED:
      return make_error(errc::overloaded,
                        "plugin '" + name + "' is overloaded");
    case kj::Exception::Type::UNIMPLEMENTED:
      return make_error(errc::unimplemented, "plugin '" + name
                                               + "' does not implement this: "
                                               + ex.getDescription().cStr());
    default:
      return make_error(errc::plugin_error, "plugin '" + name + "' failed: "
                                              + ex.getDescription().cStr());
  }
}

} // namespace

plugin_link::plugin_link(kj_context& ctx, uint64_t id, plugin_host_actor host,
                         launched_process proc, std::string name,
                         std::string node_id, kj::Duration start_timeout,
                         stream_limits limits)
  : ctx_(ctx),
    id_(id),
    host_(std::move(host)),
    proc_(std::move(proc.proc)),
    name_(std::move(name)),
    node_id_(std::move(node_id)),
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
  tasks_.add(exit_observer_->whenBecomesReadable().then([this] {
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
  ok.setApi(kj::heap<api_server>(name_));
  auto identity = ok.initIdentity();
  identity.setPlugin(name_);
  identity.setNode(node_id_);
  identity.setWorkspace("public");
  // ImJoy's lifecycle: setup() once, before the first call.
  auto setup = plugin.setupRequest().send();
  tasks_.add(setup.then(
    [this](capnp::Response<wire::Plugin::SetupResults> resp) {
      auto res = read_result(resp.getResult());
      if (!res) {
        fail("setup() failed: " + message_of(res.error()));
        return;
      }
      if (exited_ || stopping_)
        return;
      ready_ = true;
      kj_context::send(host_, ready_atom_v, id_,
                       static_cast<int32_t>(proc_->pid()));
    },
    [this](kj::Exception&& ex) {
      fail(std::string{"setup() failed: "} + ex.getDescription().cStr());
    }));
  return kj::READY_NOW;
}

void plugin_link::call(call_request req, reply_handle rh,
                       kj::Duration timeout) {
  wire::Plugin::Client* plugin = nullptr;
  KJ_IF_MAYBE (p, plugin_) {
    plugin = p;
  }
  if (plugin == nullptr || exited_) {
    rh.deliver(
      make_error(errc::unavailable, "plugin '" + name_ + "' is not running"));
    return;
  }
  auto request = plugin->callRequest();
  request.setService(req.service);
  request.setMethod(req.method);
  if (auto err = write_list(
        req.args, request.initArgs(static_cast<unsigned>(req.args.size())))) {
    rh.deliver(std::move(err));
    return;
  }
  if (auto err = write_map(req.kwargs, request.initKwargs(static_cast<unsigned>(
                                         req.kwargs.size())))) {
    rh.deliver(std::move(err));
    return;
  }
  request.setTimeoutMs(static_cast<uint64_t>(timeout / kj::MILLISECONDS));
  auto name = name_;
  auto method = req.method;
  auto sent = request.send().then(
    [](capnp::Response<wire::Plugin::CallResults> resp) {
      return read_result(resp.getResult());
    },
    [name, shared = shared_](kj::Exception&& ex) -> caf::expected<value> {
      // The host hears first; see the file comment.
      if (ex.getType() == kj::Exception::Type::DISCONNECTED)
        shared->report_down("the plugin's connection broke during a call");
      return from_kj(ex, name);
    });
  // Dropping the losing branch cancels the call in the plugin.
  auto expired = ctx_.timer().afterDelay(timeout).then(
    [name, method, timeout]() -> caf::expected<value> {
      return make_error(errc::timeout,
                        name + "." + method + " did not return within "
                          + std::to_string(timeout / kj::MILLISECONDS) + " ms");
    });
  ctx_.tasks().add(
    sent.exclusiveJoin(kj::mv(expired))
      .then([rh = std::move(rh)](caf::expected<value> res) mutable {
        if (res)
          rh.deliver_value(std::move(*res));
        else
          rh.deliver(std::move(res.error()));
      }));
}

void plugin_link::fail(std::string reason) {
  if (failure_.empty())
    failure_ = std::move(reason);
  // A plugin that cannot be used is of no use running.
  stop(0 * kj::NANOSECONDS);
}

void plugin_link::stop(kj::Duration grace) {
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
  if (!stopping_)
    shared_->report_down(failure_.empty() ? "the plugin's connection closed"
                                          : failure_);
  // A plugin that hung up is useless; make sure it is gone.
  if (!stopping_ || !failure_.empty())
    kill();
}

void plugin_link::on_exit(exit_status status) {
  if (exited_)
    return;
  exited_ = true;
  plugin_ = nullptr;
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
