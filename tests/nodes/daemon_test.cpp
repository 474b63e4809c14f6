// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// A real joyd in a temporary home, driven by the real joy CLI: install,
// call, stop, restart; kill -9 of a plugin and of the daemon; the private
// control socket; hostile peers on both kinds of link.

#include <algorithm>

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "tests/nodes/node_fixture.hpp"

using namespace joy::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

bool is_hex_sha256(const std::string& s) {
  return s.size() == 64
         && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

} // namespace

TEST_CASE("a node installs, calls, stops, restarts and lists its plugins again",
          "[nodes][daemon]") {
  node_fixture node;
  node.start();
  auto st = node.status();
  CHECK(st["head"] == true);
  CHECK_THAT(st["sandbox"].get<std::string>(), Catch::StartsWith("bwrap"));
  CHECK(st["plugins"].empty());
  auto node_id = st["node_id"].get<std::string>();

  auto installed
    = json::parse(node.ok({"install", example("hello"), "--json"}));
  CHECK(installed["name"] == "hello");
  CHECK(installed["version"] == "0.1.0");
  CHECK(installed["type"] == "native");
  CHECK(is_hex_sha256(installed["sha256"]));
  CHECK(installed["path"] == node.home() + "/plugins/hello/0.1.0");

  CHECK(node.ok({"call", "hello", "echo", "\"hi\""}) == "\"hi\"\n");
  CHECK(node.ok({"call", "hello", "add", "2", "3"}) == "5\n");
  CHECK(node.ok({"call", "hello", "echo", R"({"a":[1,2.5,null]})"})
        == "{\"a\":[1,2.5,null]}\n");

  auto plugins = json::parse(node.ok({"plugins", "--json"}));
  REQUIRE(plugins.size() == 1);
  CHECK(plugins[0]["state"] == "running");
  CHECK(plugins[0]["source"] == example("hello"));
  auto table = node.ok({"plugins"});
  CHECK_THAT(table, Catch::StartsWith("NAME"));
  CHECK_THAT(table, Catch::Contains("hello"));

  auto plugin_pid = plugins[0]["pid"].get<int>();
  node.ok({"stop"});
  CHECK_FALSE(node.daemon_running());
  // Every plugin process is gone with it.
  CHECK(eventually([&] { return !process_alive(plugin_pid); }, 5s));
  CHECK(node.processes_in_home().empty());

  node.start();
  CHECK(node.status()["node_id"] == node_id);
  auto again = json::parse(node.ok({"plugins", "--json"}));
  REQUIRE(again.size() == 1);
  CHECK(again[0]["name"] == "hello");
  CHECK(again[0]["sha256"] == installed["sha256"]);
  CHECK(node.ok({"call", "hello", "add", "40", "2"}) == "42\n");
  node.ok({"stop"});
}

TEST_CASE("a plugin killed with -9 fails the call in flight at once and is "
          "started again",
          "[nodes][daemon]") {
  node_fixture node;
  node.start();
  node.ok({"install", example("hello")});
  CHECK(node.ok({"call", "hello", "add", "1", "1"}) == "2\n");
  auto pid = node.plugin("hello")["pid"].get<int>();
  REQUIRE(pid > 0);
  run_result slow;
  auto t0 = std::chrono::steady_clock::now();
  std::thread caller{[&] {
    slow = node.joy({"call", "hello", "slow", "30", "\"late\""});
  }};
  // Wait until the plugin is busy with the slow call, then kill it.
  std::this_thread::sleep_for(300ms);
  ::kill(pid, SIGKILL);
  caller.join();
  auto took = std::chrono::steady_clock::now() - t0;
  CHECK(slow.exit_code != 0);
  CHECK_THAT(slow.err, Catch::Contains("disconnected"));
  CHECK(took < 10s); // not the 30 s of the call, nor a timeout
  CHECK(eventually([&] {
    return node.plugin("hello")["last_error"].get<std::string>().find(
             "signal 9")
           != std::string::npos;
  }));
  // Its supervisor started it again (and a call would have, too).
  CHECK(node.ok({"call", "hello", "add", "2", "2"}) == "4\n");
  auto restarted = node.plugin("hello");
  CHECK(restarted["state"] == "running");
  CHECK(restarted["pid"] != pid);
}

TEST_CASE("a daemon killed with -9 keeps every acknowledged install and leaves "
          "no plugin behind",
          "[nodes][daemon]") {
  node_fixture node;
  node.start();
  node.ok({"install", example("hello")});
  node.ok({"install", node.copy_example("hello", "hello-two")});
  CHECK(node.ok({"call", "hello-two", "add", "1", "2"}) == "3\n");
  auto pids = std::vector<int>{node.plugin("hello")["pid"],
                               node.plugin("hello-two")["pid"]};
  auto daemon = node.daemon_pid();
  REQUIRE(daemon > 0);
  ::kill(daemon, SIGKILL);
  CHECK(eventually([&] { return !node.daemon_running(); }, 5s));
  // PDEATHSIG and the closed link take the plugins down with it.
  for (int pid : pids)
    CHECK(eventually([&] { return !process_alive(pid); }, 5s));
  node.start();
  auto plugins = json::parse(node.ok({"plugins", "--json"}));
  REQUIRE(plugins.size() == 2);
  CHECK(plugins[0]["name"] == "hello");
  CHECK(plugins[1]["name"] == "hello-two");
  CHECK(node.ok({"call", "hello-two", "add", "2", "3"}) == "5\n");
}

