// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// BPY: native-python plugins under a plugin host, as joyd runs them.
//
// * call latency of a Python plugin's `async def` and plain `def` methods
//   against examples/hello (C++) under the same host, in the same run;
// * cold start (spawn to first call answered) of a plugin that imports
//   numpy, against `python3 -c "import asyncio, numpy"`;
// * a 256 MiB ndarray round trip (shared memory to Python and back, the
//   caller reading every byte of the answer) against memcpy.

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <caf/scoped_actor.hpp>

#include "actors/plugin_host/plugin_host_actor.hpp"
#include "actors/plugin_host/spawner_actor.hpp"
#include "runtime/shared_memory.hpp"
#include "runtime/system_config.hpp"
#include "tools/bench/bench.hpp"

extern char** environ;

namespace joy::bench {

namespace {

using clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

constexpr const char* python_plugin = R"(from imjoy import api
import asyncio
import numpy as np


class Bench:
    async def echo(self, x):
        return x

    def echo_sync(self, x):
        return x

    async def mirror(self, arr):
        return arr


api.export(Bench())
)";

/// Runs `python3 -c "import asyncio, numpy"` n times: what importing the
/// same modules costs a bare interpreter.
latencies bare_python(int n) {
  latencies lat;
  std::string py = "/usr/bin/python3", c = "-c", code = "import asyncio, numpy";
  char* argv[] = {py.data(), c.data(), code.data(), nullptr};
  for (int i = 0; i < n; ++i) {
    auto t0 = clock::now();
    pid_t pid = -1;
    if (::posix_spawn(&pid, py.c_str(), nullptr, nullptr, argv, environ) != 0)
      throw std::runtime_error("BPY: cannot run " + py);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      throw std::runtime_error("BPY: python3 cannot import numpy");
    lat.add(clock::now() - t0);
  }
  return lat;
}

plugin_host_actor spawn_host(caf::actor_system& sys, kj_thread& kj,
                             const spawner_actor& spawner, launch_spec launch) {
  plugin_host_config hc;
  hc.launch = std::move(launch);
  hc.node_id = "bench";
  hc.stop_grace = std::chrono::seconds{1};
  return spawn_plugin_host(sys, kj, spawner, hc, plugin_observer{});
}

plugin_status ask(caf::scoped_actor& self, const plugin_host_actor& host,
                  caf::message msg) {
  plugin_status out;
  self
    ->request(caf::actor_cast<caf::actor>(host), std::chrono::seconds{30},
              std::move(msg))
    .receive([&](plugin_status& st) { out = st; },
             [](caf::error& err) {
               throw std::runtime_error("BPY: " + message_of(err));
             });
  return out;
}

value call(caf::scoped_actor& self, const plugin_host_actor& host,
           std::string method, value_list args) {
  call_request req;
  req.method = std::move(method);
  req.args = std::move(args);
  value out;
  self->request(host, std::chrono::seconds{60}, call_atom_v, std::move(req))
    .receive([&](value& x) { out = std::move(x); },
             [](caf::error& err) {
               throw std::runtime_error("BPY: call failed: " + message_of(err));
             });
  return out;
}

/// Sequential calls of `method(i)` to `host`.
latencies call_latency(caf::actor_system& sys, const plugin_host_actor& host,
                       const std::string& method, std::size_t samples) {
  auto issue
    = [host, method](caf::event_based_actor* self, int64_t i, auto done) {
        call_request req;
        req.method = method;
        req.args = {value{i}};
        self->request(host, caf::infinite, call_atom_v, std::move(req))
          .then([done](value&) mutable { done(); },
                [done](caf::error& err) mutable {
                  std::fprintf(stderr, "BPY: call failed: %s\n",
                               message_of(err).c_str());
                  done();
                });
      };
  return drive_latency(sys, samples / 10, samples, issue);
}

/// The best p50 and p99 over rounds (noise only ever adds latency).
struct best {
  double p50 = 1e18;
  double p99 = 1e18;

  void add(latencies lat) {
    p50 = std::min(p50, lat.quantile_us(0.5));
    p99 = std::min(p99, lat.quantile_us(0.99));
  }
};

} // namespace

