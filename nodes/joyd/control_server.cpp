// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "nodes/joyd/control_server.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

#include <kj/async-unix.h>

#include "actors/node/plugin_source.hpp"
#include "runtime/call_control.hpp"
#include "runtime/log.hpp"
#include "runtime/protocol.hpp"
#include "runtime/rpc_link.hpp"
#include "runtime/unique_fd.hpp"
#include "runtime/value_codec.hpp"
#include "runtime/value_wire.hpp"
#include "schema/node.capnp.h"

namespace joy {

namespace {

/// kj → CAF requests that only read state.
constexpr auto quick = 30 * kj::SECONDS;

/// Installing copies and hashes a folder.
constexpr auto slow = 10 * kj::MINUTES;

template <class T>
caf::expected<T> take(const caf::message& msg) {
  if (msg.match_elements<T>())
    return msg.get_as<T>(0);
  if (msg.match_elements<caf::error>())
    return msg.get_as<caf::error>(0);
  return make_error(errc::internal, "unexpected response from the node actor");
}

void write_info(const plugin_info& x, wire::PluginInfo::Builder out) {
  out.setName(x.record.name.empty() ? x.status.name : x.record.name);
  out.setVersion(x.record.version);
  out.setType(x.record.type);
  out.setState(std::string{to_string(x.status.state)});
  out.setSource(x.record.source);
  out.setSha256(x.record.sha256);
  out.setInstalledAt(x.record.installed_at);
  out.setUpdatedAt(x.record.updated_at);
  out.setPid(x.status.pid);
  out.setLastError(x.status.last_error);
  out.setManifest(x.record.manifest);
  out.setPath(x.record.path);
  out.setCalls(x.status.calls);
  out.setErrors(x.status.errors);
  out.setP50Us(x.status.p50_us);
  out.setMemoryBytes(x.status.memory_bytes);
}

void write_status(const node_status& x, wire::NodeStatus::Builder out) {
  out.setNodeId(x.node_id);
  out.setVersion(x.version);
  out.setAddress(x.address);
  out.setStartedAt(x.started_at);
  out.setUptimeMs(x.uptime_ms);
  auto res = out.initResources();
  res.setCpus(x.cpus);
  res.setMemoryBytes(x.memory_bytes);
  res.setGpus(x.gpus);
  auto plugins = out.initPlugins(static_cast<unsigned>(x.plugins.size()));
  for (unsigned i = 0; i < x.plugins.size(); ++i)
    write_info(x.plugins[i], plugins[i]);
  out.setSandbox(x.sandbox);
  out.setPid(x.pid);
  out.setHome(x.home);
  out.setHead(x.head);
  auto services = out.initServices(static_cast<unsigned>(x.services.size()));
  for (unsigned i = 0; i < x.services.size(); ++i)
    services.set(i, x.services[i]);
}

class control_server;

/// What an authenticated client may call.
class node_server final : public wire::Node::Server {
public:
  node_server(kj_context& ctx, const control_server_config& cfg)
    : ctx_(ctx), cfg_(cfg) {
    // nop
  }

  kj::Promise<void> status(StatusContext context) override {
    return ctx_.request(cfg_.node, quick, status_atom_v)
      .then([context](caf::message msg) mutable {
        auto out = context.getResults().initResult();
        auto res = take<node_status>(msg);
        if (res)
          write_status(*res, out.initOk());
        else
          write_error(res.error(), out.initErr());
      });
  }

  kj::Promise<void> install(InstallContext context) override {
    std::string source = context.getParams().getSource();
    // Relative paths would resolve against joyd's directory, not the
    // caller's: refuse them here, before anything else happens.
    if (auto src = parse_plugin_source(source); !src) {
      write_error(src.error(), context.getResults().initResult().initErr());
      return kj::READY_NOW;
    }
    return ctx_.request(cfg_.node, slow, install_atom_v, std::move(source))
      .then([context](caf::message msg) mutable {
        plugin_reply(take<plugin_info>(msg), context.getResults().initResult());
      });
  }

  kj::Promise<void> plugins(PluginsContext context) override {
    return ctx_.request(cfg_.node, quick, list_atom_v)
      .then([context](caf::message msg) mutable {
        auto out = context.getResults().initResult();
        auto res = take<std::vector<plugin_info>>(msg);
        if (!res) {
          write_error(res.error(), out.initErr());
          return;
        }
        auto list = out.initOk(static_cast<unsigned>(res->size()));
        for (unsigned i = 0; i < res->size(); ++i)
          write_info((*res)[i], list[i]);
      });
  }

