// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// The ImJoy api from real plugin processes on a real node: the terminal UI
// provider, settings across restarts, services, events, parallel calls, and
// callbacks between plugins — many round trips, release on drop and when a
// holder crashes.

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "runtime/unique_fd.hpp"
#include "tests/nodes/node_fixture.hpp"

using namespace joy::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

/// A node with hello, demo and demo-2 (a second copy of demo) installed.
struct demo_node : node_fixture {
  demo_node() {
    start();
    ok({"install", example("hello")});
    ok({"install", example("demo")});
    ok({"install", copy_example("demo", "demo-2")});
  }
};

} // namespace

TEST_CASE("a plugin's prompt reaches joy ui and the typed answer comes back",
          "[nodes][api]") {
  demo_node node;
  // Without a UI, a question fails at once and says what to do.
  auto none = node.joy({"call", "demo", "greet", "\"Ada\""});
  CHECK(none.exit_code != 0);
  CHECK_THAT(none.err, Catch::Contains("run `joy ui`"));

  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  joy::unique_fd ui_in{fds[0]};
  joy::unique_fd answers{fds[1]};
  auto ui_log = (node.dir() / "ui.out").string();
  child ui{{bin("joy"), "ui"}, node.env(), ui_log, ui_in.get()};
  REQUIRE(eventually(
    [&] { return read_file(ui_log).find("attached") != std::string::npos; }));
  run_result greeted;
  std::thread caller{[&] {
    greeted = node.joy({"call", "demo", "greet", "\"Ada\""});
  }};
  REQUIRE(eventually([&] {
    return read_file(ui_log).find("[demo] prompt: Greeting for Ada?")
           != std::string::npos;
  }));
  std::string line = "Good morning\n";
  REQUIRE(::write(answers.get(), line.data(), line.size())
          == static_cast<ssize_t>(line.size()));
  caller.join();
  CHECK(greeted.out == "\"Good morning, Ada!\"\n");
  // Alerts show up there too.
  node.ok({"call", "demo", "notify", "\"saved\""});
  CHECK(eventually([&] {
    return read_file(ui_log).find("[demo] alert: saved") != std::string::npos;
  }));
  // Once `joy ui` has gone (Ctrl-C), the very next call finds no UI: a
  // notice does not fail the plugin's work, a question says what to do.
  ui.kill(SIGINT);
  CHECK(ui.wait(10s) >= 0);
  CHECK(node.ok({"call", "demo", "steps", "3"}) == "3\n");
  auto after = node.joy({"call", "demo", "greet", "\"Ada\""});
  CHECK(after.exit_code != 0);
  CHECK_THAT(after.err, Catch::Contains("run `joy ui`"));
  CHECK(node.ok({"call", "demo", "notify", "\"later\""}) == "null\n");
}

TEST_CASE("joy ui serves with its input from /dev/null", "[nodes][api]") {
  demo_node node;
  joy::unique_fd null{::open("/dev/null", O_RDONLY | O_CLOEXEC)};
  auto ui_log = (node.dir() / "ui.out").string();
  child ui{{bin("joy"), "ui"}, node.env(), ui_log, null.get()};
  REQUIRE(eventually(
    [&] { return read_file(ui_log).find("attached") != std::string::npos; }));
  node.ok({"call", "demo", "notify", "\"quietly\""});
  CHECK(eventually([&] {
    return read_file(ui_log).find("[demo] alert: quietly") != std::string::npos;
  }));
  CHECK(ui.wait(0ms) == -1); // still serving: epoll cannot watch /dev/null
  ui.kill(SIGINT);
  CHECK(ui.wait(10s) >= 0);
}

TEST_CASE("settings a plugin stores survive a restart of the node",
          "[nodes][api]") {
  demo_node node;
  node.ok({"call", "demo", "remember", "\"color\"", "\"teal\""});
  node.ok({"call", "demo", "remember", "\"sizes\"", "[1,2,3]"});
  CHECK(node.ok({"call", "demo", "recall", "\"version\""}) == "null\n");
  node.ok({"stop"});
  node.start();
  CHECK(node.ok({"call", "demo", "recall", "\"color\""}) == "\"teal\"\n");
  CHECK(node.ok({"call", "demo", "recall", "\"sizes\""}) == "[1,2,3]\n");
  // "_<field>" reads the manifest; each plugin has its own settings.
  CHECK(
    node.ok({"call", "demo", "recall", "\"_description\""}).find("ImJoy api")
    != std::string::npos);
  CHECK(node.ok({"call", "demo-2", "recall", "\"color\""}) == "null\n");
  // Null deletes.
  node.ok({"call", "demo", "remember", "\"color\"", "null"});
  CHECK(node.ok({"call", "demo", "recall", "\"color\""}) == "null\n");
}

