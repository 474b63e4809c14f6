// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// The joy CLI: help everywhere, JSON in and out, and every error one line on
// stderr with a non-zero exit code.

#include <catch2/catch.hpp>

#include <algorithm>
#include <sstream>

#include "tests/nodes/node_fixture.hpp"

using namespace joy::test;
using json = nlohmann::json;

namespace {

std::size_t lines(const std::string& s) {
  return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
}

/// The command failed with one line on stderr containing `what`.
void check_error(const run_result& r, const std::string& what) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code != 0);
  CHECK(lines(r.err) == 1);
  CHECK_THAT(r.err, Catch::StartsWith("joy: "));
  CHECK_THAT(r.err, Catch::Contains(what));
}

} // namespace

TEST_CASE(
  "every command has help, and misuse is a one-line error with exit code 2",
  "[tools][cli]") {
  node_fixture node;
  for (std::string cmd :
       {"start", "stop", "status", "install", "plugins", "call"}) {
    auto r = node.joy({cmd, "--help"});
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("Usage"));
  }
  auto top = node.joy({"--help"});
  CHECK(top.exit_code == 0);
  CHECK_THAT(top.out, Catch::Contains("install"));
  CHECK_THAT(node.joy({"--version"}).out, Catch::StartsWith("joy 0."));
  auto none = node.joy({});
  CHECK(none.exit_code == 2);
  CHECK(lines(none.err) == 1);
  auto bogus = node.joy({"frobnicate"});
  CHECK(bogus.exit_code == 2);
  CHECK(lines(bogus.err) == 1);
  auto missing = node.joy({"call", "hello"});
  CHECK(missing.exit_code == 2);
}

TEST_CASE("joy start takes every option joyd takes", "[tools][cli]") {
  node_fixture node;
  auto joyd = run({bin("joyd"), "--help"}, node.env());
  auto start = node.joy({"start", "--help"});
  REQUIRE(joyd.exit_code == 0);
  REQUIRE(start.exit_code == 0);
  // Each "--name" that begins an option's line in joyd's help.
  std::istringstream in{joyd.out};
  int seen = 0;
  for (std::string line; std::getline(in, line);) {
    auto at = line.find_first_not_of(' ');
    if (at == std::string::npos || line.compare(at, 2, "--") != 0)
      continue;
    auto flag = line.substr(at, line.find_first_of(" ,=", at) - at);
    if (flag == "--help" || flag == "--version" || flag == "--home")
      continue;
    ++seen;
    INFO(flag);
    CHECK_THAT(start.out, Catch::Contains(flag + " "));
  }
  CHECK(seen > 30);
}

TEST_CASE("a start that fails says why, and only this start's reasons",
          "[tools][cli]") {
  node_fixture node;
  auto port = node.joy({"start", "--listen", "127.0.0.1:xx"});
  CHECK(port.exit_code != 0);
  CHECK_THAT(port.err, Catch::Contains("--listen: 'xx' in '127.0.0.1:xx' is "
                                       "not a port"));
  auto worker = node.joy({"start", "--address", "127.0.0.1:notaport"});
  CHECK(worker.exit_code != 0);
  CHECK_THAT(worker.err, Catch::Contains("--address: 'notaport'"));
  // The earlier start's reason is in the log, not in this report.
  CHECK_THAT(worker.err, !Catch::Contains("'xx'"));
  auto host = node.joy({"start", "--listen", "no-such-host.invalid:0"});
  CHECK(host.exit_code != 0);
  CHECK_THAT(host.err, Catch::Contains("cannot listen on"));
  CHECK_THAT(host.err, !Catch::Contains("TLS"));
}

TEST_CASE("joyd.toml in the home sets joyd's options, and a misspelt key "
          "stops the start",
          "[tools][cli]") {
  node_fixture node;
  std::filesystem::create_directories(node.home());
  write_file(node.home() + "/joyd.toml",
             "listen = \"127.0.0.1:0\"\ngpu-service = \"off\"\n");
  node.ok({"start"});
  auto st = node.status();
  CHECK_THAT(st["listen"].get<std::string>(), Catch::StartsWith("127.0.0.1:"));
  node.ok({"stop"});
  write_file(node.home() + "/joyd.toml", "listne = \"127.0.0.1:0\"\n");
  auto r = node.joy({"start"});
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.err, Catch::Contains("joyd.toml: unknown key 'listne'"));
}

