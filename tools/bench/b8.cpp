// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// B8: plugin cold start — from asking a plugin host to start examples/hello
// to its first call answered — unsandboxed and sandboxed (bubblewrap, seccomp,
// Landlock, a cgroup, and the uid drop when run as root), against a bare
// posix_spawn of /bin/true (plus waitpid) in the same run. And a restart after
// a crash: from SIGKILL to the next call answered by the restarted plugin.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <thread>

#include <caf/scoped_actor.hpp>

#include "actors/plugin_host/plugin_host_actor.hpp"
#include "actors/plugin_host/spawner_actor.hpp"
#include "actors/sandbox/cgroup.hpp"
#include "actors/sandbox/sandbox_policy.hpp"
#include "runtime/kj_thread.hpp"
#include "runtime/manifest.hpp"
#include "runtime/system_config.hpp"
#include "tools/bench/bench.hpp"

extern char** environ;

namespace joy::bench {

namespace {

using clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

/// posix_spawn of `path` (no arguments, output discarded) until it exits.
latencies bare_spawn(const std::string& path, int n) {
  latencies lat;
  std::string arg0 = path;
  char* argv[] = {arg0.data(), nullptr};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  for (int i = 0; i < n; ++i) {
    auto t0 = clock::now();
    pid_t pid = -1;
    if (::posix_spawn(&pid, path.c_str(), &fa, nullptr, argv, environ) != 0)
      throw std::runtime_error("posix_spawn " + path + " failed");
    ::waitpid(pid, nullptr, 0);
    lat.add(clock::now() - t0);
  }
  posix_spawn_file_actions_destroy(&fa);
  return lat;
}

/// hello.add(1, 2); the error, if any.
caf::error try_add(caf::scoped_actor& self, const plugin_host_actor& host) {
  call_request req;
  req.method = "add";
  req.args = {value{int64_t{1}}, value{int64_t{2}}};
  caf::error result;
  self->request(host, std::chrono::seconds{10}, call_atom_v, std::move(req))
    .receive([](value&) {}, [&](caf::error& err) { result = std::move(err); });
  return result;
}

void call_add(caf::scoped_actor& self, const plugin_host_actor& host) {
  if (auto err = try_add(self, host))
    throw std::runtime_error("B8: call failed: " + message_of(err));
}

plugin_host_actor spawn_hello_host(caf::actor_system& sys, kj_thread& kj,
                                   const spawner_actor& spawner,
                                   launch_spec launch,
                                   uint32_t restart_intensity) {
  plugin_host_config hc;
  hc.launch = std::move(launch);
  hc.node_id = "bench";
  hc.stop_grace = std::chrono::seconds{1};
  hc.restart.intensity = restart_intensity;
  return spawn_plugin_host(sys, kj, spawner, hc, plugin_observer{});
}

plugin_status ask(caf::scoped_actor& self, const plugin_host_actor& host,
                  caf::message msg) {
  plugin_status out;
  self
    ->request(caf::actor_cast<caf::actor>(host), std::chrono::seconds{10},
              std::move(msg))
    .receive([&](plugin_status& st) { out = st; },
             [](caf::error& err) {
               throw std::runtime_error("B8: " + message_of(err));
             });
  return out;
}

/// Cold starts of hello under `launch`: start, first call, stop.
latencies cold_starts(caf::actor_system& sys, kj_thread& kj,
                      const spawner_actor& spawner, launch_spec launch, int n) {
  auto host = spawn_hello_host(sys, kj, spawner, std::move(launch),
                               restart_policy{}.intensity);
  caf::scoped_actor self{sys};
  latencies lat;
  for (int i = 0; i < n + 3; ++i) {
    auto t0 = clock::now();
    ask(self, host, caf::make_message(start_atom_v));
    call_add(self, host);
    if (i >= 3) // warm the page cache first
      lat.add(clock::now() - t0);
    ask(self, host, caf::make_message(stop_atom_v));
  }
  caf::anon_send_exit(host, caf::exit_reason::user_shutdown);
  return lat;
}

/// From SIGKILL of a running plugin to its next call answered.
latencies restarts(caf::actor_system& sys, kj_thread& kj,
                   const spawner_actor& spawner, launch_spec launch, int n) {
  auto host = spawn_hello_host(sys, kj, spawner, std::move(launch),
                               static_cast<uint32_t>(n + 10));
  caf::scoped_actor self{sys};
  ask(self, host, caf::make_message(start_atom_v));
  call_add(self, host);
  latencies lat;
  for (int i = 0; i < n; ++i) {
    auto st = ask(self, host, caf::make_message(status_atom_v));
    while (st.state != plugin_state::running || st.pid <= 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds{1});
      st = ask(self, host, caf::make_message(status_atom_v));
    }
    auto t0 = clock::now();
    ::kill(st.pid, SIGKILL);
    // Until the host has noticed, a call may still reach the dying link and
    // fail with disconnected; then it is queued for the restart.
    for (;;) {
      bool ok = !try_add(self, host);
      auto now = ask(self, host, caf::make_message(status_atom_v));
      if (ok && now.pid != st.pid && now.pid > 0)
        break;
      std::this_thread::sleep_for(std::chrono::microseconds{200});
    }
    lat.add(clock::now() - t0);
  }
  ask(self, host, caf::make_message(stop_atom_v));
  caf::anon_send_exit(host, caf::exit_reason::user_shutdown);
  return lat;
}

} // namespace