TEST_CASE(
  "callbacks cross between plugins 100k times and nothing is left behind",
  "[nodes][api][callbacks]") {
  demo_node node;
  // demo hands demo-2 a callback; demo-2 calls it n times (2*i each).
  auto n = 100000;
  auto sum = int64_t{n} * (n - 1);
  CHECK(
    node.ok({"call", "demo", "loop_through", "\"demo-2\"", std::to_string(n)})
    == std::to_string(sum) + "\n");
  CHECK(eventually([&] {
    return node.ok({"call", "demo", "live_callbacks"}) == "0\n";
  }));
}

TEST_CASE("a callback held by another plugin stays callable, and is released "
          "when the holder crashes",
          "[nodes][api][callbacks]") {
  demo_node node;
  node.ok({"call", "demo", "give_counter_to", "\"demo-2\""});
  CHECK(node.ok({"call", "demo", "live_callbacks"}) == "1\n");
  CHECK(node.ok({"call", "demo-2", "call_kept"}) == "[1]\n");
  CHECK(node.ok({"call", "demo-2", "call_kept"}) == "[2]\n");
  // The holder dies: the function is released in its maker.
  auto holder = node.plugin("demo-2")["pid"].get<int>();
  ::kill(holder, SIGKILL);
  CHECK(eventually([&] {
    return node.ok({"call", "demo", "live_callbacks"}) == "0\n";
  }));
}

TEST_CASE("a call of a callback whose maker died fails fast with disconnected",
          "[nodes][api][callbacks]") {
  demo_node node;
  node.ok({"call", "demo", "give_counter_to", "\"demo-2\""});
  CHECK(node.ok({"call", "demo-2", "call_kept"}) == "[1]\n");
  ::kill(node.plugin("demo")["pid"].get<int>(), SIGKILL);
  auto t0 = std::chrono::steady_clock::now();
  auto r = node.joy({"call", "demo-2", "call_kept"});
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.err, Catch::Contains("disconnected"));
  // Dropping it is fine, and the holder carries on.
  node.ok({"call", "demo-2", "drop_kept"});
  CHECK(node.ok({"call", "demo-2", "call_kept"}) == "[]\n");
}

TEST_CASE("a service one plugin registers is found and called by another",
          "[nodes][api]") {
  demo_node node;
  auto id = node.ok({"call", "demo", "offer", "\"tools\""});
  CHECK(id == "\"public/demo:tools\"\n");
  CHECK(node.ok({"call", "demo-2", "use", "\"public/demo:tools\"", "21"})
        == "42.0\n");
  CHECK(node.ok({"call", "demo-2", "use", "\"demo:tools\"", "1.5"}) == "3.0\n");
  auto st = node.status();
  CHECK(
    std::find(st["services"].begin(), st["services"].end(), "public/demo:tools")
    != st["services"].end());
  // It goes away with its plugin.
  node.ok({"stop"});
  node.start();
  auto r = node.joy({"call", "demo-2", "use", "\"public/demo:tools\"", "1"});
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.err, Catch::Contains("no service"));
}