  kj::Promise<void> call(CallContext context) override {
    context.allowCancellation();
    auto params = context.getParams();
    call_request req;
    req.method = params.getMethod();
    value_codec codec{ctx_, false}; // the CLI passes no fds
    auto in = read_arguments(params.getArgs(), params.getKwargs(), &codec);
    if (!in) {
      write_error(in.error(), context.getResults().initResult().initErr());
      return kj::READY_NOW;
    }
    req.args = std::move(in->args);
    req.kwargs = std::move(in->kwargs);
    auto ms = params.getTimeoutMs();
    req.timeout = ms > 0 ? caf::timespan{std::chrono::milliseconds{ms}}
                         : cfg_.call_timeout;
    // The client going away cancels the call down to the plugin; the
    // client's monitor hears the plugin's progress.
    req.control = std::make_shared<call_control>(
      &ctx_.thread(), params.hasMonitor()
                        ? report_to_monitor(ctx_, params.getMonitor())
                        : nullptr);
    auto control = req.control;
    std::string plugin = params.getPlugin();
    // The plugin host enforces the deadline (renewed by progress); this one
    // only bounds a node actor that never answers.
    auto answer = ctx_.request(cfg_.node, 24 * 3600 * kj::SECONDS, call_atom_v,
                               std::move(plugin), std::move(req));
    return cancel_on_drop(kj::mv(answer), std::move(control))
      .then([this, context](caf::message msg) mutable {
        value_codec codec{ctx_, false}; // the CLI passes no fds
        write_result(take<value>(msg), context.getResults().initResult(),
                     &codec);
      });
  }

  kj::Promise<void> attachUi(AttachUiContext context) override {
    value_codec codec{ctx_, false}; // the CLI passes no fds
    auto out = context.getResults().initResult();
    auto handler = codec.read_function(context.getParams().getHandler());
    if (!handler) {
      write_error(handler.error(), out.initErr());
      return kj::READY_NOW;
    }
    return ctx_.request(cfg_.core, quick, attach_atom_v, std::move(*handler))
      .then([context](caf::message msg) mutable {
        auto out = context.getResults().initResult();
        auto res = take<bool>(msg);
        if (res)
          out.initOk().setNull();
        else
          write_error(res.error(), out.initErr());
      });
  }

  kj::Promise<void> startPlugin(StartPluginContext context) override {
    std::string name = context.getParams().getName();
    return ctx_.request(cfg_.node, quick, start_atom_v, std::move(name))
      .then([context](caf::message msg) mutable {
        plugin_reply(take<plugin_info>(msg), context.getResults().initResult());
      });
  }

  kj::Promise<void> stopPlugin(StopPluginContext context) override {
    std::string name = context.getParams().getName();
    return ctx_.request(cfg_.node, quick, stop_atom_v, std::move(name))
      .then([context](caf::message msg) mutable {
        plugin_reply(take<plugin_info>(msg), context.getResults().initResult());
      });
  }

  kj::Promise<void> uninstall(UninstallContext context) override {
    std::string name = context.getParams().getName();
    return ctx_.request(cfg_.node, slow, uninstall_atom_v, std::move(name))
      .then([context](caf::message msg) mutable {
        plugin_reply(take<plugin_info>(msg), context.getResults().initResult());
      });
  }

  kj::Promise<void> rollback(RollbackContext context) override {
    std::string name = context.getParams().getName();
    return ctx_.request(cfg_.node, quick, rollback_atom_v, std::move(name))
      .then([context](caf::message msg) mutable {
        plugin_reply(take<plugin_info>(msg), context.getResults().initResult());
      });
  }

  kj::Promise<void> shutdown(ShutdownContext) override {
    log(log_level::info, "joyd", "shutdown requested by a client");
    if (cfg_.on_shutdown)
      cfg_.on_shutdown();
    return kj::READY_NOW;
  }

private:
  static void plugin_reply(const caf::expected<plugin_info>& res,
                           wire::PluginResult::Builder out) {
    if (res)
      write_info(*res, out.initOk());
    else
      write_error(res.error(), out.initErr());
  }

  kj_context& ctx_;
  const control_server_config& cfg_;
};

/// The bootstrap: nothing but the handshake before it succeeds.
class gate_server final : public wire::Gate::Server {
public:
  gate_server(kj_context& ctx, const control_server_config& cfg)
    : ctx_(ctx), cfg_(cfg) {
    // nop
  }

