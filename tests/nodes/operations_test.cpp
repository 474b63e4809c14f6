// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// Operating plugins: uninstall, rollback, per-plugin counters, logs and
// their rotation.

#include <catch2/catch.hpp>

#include <filesystem>

#include "tests/nodes/node_fixture.hpp"

using namespace joy::test;
using namespace std::chrono_literals;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

/// A copy of an example under its own name with another version.
std::string with_version(node_fixture& node, const std::string& example_name,
                         const std::string& version) {
  auto dir = node.copy_example(example_name, example_name);
  auto dst = node.dir() / ("v" + version);
  fs::rename(dir, dst);
  auto manifest = json::parse(read_file(dst / "plugin.json"));
  manifest["version"] = version;
  write_file(dst / "plugin.json", manifest.dump());
  return dst.string();
}

} // namespace

TEST_CASE(
  "uninstall stops a plugin and forgets its files, versions and settings",
  "[nodes][operations]") {
  node_fixture node;
  node.start();
  node.ok({"install", example("demo")});
  node.ok({"call", "demo", "remember", "\"k\"", "1"});
  auto pid = node.plugin("demo")["pid"].get<int>();
  CHECK(node.ok({"uninstall", "demo"}) == "uninstalled demo 0.1.0\n");
  CHECK(eventually([&] { return !process_alive(pid); }));
  CHECK_FALSE(fs::exists(node.home() + "/plugins/demo"));
  CHECK_FALSE(fs::exists(node.home() + "/work/demo"));
  CHECK_FALSE(fs::exists(node.home() + "/images/demo.img"));
  CHECK(json::parse(node.ok({"plugins", "--json"})).empty());
  auto r = node.joy({"call", "demo", "recall", "\"k\""});
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.err, Catch::Contains("no plugin named 'demo'"));
  // A fresh install starts without the old settings.
  node.ok({"install", example("demo")});
  CHECK(node.ok({"call", "demo", "recall", "\"k\""}) == "null\n");
  auto again = node.joy({"uninstall", "nope"});
  CHECK(again.exit_code != 0);
  CHECK_THAT(again.err, Catch::Contains("not_found"));
}

TEST_CASE("a newer version keeps the old one, and rollback runs it again",
          "[nodes][operations]") {
  node_fixture node;
  node.start();
  node.ok({"install", with_version(node, "hello", "1.0.0")});
  node.ok({"install", with_version(node, "hello", "2.0.0")});
  CHECK(node.plugin("hello")["version"] == "2.0.0");
  CHECK(fs::exists(node.home() + "/plugins/hello/1.0.0"));
  CHECK(node.ok({"rollback", "hello"}) == "rolled back to hello 1.0.0\n");
  CHECK(node.plugin("hello")["version"] == "1.0.0");
  CHECK(node.ok({"call", "hello", "add", "1", "2"}) == "3\n");
  // It survives a restart, and there is nothing earlier to go back to.
  node.ok({"stop"});
  node.start();
  CHECK(node.plugin("hello")["version"] == "1.0.0");
  auto r = node.joy({"rollback", "hello"});
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.err, Catch::Contains("no earlier version"));
}

TEST_CASE(
  "status counts each plugin's calls, errors, median latency and memory",
  "[nodes][operations]") {
  node_fixture node;
  node.start();
  node.ok({"install", example("hello")});
  for (int i = 0; i < 5; ++i)
    node.ok({"call", "hello", "add", "1", std::to_string(i)});
  CHECK(node.joy({"call", "hello", "add", "\"x\"", "1"}).exit_code != 0);
  auto p = node.plugin("hello");
  CHECK(p["calls"] == 6);
  CHECK(p["errors"] == 1);
  CHECK(p["p50_ms"].get<double>() > 0);
  // The plugin's own memory, not only its sandbox's (a few MiB of bwrap):
  // a CAF plugin's threads and libraries take more.
  CHECK(p["memory_bytes"].get<uint64_t>() > 8 * 1024 * 1024);
}

TEST_CASE("logs show a plugin's output, follow it, and rotate when large",
          "[nodes][operations]") {
  node_fixture node;
  node.ok({"start", "--log-max-bytes", "4000", "--log-check", "0.2"});
  node.ok({"install", example("demo")});
  // api.log lines and stderr both land in the plugin's log.
  CHECK(eventually([&] {
    return node.ok({"logs", "demo"}).find("demo is set up")
           != std::string::npos;
  }));
  node.ok({"call", "demo", "chatter", "3"});
  auto tail = node.ok({"logs", "demo", "-n", "2"});
  CHECK(tail == "chatter line 2 of 3\nchatter line 3 of 3\n");
  // Following sees new lines as they come.
  auto followed = (node.dir() / "follow.out").string();
  child follow{
    {bin("joy"), "logs", "-f", "demo", "-n", "0"}, node.env(), followed};
  std::this_thread::sleep_for(300ms);
  node.ok({"call", "demo", "chatter", "2"});
  CHECK(eventually([&] {
    return read_file(followed).find("chatter line 2 of 2") != std::string::npos;
  }));
  // A log past its size is rotated: the old lines go to demo.log.1.
  node.ok({"call", "demo", "chatter", "400"});
  auto log = node.home() + "/logs/demo.log";
  CHECK(eventually([&] { return fs::exists(log + ".1"); }));
  CHECK(fs::file_size(log) < 4000);
  CHECK(read_file(log + ".1").find("chatter line 400 of 400")
        != std::string::npos);
  auto missing = node.joy({"logs", "nope"});
  CHECK(missing.exit_code != 0);
}
