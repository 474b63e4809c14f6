// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// R1: plugins die in every way, over and over; the daemon carries on,
// restarts them under their budget, and leaves nothing behind.

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/nodes/node_fixture.hpp"

using Catch::Matchers::Contains;
using nlohmann::json;

namespace {

using joy::test::node_fixture;

json small_limits() {
  return json{{"resources", {{"memory", "96MiB"}, {"pids", 32}}}};
}

int count_fds(int pid) {
  int n = 0;
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator{
         "/proc/" + std::to_string(pid) + "/fd", ec}) {
    (void)e;
    ++n;
  }
  return n;
}

/// Children of `pid` that are zombies.
int zombies_of(int pid) {
  int n = 0;
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator{"/proc", ec}) {
    auto stat = joy::test::read_file(e.path() / "stat");
    auto close = stat.rfind(')');
    if (close == std::string::npos || close + 4 >= stat.size())
      continue;
    char state = stat[close + 2];
    int ppid = std::atoi(stat.c_str() + close + 4);
    if (ppid == pid && state == 'Z')
      ++n;
  }
  return n;
}

/// The plugin cgroups of daemon `pid` (v1 pids controller), if any.
int plugin_cgroups_of(int pid) {
  int n = 0;
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator{
         "/sys/fs/cgroup/pids/joy." + std::to_string(pid), ec})
    if (e.is_directory(ec))
      ++n;
  return n;
}

std::string state_of(node_fixture& node, const std::string& name) {
  return node.plugin(name)["state"].get<std::string>();
}

} // namespace

TEST_CASE("plugins killed a hundred times in every way are restarted, and the "
          "daemon carries on with nothing leaked",
          "[nodes][supervision]") {
  node_fixture node;
  node.start({"--restart", "1000", "60", "0.05", "0.1"});
  node.ok({"install", node.hostile_plugin("victim", small_limits())});
  node.call("victim", "whoami");
  auto daemon = node.daemon_pid();
  auto fds = count_fds(daemon);
  const char* ways[] = {"segv", "abort", "exit3", "kill", "external", "oom"};
  std::vector<double> restart_ms;
  for (int i = 0; i < 100; ++i) {
    std::string way = ways[i % 6];
    INFO("death " << i << " by " << way);
    if (way == "external") {
      auto pids = node.processes_in_home();
      REQUIRE(pids.size() == 1);
      ::kill(pids[0], SIGKILL);
    } else if (way == "oom") {
      auto r = node.joy({"call", "victim", "hog", "512"});
      CHECK(r.exit_code != 0);
    } else {
      auto r = node.joy({"call", "victim", "die", json(way).dump()});
      CHECK(r.exit_code != 0);
      CHECK_THAT(r.err, Contains("disconnected"));
    }
    // From the death to an answer of the restarted plugin.
    auto t0 = std::chrono::steady_clock::now();
    joy::test::await([&] {
      return node.joy({"call", "victim", "socket", "\"unix\""}).exit_code == 0;
    });
    restart_ms.push_back(std::chrono::duration<double, std::milli>(
                           std::chrono::steady_clock::now() - t0)
                           .count());
  }
  REQUIRE(node.daemon_pid() == daemon);
  auto st = node.plugin("victim");
  CHECK(st["state"] == "running");
  std::sort(restart_ms.begin(), restart_ms.end());
  std::printf("R1: restart after a crash, death to next answer through the "
              "CLI: p50 %.1f ms, p99 %.1f ms (100 deaths)\n",
              restart_ms[50], restart_ms[98]);
  // Nothing leaked: the daemon's fds, zombies, cgroups, processes. The
  // daemon closes the connection of the CLI that just asked for the status
  // when it sees the CLI go, which may trail its answer on a loaded machine.
  CHECK(joy::test::eventually([&] { return count_fds(daemon) == fds; }));
  CHECK(zombies_of(daemon) == 0);
  // The last dead sandbox's cgroup goes once its processes are reaped,
  // which may trail the answer of the restarted plugin on a loaded machine.
  if (::geteuid() == 0 && std::filesystem::exists("/sys/fs/cgroup/pids"))
    CHECK(
      joy::test::eventually([&] { return plugin_cgroups_of(daemon) == 1; }));
  CHECK(node.processes_in_home().size() == 1);
  // No mount of a sandbox's stage ever reaches the daemon's namespace.
  CHECK(joy::test::read_file("/proc/" + std::to_string(daemon) + "/mountinfo")
          .find("joy-stage")
        == std::string::npos);
  // A CPU time limit is a reason of its own.
  CHECK(node.joy({"call", "victim", "die", "\"cpu\""}).exit_code != 0);
  joy::test::await([&] {
    return node.plugin("victim")["last_error"].get<std::string>().find(
             "CPU time limit")
           != std::string::npos;
  });
  joy::test::await([&] { return state_of(node, "victim") == "running"; });
  // The log says how each one went.
  auto log = node.ok({"logs", "victim", "-n", "1000"});
  CHECK_THAT(log, Contains("killed by signal 11 (SIGSEGV)"));
  CHECK_THAT(log, Contains("killed by signal 6 (SIGABRT)"));
  CHECK_THAT(log, Contains("exit code 3"));
  CHECK_THAT(log, Contains("killed by signal 9 (SIGKILL)"));
  CHECK_THAT(log, Contains("killed by the memory limit (96 MiB)"));
  node.ok({"stop"});
  if (::geteuid() == 0)
    CHECK_FALSE(std::filesystem::exists("/sys/fs/cgroup/pids/joy."
                                        + std::to_string(daemon)));
}

