// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// The SDK as a plugin author meets it: `cmake --install` Joy into a prefix,
// `joy new plugin` in a temp dir outside this repository, build it with
// find_package(Joy), install it on a real node and call it.

#include <catch2/catch.hpp>

#include "tests/nodes/node_fixture.hpp"

using namespace joy::test;
using Catch::Matchers::Contains;

namespace {

/// Runs a build step; it must succeed.
void step(const std::vector<std::string>& argv,
          const std::map<std::string, std::string>& env = {}) {
  auto r = run(argv, env, std::chrono::minutes{5});
  INFO(node_fixture::join(argv)
       << "\nstdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
}

} // namespace

TEST_CASE("a plugin made with joy new builds outside the repository "
          "against the installed SDK",
          "[tools][sdk]") {
  node_fixture node;
  auto root = node.dir().path();
  auto prefix = (root / "prefix").string();
  step({"cmake", "--install", JOY_BUILD_DIR, "--prefix", prefix});
  REQUIRE(std::filesystem::exists(prefix + "/lib/cmake/Joy/JoyConfig.cmake"));
  REQUIRE(std::filesystem::exists(prefix + "/include/joy/runtime/plugin.hpp"));
  node.start();
  for (bool actor : {false, true}) {
    std::string name = actor ? "made-actor" : "made-functions";
    auto src = (root / "work" / name).string();
    std::vector<std::string> cmd{"new", "plugin", name, "--dir", src};
    if (actor)
      cmd.push_back("--actor");
    CHECK_THAT(node.ok(cmd), Contains("created plugin " + name));
    // A second time refuses to overwrite it.
    CHECK(node.joy(cmd).exit_code != 0);
    step({"cmake", "-S", src, "-B", src + "/build",
          "-DCMAKE_PREFIX_PATH=" + prefix, "-DCMAKE_BUILD_TYPE=Release"});
    step({"cmake", "--build", src + "/build", "-j", "2"});
    node.ok({"install", src + "/build/plugin/" + name});
    CHECK(node.ok({"call", name, "greet", "\"Ada\""}) == "\"Hello, Ada!\"\n");
    CHECK(node.ok({"call", name, "add", "2", "3"}) == "5\n");
    if (actor)
      CHECK(node.ok({"call", name, "count"}) == "2\n");
  }
}

TEST_CASE("joy new refuses names that cannot be a plugin", "[tools][sdk]") {
  node_fixture node;
  auto dir = (node.dir().path() / "x").string();
  for (auto bad : {"bad name", "../up", "", "-dash-first"}) {
    auto r = node.joy({"new", "plugin", bad, "--dir", dir});
    INFO(bad << ": " << r.err);
    CHECK(r.exit_code != 0);
    CHECK(!std::filesystem::exists(dir));
  }
}
