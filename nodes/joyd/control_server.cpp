// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "nodes/joyd/control_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <random>

#include <kj/async-unix.h>
#include <kj/compat/tls.h>

#include "actors/cluster/tls.hpp"
#include "actors/node/plugin_source.hpp"
#include "nodes/joyd/cluster_links.hpp"
#include "nodes/joyd/node_wire.hpp"
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

class control_server;

/// A kj exception for a Joy error, which the worker's control loop turns
/// back into one (a heartbeat refused means: join again).
[[noreturn]] void throw_error(const caf::error& err) {
  KJ_FAIL_REQUIRE(message_of(err));
}

/// What an authenticated client may call.
class node_server final : public wire::Node::Server {
public:
  /// `peer`: a node of the cluster over TCP, not the local CLI. Peers get
  /// what nodes need of each other (status, calls, services, installs of
  /// what can travel); running the node stays with its own CLI.
  node_server(kj_context& ctx, const control_server_config& cfg, bool peer)
    : ctx_(ctx), cfg_(cfg), peer_(peer) {
    // nop
  }

  kj::Promise<void> status(StatusContext context) override {
    return ctx_.request(cfg_.node, quick, status_atom_v)
      .then([this, context](caf::message msg) mutable {
        auto out = context.getResults().initResult();
        auto res = take<node_status>(msg);
        if (res)
          write_own_status(*res, out.initOk());
        else
          write_error(res.error(), out.initErr());
      });
  }

