// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// ImJoy window plugins (`.imjoy.html`) on a node: installed from the file,
// kept (they run in the browser core, not as processes), listed, served to
// the core through their service, refused clearly where they cannot run.
// The browser side is tested in tests/bridge/browser.test.mjs.

#include <catch2/catch.hpp>

#include <filesystem>

#include "tests/nodes/node_fixture.hpp"

using namespace joy::test;
using Catch::Matchers::Contains;
using json = nlohmann::json;
namespace fs = std::filesystem;

TEST_CASE("a local ImJoy file installs as the variant its @tag picks",
          "[nodes][window]") {
  node_fixture node;
  node.start();
  auto file = node.dir() / "src" / "tagged.imjoy.html";
  write_file(file, R"(<config lang="json">{"name": "tagged", "type": )"
                   R"("window", "tags": ["stable", "dev"], "ui": )"
                   R"({"stable": "plain", "dev": "extras"}}</config>)"
                   R"(<window>hi</window><script>api.export({})</script>)");
  node.ok({"install", file.string() + "@dev"});
  auto manifest = node.plugin("tagged")["manifest"];
  CHECK(manifest["tag"] == "dev");
  CHECK(manifest["ui"] == "extras");
  // Without one, the first; a file that does not exist is named as such.
  node.ok({"install", file.string()});
  CHECK(node.plugin("tagged")["manifest"]["tag"] == "stable");
  auto missing
    = node.joy({"install", (node.dir() / "no.imjoy.html@dev").string()});
  CHECK(missing.exit_code == 1);
  CHECK_THAT(missing.err, Contains("does not exist"));
}

TEST_CASE("a window plugin installs from its .imjoy.html file and survives "
          "a restart",
          "[nodes][window]") {
  node_fixture node;
  node.start();
  auto out = node.ok({"install", example("viewer.imjoy.html")});
  CHECK_THAT(out, Contains("installed viewer 0.1.0"));
  auto plugins = json::parse(node.ok({"plugins", "--json"}));
  REQUIRE(plugins.size() == 1);
  CHECK(plugins[0]["name"] == "viewer");
  CHECK(plugins[0]["type"] == "window");
  CHECK(plugins[0]["state"] == "running");
  CHECK(plugins[0]["pid"] == 0);
  // The folder made of it: the manifest and the file itself.
  auto folder = fs::path{plugins[0]["path"].get<std::string>()};
  CHECK(fs::is_regular_file(folder / "plugin.imjoy.html"));
  auto manifest = json::parse(read_file(folder / "plugin.json"));
  CHECK(manifest["type"] == "window");
  CHECK(manifest["entry"] == "plugin.imjoy.html");

  // It runs in a browser: calling it here says where it runs.
  auto call = node.joy({"call", "viewer", "run"});
  CHECK(call.exit_code == 1);
  CHECK_THAT(call.err, Contains("window plugin"));
  CHECK_THAT(call.err, Contains("browser core"));

  node.ok({"stop"});
  node.start();
  auto again = json::parse(node.ok({"plugins", "--json"}));
  REQUIRE(again.size() == 1);
  CHECK(again[0]["type"] == "window");
  CHECK(again[0]["state"] == "running");
}

TEST_CASE("a native plugin asking for a window without a browser core gets "
          "a clear error",
          "[nodes][window]") {
  node_fixture node;
  node.start();
  node.ok({"install", example("demo")});
  node.ok({"install", example("viewer.imjoy.html")});
  auto r = node.joy({"call", "demo", "open_viewer", "\"hi\""});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Contains("unavailable"));
  CHECK_THAT(r.err, Contains("browser core"));
}

TEST_CASE("ImJoy files the node cannot keep are refused with the reason, "
          "and change nothing",
          "[nodes][window]") {
  node_fixture node;
  node.start();
  node.ok({"install", example("viewer.imjoy.html")});
  auto write = [&](const std::string& name, const std::string& text) {
    auto p = node.dir() / "src" / name;
    fs::create_directories(p.parent_path());
    write_file(p, text);
    return p.string();
  };
  auto no_script = node.joy(
    {"install",
     write(
       "a.imjoy.html",
       R"(<config>{"name": "viewer", "type": "window", "version": "9.0.0"}</config>)"
       "<window><p>hi</p></window>")});
  CHECK(no_script.exit_code == 1);
  CHECK_THAT(no_script.err, Contains("has no <script>"));

  auto broken = node.joy(
    {"install", write("b.imjoy.html", "<config>{\"name\": </config>")});
  CHECK(broken.exit_code == 1);
  CHECK_THAT(broken.err, Contains("<config>"));

  auto native = node.joy(
    {"install",
     write(
       "c.imjoy.html",
       R"(<config>{"name": "x", "type": "native"}</config><script>x</script>)")});
  CHECK(native.exit_code == 1);
  CHECK_THAT(native.err, Contains("not an .imjoy.html file"));

  // Web workers run in a browser the node does not have.
  auto worker = node.joy(
    {"install", write("d.imjoy.html",
                      R"(<config>{"name": "ww", "type": "web-worker"}</config>)"
                      R"(<script>api.export({})</script>)")});
  CHECK(worker.exit_code == 1);
  CHECK_THAT(worker.err, Contains("unimplemented"));
  // So does web-python (Pyodide): refused as what it is, not as unknown.
  auto pyodide = node.joy(
    {"install", write("e.imjoy.html",
                      R"(<config>{"name": "wp", "type": "web-python"}</config>)"
                      R"(<script lang="python">api.export({})</script>)")});
  CHECK(pyodide.exit_code == 1);
  CHECK_THAT(pyodide.err, Contains("unimplemented"));
  CHECK_THAT(pyodide.err, Contains("browser"));

  auto plugins = json::parse(node.ok({"plugins", "--json"}));
  REQUIRE(plugins.size() == 1);
  CHECK(plugins[0]["version"] == "0.1.0");
}
