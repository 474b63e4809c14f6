// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// R2: the daemon is killed with SIGKILL while it installs and spawns
// plugins; its plugins and their sandboxes go with it within a second, and
// a restarted daemon has every install it acknowledged. R8: a registry on a
// full disk fails cleanly and stays readable.

#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "tests/nodes/node_fixture.hpp"

using Catch::Matchers::Contains;
using nlohmann::json;

namespace {

using joy::test::node_fixture;

} // namespace

TEST_CASE("a daemon killed during installs and spawns leaves no plugin behind "
          "and keeps every install it acknowledged",
          "[nodes][recovery]") {
  node_fixture node;
  std::mt19937 rng{std::random_device{}()};
  std::set<std::string> acknowledged;
  for (int round = 0; round < 12; ++round) {
    INFO("round " << round);
    node.start();
    // The installed plugins start with the daemon; install another one
    // meanwhile and kill the daemon at a random moment of it all.
    auto name = "p" + std::to_string(round);
    auto src = node.hostile_plugin(name);
    joy::test::child install{{joy::test::bin("joy"), "install", src},
                             node.env()};
    std::uniform_int_distribution<int> delay{0, 80};
    std::this_thread::sleep_for(std::chrono::milliseconds{delay(rng)});
    auto daemon = node.daemon_pid();
    REQUIRE(daemon > 0);
    ::kill(daemon, SIGKILL);
    if (install.wait(std::chrono::seconds{10}) == 0)
      acknowledged.insert(name);
    // Plugins and sandboxes die with their daemon (PDEATHSIG).
    if (!joy::test::eventually([&] { return node.anything_in_home().empty(); },
                               std::chrono::seconds{1})) {
      for (int pid : node.anything_in_home())
        FAIL_CHECK(
          "left behind: pid "
          << pid << ": "
          << joy::test::read_file("/proc/" + std::to_string(pid) + "/cmdline"));
    }
    joy::test::await([&] { return !node.daemon_running(); },
                     std::chrono::seconds{5});
  }
  node.start();
  auto st = node.status();
  std::set<std::string> installed;
  for (auto& p : st["plugins"])
    installed.insert(p["name"].get<std::string>());
  for (auto& name : acknowledged) {
    INFO(name);
    CHECK(installed.count(name) == 1);
  }
  // Every installed plugin works after all this.
  for (auto& name : installed)
    CHECK(node.call(name, "socket", "unix") == "ok");
}

TEST_CASE("a registry on a full disk refuses installs cleanly and stays "
          "readable",
          "[nodes][recovery]") {
  if (::geteuid() != 0) {
    WARN("needs root to mount a small tmpfs; skipped");
    return;
  }
  node_fixture node;
  // The node's home on a small tmpfs of its own: room for the three plugins
  // installed below (about 35 MB each with debug info), not for the filler.
  std::filesystem::create_directories(node.home());
  REQUIRE(::mount("joy-test", node.home().c_str(), "tmpfs", 0, "size=128m")
          == 0);
  // The daemon goes before its home does (its lock file is in there).
  struct unmount {
    node_fixture& node;
    ~unmount() {
      node.stop_everything();
      ::umount2(node.home().c_str(), MNT_DETACH);
    }
  } guard{node};
  node.start();
  node.ok({"install", node.hostile_plugin("first")});
  node.ok({"install", node.copy_example("demo", "keeper")});
  node.ok({"call", "keeper", "remember", "\"before\"", "1"});
  // Fill what is left of the disk.
  {
    std::ofstream filler{node.home() + "/filler", std::ios::binary};
    std::string mib(1 << 20, 'x');
    for (int i = 0; i < 160 && filler; ++i)
      filler << mib << std::flush;
  }
  // A plugin bigger than what is left: the install fails with a clear
  // error, and nothing half-installed stays.
  auto big = node.hostile_plugin("second");
  {
    std::ofstream blob{big + "/blob", std::ios::binary};
    std::string mib(1 << 20, 'y');
    blob << mib << mib;
  }
  auto r = node.joy({"install", big});
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.err, Contains("No space left on device")
                      || Contains("disk is full")
                      || Contains("database or disk is full"));
  auto st = node.status();
  REQUIRE(st["plugins"].size() == 2);
  CHECK(node.call("first", "socket", "unix") == "ok");
  // A registry write (a plugin's setting) fails cleanly too, and what was
  // written before reads back.
  // Bigger than what sqlite may have kept free in its WAL; under the
  // kernel's 128 KiB cap on one argument.
  std::string big_value = json(std::string(120000, 'z')).dump();
  auto w = node.joy({"call", "keeper", "remember", "\"after\"", big_value});
  CHECK(w.exit_code != 0);
  CHECK_THAT(w.err, Contains("io_error") && Contains("full"));
  CHECK(node.call("keeper", "recall", "before") == 1);
  CHECK(node.call("keeper", "recall", "after") == nullptr);
  std::filesystem::remove(node.home() + "/filler");
  CHECK(node.call("keeper", "remember", "after", 2) == nullptr);
  CHECK(node.call("keeper", "recall", "after") == 2);
  node.ok({"install", big});
  CHECK(node.status()["plugins"].size() == 3);
  node.ok({"stop"});
}