std::vector<row> run_b8(const options& opts) {
  constexpr int n = 40;
  std::vector<row> rows;
  auto hello_dir = opts.examples_dir + "/hello";
  auto manifest = parse_manifest([&] {
    std::ifstream in{hello_dir + "/plugin.json"};
    return std::string{std::istreambuf_iterator<char>{in}, {}};
  }());
  if (!manifest)
    throw std::runtime_error("B8: " + message_of(manifest.error()));
  auto work = fs::temp_directory_path()
              / ("joy-bench-b8-" + std::to_string(::getpid()));
  fs::create_directories(work);
  launch_spec plain;
  plain.name = "hello";
  plain.executable = hello_dir + "/hello";
  plain.work_dir = hello_dir;
  auto sandboxed = plain;
  sandbox_settings settings;
  sandboxed.sandbox = make_sandbox_policy(settings, *manifest, hello_dir,
                                          work.string(), ::geteuid() == 0);
  auto base = bare_spawn("/bin/true", 200);
  // The plugin's own program, which exits at once without a node: what
  // loading its libraries (CAF, Cap'n Proto, libstdc++) costs by itself.
  auto load = bare_spawn(plain.executable, 50);
  caf::actor_system_config cfg;
  configure_actor_system(cfg, opts.workers);
  caf::actor_system sys{cfg};
  {
    kj_thread kj{sys};
    auto unsandboxed_spawner
      = spawn_spawner(sys, make_exec_launcher(opts.bin_dir + "/joy-exec"));
    exec_launcher_config lcfg;
    lcfg.joy_exec = opts.bin_dir + "/joy-exec";
    if (auto tree = cgroup_tree::open("/sys/fs/cgroup", "/proc/self/cgroup"))
      lcfg.cgroups = std::move(*tree);
    auto launcher = make_exec_launcher(lcfg);
    if (!launcher)
      throw std::runtime_error("B8: " + message_of(launcher.error()));
    auto sandbox_spawner = spawn_spawner(sys, std::move(*launcher));
    auto cold = cold_starts(sys, kj, unsandboxed_spawner, plain, n);
    auto cold_sb = cold_starts(sys, kj, sandbox_spawner, sandboxed, n);
    auto again = restarts(sys, kj, sandbox_spawner, sandboxed, n);
    auto base_p50 = base.quantile_us(0.5);
    auto base_p99 = base.quantile_us(0.99);
    const char* baseline = "posix_spawn of /bin/true + waitpid";
    rows.push_back(
      row{"B8.p50", "cold start, spawn to first call answered, p50",
          cold.quantile_us(0.5), "us", base_p50, "lower", baseline});
    rows.push_back(
      row{"B8.p99", "cold start, spawn to first call answered, p99",
          cold.quantile_us(0.99), "us", base_p99, "lower", baseline});
    rows.push_back(row{"B8.sb.p50", "sandboxed cold start, p50",
                       cold_sb.quantile_us(0.5), "us", base_p50, "lower",
                       baseline});
    rows.push_back(row{"B8.sb.p99", "sandboxed cold start, p99",
                       cold_sb.quantile_us(0.99), "us", base_p99, "lower",
                       baseline});
    rows.push_back(
      row{"B8.load.p50", "cold start, spawn to first call answered, p50",
          cold.quantile_us(0.5), "us", load.quantile_us(0.5), "lower",
          "posix_spawn of the hello binary, which exits at once "
          "without a node"});
    rows.push_back(
      row{"B8.rs.p50", "sandboxed restart, SIGKILL to next call answered, p50",
          again.quantile_us(0.5), "us", base_p50, "lower", baseline});
    rows.push_back(
      row{"B8.rs.p99", "sandboxed restart, SIGKILL to next call answered, p99",
          again.quantile_us(0.99), "us", base_p99, "lower", baseline});
    caf::anon_send_exit(unsandboxed_spawner, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(sandbox_spawner, caf::exit_reason::user_shutdown);
    sys.await_all_actors_done();
  }
  std::error_code ec;
  fs::remove_all(work, ec);
  return rows;
}

} // namespace joy::bench