  kj::Promise<void> install(InstallContext context) override {
    std::string source = context.getParams().getSource();
    // Relative paths would resolve against joyd's directory, not the
    // caller's: refuse them here, before anything else happens.
    auto src = parse_plugin_source(source);
    if (!src || (peer_ && src->kind == plugin_source::folder)) {
      // A peer sends folders packed (installArchive): a path here would
      // name this machine's files.
      write_error(src ? local_only("install of a folder") : src.error(),
                  context.getResults().initResult().initErr());
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
    // No fds pass here (the CLI's socket, or TCP from another node); large
    // arrays from another node land in this node's shared memory first, so
    // the plugin maps them (value_codec::landing).
    std::string plugin = params.getPlugin();
    auto codec = value_codec::landing(ctx_, plugin);
    auto in = read_arguments(params.getArgs(), params.getKwargs(), &codec);
    auto timeout = timeout_of(params);
    if (codec.settled())
      return route(context, std::move(in), timeout);
    // The bytes must arrive within the call's deadline, and within this
    // node's own: a peer that stalls its stream must not hold the landing
    // pool for longer. What is left of the deadline goes on with the call.
    auto wait = std::min(timeout, cfg_.call_timeout);
    auto started = ctx_.timer().now();
    return codec.finish(std::move(in))
      .exclusiveJoin(
        ctx_.timer()
          .afterDelay(wait.count() * kj::NANOSECONDS)
          .then([wait]() -> caf::expected<arguments> {
            return make_error(
              errc::timeout,
              "the arguments of the call did not arrive within "
                + std::to_string(
                  std::chrono::duration_cast<std::chrono::milliseconds>(wait)
                    .count())
                + " ms");
          }))
      .then(
        [this, context, timeout, started](caf::expected<arguments> in) mutable {
          auto spent = ctx_.timer().now() - started;
          auto left = timeout - caf::timespan{spent / kj::NANOSECONDS};
          return route(
            context, std::move(in),
            std::max(left, caf::timespan{std::chrono::milliseconds{1}}));
        });
  }

  kj::Promise<void> attachUi(AttachUiContext context) override {
    if (peer_) {
      write_error(local_only("attachUi"),
                  context.getResults().initResult().initErr());
      return kj::READY_NOW;
    }
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
    if (peer_) {
      write_error(local_only("startPlugin"),
                  context.getResults().initResult().initErr());
      return kj::READY_NOW;
    }
    std::string name = context.getParams().getName();
    return ctx_.request(cfg_.node, quick, start_atom_v, std::move(name))
      .then([context](caf::message msg) mutable {
        plugin_reply(take<plugin_info>(msg), context.getResults().initResult());
      });
  }

  kj::Promise<void> stopPlugin(StopPluginContext context) override {
    if (peer_) {
      write_error(local_only("stopPlugin"),
                  context.getResults().initResult().initErr());
      return kj::READY_NOW;
    }
    std::string name = context.getParams().getName();
    return ctx_.request(cfg_.node, quick, stop_atom_v, std::move(name))
      .then([context](caf::message msg) mutable {
        plugin_reply(take<plugin_info>(msg), context.getResults().initResult());
      });
  }

  kj::Promise<void> uninstall(UninstallContext context) override {
    if (peer_) {
      write_error(local_only("uninstall"),
                  context.getResults().initResult().initErr());
      return kj::READY_NOW;
    }
    std::string name = context.getParams().getName();
    return ctx_.request(cfg_.node, slow, uninstall_atom_v, std::move(name))
      .then([context](caf::message msg) mutable {
        plugin_reply(take<plugin_info>(msg), context.getResults().initResult());
      });
  }

  kj::Promise<void> rollback(RollbackContext context) override {
    if (peer_) {
      write_error(local_only("rollback"),
                  context.getResults().initResult().initErr());
      return kj::READY_NOW;
    }
    std::string name = context.getParams().getName();
    return ctx_.request(cfg_.node, quick, rollback_atom_v, std::move(name))
      .then([context](caf::message msg) mutable {
        plugin_reply(take<plugin_info>(msg), context.getResults().initResult());
      });
  }

  kj::Promise<void> shutdown(ShutdownContext) override {
    if (peer_)
      throw_error(local_only("shutdown"));
    log(log_level::info, "joyd", "shutdown requested by a client");
    if (cfg_.on_shutdown)
      cfg_.on_shutdown();
    return kj::READY_NOW;
  }

  kj::Promise<void> getService(GetServiceContext context) override {
    std::string id = context.getParams().getId();
    return ctx_.request(cfg_.node, slow, get_atom_v, std::move(id))
      .then([this, context](caf::message msg) mutable {
        value_codec codec{ctx_, false};
        write_result(take<value>(msg), context.getResults().initResult(),
                     &codec);
      });
  }

  kj::Promise<void> nodes(NodesContext context) override {
    auto mine = ctx_.request(cfg_.node, quick, status_atom_v);
    auto members = ctx_.request(cfg_.cluster, quick, nodes_atom_v);
    return mine.then(
      [this, context, members = kj::mv(members)](caf::message mine) mutable {
        return members.then(
          [this, context, mine = kj::mv(mine)](caf::message all) mutable {
            return gather_nodes(context, take<node_status>(mine),
                                take<std::vector<node_entry>>(all));
          });
      });
  }

  kj::Promise<void> installOn(InstallOnContext context) override {
    if (peer_) {
      write_error(local_only("installOn"),
                  context.getResults().initResult().initErr());
      return kj::READY_NOW;
    }
    auto params = context.getParams();
    std::string source = params.getSource();
    std::string node = params.getNode();
    if (auto src = parse_plugin_source(source); !src) {
      write_error(src.error(), context.getResults().initResult().initErr());
      return kj::READY_NOW;
    }
    return ctx_
      .request(cfg_.node, slow, install_atom_v, std::move(source),
               std::move(node))
      .then([context](caf::message msg) mutable {
        plugin_reply(take<plugin_info>(msg), context.getResults().initResult());
      });
  }

  kj::Promise<void> installArchive(InstallArchiveContext context) override;

private:
  /// The call's deadline: the caller's (at most a week), or this node's
  /// default.
  caf::timespan timeout_of(wire::Node::CallParams::Reader params) {
    constexpr uint64_t week_ms = uint64_t{7} * 24 * 3600 * 1000;
    auto ms = params.getTimeoutMs();
    if (ms > 0)
      return std::chrono::milliseconds{
        static_cast<int64_t>(std::min<uint64_t>(ms, week_ms))};
    return cfg_.call_timeout;
  }

  /// Takes a call whose arguments arrived whole where it goes, with
  /// `timeout` left of its deadline.
  kj::Promise<void> route(CallContext context, caf::expected<arguments> in,
                          caf::timespan timeout) {
    auto params = context.getParams();
    if (!in) {
      write_error(in.error(), context.getResults().initResult().initErr());
      return kj::READY_NOW;
    }
    call_request req;
    req.method = params.getMethod();
    req.args = std::move(in->args);
    req.kwargs = std::move(in->kwargs);
    req.timeout = timeout;
    // The client going away cancels the call down to the plugin; the
    // client's monitor hears the plugin's progress.
    req.control = std::make_shared<call_control>(
      &ctx_.thread(), params.hasMonitor()
                        ? report_to_monitor(ctx_, params.getMonitor())
                        : nullptr);
    auto control = req.control;
    std::string plugin = params.getPlugin();
    auto reply = [this, context](caf::expected<value> res) mutable {
      value_codec codec{ctx_, false}; // the CLI passes no fds
      write_result(res, context.getResults().initResult(), &codec);
    };
    // A plugin running here takes the call at once, on this thread.
    if (auto* link = cfg_.running ? cfg_.running->find(plugin) : nullptr)
      return link->call(std::move(req)).then(kj::mv(reply));
    // One another node runs, reached there before, straight to that node
    // (a call from another node is never passed on again).
    if (!peer_ && cfg_.remote)
      if (auto where = cfg_.remote->find(plugin, ctx_.timer().now()))
        return cfg_.remote
          ->call(*where, std::move(plugin), std::move(req), ctx_.timer(),
                 unbounded_call)
          .then(kj::mv(reply));
    // The plugin host enforces the deadline (renewed by progress); this one
    // only bounds a node actor that never answers.
    // A call from another node stays here: it was located here, and is
    // never passed on again.
    auto answer = peer_ ? ctx_.request(cfg_.node, unbounded_call, call_atom_v,
                                       std::move(plugin), std::move(req), true)
                        : ctx_.request(cfg_.node, unbounded_call, call_atom_v,
                                       std::move(plugin), std::move(req));
    return cancel_on_drop(kj::mv(answer), std::move(control))
      .then([reply = kj::mv(reply)](caf::message msg) mutable {
        reply(take<value>(msg));
      });
  }

  /// This node's status, with a worker's link to its head.
  void write_own_status(const node_status& x, wire::NodeStatus::Builder out) {
    write_status(x, out);
    if (cfg_.head || cfg_.links == 0)
      return;
    if (auto link = head_link(ctx_, cfg_.links)) {
      auto head = out.initHeadLink();
      head.setAddress(link->address);
      head.setJoined(link->joined);
      head.setError(link->error);
    }
  }

  static caf::error local_only(const char* what) {
    return make_error(errc::permission_denied,
                      std::string{what}
                        + " is not served on the cluster port: use the "
                          "node's own joy CLI");
  }

  kj::Promise<void> gather_nodes(NodesContext context,
                                 caf::expected<node_status> self,
                                 caf::expected<std::vector<node_entry>> all);

  static void plugin_reply(const caf::expected<plugin_info>& res,
                           wire::PluginResult::Builder out) {
    if (res)
      write_info(*res, out.initOk());
    else
      write_error(res.error(), out.initErr());
  }

  kj_context& ctx_;
  const control_server_config& cfg_;
  bool peer_;
};

/// One connection to the node, as the servers on it see it.
struct connection_info {
  uint64_t id = 0;
  /// Over the cluster listener (a peer), not the local socket.
  bool tcp = false;
  /// The peer's address, for logs.
  std::string peer;
  /// The node that joined the directory over it, if any.
  std::string joined;
  /// Said a successful hello.
  bool greeted = false;
  /// Closes the connection soon (after the current answer went out).
  std::function<void()> close;
};

/// A peer that says no hello within this is closed; so is one whose hello
/// was refused, so that each guess at the token costs a connection.
constexpr auto hello_deadline = 10 * kj::SECONDS;

/// Which connection a node last joined over: only that one going away
/// takes the node down (a node that reconnected keeps its membership).
using joined_map = std::map<std::string, uint64_t>;

/// The head's directory for its workers; every call goes to the cluster
/// actor.
class cluster_server final : public wire::Cluster::Server {
public:
  cluster_server(kj_context& ctx, const control_server_config& cfg,
                 std::shared_ptr<connection_info> conn,
                 std::shared_ptr<joined_map> joined)
    : ctx_(ctx), cfg_(cfg), conn_(std::move(conn)), joined_(std::move(joined)) {
    // nop
  }