TEST_CASE("commands without a running node say so in one line",
          "[tools][cli]") {
  node_fixture node;
  for (auto args : std::vector<std::vector<std::string>>{
         {"status"},
         {"plugins"},
         {"stop"},
         {"call", "hello", "add", "1", "2"}}) {
    check_error(node.joy(args), "no node is running in " + node.home());
  }
}

TEST_CASE("install refuses what it cannot run, naming the reason",
          "[tools][cli]") {
  node_fixture node;
  node.start();
  check_error(node.joy({"install", node.home() + "/nope"}), "does not exist");
  auto bad = node.dir() / "bad";
  write_file(
    bad / "plugin.json",
    R"({"name": "bad", "type": "native", "entry": "x", "resources": {"gpus": -1}})");
  check_error(node.joy({"install", bad.string()}), "resources.gpus");
  auto window = node.dir() / "win";
  write_file(window / "plugin.json", R"({"name": "win", "type": "window"})");
  check_error(node.joy({"install", window.string()}),
              "names its .imjoy.html file");
  auto worker = node.dir() / "worker";
  write_file(
    worker / "plugin.json",
    R"({"name": "worker", "type": "web-worker", "entry": "w.imjoy.html"})");
  write_file(worker / "w.imjoy.html",
             R"(<config>{"name": "worker", "type": "web-worker"}</config>)"
             "<script>api.export({})</script>");
  check_error(node.joy({"install", worker.string()}), "unimplemented");
  auto not_exec = node.dir() / "noexec";
  write_file(not_exec / "plugin.json",
             R"({"name": "noexec", "type": "native", "entry": "x"})");
  write_file(not_exec / "x", "#!/bin/sh\n");
  check_error(node.joy({"install", not_exec.string()}), "not executable");
  // Nothing was registered.
  CHECK(json::parse(node.ok({"plugins", "--json"})).empty());
}

TEST_CASE("call reports bad arguments and unknown targets in one line",
          "[tools][cli]") {
  node_fixture node;
  node.start();
  node.ok({"install", example("hello")});
  check_error(node.joy({"call", "nope", "x"}),
              "no plugin named 'nope' is installed (installed: hello)");
  check_error(node.joy({"call", "hello", "nope"}), "has no method 'nope'");
  check_error(node.joy({"call", "hello", "add", "1"}),
              "add takes 2 arguments, got 1");
  check_error(node.joy({"call", "hello", "add", "1", "\"2\""}),
              "argument 2 (b)");
  check_error(node.joy({"call", "hello", "add", "2.5", "1"}),
              "got float64 2.5");
  check_error(node.joy({"call", "hello", "add", "9223372036854775807", "1"}),
              "does not fit in 64 bits");
  check_error(node.joy({"call", "hello", "echo", "hi"}),
              "argument 1 is not valid JSON");
  check_error(node.joy({"call", "hello", "echo", "[" + std::string(200, '[')}),
              "argument 1");
  // What a caller or a plugin wrote reaches the terminal defused.
  auto escape = node.joy({"call", "\x1b]0;owned\x07x", "m"});
  CHECK(escape.exit_code != 0);
  CHECK_THAT(escape.err, Catch::Contains("\\x1b]0;owned\\x07x"));
  CHECK(escape.err.find('\x1b') == std::string::npos);
  // Valid JSON that is no value says what is wrong with it.
  auto rtype = node.joy({"call", "hello", "echo", R"({"_rtype":"nope"})"});
  CHECK(rtype.exit_code != 0);
  CHECK_THAT(rtype.err, !Catch::Contains("not valid JSON"));
  // Numbers that look like options, with or without a `--` before them.
  CHECK(node.ok({"call", "hello", "add", "-1", "-2"}) == "-3\n");
  CHECK(node.ok({"call", "hello", "add", "--", "-1", "2"}) == "1\n");
  CHECK(node.ok({"call", "--timeout", "5", "hello", "add", "--", "2", "-1"})
        == "1\n");
  // Limits of options read as such, not as the range of a double.
  auto zero = node.joy({"call", "hello", "add", "1", "2", "--timeout", "0"});
  CHECK(zero.exit_code == 2);
  CHECK_THAT(zero.err,
             Catch::Contains("--timeout: 0 is not a positive number"));
  CHECK_THAT(node.joy({"logs", "hello", "-n", "-1"}).err,
             Catch::Contains("-1 is not zero or a positive number"));
}