TEST_CASE("a plugin that keeps crashing is restarted at once, then after a "
          "backoff, then failed with its reason and last log lines",
          "[nodes][supervision]") {
  node_fixture node;
  node.start({"--restart", "2", "60", "0.3", "0.6"});
  node.ok({"install", node.hostile_plugin("crashy")});
  node.call("crashy", "whoami");
  auto crash = [&] {
    auto r = node.joy({"call", "crashy", "die", "\"exit3\""});
    CHECK(r.exit_code != 0);
  };
  // Within the intensity: back at once.
  for (int i = 0; i < 2; ++i) {
    crash();
    joy::test::await([&] { return state_of(node, "crashy") == "running"; });
  }
  // Beyond it: a backoff, during which calls fail fast.
  crash();
  joy::test::await([&] { return state_of(node, "crashy") != "running"; });
  auto st = node.plugin("crashy");
  CHECK(st["state"] == "backoff");
  CHECK_THAT(st["last_error"].get<std::string>(),
             Contains("exit code 3") && Contains("restarting in 0.3 s"));
  auto r = node.joy({"call", "crashy", "whoami"});
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.err, Contains("unavailable") && Contains("crashed"));
  joy::test::await([&] { return state_of(node, "crashy") == "running"; });
  // Running again, it tells why there was a restart, not that one comes.
  CHECK_THAT(node.plugin("crashy")["last_error"].get<std::string>(),
             Contains("exit code 3") && Contains("restarted after 0.3 s")
               && !Contains("restarting"));
  crash();
  joy::test::await([&] { return state_of(node, "crashy") == "backoff"; });
  CHECK_THAT(node.plugin("crashy")["last_error"].get<std::string>(),
             Contains("restarting in 0.6 s"));
  joy::test::await([&] { return state_of(node, "crashy") == "running"; });
  // After the longest delay, one more crash and it is given up.
  crash();
  joy::test::await([&] { return state_of(node, "crashy") == "failed"; });
  auto why = node.plugin("crashy")["last_error"].get<std::string>();
  CHECK_THAT(why, Contains("gave up after 5 crashes") && Contains("exit code 3")
                    && Contains("last log lines")
                    && Contains("the plugin exited"));
  r = node.joy({"call", "crashy", "whoami"});
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.err, Contains("start it again"));
  CHECK(node.processes_in_home().empty());
  // An explicit restart forgives it.
  node.ok({"restart", "crashy"});
  CHECK(node.call("crashy", "socket", "unix") == "ok");
  CHECK(state_of(node, "crashy") == "running");
}
