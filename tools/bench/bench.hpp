// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// joy-bench's shared vocabulary: a result row, latency statistics, and the
/// benchmarks' entry points. Every benchmark measures its baseline in the
/// same run and reports ours / baseline, because these machines are shared
/// and noisy.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include <sys/types.h>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>

#include "actors/plugin_host/plugin_host_actor.hpp"
#include "actors/plugin_host/spawner_actor.hpp"
#include "runtime/kj_thread.hpp"
#include "runtime/unique_fd.hpp"
#include "schema/plugin.capnp.h"

namespace joy::bench {

struct row {
  std::string id;
  std::string name;
  double value = 0;
  std::string unit;
  double baseline = 0;
  /// "higher" or "lower": which way is better.
  std::string better;
  /// What the baseline is.
  std::string baseline_name;

  double ratio() const {
    return baseline != 0 ? value / baseline : 0;
  }
};

/// Latencies in nanoseconds.
struct latencies {
  std::vector<int64_t> ns;

  void add(std::chrono::steady_clock::duration d) {
    ns.push_back(
      std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
  }

  /// The q-quantile in microseconds (q in [0, 1]).
  double quantile_us(double q) {
    if (ns.empty())
      return 0;
    std::sort(ns.begin(), ns.end());
    auto i = static_cast<std::size_t>(q * static_cast<double>(ns.size() - 1));
    return static_cast<double>(ns[i]) / 1000.0;
  }
};

/// Keeps `in_flight` requests going from one actor until `total` of them
/// completed; returns completions per second. `issue(self, i, done)` sends
/// request i and calls `done()` once it completed, however.
template <class Issue>
double drive_pipelined(caf::actor_system& sys, std::size_t in_flight,
                       std::size_t total, Issue issue) {
  struct state {
    std::size_t issued = 0, done = 0, total = 0;
    std::promise<void> finished;
  };
  auto st = std::make_shared<state>();
  st->total = total;
  auto fut = st->finished.get_future();
  auto t0 = std::chrono::steady_clock::now();
  sys.spawn([st, issue, in_flight](caf::event_based_actor* self) {
    auto next = std::make_shared<std::function<void()>>();
    *next = [self, st, issue, next] {
      if (st->issued >= st->total)
        return;
      issue(self, static_cast<int64_t>(st->issued++), [self, st, next] {
        if (++st->done == st->total) {
          st->finished.set_value();
          self->quit();
          *next = nullptr; // breaks the cycle
          return;
        }
        (*next)();
      });
    };
    for (std::size_t k = 0; k < in_flight; ++k)
      (*next)();
  });
  fut.wait();
  return static_cast<double>(total)
         / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
             .count();
}

/// Sequential requests from an event-based actor; per-call latencies.
template <class Issue>
latencies drive_latency(caf::actor_system& sys, std::size_t warmup,
                        std::size_t samples, Issue issue) {
  struct state {
    std::size_t i = 0;
    std::size_t warmup;
    std::size_t total;
    latencies lat;
    std::promise<void> done;
  };
  auto st = std::make_shared<state>();
  st->warmup = warmup;
  st->total = warmup + samples;
  auto done = st->done.get_future();
  sys.spawn([st, issue](caf::event_based_actor* self) {
    auto next = std::make_shared<std::function<void()>>();
    *next = [self, st, issue, next] {
      if (st->i == st->total) {
        st->done.set_value();
        self->quit();
        *next = nullptr; // breaks the cycle
        return;
      }
      auto i = st->i++;
      auto t0 = std::chrono::steady_clock::now();
      issue(self, static_cast<int64_t>(i), [st, i, t0, next] {
        if (i >= st->warmup)
          st->lat.add(std::chrono::steady_clock::now() - t0);
        (*next)();
      });
    };
    (*next)();
  });
  done.wait();
  return std::move(st->lat);
}

struct options {
  /// Round trips per latency measurement.
  std::size_t samples = 20000;
  /// Calls per throughput measurement.
  std::size_t calls = 200000;
  /// Where joy-exec, hello and this binary live.
  std::string bin_dir;
  std::string examples_dir;
  /// CAF worker threads in the measuring process.
  std::size_t workers = 2;
};

/// examples/hello started in a real plugin process under a plugin host (as
/// joyd runs plugins); throws when it does not start.
plugin_host_actor start_hello(caf::actor_system& sys, kj_thread& kj,
                              const spawner_actor& spawner, const options& opts,
                              std::size_t max_in_flight = 1024);

/// BPY: native-python plugins (call latency vs C++, cold start vs a bare
/// `python3 -c "import asyncio, numpy"`, 256 MiB round trip vs memcpy).
std::vector<row> run_bpy(const options& opts);

/// B11: the gpu service's actors against the CUDA runtime alone (with a
/// device) and against the CPU function called directly.
std::vector<row> run_b11(const options& opts);

/// B1: in-process request/response to a plugin-interface actor with
/// joy::value arguments vs a raw CAF typed actor with two int64s.
std::vector<row> run_b1(const options& opts);

/// B3: an actor calling hello.add in a plugin process through the kj
/// thread vs a raw Cap'n Proto round trip between two processes vs a raw
/// unix socket ping-pong; plus the seam's hand-off rate vs executeSync.
std::vector<row> run_b3(const options& opts);

/// B4: calls/s with 100 in flight on one plugin connection (actor ->
/// hello.add) vs raw Cap'n Proto with 100 in flight.
std::vector<row> run_b4(const options& opts);

/// B8: plugin cold start (spawn to first call answered), unsandboxed and
/// sandboxed, and restart after a crash, vs posix_spawn of /bin/true.
std::vector<row> run_b8(const options& opts);

/// B5, B7a and callbacks, measured inside plugins on a real node that
/// joy-bench starts in a temp home: get_service(x).f() vs one call, a
/// callback round trip vs a plain call, and same-host ndarrays plugin to
/// plugin vs memcpy.
std::vector<row> run_node_benches(const options& opts);

/// This binary started in a server mode with its end of a socketpair on
/// fd 3; the destructor closes ours and reaps it.
struct server_child {
  pid_t pid = -1;
  unique_fd socket;

  server_child(const std::string& self, const char* mode);
  ~server_child();
};

/// The raw Cap'n Proto baseline's client: a plain kj loop connected to a
/// `--serve-capnp` child, no actors, no validation.
class raw_client {
public:
  explicit raw_client(const std::string& self);
  ~raw_client();

  kj::WaitScope& wait_scope();
  wire::Plugin::Client& plugin();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Child modes (the bench re-executes itself with the socket on fd 3).
int serve_capnp();

/// The raw baselines' Plugin server: `call` adds its two int64 arguments
/// straight from the message, with no Joy in between.
capnp::Capability::Client raw_plugin_server();

/// B6 and B7b: a plugin on one node calling a plugin on another, and
/// ndarrays between them, against raw Cap'n Proto over TCP, a raw unix
/// socket and raw TCP throughput, measured in the same run.
std::vector<row> run_cluster_benches(const options& opts);

/// B9 (hypha-rpc calls through the bridge), B7c (1 MiB arrays to a
/// client) and B12 (idle clients): a node with a bridge driven by Node.
std::vector<row> run_bridge_benches(const options& opts);
int serve_echo();

} // namespace joy::bench
