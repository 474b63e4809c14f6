// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/plugin_host/plugin_host_actor.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <utility>
#include <vector>

#include <caf/actor_cast.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/plugin_host/plugin_link.hpp"
#include "runtime/log.hpp"
#include "runtime/protocol.hpp"
#include "runtime/reply_handle.hpp"

namespace joy {

namespace {

struct queued_call {
  call_request req;
  reply_handle reply;
};

struct plugin_host_state {
  static inline const char* name = "plugin_host";

  kj_thread* kj = nullptr;
  spawner_actor spawner;
  plugin_host_config cfg;
  plugin_observer observer;
  plugin_status status;
  /// The current link (0: none) and start attempt.
  uint64_t link = 0;
  uint64_t attempt = 0;
  std::vector<queued_call> queued;
  std::vector<reply_handle> start_waiters;
  std::vector<reply_handle> stop_waiters;
  std::unique_ptr<restart_budget> budget;
  /// The backoff timer that may restart the plugin (others are stale).
  uint64_t backoff_token = 0;
  /// The budget gave up: only an explicit start runs it again.
  bool gave_up = false;
  /// The connection broke; the exit status, and with it the restart
  /// decision, is on its way. Calls wait for it.
  bool awaiting_exit = false;
  /// last_error once a restart after a backoff has come.
  std::string restarted_note;
  /// The plugin's log's size when this run started.
  std::uintmax_t log_start = 0;
};

using self_ptr = plugin_host_actor::stateful_pointer<plugin_host_state>;

kj::Duration to_kj(caf::timespan t) {
  return t.count() * kj::NANOSECONDS;
}

void notify(self_ptr self) {
  auto& st = self->state;
  if (st.observer)
    self->send(st.observer, state_atom_v, st.status);
}

void post_call(self_ptr self, call_request req, reply_handle rh) {
  auto& st = self->state;
  auto timeout = req.timeout.count() > 0 ? req.timeout : st.cfg.call_timeout;
  req.timeout = timeout;
  st.kj->post([id = st.link, req = std::move(req), rh = std::move(rh),
               timeout](kj_context& ctx) mutable {
    auto* link = ctx.find_as<plugin_link>(id);
    if (link == nullptr) {
      rh.deliver(make_error(errc::disconnected, "the plugin's link is gone"));
      return;
    }
    link->call(std::move(req), std::move(rh), to_kj(timeout));
  });
}

void drop_link(self_ptr self) {
  auto& st = self->state;
  if (st.link == 0)
    return;
  st.kj->post([id = st.link](kj_context& ctx) { ctx.drop(id); });
  st.link = 0;
}

/// The last lines of the plugin's log, each on a line of its own after
/// `text`: what the plugin said before it went (a traceback, its last
/// words). A small read of a local file, once, when the plugin failed.
std::string with_last_lines(std::string text, const std::string& log_file,
                            std::uintmax_t since) {
  // Only what this run wrote: a failure before the plugin said anything
  // (its sandbox, its cgroup) must not borrow an earlier run's last words.
  std::error_code ec;
  auto size = std::filesystem::file_size(log_file, ec);
  if (ec || size <= since)
    return text;
  auto lines = last_lines(log_file, 5);
  // last_lines reads at most the last 64 KiB; drop those before `since`.
  if (size - since < (std::uintmax_t{64} << 10)) {
    std::ifstream in{log_file, std::ios::binary};
    in.seekg(static_cast<std::streamoff>(since));
    lines.clear();
    for (std::string line; std::getline(in, line);) {
      lines.push_back(std::move(line));
      if (lines.size() > 5)
        lines.erase(lines.begin());
    }
  }
  if (lines.empty())
    return text;
  text += "; last log lines:";
  for (auto& line : lines)
    text += "\n  " + line;
  return text;
}

void start_failed(self_ptr self, const std::string& reason) {
  auto& st = self->state;
  st.status.state = plugin_state::failed;
  st.status.pid = 0;
  st.status.last_error
    = with_last_lines(reason, st.cfg.launch.log_file, st.log_start);
  auto msg = "plugin '" + st.status.name + "' could not start: " + reason;
  for (auto& q : st.queued)
    q.reply.deliver(make_error(errc::unavailable, msg));
  st.queued.clear();
  for (auto& w : st.start_waiters)
    w.deliver(make_error(errc::unavailable, msg));
  st.start_waiters.clear();
  for (auto& w : st.stop_waiters)
    w.deliver_value(st.status);
  st.stop_waiters.clear();
  log(log_level::warning, "plugin " + st.status.name,
      "could not start: ", reason);
  notify(self);
}

void begin_start(self_ptr self) {
  auto& st = self->state;
  {
    std::error_code ec;
    auto size = std::filesystem::file_size(st.cfg.launch.log_file, ec);
    st.log_start = ec ? 0 : size;
  }
  // A link whose connection broke may still wait for its process to exit;
  // it is of no use any more.
  if (st.link != 0) {
    st.kj->post([id = st.link](kj_context& ctx) {
      if (auto* link = ctx.find_as<plugin_link>(id))
        link->kill();
      ctx.drop(id);
    });
    st.link = 0;
  }
  st.status.state = plugin_state::starting;
  st.status.pid = 0;
  ++st.status.starts;
  auto attempt = ++st.attempt;
  notify(self);
  self->request(st.spawner, st.cfg.start_timeout, start_atom_v, st.cfg.launch)
    .then(
      [self, attempt](launched_process& proc) {
        auto& st = self->state;
        if (attempt != st.attempt || st.status.state != plugin_state::starting)
          return; // aborted: `proc` goes away here, which kills it
        auto id = st.kj->next_id();
        st.link = id;
        st.status.pid = proc.proc ? proc.proc->pid() : 0;
        auto host = caf::actor_cast<plugin_host_actor>(self);
        st.kj->post(
          [id, host, proc, name = st.status.name, node_id = st.cfg.node_id,
           api = st.cfg.api, timeout = to_kj(st.cfg.start_timeout),
           max = st.cfg.max_in_flight, stats = st.cfg.stats,
           routes = st.cfg.routes,
           call_timeout = to_kj(st.cfg.call_timeout)](kj_context& ctx) {
            stream_limits limits;
            limits.max_fds = max_fds_per_message; // the shm arm
            auto link = kj::heap<plugin_link>(ctx, id, host, proc, name,
                                              node_id, api, timeout, max,
                                              limits, routes, call_timeout);
            link->count_calls_in(stats);
            ctx.adopt(id, kj::mv(link));
          });
      },
      [self, attempt](caf::error& err) {
        auto& st = self->state;
        if (attempt != st.attempt || st.status.state != plugin_state::starting)
          return;
        start_failed(self, message_of(err));
      });
}

std::string seconds(caf::timespan t) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3g s",
                std::chrono::duration<double>(t).count());
  return buf;
}