  kj::Promise<void> join(JoinContext context) override {
    auto entry = read_entry(context.getParams().getNode());
    auto id = entry.node_id;
    // Recorded before the directory hears of it: the close of an older
    // connection of the same node, arriving meanwhile, must not take the
    // node down.
    (*joined_)[id] = conn_->id;
    conn_->joined = id;
    return ctx_.request(cfg_.cluster, quick, join_atom_v, std::move(entry))
      .then([this, context, id](caf::message msg) mutable {
        auto out = context.getResults().initResult();
        auto res = take<uint64_t>(msg);
        if (!res) {
          log(log_level::warning, "cluster", "refused the join of node ", id,
              " from ", conn_->peer, ": ", message_of(res.error()));
          write_error(res.error(), out.initErr());
          if (auto i = joined_->find(id);
              i != joined_->end() && i->second == conn_->id)
            joined_->erase(i);
          conn_->joined.clear();
          return;
        }
        out.setOk(*res);
      });
  }

  kj::Promise<void> heartbeat(HeartbeatContext context) override {
    auto params = context.getParams();
    std::string id = params.getNodeId();
    if (id != conn_->joined)
      throw_error(make_error(errc::permission_denied,
                             "heartbeats come from the node that joined"));
    return ctx_
      .request(cfg_.cluster, quick, heartbeat_atom_v, std::move(id),
               params.getSeq())
      .then([context](caf::message msg) mutable {
        auto res = take<uint64_t>(msg);
        if (!res)
          throw_error(res.error());
        context.getResults().setEpoch(*res);
      });
  }