TEST_CASE("values cross the CLI as JSON with ImJoy's _rtype encodings",
          "[tools][cli]") {
  node_fixture node;
  node.start();
  node.ok({"install", example("hello")});
  auto echo = [&](const std::string& arg) {
    return node.ok({"call", "hello", "echo", arg});
  };
  CHECK(echo("-7") == "-7\n");
  CHECK(echo("18446744073709551615") == "18446744073709551615\n");
  CHECK(echo("1.0") == "1.0\n");
  CHECK(echo(R"({"_rtype":"float","_rvalue":"nan"})")
        == "{\"_rtype\":\"float\",\"_rvalue\":\"nan\"}\n");
  CHECK(echo(R"({"_rtype":"memoryview","_rvalue":"AAH/"})")
        == "{\"_rtype\":\"memoryview\",\"_rvalue\":\"AAH/\"}\n");
  auto nd
    = R"({"_rtype":"ndarray","_rdtype":"float32","_rshape":[2],"_rvalue":"AACAPwAAAEA="})";
  CHECK(echo(nd) == std::string{nd} + "\n");
  auto wrapped = R"({"_rtype":"map","_rvalue":{"_rtype":"user data","x":1}})";
  CHECK(echo(wrapped) == std::string{wrapped} + "\n");
  auto when = R"({"_rtype":"timestamp","_rvalue":"2024-05-01T12:00:00.500Z"})";
  CHECK(echo(when) == std::string{when} + "\n");
  CHECK(echo(R"({"b":1,"a":[true,null,"ü"]})")
        == "{\"b\":1,\"a\":[true,null,\"ü\"]}\n");
}

TEST_CASE("status and plugins print tables for people and JSON for scripts",
          "[tools][cli]") {
  node_fixture node;
  node.start();
  node.ok({"install", example("hello")});
  node.ok({"call", "hello", "add", "1", "1"});
  auto text = node.ok({"status"});
  CHECK_THAT(text, Catch::Contains("node"));
  CHECK_THAT(text, Catch::Contains("uptime"));
  CHECK_THAT(text, Catch::Contains("resources"));
  CHECK_THAT(text, Catch::Contains("sandbox    bwrap"));
  CHECK_THAT(text, Catch::Contains("public/hello:default"));
  auto st = node.status();
  CHECK(st["version"] == "0.1.0");
  CHECK(st["address"] == node.home() + "/joyd.sock");
  CHECK(st["resources"]["cpus"].get<int>() >= 1);
  CHECK(st["resources"]["memory_bytes"].get<uint64_t>() > 0);
  CHECK(st["plugins"][0]["manifest"]["entry"] == "hello");
  // The plugin's service, and the node's own (plugin logs for the core).
  CHECK(st["services"]
        == json::array(
          {"public/hello:default",
           "public/node-" + st["node_id"].get<std::string>() + ":logs"}));
}

TEST_CASE("values nested as deep as allowed cross to a plugin and back, one "
          "level more is refused",
          "[tools][cli]") {
  node_fixture node;
  node.start();
  node.ok({"install", example("hello")});
  auto nest = [](int depth) {
    std::string s = "1";
    for (int i = 0; i < depth; ++i)
      s = (i % 2 == 0 ? "{\"k\":" + s + "}" : "[" + s + "]");
    return s;
  };
  CHECK(node.ok({"call", "hello", "echo", nest(32)}) == nest(32) + "\n");
  check_error(node.joy({"call", "hello", "echo", nest(33)}),
              "nesting exceeds 32");
}