void fail_queued(self_ptr self, const std::string& msg) {
  auto& st = self->state;
  for (auto& q : st.queued)
    q.reply.deliver(make_error(errc::unavailable, msg));
  st.queued.clear();
}

/// A running plugin died: restart it now, later, or give up.
void on_crash(self_ptr self, const std::string& reason) {
  auto& st = self->state;
  st.awaiting_exit = false;
  auto decision = st.budget->on_crash(restart_budget::clock::now());
  auto crashes = std::to_string(st.budget->crashes());
  switch (decision.what) {
    case restart_budget::verdict::restart_now:
      log(log_level::warning, "plugin " + st.status.name, reason,
          "; restarting (crash ", crashes, ")");
      st.status.last_error = reason + " (crash " + crashes + ", restarted)";
      begin_start(self);
      return;
    case restart_budget::verdict::restart_later: {
      st.status.state = plugin_state::backoff;
      st.status.last_error = reason + " (crash " + crashes + ", restarting in "
                             + seconds(decision.delay) + ")";
      st.restarted_note = reason + " (crash " + crashes + ", restarted after "
                          + seconds(decision.delay) + ")";
      log(log_level::warning, "plugin " + st.status.name, st.status.last_error);
      fail_queued(self, "plugin '" + st.status.name
                          + "' crashed: " + st.status.last_error);
      self->delayed_send(self, decision.delay, tick_atom_v, ++st.backoff_token);
      notify(self);
      return;
    }
    case restart_budget::verdict::give_up:
      st.status.state = plugin_state::failed;
      st.gave_up = true;
      st.status.last_error
        = with_last_lines("gave up after " + crashes + " crashes: " + reason,
                          st.cfg.launch.log_file, st.log_start);
      log(log_level::error, "plugin " + st.status.name, st.status.last_error);
      fail_queued(self, "plugin '" + st.status.name + "' failed ("
                          + st.status.last_error + ")");
      notify(self);
      return;
  }
}