  kj::Promise<void> leave(LeaveContext context) override {
    std::string id = context.getParams().getNodeId();
    if (id != conn_->joined)
      throw_error(
        make_error(errc::permission_denied, "a node leaves only by itself"));
    // Its connection closing next must not take it down again.
    if (auto i = joined_->find(id);
        i != joined_->end() && i->second == conn_->id)
      joined_->erase(i);
    conn_->joined.clear();
    return ctx_.request(cfg_.cluster, quick, leave_atom_v, std::move(id))
      .then([](caf::message msg) {
        if (auto res = take<bool>(msg); !res)
          throw_error(res.error());
      });
  }

  kj::Promise<void> publish(PublishContext context) override {
    auto params = context.getParams();
    std::string id = params.getNodeId();
    if (id != conn_->joined)
      throw_error(make_error(errc::permission_denied,
                             "a node publishes only what it runs itself"));
    auto c = params.getCommitted();
    return ctx_
      .request(cfg_.cluster, quick, publish_atom_v, std::move(id),
               read_texts(params.getPlugins()),
               resources{c.getCpus(), c.getMemoryBytes(), c.getGpus()},
               read_services(params.getServices()))
      .then([context](caf::message msg) mutable {
        auto out = context.getResults().initResult();
        auto res = take<bool>(msg);
        if (res)
          out.initOk().setNull();
        else
          write_error(res.error(), out.initErr());
      });
  }

  kj::Promise<void> locate(LocateContext context) override {
    auto params = context.getParams();
    std::string id = params.getId();
    return ctx_
      .request(cfg_.cluster, quick, locate_atom_v, std::move(id),
               params.getPlugin(), conn_->joined)
      .then([context](caf::message msg) mutable {
        write_location(take<location>(msg), context.getResults().initResult());
      });
  }

  kj::Promise<void> place(PlaceContext context) override {
    auto params = context.getParams();
    resources need{params.getCpus(), params.getMemoryBytes(), params.getGpus()};
    return ctx_.request(cfg_.cluster, quick, place_atom_v, need)
      .then([context](caf::message msg) mutable {
        write_location(take<location>(msg), context.getResults().initResult());
      });
  }

  kj::Promise<void> nodes(NodesContext context) override {
    return ctx_.request(cfg_.cluster, quick, nodes_atom_v)
      .then([context](caf::message msg) mutable {
        auto out = context.getResults().initResult();
        auto res = take<std::vector<node_entry>>(msg);
        if (!res) {
          write_error(res.error(), out.initErr());
          return;
        }
        auto list = out.initOk(static_cast<unsigned>(res->size()));
        for (unsigned i = 0; i < res->size(); ++i)
          write_entry((*res)[i], list[i]);
      });
  }

  kj::Promise<void> ui(UiContext context) override {
    auto params = context.getParams();
    value_codec codec{ctx_, false};
    auto args = read_list(params.getArgs(), &codec);
    if (!args) {
      write_error(args.error(), context.getResults().initResult().initErr());
      return kj::READY_NOW;
    }
    // A person may take their time to answer.
    return ctx_
      .request(cfg_.core, 60 * kj::MINUTES, ui_atom_v,
               std::string{params.getOp().cStr()},
               std::string{params.getPlugin().cStr()}, std::move(*args))
      .then([this, context](caf::message msg) mutable {
        value_codec codec{ctx_, false};
        write_response(msg, context.getResults().initResult(), &codec,
                       "the UI");
      });
  }