TEST_CASE("get_service(x).f() calls a service's method in one round trip, "
          "and finds no service once it is withdrawn or its plugin died",
          "[nodes][api]") {
  demo_node node;
  node.ok({"call", "demo", "offer", "\"tools\""});
  auto at_once = [&](const std::string& id, const std::string& method) {
    return node.joy({"call", "demo-2", "use_at_once", "\"" + id + "\"",
                     "\"" + method + "\"", "21"});
  };
  CHECK(at_once("public/demo:tools", "double").out == "42.0\n");
  CHECK(at_once("demo:tools", "double").out == "42.0\n");
  auto wrong = at_once("demo:tools", "triple");
  CHECK(wrong.exit_code != 0);
  CHECK_THAT(wrong.err, Catch::Contains("no method 'triple' (it has: double)"));
  auto none = at_once("demo:nothing", "double");
  CHECK(none.exit_code != 0);
  CHECK_THAT(none.err, Catch::Contains("no service"));
  // A plugin's default service: the node makes it, starting the plugin.
  CHECK(at_once("hello", "echo").out == "21.0\n");
  // Withdrawn: gone at once.
  node.ok({"call", "demo", "withdraw", "\"demo:tools\""});
  auto withdrawn = at_once("demo:tools", "double");
  CHECK(withdrawn.exit_code != 0);
  CHECK_THAT(withdrawn.err, Catch::Contains("(not_found)"));
  // Withdrawn and called at once by its own plugin: the call comes after.
  node.ok({"call", "demo", "offer", "\"tools\""});
  auto after
    = node.joy({"call", "demo", "withdraw_then_use", "\"demo:tools\""});
  CHECK(after.exit_code != 0);
  CHECK_THAT(after.err, Catch::Contains("(not_found)"));
  // Its plugin killed: the service goes with it (no call to a dead one).
  node.ok({"call", "demo", "offer", "\"tools\""});
  CHECK(at_once("demo:tools", "double").out == "42.0\n");
  ::kill(node.plugin("demo")["pid"].get<int>(), SIGKILL);
  CHECK(eventually([&] {
    return at_once("demo:tools", "double").err.find("(not_found)")
           != std::string::npos;
  }));
}

TEST_CASE("events reach the handlers other plugins subscribed",
          "[nodes][api]") {
  demo_node node;
  node.ok({"call", "demo-2", "listen", "\"ping\""});
  node.ok({"call", "demo", "emit", "\"ping\"", R"({"n":1})"});
  node.ok({"call", "demo", "emit", "\"other\"", "2"});
  CHECK(node.ok({"call", "demo-2", "seen"})
        == R"([{"data":{"n":1},"from":"demo"}])"
           "\n");
}

TEST_CASE("calls to other plugins compose in parallel", "[nodes][api]") {
  demo_node node;
  CHECK(node.ok({"call", "demo", "both"}) == "[5,\"hi\"]\n");
}

TEST_CASE("a call that times out is cancelled in the plugin too",
          "[nodes][api][cancel]") {
  demo_node node;
  auto r = node.joy({"call", "hello", "nap", "30", "--timeout", "1"});
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.err, Catch::Contains("timeout"));
  // hello runs one call at a time: a nap still running would hold this one.
  auto t0 = std::chrono::steady_clock::now();
  CHECK(node.ok({"call", "hello", "add", "1", "2"}) == "3\n");
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
}

TEST_CASE("Ctrl-C on joy call cancels the call in the plugin",
          "[nodes][api][cancel]") {
  demo_node node;
  CHECK(node.ok({"call", "hello", "add", "1", "1"}) == "2\n");
  child call{{bin("joy"), "call", "hello", "nap", "30"}, node.env()};
  // Give the call time to reach the plugin.
  std::this_thread::sleep_for(500ms);
  call.kill(SIGINT);
  CHECK(call.wait(5s) >= 0);
  auto t0 = std::chrono::steady_clock::now();
  CHECK(node.ok({"call", "hello", "add", "2", "2"}) == "4\n");
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
}

TEST_CASE("a long call that reports progress outlives its timeout",
          "[nodes][api][cancel]") {
  demo_node node;
  auto r = node.joy({"call", "hello", "slow", "2.5", "\"done\"", "--timeout",
                     "1", "--progress"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "\"done\"\n");
  CHECK_THAT(r.err, Catch::Contains("joy: progress"));
}

TEST_CASE("a flood of calls to a slow plugin is met with overloaded, not "
          "unbounded memory",
          "[nodes][api][overload]") {
  demo_node node;
  // 3000 calls at once to a plugin that serves one at a time: the node
  // keeps 1024 in flight per plugin and refuses the rest.
  auto counts = json::parse(node.ok(
    {"call", "demo", "flood", "\"hello\"", "\"nap\"", "[0.001]", "3000"}));
  CHECK(counts["ok"].get<int>() >= 1024);
  CHECK(counts["overloaded"].get<int>() >= 1);
  CHECK(counts["ok"].get<int>() + counts["overloaded"].get<int>() == 3000);
  // The plugin and the node are fine afterwards.
  CHECK(node.ok({"call", "hello", "add", "1", "2"}) == "3\n");
}