void begin_stop(self_ptr self) {
  auto& st = self->state;
  if (st.link == 0) {
    // Still spawning (or nothing runs): nothing to wait for.
    for (auto& q : st.queued)
      q.reply.deliver(make_error(errc::unavailable, "plugin '" + st.status.name
                                                      + "' was stopped"));
    st.queued.clear();
    for (auto& w : st.start_waiters)
      w.deliver(make_error(errc::unavailable,
                           "plugin '" + st.status.name + "' was stopped"));
    st.start_waiters.clear();
    ++st.attempt; // a late spawn reply is now stale
    st.status.state = plugin_state::stopped;
    st.status.pid = 0;
    for (auto& w : st.stop_waiters)
      w.deliver_value(st.status);
    st.stop_waiters.clear();
    notify(self);
    return;
  }
  st.status.state = plugin_state::stopping;
  notify(self);
  st.kj->post(
    [id = st.link, grace = to_kj(st.cfg.stop_grace)](kj_context& ctx) {
      if (auto* link = ctx.find_as<plugin_link>(id))
        link->stop(grace);
    });
}

} // namespace

plugin_host_actor spawn_plugin_host(caf::actor_system& sys, kj_thread& kj,
                                    spawner_actor spawner,
                                    plugin_host_config cfg,
                                    plugin_observer observer) {
  auto init = [&kj, spawner, cfg,
               observer](self_ptr self) -> plugin_host_actor::behavior_type {
    auto& st = self->state;
    st.kj = &kj;
    st.spawner = spawner;
    st.cfg = cfg;
    st.observer = observer;
    st.status.name = cfg.launch.name;
    st.budget = std::make_unique<restart_budget>(cfg.restart);
    // Whatever ends this actor, its process goes too.
    self->attach_functor([self](const caf::error&) { drop_link(self); });
    return {
      // -- plugin interface ---------------------------------------------------
      [self](call_atom, call_request& req) -> caf::result<value> {
        auto& st = self->state;
        switch (st.status.state) {
          case plugin_state::running:
            post_call(self, std::move(req), reply_handle{self});
            break;
          case plugin_state::stopping:
            return make_error(errc::unavailable,
                              "plugin '" + st.status.name + "' is stopping");
          case plugin_state::backoff:
            return make_error(errc::unavailable,
                              "plugin '" + st.status.name
                                + "' crashed: " + st.status.last_error);
          case plugin_state::failed:
            if (st.gave_up)
              return make_error(errc::unavailable,
                                "plugin '" + st.status.name + "' failed ("
                                  + st.status.last_error
                                  + "); start it again to retry");
            [[fallthrough]];
          case plugin_state::starting:
          case plugin_state::stopped:
            if (st.queued.size() >= st.cfg.max_queued_calls)
              return make_error(
                errc::overloaded,
                "plugin '" + st.status.name
                  + "' is starting and has too many calls waiting");
            st.queued.push_back(
              queued_call{std::move(req), reply_handle{self}});
            if (st.status.state != plugin_state::starting && !st.awaiting_exit)
              begin_start(self);
            break;
        }
        return caf::delegated<value>{};
      },
      [self](setup_atom) -> caf::result<value> {
        // setup() runs once as part of every start; this only makes sure a
        // start happened.
        auto& st = self->state;
        if (st.status.state == plugin_state::running)
          return value{};
        return make_error(errc::failed_precondition,
                          "plugin '" + st.status.name
                            + "' runs setup() when it starts; start it first");
      },
      [self](run_atom, value& ctx) -> caf::result<value> {
        auto& st = self->state;
        call_request req;
        req.method = "run";
        req.args.push_back(std::move(ctx));
        if (st.status.state != plugin_state::running)
          return make_error(errc::unavailable,
                            "plugin '" + st.status.name + "' is not running");
        post_call(self, std::move(req), reply_handle{self});
        return caf::delegated<value>{};
      },
      [self](describe_atom) -> caf::result<value> {
        auto& st = self->state;
        return value{
          value_map{{"name", value{st.status.name}},
                    {"state", value{std::string{to_string(st.status.state)}}}}};
      },
      [self](exit_atom) {
        auto& st = self->state;
        if (st.status.state == plugin_state::running
            || st.status.state == plugin_state::starting)
          begin_stop(self);
      },
      // -- control ------------------------------------------------------------
      [self](start_atom) -> caf::result<plugin_status> {
        auto& st = self->state;
        switch (st.status.state) {
          case plugin_state::running:
            return st.status;
          case plugin_state::stopping:
            return make_error(errc::unavailable,
                              "plugin '" + st.status.name + "' is stopping");
          case plugin_state::starting:
            st.start_waiters.emplace_back(self);
            break;
          case plugin_state::backoff:
          case plugin_state::stopped:
          case plugin_state::failed:
            // An explicit start forgives every crash.
            st.budget->reset();
            st.gave_up = false;
            st.awaiting_exit = false;
            ++st.backoff_token;
            st.start_waiters.emplace_back(self);
            begin_start(self);
            break;
        }
        return caf::delegated<plugin_status>{};
      },
      [self](stop_atom) -> caf::result<plugin_status> {
        auto& st = self->state;
        switch (st.status.state) {
          case plugin_state::backoff:
            ++st.backoff_token;
            st.status.state = plugin_state::stopped;
            notify(self);
            return st.status;
          case plugin_state::stopped:
          case plugin_state::failed:
            return st.status;
          case plugin_state::stopping:
            st.stop_waiters.emplace_back(self);
            break;
          case plugin_state::starting:
          case plugin_state::running:
            st.stop_waiters.emplace_back(self);
            begin_stop(self);
            break;
        }
        return caf::delegated<plugin_status>{};
      },
      [self](status_atom) -> plugin_status { return self->state.status; },
      // -- from the kj thread and timers --------------------------------------
      [self](ready_atom, uint64_t id, int32_t pid,
             std::vector<std::string>& methods,
             std::vector<std::vector<std::string>>& params) {
        auto& st = self->state;
        if (id != st.link || st.status.state != plugin_state::starting)
          return;
        st.status.state = plugin_state::running;
        st.status.pid = pid;
        st.status.methods = std::move(methods);
        st.status.params = std::move(params);
        // last_error stays: after a restart it tells why there was one,
        // no longer that one is coming.
        if (st.status.last_error.find(", restarting in ") != std::string::npos)
          st.status.last_error = st.restarted_note;
        log(log_level::info, "plugin " + st.status.name, "running as pid ",
            pid);
        auto queued = std::move(st.queued);
        st.queued.clear();
        for (auto& q : queued)
          post_call(self, std::move(q.req), std::move(q.reply));
        for (auto& w : st.start_waiters)
          w.deliver_value(st.status);
        st.start_waiters.clear();
        notify(self);
      },
      [self](down_atom, uint64_t id, std::string& reason) {
        auto& st = self->state;
        if (id != st.link || st.status.state != plugin_state::running)
          return;
        // The process may still be exiting; its exit report refines the
        // reason. The next call starts a new one.
        st.status.state = plugin_state::failed;
        st.status.pid = 0;
        st.status.last_error = reason;
        st.awaiting_exit = true;
        log(log_level::info, "plugin " + st.status.name, reason);
        notify(self);
      },
      [self](tick_atom, uint64_t token) {
        auto& st = self->state;
        if (token == st.backoff_token
            && st.status.state == plugin_state::backoff)
          begin_start(self);
      },
      [self](exited_atom, uint64_t id, std::string& reason) {
        auto& st = self->state;
        if (id != st.link) {
          // A superseded link: make sure it is gone.
          st.kj->post([id](kj_context& ctx) { ctx.drop(id); });
          return;
        }
        drop_link(self);
        st.status.pid = 0;
        switch (st.status.state) {
          case plugin_state::starting:
            start_failed(self, "exited during start: " + reason);
            return;
          case plugin_state::running:
          case plugin_state::failed:
            // Running, or failed by a broken connection: now we know why.
            st.status.state = plugin_state::failed;
            on_crash(self, "exited unexpectedly: " + reason);
            return;
          case plugin_state::stopping:
          default:
            st.status.state = plugin_state::stopped;
            for (auto& w : st.stop_waiters)
              w.deliver_value(st.status);
            st.stop_waiters.clear();
            notify(self);
            return;
        }
      },
    };
  };
  return sys.spawn(init);
}

} // namespace joy