  kj::Promise<void> listServices(ListServicesContext context) override {
    value_codec codec{ctx_, false};
    auto query = read_value(context.getParams().getQuery(), &codec);
    if (!query) {
      write_error(query.error(), context.getResults().initResult().initErr());
      return kj::READY_NOW;
    }
    return ctx_.request(cfg_.cluster, quick, list_atom_v, std::move(*query))
      .then([this, context](caf::message msg) mutable {
        value_codec codec{ctx_, false};
        write_result(take<value>(msg), context.getResults().initResult(),
                     &codec);
      });
  }

private:
  static void write_location(const caf::expected<location>& x,
                             wire::LocateResult::Builder out) {
    if (!x) {
      write_error(x.error(), out.initErr());
      return;
    }
    auto ok = out.initOk();
    ok.setNodeId(x->node_id);
    ok.setAddress(x->address);
  }

  kj_context& ctx_;
  const control_server_config& cfg_;
  std::shared_ptr<connection_info> conn_;
  std::shared_ptr<joined_map> joined_;
};

/// Compares without leaking where the first difference is (tokens have a
/// fixed length, so the length may show).
bool same_secret(const std::string& given, const std::string& expected) {
  if (expected.empty() || given.size() != expected.size())
    return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < given.size(); ++i)
    diff |= static_cast<unsigned char>(given[i] ^ expected[i]);
  return diff == 0;
}

/// The bootstrap: nothing but the handshake before it succeeds.
class gate_server final : public wire::Gate::Server {
public:
  gate_server(kj_context& ctx, const control_server_config& cfg,
              std::shared_ptr<connection_info> conn,
              std::shared_ptr<joined_map> joined)
    : ctx_(ctx), cfg_(cfg), conn_(std::move(conn)), joined_(std::move(joined)) {
    // nop
  }

  kj::Promise<void> hello(HelloContext context) override {
    auto params = context.getParams();
    auto out = context.getResults().initResult();
    std::string client = params.getClient();
    if (params.getVersion() != protocol_version) {
      if (conn_->tcp)
        log(log_level::warning, "cluster", "refused ", client, " from ",
            conn_->peer, ": it speaks protocol ", params.getVersion(),
            ", this node ", protocol_version);
      write_error(errc::version_mismatch,
                  "client speaks protocol "
                    + std::to_string(params.getVersion()) + ", this node (Joy "
                    + std::string{version()} + ") speaks "
                    + std::to_string(protocol_version),
                  {}, out.initErr());
      return kj::READY_NOW;
    }
    if (conn_->tcp
        && !same_secret(std::string{params.getToken()}, cfg_.token)) {
      log(log_level::warning, "cluster", "refused ", client, " from ",
          conn_->peer, ": ",
          params.getToken().size() == 0 ? "no cluster token"
                                        : "wrong cluster token");
      write_error(errc::permission_denied,
                  params.getToken().size() == 0
                    ? "this node requires the cluster token (--token-file)"
                    : "wrong cluster token",
                  {}, out.initErr());
      if (conn_->close)
        conn_->close();
      return kj::READY_NOW;
    }
    conn_->greeted = true;
    auto session = out.initOk();
    session.setNode(kj::heap<node_server>(ctx_, cfg_, conn_->tcp));
    session.setNodeId(cfg_.node_id);
    session.setVersion(std::string{version()});
    session.setHead(cfg_.head);
    if (conn_->tcp && cfg_.head)
      session.setCluster(kj::heap<cluster_server>(ctx_, cfg_, conn_, joined_));
    return kj::READY_NOW;
  }

private:
  kj_context& ctx_;
  const control_server_config& cfg_;
  std::shared_ptr<connection_info> conn_;
  std::shared_ptr<joined_map> joined_;
};

