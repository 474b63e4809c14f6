// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// B3: an actor calling hello.add in a real plugin process, through the
// plugin host, the kj seam, the validating stream and the plugin's actor,
// against (a) a raw Cap'n Proto round trip of the same call between two
// processes over a unix socket and (b) a raw unix-socket ping-pong.
// Plus the seam on its own: CAF -> kj -> CAF hand-offs through the eventfd
// queue vs kj::Executor::executeSync.

#include <fcntl.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <future>
#include <memory>
#include <stdexcept>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include "actors/plugin_host/plugin_host_actor.hpp"
#include "actors/plugin_host/spawner_actor.hpp"
#include "runtime/kj_thread.hpp"
#include "runtime/protocol.hpp"
#include "runtime/reply_handle.hpp"
#include "runtime/system_config.hpp"
#include "runtime/unique_fd.hpp"
#include "runtime/value_wire.hpp"
#include "schema/plugin.capnp.h"
#include "tools/bench/bench.hpp"

extern char** environ;

namespace joy::bench {

namespace {

using clock = std::chrono::steady_clock;

/// Raw Cap'n Proto: the same Plugin.call, client and server each a plain kj
/// loop, no actors, no validation.
latencies raw_capnp(const options& opts, const std::string& self) {
  raw_client client{self};
  auto& plugin = client.plugin();
  latencies lat;
  auto one = [&](int64_t i) {
    auto req = plugin.callRequest();
    req.setMethod("add");
    auto args = req.initArgs(2);
    args[0].setInt64(i);
    args[1].setInt64(1);
    auto resp = req.send().wait(client.wait_scope());
    if (resp.getResult().getOk().getInt64() != i + 1)
      throw std::runtime_error("raw capnp: wrong sum");
  };
  for (std::size_t i = 0; i < opts.samples / 10; ++i)
    one(static_cast<int64_t>(i));
  for (std::size_t i = 0; i < opts.samples; ++i) {
    auto t0 = clock::now();
    one(static_cast<int64_t>(i));
    lat.add(clock::now() - t0);
  }
  return lat;
}

/// Raw unix socket: 64 bytes there and back.
latencies raw_socket(const options& opts, const std::string& self) {
  server_child child{self, "--serve-echo"};
  char buf[64] = {};
  latencies lat;
  auto one = [&] {
    if (::write(child.socket.get(), buf, sizeof(buf)) != sizeof(buf))
      throw std::runtime_error("echo write failed");
    std::size_t got = 0;
    while (got < sizeof(buf)) {
      auto n = ::read(child.socket.get(), buf + got, sizeof(buf) - got);
      if (n <= 0)
        throw std::runtime_error("echo read failed");
      got += static_cast<std::size_t>(n);
    }
  };
  for (std::size_t i = 0; i < opts.samples / 10; ++i)
    one();
  for (std::size_t i = 0; i < opts.samples; ++i) {
    auto t0 = clock::now();
    one();
    lat.add(clock::now() - t0);
  }
  return lat;
}

} // namespace

plugin_host_actor start_hello(caf::actor_system& sys, kj_thread& kj,
                              const spawner_actor& spawner, const options& opts,
                              std::size_t max_in_flight) {
  plugin_host_config hc;
  hc.launch.name = "hello";
  hc.launch.executable = opts.examples_dir + "/hello/hello";
  hc.launch.work_dir = opts.examples_dir + "/hello";
  hc.node_id = "bench";
  hc.max_in_flight = max_in_flight;
  auto host = spawn_plugin_host(sys, kj, spawner, hc, plugin_observer{});
  caf::scoped_actor self{sys};
  self->request(host, std::chrono::seconds{10}, start_atom_v)
    .receive([](plugin_status&) {},
             [](caf::error& err) {
               throw std::runtime_error("cannot start hello: "
                                        + message_of(err));
             });
  return host;
}

std::vector<row> run_b3(const options& opts) {
  auto self_path = opts.bin_dir + "/joy-bench";
  std::vector<row> rows;
  caf::actor_system_config cfg;
  configure_actor_system(cfg, opts.workers);
  caf::actor_system sys{cfg};
  {
    kj_thread kj{sys};
    // -- ours: actor -> plugin host -> kj -> plugin process -> back -----------
    auto spawner
      = spawn_spawner(sys, make_exec_launcher(opts.bin_dir + "/joy-exec"));
    auto host = start_hello(sys, kj, spawner, opts);
    auto issue = [host](caf::event_based_actor* self, int64_t i, auto done) {
      call_request req;
      req.method = "add";
      req.args = {value{i}, value{int64_t{1}}};
      self->request(host, std::chrono::seconds{10}, call_atom_v, std::move(req))
        .then([done](value&) mutable { done(); },
              [done](caf::error& err) mutable {
                std::fprintf(stderr, "B3: call failed: %s\n",
                             message_of(err).c_str());
                done();
              });
    };
    // Alternate ours and the baselines in rounds; keep each one's best round
    // of medians (noise only ever adds latency).
    latencies ours_best, capnp_best, socket_best;
    double ours_p50 = 1e18, capnp_p50 = 1e18, socket_p50 = 1e18;
    for (int round = 0; round < 3; ++round) {
      auto ours = drive_latency(sys, opts.samples / 10, opts.samples, issue);
      auto capnp = raw_capnp(opts, self_path);
      auto sock = raw_socket(opts, self_path);
      if (auto p = ours.quantile_us(0.5); p < ours_p50) {
        ours_p50 = p;
        ours_best = std::move(ours);
      }
      if (auto p = capnp.quantile_us(0.5); p < capnp_p50) {
        capnp_p50 = p;
        capnp_best = std::move(capnp);
      }
      if (auto p = sock.quantile_us(0.5); p < socket_p50) {
        socket_p50 = p;
        socket_best = std::move(sock);
      }
    }
    auto ours_p99 = ours_best.quantile_us(0.99);
    auto capnp_p99 = capnp_best.quantile_us(0.99);
    auto socket_p99 = socket_best.quantile_us(0.99);
    rows.push_back(row{"B3.p50", "actor -> hello.add in a plugin process, p50",
                       ours_p50, "us", capnp_p50, "lower",
                       "raw Cap'n Proto round trip, 2 processes, unix socket"});
    rows.push_back(row{"B3.p99", "actor -> hello.add in a plugin process, p99",
                       ours_p99, "us", capnp_p99, "lower",
                       "raw Cap'n Proto round trip, 2 processes, unix socket"});
    rows.push_back(row{
      "B3.sock.p50", "actor -> hello.add in a plugin process, p50", ours_p50,
      "us", socket_p50, "lower", "raw unix socket ping-pong, 64 B"});
    rows.push_back(row{
      "B3.sock.p99", "actor -> hello.add in a plugin process, p99", ours_p99,
      "us", socket_p99, "lower", "raw unix socket ping-pong, 64 B"});
    {
      caf::scoped_actor self{sys};
      self->request(host, std::chrono::seconds{10}, stop_atom_v)
        .receive([](plugin_status&) {}, [](caf::error&) {});
    }
    caf::anon_send_exit(host, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(spawner, caf::exit_reason::user_shutdown);

    // -- the seam alone -------------------------------------------------------
    // CAF -> kj -> CAF: post a task that answers through a reply handle.
    using echo_actor
      = caf::typed_actor<caf::replies_to<call_atom, int64_t>::with<int64_t>>;
    auto seam
      = sys.spawn([&kj](echo_actor::pointer self) -> echo_actor::behavior_type {
          return {[self, &kj](call_atom, int64_t x) -> caf::result<int64_t> {
            kj.post([rh = reply_handle{self}, x](kj_context&) mutable {
              rh.deliver_value(x);
            });
            return caf::delegated<int64_t>{};
          }};
        });
    auto seam_issue
      = [seam](caf::event_based_actor* self, int64_t i, auto done) {
          self->request(seam, std::chrono::seconds{10}, call_atom_v, i)
            .then([done](int64_t) mutable { done(); },
                  [done](caf::error&) mutable { done(); });
        };
    // Throughput with 100 in flight.
    auto run_par = [&](std::size_t total) {
      return drive_pipelined(sys, 100, total, seam_issue);
    };
    run_par(opts.calls / 10);
    double seam_rate = 0;
    for (int round = 0; round < 3; ++round)
      seam_rate = std::max(seam_rate, run_par(opts.calls));
    // Baseline: executeSync from a CAF worker (blocks it for each hand-off).
    std::promise<const kj::Executor*> exec_promise;
    kj.post([&exec_promise](kj_context&) {
      exec_promise.set_value(&kj::getCurrentThreadExecutor());
    });
    auto* executor = exec_promise.get_future().get();
    auto sync_rate = [&] {
      std::promise<double> result;
      auto fut = result.get_future();
      auto n = opts.calls / 10;
      sys.spawn([executor, n, &result](caf::event_based_actor* self) {
        auto t0 = clock::now();
        for (std::size_t i = 0; i < n; ++i)
          executor->executeSync([] {});
        result.set_value(
          static_cast<double>(n)
          / std::chrono::duration<double>(clock::now() - t0).count());
        self->quit();
      });
      return fut.get();
    }();
    rows.push_back(
      row{"B3.seam",
          "CAF -> kj -> CAF hand-offs via the eventfd queue, 100 in flight",
          seam_rate, "hand-offs/s", sync_rate, "higher",
          "kj::Executor::executeSync from a CAF worker"});
    auto seam_lat
      = drive_latency(sys, opts.samples / 10, opts.samples, seam_issue);
    rows.push_back(row{"B3.seam.p50",
                       "CAF -> kj -> CAF hand-off, 1 in flight, p50",
                       seam_lat.quantile_us(0.5), "us", 0, "lower", ""});
    caf::anon_send_exit(seam, caf::exit_reason::user_shutdown);
    sys.await_all_actors_done();
    kj.stop();
  }
  return rows;
}

} // namespace joy::bench