  kj::Promise<void> hello(HelloContext context) override {
    auto params = context.getParams();
    auto out = context.getResults().initResult();
    if (params.getVersion() != protocol_version) {
      write_error(errc::version_mismatch,
                  "client speaks protocol "
                    + std::to_string(params.getVersion()) + ", this node (Joy "
                    + std::string{version()} + ") speaks "
                    + std::to_string(protocol_version),
                  {}, out.initErr());
      return kj::READY_NOW;
    }
    auto session = out.initOk();
    session.setNode(kj::heap<node_server>(ctx_, cfg_));
    session.setNodeId(cfg_.node_id);
    session.setVersion(std::string{version()});
    return kj::READY_NOW;
  }

private:
  kj_context& ctx_;
  const control_server_config& cfg_;
};

class control_server final : public kj_resource,
                             private kj::TaskSet::ErrorHandler {
public:
  control_server(kj_context& ctx, unique_fd listener, control_server_config cfg)
    : ctx_(ctx),
      listener_(std::move(listener)),
      cfg_(std::move(cfg)),
      tasks_(*this) {
    observer_ = kj::heap<kj::UnixEventPort::FdObserver>(
      ctx_.event_port(), listener_.get(),
      kj::UnixEventPort::FdObserver::OBSERVE_READ);
    tasks_.add(accept_loop());
  }

  ~control_server() noexcept(false) override {
    // Stop accepting first; connections close as the map goes.
    ::unlink(cfg_.socket_path.c_str());
  }

private:
  void taskFailed(kj::Exception&& ex) override {
    if (ex.getType() != kj::Exception::Type::DISCONNECTED)
      log(log_level::warning, "control", ex.getDescription().cStr());
  }

  kj::Promise<void> accept_loop() {
    accept_all();
    return observer_->whenBecomesReadable().then(
      [this] { return accept_loop(); });
  }

  void accept_all() {
    for (;;) {
      int fd = ::accept4(listener_.get(), nullptr, nullptr,
                         SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) {
        if (errno == EINTR)
          continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
          log(log_level::warning, "control", "accept: ", std::strerror(errno));
        return;
      }
      unique_fd conn{fd};
      ucred cred{};
      socklen_t len = sizeof(cred);
      if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0
          || (cred.uid != ::getuid() && cred.uid != 0)) {
        log(log_level::warning, "control", "refused a connection from uid ",
            cred.uid, " (pid ", cred.pid, ")");
        continue;
      }
      serve(std::move(conn));
    }
  }

  void serve(unique_fd conn) {
    auto id = ++next_connection_;
    auto stream = ctx_.low_level().wrapUnixSocketFd(
      conn.release(), kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP
                        | kj::LowLevelAsyncIoProvider::ALREADY_CLOEXEC
                        | kj::LowLevelAsyncIoProvider::ALREADY_NONBLOCK);
    stream_limits limits;
    limits.max_fds = 0; // the CLI never passes fds
    auto link = rpc_link::serve(kj::mv(stream), limits,
                                kj::heap<gate_server>(ctx_, cfg_));
    tasks_.add(link->on_disconnect().then([this, id] {
      // Destroy the connection in a later turn, outside its own callback.
      return kj::evalLater([this, id] { connections_.erase(id); });
    }));
    connections_.emplace(id, kj::mv(link));
  }

  kj_context& ctx_;
  unique_fd listener_;
  control_server_config cfg_;
  kj::Own<kj::UnixEventPort::FdObserver> observer_;
  std::map<uint64_t, kj::Own<rpc_link>> connections_;
  uint64_t next_connection_ = 0;
  kj::TaskSet tasks_;
};

} // namespace

caf::error start_control_server(kj_context& ctx, uint64_t id,
                                control_server_config cfg) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (cfg.socket_path.size() >= sizeof(addr.sun_path))
    return make_error(errc::io_error,
                      "socket path " + cfg.socket_path + " is longer than "
                        + std::to_string(sizeof(addr.sun_path) - 1)
                        + " bytes; use a shorter JOY_HOME");
  std::strcpy(addr.sun_path, cfg.socket_path.c_str());
  unique_fd fd{
    ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)};
  if (!fd)
    return make_error(errc::io_error,
                      std::string{"socket: "} + std::strerror(errno));
  // The caller holds the home's lock, so a socket file here is a leftover.
  ::unlink(cfg.socket_path.c_str());
  // Never briefly wider than 0600.
  auto old_mask = ::umask(077);
  int rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int bind_errno = errno;
  ::umask(old_mask);
  if (rc != 0)
    return make_error(errc::io_error, "cannot bind " + cfg.socket_path + ": "
                                        + std::strerror(bind_errno));
  ::chmod(cfg.socket_path.c_str(), 0600);
  if (::listen(fd.get(), 64) != 0)
    return make_error(errc::io_error,
                      std::string{"listen: "} + std::strerror(errno));
  ctx.adopt(id, kj::heap<control_server>(ctx, std::move(fd), std::move(cfg)));
  return caf::none;
}

} // namespace joy
