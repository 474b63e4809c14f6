// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// joy-gpu-host as a plugin on a real node: its functions through the CLI
// (the CPU path on machines without a device) and what `info` reports.

#include <catch2/catch.hpp>

#include "tests/nodes/node_fixture.hpp"

using namespace joy::test;
using Catch::Matchers::Contains;
using json = nlohmann::json;

TEST_CASE("the gpu host serves blur, matmul, stats and info as a plugin",
          "[nodes][gpu]") {
  node_fixture node;
  node.start();
  node.ok({"install", std::string{JOY_BUILD_DIR} + "/gpu-host"});
  node.ok({"install", example("arrays")});
  auto info = node.call("gpu", "info");
  CHECK(info.contains("cuda_built"));
  if (info["devices"].empty()) {
    CHECK(info["backend"] == "cpu");
    CHECK_FALSE(info["reason"].get<std::string>().empty());
  }
  auto image = node.call("arrays", "gradient", 12, 20);
  auto blurred = node.call("gpu", "gaussian_blur", image, 1.5);
  CHECK(blurred["_rdtype"] == "uint8");
  CHECK(blurred["_rshape"] == json{12, 20});
  auto s = node.call("gpu", "stats", image);
  CHECK(s["min"] == 0.0);
  CHECK(s["max"] == 255.0);
  // [[1, 2], [3, 4]] squared, in float64.
  json m{{"_rtype", "ndarray"},
         {"_rdtype", "float64"},
         {"_rshape", {2, 2}},
         {"_rvalue", "AAAAAAAA8D8AAAAAAAAAQAAAAAAAAAhAAAAAAAAAEEA="}};
  auto sq = node.call("gpu", "matmul", m, m);
  CHECK(sq["_rshape"] == json{2, 2});
  CHECK(node.call("gpu", "stats", sq)["max"] == 22.0);
  auto r = node.joy({"call", "gpu", "gaussian_blur", image.dump(), "-1"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Contains("sigma must be a finite number"));
}
