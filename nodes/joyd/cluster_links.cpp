// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "nodes/joyd/cluster_links.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <map>
#include <memory>
#include <optional>
#include <set>

#include <kj/compat/tls.h>

#include "actors/cluster/cluster_actor.hpp"
#include "actors/cluster/tls.hpp"
#include "nodes/joyd/node_wire.hpp"
#include "runtime/call_control.hpp"
#include "runtime/log.hpp"
#include "runtime/plugin_actor.hpp"
#include "runtime/protocol.hpp"
#include "runtime/rpc_link.hpp"
#include "runtime/value_codec.hpp"
#include "runtime/value_wire.hpp"

namespace joy {

namespace {

/// Links between nodes carry ndarrays by the stream arm: messages stay
/// small, and a stalled peer cannot make this node buffer without bound.
stream_limits peer_limits() {
  stream_limits limits;
  limits.max_fds = 0;
  return limits;
}

/// Progress of a call running on another node, back to our caller.
class monitor_forwarder final : public wire::CallMonitor::Server {
public:
  explicit monitor_forwarder(std::shared_ptr<call_control> control)
    : control_(std::move(control)) {
    // nop
  }

  kj::Promise<void> progress(ProgressContext context) override {
    auto params = context.getParams();
    control_->progress(params.getFraction(), params.getMessage());
    return kj::READY_NOW;
  }

private:
  std::shared_ptr<call_control> control_;
};

caf::error unreachable(const std::string& address, const kj::Exception& ex) {
  std::string why = ex.getDescription().cStr();
  // kj-tls reports a refused handshake as a plain failure naming OpenSSL.
  if (why.find("certificate") != std::string::npos
      || why.find("TLS") != std::string::npos
      || why.find("SSL") != std::string::npos)
    return make_error(errc::permission_denied,
                      "TLS with the node at " + address
                        + " failed: " + describe_tls_failure(ex)
                        + " (is its certificate from this cluster's CA?)");
  if (ex.getType() == kj::Exception::Type::DISCONNECTED
      && why.find("connect(") == std::string::npos)
    return make_error(
      errc::disconnected,
      "the node at " + address
        + " closed the connection during the handshake (does it require TLS, "
          "or trust another CA?): "
        + why);
  return make_error(errc::unavailable,
                    "cannot reach the node at " + address + ": " + why);
}

} // namespace

void no_delay(kj::AsyncIoStream& stream) {
  int one = 1;
  try {
    stream.setsockopt(IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  } catch (const kj::Exception&) {
    // Not a TCP socket: nothing to do.
  }
}

kj::Promise<caf::expected<kj::Own<peer_connection>>>
dial(kj_context& ctx, const std::string& address, const dial_options& opts) {
  using result = caf::expected<kj::Own<peer_connection>>;
  auto* tls = opts.tls;
  auto token = opts.token;
  auto me = opts.node_id;
  auto connecting
    = ctx.io()
        .getNetwork()
        .parseAddress(address)
        .then([](kj::Own<kj::NetworkAddress> addr) {
          return addr->connect().attach(kj::mv(addr));
        })
        .then([tls](kj::Own<kj::AsyncIoStream> stream)
                -> kj::Promise<kj::Own<kj::AsyncIoStream>> {
          no_delay(*stream);
          if (tls == nullptr)
            return kj::mv(stream);
          return tls->wrapClient(kj::mv(stream), cluster_server_name);
        })
        .then([token, me, address](kj::Own<kj::AsyncIoStream> stream) {
          auto conn = kj::heap<peer_connection>();
          conn->link = rpc_link::connect(rpc_link::without_fds(kj::mv(stream)),
                                         peer_limits());
          auto gate = conn->link->bootstrap_as<wire::Gate>();
          auto req = gate.helloRequest();
          req.setVersion(protocol_version);
          req.setClient(me);
          req.setToken(token);
          return req.send().then(
            [conn = kj::mv(conn),
             address](capnp::Response<wire::Gate::HelloResults> resp) mutable
            -> result {
              auto res = resp.getResult();
              if (res.isErr()) {
                auto err = read_error(res.getErr());
                return make_error(code_of(err),
                                  "the node at " + address
                                    + " refused us: " + message_of(err));
              }
              auto session = res.getOk();
              conn->node = session.getNode();
              conn->node_id = session.getNodeId();
              conn->version = session.getVersion();
              conn->head = session.getHead();
              if (session.hasCluster())
                conn->cluster = session.getCluster();
              return kj::mv(conn);
            });
        });
  return ctx.timer()
    .timeoutAfter(opts.timeout, kj::mv(connecting))
    .catch_([address](kj::Exception&& ex) -> result {
      return unreachable(address, ex);
    });
}

namespace {

class cluster_links final : public kj_resource,
                            private kj::TaskSet::ErrorHandler {
public:
  cluster_links(kj_context& ctx, cluster_links_config cfg)
    : ctx_(ctx), cfg_(std::move(cfg)), tasks_(*this) {
    if (cfg_.remote)
      cfg_.remote->serve(
        [this](const location& where, std::string plugin, call_request req) {
          // Held by whoever called, not by tasks_: the canceler ends the
          // call with these links (its steps use `this`).
          return canceler_.wrap(call(where, plugin, std::move(req)))
            .catch_([plugin](kj::Exception&&) -> caf::expected<value> {
              return make_error(errc::disconnected,
                                "the call of plugin '" + plugin
                                  + "' ended with this node's links");
            });
        });
    if (!cfg_.head.empty())
      tasks_.add(control_loop(kj::Duration{}));
  }

  ~cluster_links() {
    if (cfg_.remote)
      cfg_.remote->serve(nullptr);
  }

  /// The gateway's requests; see the header.
  bool handle(caf::message& msg, reply_handle& rh) {
    if (msg.match_elements<peer_atom, call_atom, location, std::string,
                           call_request>()) {
      call(msg.get_as<location>(2), msg.get_as<std::string>(3),
           std::move(msg.get_mutable_as<call_request>(4)), std::move(rh));
      return true;
    }
    if (msg.match_elements<peer_atom, get_atom, location, std::string>()) {
      get_service(msg.get_as<location>(2), msg.get_as<std::string>(3),
                  std::move(rh));
      return true;
    }
    if (msg.match_elements<peer_atom, install_atom, location, std::string,
                           value>()) {
      install(msg.get_as<location>(2), msg.get_as<std::string>(3),
              msg.get_as<value>(4), std::move(rh));
      return true;
    }
    if (msg.match_elements<peer_atom, down_atom, std::string>()) {
      drop(msg.get_as<std::string>(2), "the directory counts it as down");
      return true;
    }
    if (msg.match_elements<peer_atom, leave_atom>()) {
      leave(std::move(rh));
      return true;
    }
    return cfg_.head.empty() ? false : directory(msg, rh);
  }

  kj::Promise<capnp::Response<wire::Node::StatusResults>>
  status_of(const location& where) {
    return status(where);
  }

  /// A worker stopping on purpose tells the head, which forgets it: true
  /// once the head has, false without a head link (or after 2 s).
  void leave(reply_handle rh) {
    if (!joined_ || !head_) {
      rh.deliver_value(false);
      return;
    }
    // No heartbeat or dial after this: the node is going.
    leaving_ = true;
    auto req = head_->cluster.leaveRequest();
    req.setNodeId(cfg_.dial.node_id);
    tasks_.add(ctx_.timer()
                 .timeoutAfter(2 * kj::SECONDS, req.send())
                 .then([](auto&&) { return true; },
                       [](kj::Exception&& ex) {
                         log(log_level::warning, "cluster",
                             "the head did not hear that this node leaves: ",
                             ex.getDescription().cStr());
                         return false;
                       })
                 .then([rh = std::move(rh)](bool left) mutable {
                   rh.deliver_value(left);
                 }));
  }

  std::optional<head_link_state> head_link() const {
    if (cfg_.head.empty())
      return std::nullopt;
    return head_link_state{cfg_.head, joined_, head_error_};
  }

private:
  /// Held by whoever uses a link in a later turn; the link itself goes
  /// when the slot drops its reference and the last user is done.
  using peer_ref = std::shared_ptr<kj::Own<peer_connection>>;

  struct slot {
    std::string address;
    peer_ref conn;
    kj::Maybe<kj::ForkedPromise<void>> connecting;
    /// Why the dial failed, for every caller that waited on it.
    std::shared_ptr<caf::error> failure;
    uint64_t generation = 0;
  };

  void taskFailed(kj::Exception&& ex) override {
    log(log_level::warning, "cluster", ex.getDescription().cStr());
  }

  // -- data links -------------------------------------------------------------

  /// Fails with a kj exception carrying the Joy error's message.
  kj::Promise<capnp::Response<wire::Node::StatusResults>>
  status(const location& where) {
    return peer(where).then([](caf::expected<peer_ref> p) {
      if (!p)
        KJ_FAIL_REQUIRE(message_of(p.error()));
      return (**p)->node.statusRequest().send();
    });
  }

  kj::Promise<caf::expected<peer_ref>> peer(const location& where) {
    auto id = where.node_id;
    auto& s = peers_[id];
    // A live link stays, whatever address a caller remembers: a node that
    // moved closes its old link, which drops the slot.
    if (s.address != where.address && !s.conn && s.connecting == nullptr)
      s.address = where.address;
    if (s.conn)
      return caf::expected<peer_ref>{s.conn};
    if (s.connecting == nullptr) {
      auto gen = s.generation = ++generations_;
      auto failure = s.failure = std::make_shared<caf::error>();
      auto address = s.address;
      auto fork
        = dial(ctx_, address, cfg_.dial)
            .then([this, id, gen, address,
                   failure](caf::expected<kj::Own<peer_connection>> conn) {
              if (conn && (*conn)->node_id != id)
                conn = make_error(errc::unavailable,
                                  "the node at " + address + " is "
                                    + (*conn)->node_id + ", not " + id);
              if (!conn)
                *failure = std::move(conn.error());
              // Settle the slot in a later turn: this callback runs inside
              // the fork, which the slot owns.
              auto ready
                = conn
                    ? std::make_shared<kj::Own<peer_connection>>(kj::mv(*conn))
                    : nullptr;
              tasks_.add(kj::evalLater([this, id, gen, ready] {
                auto i = peers_.find(id);
                if (i == peers_.end() || i->second.generation != gen)
                  return;
                if (!ready) {
                  peers_.erase(i); // the next call dials again
                  return;
                }
                i->second.conn = std::move(ready);
                i->second.connecting = nullptr;
                tasks_.add((*i->second.conn)
                             ->link->on_disconnect()
                             .then([this, id, gen] {
                               auto j = peers_.find(id);
                               if (j != peers_.end()
                                   && j->second.generation == gen)
                                 drop(id, "its connection closed");
                             }));
              }));
            })
            .fork();
      s.connecting = kj::mv(fork);
    }
    KJ_IF_MAYBE (forked, s.connecting) {
      auto gen = s.generation;
      // The slot settles in the turn after the dial; wait for it.
      return forked->addBranch()
        .then([] { return kj::evalLater([] {}); })
        .then([this, id, gen,
               failure = s.failure]() -> caf::expected<peer_ref> {
          auto i = peers_.find(id);
          if (i != peers_.end() && i->second.generation == gen
              && i->second.conn)
            return i->second.conn;
          if (*failure)
            return *failure;
          return make_error(errc::disconnected,
                            "the link to node " + id + " closed while opening");
        });
    }
    return caf::expected<peer_ref>{
      make_error(errc::internal, "no link to node " + id)};
  }

  void drop(const std::string& id, const char* why) {
    // The node forgets where things were on it, link or not.
    if (cfg_.remote)
      cfg_.remote->forget_node(id);
    if (cfg_.node)
      kj_context::send(cfg_.node, down_atom_v, id);
    auto i = peers_.find(id);
    if (i == peers_.end())
      return;
    log(log_level::info, "cluster", "closing the link to node ", id, ": ", why);
    // Calls in flight on it fail with `disconnected` as the link goes.
    auto conn = kj::mv(i->second.conn);
    peers_.erase(i);
    if (conn)
      tasks_.add(kj::evalLater([conn = kj::mv(conn)]() mutable {}));
  }

  /// Delivers a peer's answer; one saying the thing is not there makes the
  /// node forget what it located on that peer.
  auto answer_from(std::string node, reply_handle rh) {
    return [this, node = std::move(node),
            rh = std::move(rh)](caf::expected<value> res) mutable {
      if (res) {
        rh.deliver_value(std::move(*res));
        return;
      }
      forget_on_miss(node, res.error());
      rh.deliver(std::move(res.error()));
    };
  }

  /// Calls `plugin` on the node at `where`, for the node actor: a plugin
  /// it reached there is listed for the kj thread's own calls
  /// (remote_plugins.hpp).
  void call(const location& where, std::string plugin, call_request req,
            reply_handle rh) {
    tasks_.add(
      call(where, plugin, std::move(req))
        .then([this, where, plugin,
               rh = std::move(rh)](caf::expected<value> res) mutable {
          if (!res) {
            rh.deliver(std::move(res.error()));
            return;
          }
          if (cfg_.remote)
            if (cfg_.remote->remember(plugin, where, ctx_.timer().now()))
              log(log_level::debug, "cluster", "calls of plugin '", plugin,
                  "' go straight to node ", where.node_id);
          rh.deliver_value(std::move(*res));
        }));
  }

  /// Calls `plugin` on the node at `where`. An answer saying it is not
  /// there, or no way there, makes this node forget what it located there.
  kj::Promise<caf::expected<value>> call(const location& where,
                                         std::string plugin, call_request req) {
    using result = caf::expected<value>;
    auto node = where.node_id;
    return peer(where)
      .then([this, node, plugin = std::move(plugin), req = std::move(req)](
              caf::expected<peer_ref> p) mutable -> kj::Promise<result> {
        if (!p)
          return result{std::move(p.error())};
        auto request = (**p)->node.callRequest();
        request.setPlugin(plugin);
        request.setMethod(req.method);
        value_codec codec{ctx_, false};
        if (auto err = write_list(
              req.args,
              request.initArgs(static_cast<unsigned>(req.args.size())), &codec))
          return result{std::move(err)};
        if (auto err = write_map(
              req.kwargs,
              request.initKwargs(static_cast<unsigned>(req.kwargs.size())),
              &codec))
          return result{std::move(err)};
        request.setTimeoutMs(static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::milliseconds>(req.timeout)
            .count()));
        if (req.control)
          request.setMonitor(kj::heap<monitor_forwarder>(req.control));
        auto what = "plugin '" + plugin + "' on node " + node;
        kj::Promise<result> sent = request.send().then(
          [this](capnp::Response<wire::Node::CallResults> resp) {
            value_codec codec{ctx_, false};
            return codec.finish(read_result(resp.getResult(), &codec));
          },
          [what](kj::Exception&& ex) -> result {
            return error_from_exception(ex, what);
          });
        if (req.control)
          // Our caller giving up cancels the call over there (dropping
          // the request sends Cap'n Proto's Finish).
          sent = sent.exclusiveJoin(
            when_cancelled(*req.control).then([what]() -> result {
              return make_error(errc::cancelled,
                                "the caller of " + what + " gave up");
            }));
        return sent;
      })
      .then([this, node](result res) {
        if (!res)
          forget_on_miss(node, res.error());
        return res;
      });
  }

  /// A call that found nothing there (moved, uninstalled) or no way there:
  /// the node forgets what it located on that peer, and asks again.
  void forget_on_miss(const std::string& node, const caf::error& err) {
    auto code = code_of(err);
    if (code != errc::not_found && code != errc::disconnected
        && code != errc::unavailable)
      return;
    if (cfg_.remote)
      cfg_.remote->forget_node(node);
    if (cfg_.node)
      kj_context::send(cfg_.node, down_atom_v, node);
  }

  void get_service(const location& where, std::string id, reply_handle rh) {
    auto node = where.node_id;
    tasks_.add(peer(where).then(
      [this, node, id = std::move(id), rh = std::move(rh)](
        caf::expected<peer_ref> p) mutable -> kj::Promise<void> {
        if (!p) {
          forget_on_miss(node, p.error());
          rh.deliver(std::move(p.error()));
          return kj::READY_NOW;
        }
        auto request = (**p)->node.getServiceRequest();
        request.setId(id);
        auto what = "node " + node;
        return request.send()
          .then(
            [this](capnp::Response<wire::Node::GetServiceResults> resp) {
              value_codec codec{ctx_, false};
              return codec.finish(read_result(resp.getResult(), &codec));
            },
            [what](kj::Exception&& ex) -> caf::expected<value> {
              return error_from_exception(ex, what);
            })
          .then(answer_from(node, std::move(rh)));
      }));
  }

  void install(const location& where, std::string source, value archive,
               reply_handle rh) {
    auto node = where.node_id;
    tasks_.add(peer(where).then(
      [this, node, source = std::move(source), archive = std::move(archive),
       rh = std::move(rh)](
        caf::expected<peer_ref> p) mutable -> kj::Promise<void> {
        if (!p) {
          forget_on_miss(node, p.error());
          rh.deliver(std::move(p.error()));
          return kj::READY_NOW;
        }
        auto what = "node " + node;
        auto done
          = [rh = std::move(rh)](caf::expected<plugin_info> res) mutable {
              rh.deliver(std::move(res));
            };
        auto take
          = [](wire::PluginResult::Reader r) -> caf::expected<plugin_info> {
          if (r.isErr())
            return read_error(r.getErr());
          return read_info(r.getOk());
        };
        auto fail = [what](kj::Exception&& ex) -> caf::expected<plugin_info> {
          return error_from_exception(ex, what);
        };
        auto* bytes = archive.as_bytes();
        if (bytes == nullptr) {
          auto request = (**p)->node.installRequest();
          request.setSource(source);
          return request.send()
            .then(
              [take](capnp::Response<wire::Node::InstallResults> resp) {
                return take(resp.getResult());
              },
              kj::mv(fail))
            .then(kj::mv(done));
        }
        auto request = (**p)->node.installArchiveRequest();
        request.setSource(source);
        value_codec codec{ctx_, false};
        if (auto err = codec.write_binary(*bytes, request.initArchive())) {
          done(std::move(err));
          return kj::READY_NOW;
        }
        return request.send()
          .then(
            [take](capnp::Response<wire::Node::InstallArchiveResults> resp) {
              return take(resp.getResult());
            },
            kj::mv(fail))
          .then(kj::mv(done));
      }));
  }

  // -- the head's directory (on a worker) -------------------------------------

  bool directory(caf::message& msg, reply_handle& rh) {
    if (msg.match_elements<publish_atom, std::string, std::vector<std::string>,
                           resources, std::vector<service_entry>>()) {
      // Kept: a (re)join publishes the latest again.
      publish_ = published{msg.get_as<std::vector<std::string>>(2),
                           msg.get_as<resources>(3),
                           msg.get_as<std::vector<service_entry>>(4)};
      if (joined_)
        tasks_.add(send_publish());
      rh.deliver_value(true);
      return true;
    }
    if (!msg.match_elements<locate_atom, std::string, bool, std::string>()
        && !msg.match_elements<place_atom, resources>()
        && !msg.match_elements<nodes_atom>()
        && !msg.match_elements<list_atom, value>()
        && !msg.match_elements<ui_atom, std::string, std::string, value_list>())
      return false;
    if (!joined_ || !head_) {
      rh.deliver(make_error(errc::unavailable,
                            "the head at " + cfg_.head
                              + " is unreachable (this node keeps trying)"));
      return true;
    }
    auto& cluster = head_->cluster;
    auto to_location
      = [](wire::LocateResult::Reader r) -> caf::expected<location> {
      if (r.isErr())
        return read_error(r.getErr());
      return location{r.getOk().getNodeId(), r.getOk().getAddress()};
    };
    if (msg.match_elements<locate_atom, std::string, bool, std::string>()) {
      auto req = cluster.locateRequest();
      req.setId(msg.get_as<std::string>(1));
      req.setPlugin(msg.get_as<bool>(2));
      answer(req.send().then(
               [to_location](capnp::Response<wire::Cluster::LocateResults> r) {
                 return to_location(r.getResult());
               }),
             std::move(rh));
      return true;
    }
    if (msg.match_elements<place_atom, resources>()) {
      auto need = msg.get_as<resources>(1);
      auto req = cluster.placeRequest();
      req.setCpus(need.cpus);
      req.setMemoryBytes(need.memory_bytes);
      req.setGpus(need.gpus);
      answer(req.send().then(
               [to_location](capnp::Response<wire::Cluster::PlaceResults> r) {
                 return to_location(r.getResult());
               }),
             std::move(rh));
      return true;
    }
    if (msg.match_elements<nodes_atom>()) {
      answer(cluster.nodesRequest().send().then(
               [](capnp::Response<wire::Cluster::NodesResults> resp)
                 -> caf::expected<std::vector<node_entry>> {
                 auto r = resp.getResult();
                 if (r.isErr())
                   return read_error(r.getErr());
                 std::vector<node_entry> out;
                 for (auto x : r.getOk())
                   out.push_back(read_entry(x));
                 return out;
               }),
             std::move(rh));
      return true;
    }
    if (msg.match_elements<ui_atom, std::string, std::string, value_list>()) {
      auto req = cluster.uiRequest();
      req.setOp(msg.get_as<std::string>(1));
      req.setPlugin(msg.get_as<std::string>(2));
      auto& args = msg.get_as<value_list>(3);
      value_codec codec{ctx_, false};
      if (auto err = write_list(
            args, req.initArgs(static_cast<unsigned>(args.size())), &codec)) {
        rh.deliver(std::move(err));
        return true;
      }
      answer(
        req.send().then([this](capnp::Response<wire::Cluster::UiResults> resp) {
          value_codec codec{ctx_, false};
          return read_result(resp.getResult(), &codec);
        }),
        std::move(rh));
      return true;
    }
    // (list_atom, query)
    auto req = cluster.listServicesRequest();
    value_codec codec{ctx_, false};
    if (auto err = write_value(msg.get_as<value>(1), req.initQuery(), &codec)) {
      rh.deliver(std::move(err));
      return true;
    }
    answer(req.send().then(
             [this](capnp::Response<wire::Cluster::ListServicesResults> resp) {
               value_codec codec{ctx_, false};
               return read_result(resp.getResult(), &codec);
             }),
           std::move(rh));
    return true;
  }

  template <class T>
  void answer(kj::Promise<caf::expected<T>> promise, reply_handle rh) {
    auto head = cfg_.head;
    tasks_.add(promise
                 .catch_([head](kj::Exception&& ex) -> caf::expected<T> {
                   return error_from_exception(ex, "the head at " + head);
                 })
                 .then([rh = std::move(rh)](caf::expected<T> res) mutable {
                   rh.deliver(std::move(res));
                 }));
  }

  // -- the control link (on a worker) -----------------------------------------

  struct published {
    std::vector<std::string> plugins;
    resources committed;
    std::vector<service_entry> services;
  };

  kj::Promise<void> send_publish() {
    if (!publish_ || !head_)
      return kj::READY_NOW;
    auto req = head_->cluster.publishRequest();
    req.setNodeId(cfg_.dial.node_id);
    auto plugins
      = req.initPlugins(static_cast<unsigned>(publish_->plugins.size()));
    for (unsigned i = 0; i < publish_->plugins.size(); ++i)
      plugins.set(i, publish_->plugins[i]);
    write_services(publish_->services, req.initServices(static_cast<unsigned>(
                                         publish_->services.size())));
    auto committed = req.initCommitted();
    committed.setCpus(publish_->committed.cpus);
    committed.setMemoryBytes(publish_->committed.memory_bytes);
    committed.setGpus(publish_->committed.gpus);
    return req.send().ignoreResult();
  }

  /// Dials the head, joins, then beats until the head is lost; then again
  /// after `backoff`.
  kj::Promise<void> control_loop(kj::Duration backoff) {
    auto start = backoff > kj::Duration{} ? ctx_.timer().afterDelay(backoff)
                                          : kj::Promise<void>{kj::READY_NOW};
    return start
      .then([this] {
        auto opts = cfg_.dial;
        opts.timeout = cfg_.head_dial_timeout;
        return dial(ctx_, cfg_.head, opts);
      })
      .then([this](caf::expected<kj::Own<peer_connection>> conn)
              -> kj::Promise<caf::error> {
        if (!conn)
          return caf::error{std::move(conn.error())};
        if (!(*conn)->head)
          return caf::error{
            make_error(errc::failed_precondition, "the node at " + cfg_.head
                                                    + " is not a head (node "
                                                    + (*conn)->node_id + ")")};
        head_ = kj::mv(*conn);
        auto req = head_->cluster.joinRequest();
        auto self = cfg_.self;
        write_entry(self, req.initNode());
        // A head that stops answering mid-join is lost like one that stops
        // answering heartbeats.
        return ctx_.timer()
          .timeoutAfter(cfg_.head_timeout, req.send())
          .then([this](capnp::Response<wire::Cluster::JoinResults> resp)
                  -> kj::Promise<caf::error> {
            auto r = resp.getResult();
            if (r.isErr())
              return caf::error{read_error(r.getErr())};
            epoch_ = r.getOk();
            joined_ = true;
            head_error_.clear();
            failures_in_a_row_ = 0;
            log(log_level::info, "cluster", "joined the head at ", cfg_.head,
                " (node ", head_->node_id, ")");
            // The join counts as the first beat: the next one keeps the
            // rhythm, or the head's detector would learn a ~0 s interval
            // and grow lenient.
            return ctx_.timer()
              .timeoutAfter(cfg_.head_timeout, send_publish())
              .then([this] { return ctx_.timer().afterDelay(cfg_.heartbeat); })
              .then([this] { return beat(); });
          });
      })
      .catch_([this](kj::Exception&& ex) {
        return error_from_exception(ex, "the head at " + cfg_.head);
      })
      .then([this](caf::error err) -> kj::Promise<void> {
        if (leaving_)
          return kj::NEVER_DONE;
        head_error_ = (joined_ ? "lost it: " : "") + message_of(err);
        if (joined_)
          log(log_level::warning, "cluster", "lost the head at ", cfg_.head,
              ": ", message_of(err));
        else if (failures_in_a_row_ == 0 || failures_in_a_row_ % 20 == 0)
          log(log_level::warning, "cluster", "cannot join the head at ",
              cfg_.head, ": ", message_of(err));
        ++failures_in_a_row_;
        joined_ = false;
        head_ = nullptr;
        auto next
          = failures_in_a_row_ <= 1 ? cfg_.backoff_min : last_backoff_ * 2;
        if (next > cfg_.backoff_max)
          next = cfg_.backoff_max;
        last_backoff_ = next;
        return control_loop(next);
      });
  }

  /// Heartbeats until one goes unanswered for `head_timeout` or the link
  /// breaks; resolves with why.
  kj::Promise<caf::error> beat() {
    auto req = head_->cluster.heartbeatRequest();
    req.setNodeId(cfg_.dial.node_id);
    req.setSeq(++seq_);
    auto reply = req.send().then(
      [this](capnp::Response<wire::Cluster::HeartbeatResults> resp)
        -> kj::Promise<caf::error> {
        auto epoch = resp.getEpoch();
        if (epoch == epoch_)
          return caf::error{};
        epoch_ = epoch;
        return refresh_membership();
      });
    auto timeout = cfg_.head_timeout;
    return ctx_.timer()
      .timeoutAfter(timeout, kj::mv(reply))
      .then([this](caf::error err) -> kj::Promise<caf::error> {
        if (err)
          return kj::mv(err);
        return ctx_.timer()
          .afterDelay(cfg_.heartbeat)
          .then([this]() -> kj::Promise<caf::error> {
            if (leaving_)
              return kj::NEVER_DONE; // the node goes, links and all
            return beat();
          });
      });
  }

  /// Membership changed: cut the links to nodes that are now down.
  kj::Promise<caf::error> refresh_membership() {
    return head_->cluster.nodesRequest().send().then(
      [this](capnp::Response<wire::Cluster::NodesResults> resp) {
        auto r = resp.getResult();
        if (!r.isOk())
          return caf::error{};
        std::set<std::string> listed;
        for (auto x : r.getOk()) {
          listed.insert(x.getNodeId());
          if (x.getState() != "up")
            drop(x.getNodeId(), "the directory counts it as down");
        }
        // A node that left is not listed at all.
        std::vector<std::string> gone;
        for (auto& [id, slot] : peers_)
          if (listed.count(id) == 0)
            gone.push_back(id);
        for (auto& id : gone)
          drop(id, "it left the cluster");
        return caf::error{};
      });
  }

  kj_context& ctx_;
  cluster_links_config cfg_;
  std::map<std::string, slot> peers_;
  uint64_t generations_ = 0;
  kj::Own<peer_connection> head_;
  bool joined_ = false;
  bool leaving_ = false;
  std::string head_error_;
  uint64_t epoch_ = 0;
  uint64_t seq_ = 0;
  uint64_t failures_in_a_row_ = 0;
  kj::Duration last_backoff_{};
  std::optional<published> publish_;
  kj::TaskSet tasks_;
  /// Calls made for the kj thread's own callers (remote_plugins); last, so
  /// that they end first when the links go.
  kj::Canceler canceler_;
};

} // namespace

std::optional<head_link_state> head_link(kj_context& ctx, uint64_t links) {
  auto* self = ctx.find_as<cluster_links>(links);
  if (self == nullptr)
    return std::nullopt;
  return self->head_link();
}

kj::Promise<capnp::Response<wire::Node::StatusResults>>
peer_status(kj_context& ctx, uint64_t links, const location& where) {
  auto* self = ctx.find_as<cluster_links>(links);
  KJ_REQUIRE(self != nullptr, "this node has no cluster links");
  return self->status_of(where);
}

void start_cluster_links(kj_context& ctx, uint64_t id,
                         cluster_links_config cfg) {
  auto links = kj::heap<cluster_links>(ctx, std::move(cfg));
  auto* raw = links.get();
  ctx.adopt(id, kj::mv(links));
  ctx.on_request(
    [raw, id](kj_context& ctx, caf::message& msg, reply_handle& rh) {
      // The resource may be gone (shutdown) while the handler stays.
      if (ctx.find(id) != raw)
        return false;
      return raw->handle(msg, rh);
    });
}

} // namespace joy