std::vector<row> run_bpy(const options& opts) {
  auto host_bin = opts.bin_dir + "/joy-python-host";
  if (::access(host_bin.c_str(), X_OK) != 0)
    throw std::runtime_error("BPY: no " + host_bin
                             + " (built without pybind11)");
  auto dir = fs::temp_directory_path()
             / ("joy-bench-bpy-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream{dir / "plugin.json"}
    << R"({"name": "pybench", "type": "native-python", "entry": "bench.py"})";
  std::ofstream{dir / "bench.py"} << python_plugin;
  launch_spec py;
  py.name = "pybench";
  py.runtime = host_bin;
  py.executable = (dir / "bench.py").string();
  py.work_dir = dir.string();
  launch_spec cpp;
  cpp.name = "hello";
  cpp.executable = opts.examples_dir + "/hello/hello";
  cpp.work_dir = opts.examples_dir + "/hello";

  std::vector<row> rows;
  caf::actor_system_config cfg;
  configure_actor_system(cfg, opts.workers);
  caf::actor_system sys{cfg};
  {
    kj_thread kj{sys};
    // Large data as a plugin process has it: shared memory both ways.
    large_data_policy large;
    large.pool = shm_pool::make();
    large.mappings = std::make_shared<shm_mapping_cache>();
    kj.post([large](kj_context& ctx) { ctx.set_large_data(large); });
    auto spawner
      = spawn_spawner(sys, make_exec_launcher(opts.bin_dir + "/joy-exec"));
    // Gone before await_all_actors_done, which would wait for it too.
    auto self = std::make_unique<caf::scoped_actor>(sys);

    // -- call latency
    // ----------------------------------------------------------
    auto python = spawn_host(sys, kj, spawner, py);
    auto hello = spawn_host(sys, kj, spawner, cpp);
    ask(*self, python, caf::make_message(start_atom_v));
    ask(*self, hello, caf::make_message(start_atom_v));
    auto samples = std::max<std::size_t>(opts.samples / 4, 500);
    // Rounds alternate, so that machine noise hits all three alike.
    best c, a, s;
    for (int round = 0; round < 3; ++round) {
      c.add(call_latency(sys, hello, "echo", samples));
      a.add(call_latency(sys, python, "echo", samples));
      s.add(call_latency(sys, python, "echo_sync", samples));
    }
    const char* cpp_name = "the same call of a C++ plugin (examples/hello)";
    rows.push_back(row{"BPY.call.p50", "Python plugin call (async def), p50",
                       a.p50, "us", c.p50, "lower", cpp_name});
    rows.push_back(row{"BPY.call.p99", "Python plugin call (async def), p99",
                       a.p99, "us", c.p99, "lower", cpp_name});
    rows.push_back(row{"BPY.sync.p50",
                       "Python plugin call (plain def, on a worker thread), "
                       "p50",
                       s.p50, "us", c.p50, "lower", cpp_name});

    // -- 256 MiB round trip
    // ------------------------------------------------------
    constexpr std::size_t bytes = std::size_t{256} << 20;
    auto mem = large.pool->allocate(bytes);
    if (!mem)
      throw std::runtime_error("BPY: " + message_of(mem.error()));
    for (std::size_t i = 0; i < bytes; i += 8) {
      uint64_t w = i * 0x9e3779b97f4a7c15ULL;
      std::memcpy(mem->data() + i, &w, 8);
    }
    ndarray arr{dtype::uint8, {bytes}, std::move(*mem).freeze()};
    std::vector<std::byte> scratch(bytes);
    double trip = 1e18, copy = 1e18;
    for (int i = 0; i < 7; ++i) {
      auto t0 = clock::now();
      auto back = call(*self, python, "mirror", {value{arr}});
      auto* b = back.as_ndarray();
      if (b == nullptr || b->data.size() != bytes
          || std::memcmp(b->data.data(), arr.data.data(), bytes) != 0)
        throw std::runtime_error("BPY: the array came back changed");
      auto t1 = clock::now();
      std::memcpy(scratch.data(), arr.data.data(), bytes);
      auto t2 = clock::now();
      trip = std::min(trip, std::chrono::duration<double>(t1 - t0).count());
      copy = std::min(copy, std::chrono::duration<double>(t2 - t1).count());
    }
    rows.push_back(row{"BPY.np256",
                       "256 MiB ndarray to Python and back (shm), caller "
                       "reads every byte",
                       bytes / trip / 1e9, "GB/s", bytes / copy / 1e9, "higher",
                       "memcpy of the same 256 MiB"});
    ask(*self, python, caf::make_message(stop_atom_v));
    ask(*self, hello, caf::make_message(stop_atom_v));
    caf::anon_send_exit(python, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(hello, caf::exit_reason::user_shutdown);

    // -- cold start
    // ---------------------------------------------------------------
    constexpr int n = 15;
    auto bare = bare_python(n + 2);
    auto host = spawn_host(sys, kj, spawner, py);
    latencies cold;
    for (int i = 0; i < n + 2; ++i) {
      auto t0 = clock::now();
      ask(*self, host, caf::make_message(start_atom_v));
      call(*self, host, "echo", {value{int64_t{1}}});
      if (i >= 2) // the page cache warm
        cold.add(clock::now() - t0);
      ask(*self, host, caf::make_message(stop_atom_v));
    }
    caf::anon_send_exit(host, caf::exit_reason::user_shutdown);
    rows.push_back(row{"BPY.start.p50",
                       "Python plugin (imports numpy) cold start, spawn to "
                       "first call answered, p50",
                       cold.quantile_us(0.5) / 1000, "ms",
                       bare.quantile_us(0.5) / 1000, "lower",
                       "python3 -c \"import asyncio, numpy\""});
    caf::anon_send_exit(spawner, caf::exit_reason::user_shutdown);
    self.reset();
    sys.await_all_actors_done();
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  return rows;
}

} // namespace joy::bench