TEST_CASE("a plugin that exits at start fails fast with its exit code, and the "
          "node carries on",
          "[nodes][daemon]") {
  node_fixture node;
  node.start();
  node.ok({"install", node.evil_plugin("exit3")});
  auto t0 = std::chrono::steady_clock::now();
  auto r = node.joy({"call", "evil-exit3", "anything"});
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.err, Catch::Contains("exit code 3"));
  // The call's error is one line; the status adds what the log says.
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  auto why = node.plugin("evil-exit3")["last_error"].get<std::string>();
  CHECK_THAT(why, Catch::Contains("exit code 3")
                    && Catch::Contains("last log lines:\n  "));
  // The table shows them too, under the plugin's row.
  CHECK_THAT(node.ok({"status"}),
             Catch::Contains("last log lines:\n    ")
               && Catch::Contains("the plugin exited: exit code 3"));
  node.ok({"install", example("hello")});
  CHECK(node.ok({"call", "hello", "add", "1", "2"}) == "3\n");
}

TEST_CASE(
  "plugins that break the wire protocol are cut off and the daemon survives",
  "[nodes][daemon][security]") {
  node_fixture node;
  node.start();
  node.ok({"install", example("hello")});
  for (std::string mode :
       {"segcount", "oversize", "bad-exception", "bad-return", "garbage"}) {
    DYNAMIC_SECTION("mode " << mode) {
      node.ok({"install", node.evil_plugin(mode)});
      auto r = node.joy({"call", "evil-" + mode, "x"});
      CHECK(r.exit_code != 0);
      auto p = node.plugin("evil-" + mode);
      CHECK(p["state"] == "failed");
      CHECK_THAT(p["last_error"].get<std::string>(),
                 Catch::Contains("protocol violation"));
      // The daemon and the good plugin are unharmed.
      CHECK(node.ok({"call", "hello", "add", "20", "22"}) == "42\n");
      CHECK(node.processes_in_home().size() == 1);
    }
  }
}

TEST_CASE("malformed frames on the control socket close that connection only",
          "[nodes][daemon][security]") {
  node_fixture node;
  node.start();
  node.ok({"install", example("hello")});
  auto socket = node.home() + "/joyd.sock";
  for (std::string mode :
       {"segcount", "oversize", "bad-exception", "bad-return", "garbage"}) {
    auto r = run({bin("joy-test-evil"), mode, "--connect", socket}, {}, 20s);
    // The daemon hung up on it (the peer saw EOF and exited 0).
    CHECK(r.exit_code == 0);
    CHECK(node.ok({"call", "hello", "add", "1", "1"}) == "2\n");
  }
  CHECK(node.daemon_running());
}

TEST_CASE("the control socket is private to the node's user",
          "[nodes][daemon][security]") {
  node_fixture node;
  node.start();
  struct stat st {};
  REQUIRE(::stat((node.home() + "/joyd.sock").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(::stat(node.home().c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  if (::getuid() == 0) {
    // Another user cannot even reach it.
    pid_t child = ::fork();
    if (child == 0) {
      if (::setgid(65534) != 0 || ::setuid(65534) != 0)
        ::_exit(2);
      auto r = ::access((node.home() + "/joyd.sock").c_str(), R_OK | W_OK);
      ::_exit(r == 0 ? 1 : 0);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
}

TEST_CASE(
  "a second daemon on the same home is refused with the first one's pid",
  "[nodes][daemon]") {
  node_fixture node;
  node.start();
  auto r = run({bin("joyd"), "--home", node.home()}, {}, 20s);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("already running"));
  CHECK_THAT(r.err, Catch::Contains(std::to_string(node.daemon_pid())));
  // `joy start` on a running node is a friendly no-op.
  auto again = node.joy({"start"});
  CHECK(again.exit_code == 0);
  CHECK_THAT(again.out, Catch::Contains("already running"));
}

TEST_CASE("a plugin's run(ctx) is callable as run, with the config a ui form "
          "fills",
          "[nodes][daemon]") {
  node_fixture node;
  node.start();
  node.ok({"install", example("arrays")});
  auto out = json::parse(node.ok(
    {"call", "arrays", "run", R"({"config": {"height": 2, "width": 3}})"}));
  CHECK(out["_rtype"] == "ndarray");
  CHECK(out["_rshape"] == json::array({2, 3}));
  auto bad
    = node.joy({"call", "arrays", "run", R"({"config": {"height": 0}})"});
  CHECK(bad.exit_code == 1);
  CHECK_THAT(bad.err, Catch::Contains("1 to 64 Mi pixels"));
}