std::string peer_name(kj::AsyncIoStream& stream) {
  sockaddr_storage addr{};
  kj::uint len = sizeof(addr);
  try {
    stream.getpeername(reinterpret_cast<sockaddr*>(&addr), &len);
  } catch (...) {
    return "?";
  }
  char host[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (addr.ss_family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&addr);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    port = ntohs(in->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    auto* in = reinterpret_cast<sockaddr_in6*>(&addr);
    ::inet_ntop(AF_INET6, &in->sin6_addr, host, sizeof(host));
    port = ntohs(in->sin6_port);
  }
  return std::string{host} + ":" + std::to_string(port);
}

class control_server final : public kj_resource,
                             private kj::TaskSet::ErrorHandler {
public:
  control_server(kj_context& ctx, unique_fd listener, unique_fd tcp,
                 control_server_config cfg)
    : ctx_(ctx),
      listener_(std::move(listener)),
      cfg_(std::move(cfg)),
      joined_(std::make_shared<joined_map>()),
      tasks_(*this) {
    observer_ = kj::heap<kj::UnixEventPort::FdObserver>(
      ctx_.event_port(), listener_.get(),
      kj::UnixEventPort::FdObserver::OBSERVE_READ);
    tasks_.add(accept_loop());
    if (tcp) {
      receiver_ = ctx_.low_level().wrapListenSocketFd(
        tcp.release(), kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP
                         | kj::LowLevelAsyncIoProvider::ALREADY_CLOEXEC
                         | kj::LowLevelAsyncIoProvider::ALREADY_NONBLOCK);
      tasks_.add(accept_peers());
    }
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
      auto stream = ctx_.low_level().wrapUnixSocketFd(
        conn.release(), kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP
                          | kj::LowLevelAsyncIoProvider::ALREADY_CLOEXEC
                          | kj::LowLevelAsyncIoProvider::ALREADY_NONBLOCK);
      auto info = std::make_shared<connection_info>();
      info->id = ++next_connection_;
      serve(kj::mv(stream), std::move(info));
    }
  }

  /// Peers: TLS first (when configured), then the gate.
  kj::Promise<void> accept_peers() {
    return receiver_->accept().then([this](kj::Own<kj::AsyncIoStream> stream) {
      auto info = std::make_shared<connection_info>();
      info->id = ++next_connection_;
      info->tcp = true;
      info->peer = peer_name(*stream);
      no_delay(*stream);
      if (cfg_.tls == nullptr) {
        serve(rpc_link::without_fds(kj::mv(stream)), std::move(info));
      } else {
        auto peer = info->peer;
        tasks_.add(
          ctx_.timer()
            .timeoutAfter(10 * kj::SECONDS,
                          cfg_.tls->wrapServer(kj::mv(stream)))
            .then(
              [this, info](kj::Own<kj::AsyncIoStream> secure) {
                serve(rpc_link::without_fds(kj::mv(secure)), info);
              },
              [peer](kj::Exception&& ex) {
                log(log_level::warning, "cluster", "refused a connection from ",
                    peer, ": TLS handshake failed: ", describe_tls_failure(ex));
              }));
      }
      return accept_peers();
    });
  }

  void serve(kj::Own<kj::AsyncCapabilityStream> stream,
             std::shared_ptr<connection_info> info) {
    stream_limits limits;
    limits.max_fds = 0; // neither the CLI nor peers pass fds
    auto link = rpc_link::serve(
      kj::mv(stream), limits, kj::heap<gate_server>(ctx_, cfg_, info, joined_));
    auto id = info->id;
    if (info->tcp) {
      // Closed in a later task, once the refusal went out.
      info->close = [this, id] {
        tasks_.add(
          ctx_.timer().afterDelay(100 * kj::MILLISECONDS).then([this, id] {
            connections_.erase(id);
          }));
      };
      tasks_.add(ctx_.timer().afterDelay(hello_deadline).then([this, id, info] {
        if (!info->greeted) {
          log(log_level::warning, "cluster", "closed the connection from ",
              info->peer, ": no hello within ", hello_deadline / kj::SECONDS,
              " s");
          connections_.erase(id);
        }
      }));
    }
    tasks_.add(link->on_disconnect().then([this, id, info] {
      // A node whose control connection went is down, unless it already
      // joined again over another one.
      if (!info->joined.empty()) {
        auto i = joined_->find(info->joined);
        if (i != joined_->end() && i->second == id) {
          joined_->erase(i);
          kj_context::send(cfg_.cluster, down_atom_v, info->joined);
        }
      }
      // Destroy the connection in a later turn, outside its own callback.
      return kj::evalLater([this, id] { connections_.erase(id); });
    }));
    connections_.emplace(id, kj::mv(link));
  }

  kj_context& ctx_;
  unique_fd listener_;
  control_server_config cfg_;
  std::shared_ptr<joined_map> joined_;
  kj::Own<kj::UnixEventPort::FdObserver> observer_;
  kj::Own<kj::ConnectionReceiver> receiver_;
  std::map<uint64_t, kj::Own<rpc_link>> connections_;
  uint64_t next_connection_ = 0;
  kj::TaskSet tasks_;
};

/// Writes the stream arm of an archive into a file, chunk by chunk.
class file_sink final : public wire::ByteSink::Server {
public:
  /// Shares the file with the install, which closes it when the transfer
  /// is over: writes after that (a peer keeping the sink) are refused.
  file_sink(std::shared_ptr<unique_fd> fd, uint64_t size,
            std::shared_ptr<bool> done)
    : fd_(std::move(fd)), size_(size), done_(std::move(done)) {
    // nop
  }

