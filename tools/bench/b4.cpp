// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// B4: pipelined calls on one plugin connection. An actor keeps 100 calls of
// hello.add in flight to a real plugin process (plugin host, kj seam,
// validating stream with write batching, the plugin's actor), against raw
// Cap'n Proto keeping 100 of the same calls in flight between two
// processes.

#include <atomic>
#include <future>
#include <memory>
#include <stdexcept>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include "actors/plugin_host/plugin_host_actor.hpp"
#include "actors/plugin_host/spawner_actor.hpp"
#include "runtime/kj_thread.hpp"
#include "runtime/system_config.hpp"
#include "schema/plugin.capnp.h"
#include "tools/bench/bench.hpp"

namespace joy::bench {

namespace {

using clock = std::chrono::steady_clock;

constexpr std::size_t in_flight = 100;

double seconds_since(clock::time_point t0) {
  return std::chrono::duration<double>(clock::now() - t0).count();
}

/// Raw Cap'n Proto: `in_flight` lanes, each issuing its next call when the
/// previous one returns, until `total` calls completed (after a warm-up of
/// a tenth of that). Calls/s.
double raw_pipelined(const std::string& self, std::size_t total) {
  raw_client client{self};
  auto& plugin = client.plugin();
  std::size_t issued = 0;
  std::size_t limit = 0;
  std::function<kj::Promise<void>()> lane = [&]() -> kj::Promise<void> {
    if (issued >= limit)
      return kj::READY_NOW;
    auto i = static_cast<int64_t>(issued++);
    auto req = plugin.callRequest();
    req.setMethod("add");
    auto args = req.initArgs(2);
    args[0].setInt64(i);
    args[1].setInt64(1);
    return req.send().then([&, i](auto resp) {
      if (resp.getResult().getOk().getInt64() != i + 1)
        throw std::runtime_error("raw capnp: wrong sum");
      return lane();
    });
  };
  auto run = [&](std::size_t n) {
    issued = 0;
    limit = n;
    auto t0 = clock::now();
    auto lanes = kj::heapArrayBuilder<kj::Promise<void>>(in_flight);
    for (std::size_t k = 0; k < in_flight; ++k)
      lanes.add(lane());
    kj::joinPromises(lanes.finish()).wait(client.wait_scope());
    return static_cast<double>(n) / seconds_since(t0);
  };
  run(total / 10);
  return run(total);
}

/// Ours: an actor with `in_flight` calls to the plugin host. Calls/s.
double ours_pipelined(caf::actor_system& sys, plugin_host_actor host,
                      std::size_t total) {
  auto failed = std::make_shared<std::atomic<std::size_t>>(0);
  auto rate = drive_pipelined(
    sys, in_flight, total,
    [host, failed](caf::event_based_actor* self, int64_t i, auto done) {
      call_request req;
      req.method = "add";
      req.args = {value{i}, value{1}};
      self->request(host, caf::infinite, call_atom_v, std::move(req))
        .then([done](value&) mutable { done(); },
              [failed, done](caf::error&) mutable {
                ++*failed;
                done();
              });
    });
  if (*failed > 0)
    throw std::runtime_error("B4: " + std::to_string(failed->load())
                             + " calls failed");
  return rate;
}

} // namespace

std::vector<row> run_b4(const options& opts) {
  auto self_path = opts.bin_dir + "/joy-bench";
  caf::actor_system_config cfg;
  configure_actor_system(cfg, opts.workers);
  caf::actor_system sys{cfg};
  std::vector<row> rows;
  {
    kj_thread kj{sys};
    auto spawner
      = spawn_spawner(sys, make_exec_launcher(opts.bin_dir + "/joy-exec"));
    // Room for the whole window: this measures throughput, not the
    // overload guard.
    auto host = start_hello(sys, kj, spawner, opts, 4 * in_flight);
    auto n = opts.calls / 2;
    ours_pipelined(sys, host, n / 10);
    // Medians of alternating rounds.
    std::vector<double> ours, raw;
    for (int round = 0; round < 5; ++round) {
      ours.push_back(ours_pipelined(sys, host, n));
      raw.push_back(raw_pipelined(self_path, n));
    }
    std::sort(ours.begin(), ours.end());
    std::sort(raw.begin(), raw.end());
    rows.push_back(
      row{"B4", "hello.add, 100 in flight on one plugin connection",
          ours[ours.size() / 2], "calls/s", raw[raw.size() / 2], "higher",
          "raw Cap'n Proto, 100 in flight, 2 processes, unix "
          "socket"});
    {
      caf::scoped_actor self{sys};
      self->request(host, std::chrono::seconds{10}, stop_atom_v)
        .receive([](plugin_status&) {}, [](caf::error&) {});
    }
    caf::anon_send_exit(host, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(spawner, caf::exit_reason::user_shutdown);
    sys.await_all_actors_done();
    kj.stop();
  }
  return rows;
}

} // namespace joy::bench
