// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// The same plugin written both ways — exported functions (examples/hello)
// and a typed actor (examples/hello-actor) — answers the same through a
// real node and real plugin processes.

#include <catch2/catch.hpp>

#include "tests/nodes/node_fixture.hpp"

using namespace joy::test;
using Catch::Matchers::Contains;

TEST_CASE("a typed-actor plugin answers like the same plugin written with "
          "functions",
          "[nodes][actor]") {
  node_fixture node;
  node.start();
  node.ok({"install", example("hello")});
  node.ok({"install", example("hello-actor")});
  std::vector<std::vector<std::string>> calls{
    {"echo", "\"hi\""},
    {"echo", "{\"a\":[1,2.5,null]}"},
    {"add", "2", "3"},
    {"add", "-7", "7"},
    {"add", "9223372036854775807", "1"},
    {"add", "1", "\"x\""},
    {"add", "1"},
  };
  for (auto& c : calls) {
    std::vector<std::string> a{"call", "hello"}, b{"call", "hello-actor"};
    a.insert(a.end(), c.begin(), c.end());
    b.insert(b.end(), c.begin(), c.end());
    auto x = node.joy(a);
    auto y = node.joy(b);
    INFO(node_fixture::join(c) << "\nhello: " << x.out << x.err
                               << "\nhello-actor: " << y.out << y.err);
    CHECK(x.exit_code == y.exit_code);
    CHECK(x.out == y.out);
    // Errors match up to the plugin's name.
    auto strip = [](std::string s, const std::string& name) {
      for (auto i = s.find(name); i != std::string::npos; i = s.find(name))
        s.erase(i, name.size());
      return s;
    };
    CHECK(strip(x.err, "'hello'") == strip(y.err, "'hello-actor'"));
  }
  auto nope = node.joy({"call", "hello-actor", "nope"});
  CHECK(nope.exit_code != 0);
  CHECK_THAT(nope.err, Contains("it exports: add, count, echo"));
  // What only the actor has: state kept between calls.
  CHECK(node.ok({"call", "hello-actor", "count"}) == "6\n");
  auto status = node.plugin("hello-actor");
  CHECK(status["state"] == "running");
}