  kj::Promise<void> write(WriteContext context) override {
    auto chunk = context.getParams().getChunk();
    KJ_REQUIRE(fd_->get() >= 0 && !*done_,
               "the archive is complete or abandoned");
    KJ_REQUIRE(written_ + chunk.size() <= size_, "more bytes than announced");
    auto* p = chunk.begin();
    auto left = chunk.size();
    while (left > 0) {
      auto n = ::write(fd_->get(), p, left);
      if (n < 0 && errno == EINTR)
        continue;
      KJ_REQUIRE(n > 0, "cannot write the archive", std::strerror(errno));
      p += n;
      left -= static_cast<std::size_t>(n);
    }
    written_ += chunk.size();
    return kj::READY_NOW;
  }

  kj::Promise<void> done(DoneContext) override {
    KJ_REQUIRE(written_ == size_, "the archive ended early", written_, size_);
    *done_ = true;
    return kj::READY_NOW;
  }

private:
  std::shared_ptr<unique_fd> fd_;
  uint64_t size_;
  uint64_t written_ = 0;
  std::shared_ptr<bool> done_;
};

/// Plugin archives beyond this are refused before a byte is written.
constexpr uint64_t max_archive_bytes = uint64_t{4} << 30;

std::string random_suffix() {
  std::random_device rd;
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%08x%08x", rd(), rd());
  return buf;
}

kj::Promise<void> node_server::installArchive(InstallArchiveContext context) {
  auto params = context.getParams();
  std::string source = params.getSource();
  auto archive = params.getArchive();
  auto fail = [&](caf::error err) {
    write_error(err, context.getResults().initResult().initErr());
    return kj::READY_NOW;
  };
  ::mkdir(cfg_.downloads_dir.c_str(), 0700);
  auto path = cfg_.downloads_dir + "/archive-" + random_suffix() + ".tar.gz";
  auto fd = std::make_shared<unique_fd>(
    ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!*fd)
    return fail(make_error(errc::io_error, "cannot create " + path + ": "
                                             + std::strerror(errno)));
  kj::Promise<void> written = kj::READY_NOW;
  switch (archive.which()) {
    case wire::Binary::INLINE: {
      auto data = archive.getInline();
      if (::write(fd->get(), data.begin(), data.size())
          != static_cast<ssize_t>(data.size())) {
        ::unlink(path.c_str());
        return fail(make_error(errc::io_error, "cannot write " + path));
      }
      break;
    }
    case wire::Binary::STREAM: {
      auto st = archive.getStream();
      if (st.getSize() > max_archive_bytes) {
        ::unlink(path.c_str());
        return fail(make_error(errc::too_large,
                               "a plugin archive of "
                                 + std::to_string(st.getSize() >> 20)
                                 + " MiB is larger than this node accepts"));
      }
      auto done = std::make_shared<bool>(false);
      auto req = st.getSource().pipeToRequest();
      req.setSink(kj::heap<file_sink>(fd, st.getSize(), done));
      written = req.send().then(
        [done](auto&&) { KJ_REQUIRE(*done, "the archive ended early"); });
      break;
    }
    default:
      ::unlink(path.c_str());
      return fail(make_error(errc::invalid_argument,
                             "a plugin archive travels inline or streamed"));
  }
  return written.then(
    [this, context, source, path, fd]() mutable -> kj::Promise<void> {
      fd->reset();
      return ctx_.request(cfg_.node, slow, archive_atom_v, source, path)
        .then([context](caf::message msg) mutable {
          plugin_reply(take<plugin_info>(msg),
                       context.getResults().initResult());
        });
    },
    [context, path](kj::Exception&& ex) mutable {
      ::unlink(path.c_str());
      write_error(error_from_exception(ex, "the archive's sender"),
                  context.getResults().initResult().initErr());
    });
}

