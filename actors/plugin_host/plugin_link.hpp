// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// `plugin_link`: the kj-thread half of a plugin host. It owns the plugin's
/// process and its Cap'n Proto connection, serves `Host` (the bootstrap the
/// plugin says hello to) and `Api`, forwards calls, and reports to its host
/// actor by message. Lives only on the kj thread, as a `kj_resource`.
///
/// What it reports, each at most once per link:
/// * `(ready_atom, id, pid)` after hello and a successful `setup()`;
/// * `(exited_atom, id, reason)` when the process is gone — the reason
///   names a protocol violation, a refused hello or a failed setup when
///   there was one, then the exit status.
#pragma once

#include <optional>
#include <string>

#include <kj/async-unix.h>
#include <kj/async.h>

#include "actors/plugin_host/kj_routes.hpp"
#include "actors/plugin_host/log_drain.hpp"
#include "actors/plugin_host/plugin_host_actor.hpp"
#include "actors/plugin_host/plugin_stats.hpp"
#include "actors/plugin_host/process_launcher.hpp"
#include "runtime/kj_thread.hpp"
#include "runtime/message_stream.hpp"
#include "runtime/plugin_actor.hpp"
#include "runtime/reply_handle.hpp"
#include "runtime/rpc_link.hpp"
#include "schema/plugin.capnp.h"

namespace joy {

class plugin_link final : public kj_resource,
                          private kj::TaskSet::ErrorHandler {
public:
  /// Fails the start (and kills the process) unless hello and setup()
  /// finish within `start_timeout`, measured on the kj timer. Through
  /// `routes` the plugin's own calls reach this node's services and running
  /// plugins on the kj thread, and the link lists itself there while its
  /// plugin runs; calls it takes from there without a deadline get
  /// `call_timeout`.
  plugin_link(kj_context& ctx, uint64_t id, plugin_host_actor host,
              launched_process proc, std::string name, std::string node_id,
              api_handler api, kj::Duration start_timeout,
              std::size_t max_in_flight, stream_limits limits,
              kj_routes routes = {},
              kj::Duration call_timeout = 120 * kj::SECONDS);

  ~plugin_link() noexcept(false) override;

  /// Forwards a call; `rh` receives the value or the error. The call is
  /// cancelled in the plugin when `timeout` passes first.
  void call(call_request req, reply_handle rh, kj::Duration timeout);

  /// The same on the kj thread: the promise has the value or the error;
  /// dropping it cancels the call in the plugin. `req.timeout` (or else
  /// the link's call timeout) is the deadline.
  kj::Promise<caf::expected<value>> call(call_request req);

  /// Graceful stop: the plugin's exit(), then the connection closes (the
  /// plugin exits when it does), then SIGKILL after `grace`.
  void stop(kj::Duration grace);

  /// SIGKILL now.
  void kill();

  /// Counts every finished call in `stats` (may be null).
  void count_calls_in(std::shared_ptr<plugin_stats> stats) {
    stats_ = std::move(stats);
  }

  // Called by the Host capability.
  kj::Promise<void>
  hello(capnp::CallContext<wire::Host::HelloParams, wire::Host::HelloResults>
          context);

  /// A call in flight that may report progress (Api.callProgress): each
  /// report moves its deadline and tells its caller.
  struct call_progress {
    std::shared_ptr<kj::TimePoint> deadline;
    kj::Duration window;
    std::shared_ptr<call_control> upstream;
  };

  using progress_table = std::unordered_map<uint64_t, call_progress>;

  /// What the link and its calls in flight share.
  struct shared_state {
    plugin_host_actor host;
    uint64_t id = 0;
    bool down_sent = false;

    /// Tells the host, once, that the connection broke.
    void report_down(std::string reason);
  };

private:
  kj::Promise<caf::expected<value>> send_call(call_request req,
                                              kj::Duration timeout);
  /// No more calls from `routes_.running`.
  void unlist();
  void taskFailed(kj::Exception&& ex) override;
  void on_exit(exit_status status);
  void on_disconnect();
  void close_connection();
  void fail(std::string reason);

  kj_context& ctx_;
  uint64_t id_;
  plugin_host_actor host_;
  std::shared_ptr<shared_state> shared_;
  std::shared_ptr<process> proc_;
  std::string name_;
  std::string node_id_;
  api_handler api_;
  kj::Own<rpc_link> link_;
  kj::Maybe<wire::Plugin::Client> plugin_;
  kj::Own<kj::UnixEventPort::FdObserver> exit_observer_;
  /// Why the link failed before the process ended, if it did.
  std::string failure_;
  std::size_t max_in_flight_;
  kj_routes routes_;
  kj::Duration call_timeout_;
  std::shared_ptr<plugin_stats> stats_;
  /// Calls sent and not yet answered (shared with their continuations).
  std::shared_ptr<std::size_t> in_flight_counter_
    = std::make_shared<std::size_t>(0);
  /// Calls in flight by id, for their progress reports.
  std::shared_ptr<progress_table> progress_
    = std::make_shared<progress_table>();
  uint64_t last_call_id_ = 0;
  bool said_hello_ = false;
  bool ready_ = false;
  bool stopping_ = false;
  bool exited_ = false;
  /// The plugin's stdout and stderr into its log (may be null); declared
  /// before `tasks_`, which runs it.
  kj::Own<log_drain> drain_;
  kj::TaskSet tasks_;
};

} // namespace joy