kj::Promise<void>
node_server::gather_nodes(NodesContext context, caf::expected<node_status> self,
                          caf::expected<std::vector<node_entry>> all) {
  if (!self) {
    write_error(self.error(), context.getResults().initResult().initErr());
    return kj::READY_NOW;
  }
  std::vector<node_entry> others;
  if (all)
    for (auto& e : *all)
      if (e.node_id != cfg_.node_id)
        others.push_back(std::move(e));
  using status_response = capnp::Response<wire::Node::StatusResults>;
  auto answers = std::make_shared<kj::Array<kj::Maybe<status_response>>>(
    kj::heapArray<kj::Maybe<status_response>>(others.size()));
  kj::Vector<kj::Promise<void>> waits;
  for (std::size_t i = 0; i < others.size(); ++i) {
    if (!others[i].up)
      continue;
    auto asked = peer_status(ctx_, cfg_.links,
                             location{others[i].node_id, others[i].address});
    waits.add(ctx_.timer()
                .timeoutAfter(2 * kj::SECONDS, kj::mv(asked))
                .then([answers, i](
                        status_response resp) { (*answers)[i] = kj::mv(resp); },
                      [](kj::Exception&&) {
                        // Listed from the directory's memory instead, as
                        // unreachable: up for the directory, silent here.
                      }));
  }
  return kj::joinPromises(waits.releaseAsArray())
    .then([this, context, self = std::move(*self), others = std::move(others),
           answers]() mutable {
      auto list = context.getResults().initResult().initOk(
        static_cast<unsigned>(1 + others.size()));
      write_own_status(self, list[0]);
      for (unsigned i = 0; i < others.size(); ++i) {
        auto& e = others[i];
        KJ_IF_MAYBE (resp, (*answers)[i]) {
          auto r = resp->getResult();
          if (r.isOk()) {
            list.setWithCaveats(i + 1, r.getOk());
            continue;
          }
        }
        auto out = list[i + 1];
        out.setNodeId(e.node_id);
        out.setAddress(e.address);
        out.setListen(e.address);
        out.setVersion(e.version);
        out.setHead(e.head);
        auto res = out.initResources();
        res.setCpus(e.total.cpus);
        res.setMemoryBytes(e.total.memory_bytes);
        res.setGpus(e.total.gpus);
        out.setState(e.up ? "unreachable" : "down");
      }
    });
}

} // namespace

caf::expected<std::pair<std::string, std::string>>
split_host_port(const std::string& text) {
  auto bad
    = make_error(errc::invalid_argument, "'" + text + "' is not HOST:PORT");
  std::string host;
  std::string port;
  if (!text.empty() && text[0] == '[') {
    auto end = text.find(']');
    if (end == std::string::npos || end + 1 >= text.size()
        || text[end + 1] != ':')
      return bad;
    host = text.substr(1, end - 1);
    port = text.substr(end + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos)
      return bad;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.empty() || port.empty())
    return bad;
  if (port.find_first_not_of("0123456789") != std::string::npos
      || port.size() > 5 || std::stoul(port) > 65535)
    return make_error(errc::invalid_argument,
                      "'" + port + "' in '" + text + "' is not a port");
  return std::make_pair(host, port);
}

caf::expected<std::pair<unique_fd, std::string>>
bind_listener(const std::string& listen) {
  auto hp = split_host_port(listen);
  if (!hp)
    return hp.error();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (int rc
      = ::getaddrinfo(hp->first.c_str(), hp->second.c_str(), &hints, &found);
      rc != 0)
    return make_error(errc::invalid_argument,
                      "cannot listen on " + listen + ": " + ::gai_strerror(rc));
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard{found, ::freeaddrinfo};
  unique_fd fd{::socket(found->ai_family,
                        found->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)};
  if (!fd)
    return make_error(errc::io_error,
                      std::string{"socket: "} + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd.get(), found->ai_addr, found->ai_addrlen) != 0
      || ::listen(fd.get(), 128) != 0)
    return make_error(errc::io_error, "cannot listen on " + listen + ": "
                                        + std::strerror(errno));
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  uint16_t port = addr.ss_family == AF_INET6
                    ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                    : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  auto host = hp->first.find(':') != std::string::npos ? "[" + hp->first + "]"
                                                       : hp->first;
  return std::make_pair(std::move(fd), host + ":" + std::to_string(port));
}

bool is_loopback(const std::string& host_port) {
  auto hp = split_host_port(host_port);
  if (!hp)
    return false;
  auto& host = hp->first;
  if (host == "localhost" || host == "::1")
    return true;
  in_addr v4{};
  return ::inet_pton(AF_INET, host.c_str(), &v4) == 1
         && (ntohl(v4.s_addr) >> 24) == 127;
}

caf::error start_control_server(kj_context& ctx, uint64_t id,
                                control_server_config cfg, unique_fd tcp) {
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
  ctx.adopt(id, kj::heap<control_server>(ctx, std::move(fd), std::move(tcp),
                                         std::move(cfg)));
  return caf::none;
}

} // namespace joy
