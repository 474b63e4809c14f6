// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// The gpu service on real nodes: the built-in service every node serves
// (the CPU path on machines without a device), GPUs given to the plugins
// that ask for them, the fractal example's own kernel and its CPU
// fallback, and R9: the gpu host killed mid-call.

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>

#include "examples/fractal/fractal.hpp"
#include "runtime/value_json.hpp"
#include "tests/nodes/node_fixture.hpp"

using namespace joy::test;
using Catch::Matchers::Contains;
using json = nlohmann::json;

namespace {

/// The fractal example under `name`, asking for `gpus` GPUs.
std::string fractal_asking(node_fixture& node, const std::string& name,
                           int gpus) {
  auto dir = node.copy_example("fractal", name);
  auto path = dir + "/plugin.json";
  auto doc = json::parse(read_file(path));
  doc["resources"]["gpus"] = gpus;
  write_file(path, doc.dump(2));
  return dir;
}

/// The gpu host's process on this node (0: none).
int gpu_host_pid(node_fixture& node) {
  auto pids = find_programs(node.home() + "/builtin/gpu/");
  return pids.size() == 1 ? pids[0] : 0;
}

/// CPU seconds `pid` has used.
double cpu_seconds(int pid) {
  auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  if (close == std::string::npos)
    return 0;
  std::istringstream in{stat.substr(close + 2)};
  std::string field;
  unsigned long long utime = 0, stime = 0;
  // Fields 3..13 come before utime (14) and stime (15).
  for (int i = 3; i <= 13; ++i)
    in >> field;
  in >> utime >> stime;
  return static_cast<double>(utime + stime) / ::sysconf(_SC_CLK_TCK);
}

} // namespace

TEST_CASE("every node serves the built-in gpu service, started by its first "
          "call",
          "[nodes][gpu]") {
  node_fixture node;
  node.start({"--gpu-service", "on"});
  auto listed = node.plugin("gpu");
  REQUIRE(listed != nullptr);
  CHECK(listed["state"] == "stopped");
  CHECK(gpu_host_pid(node) == 0);
  node.ok({"install", example("arrays")});
  auto info = node.call("gpu", "info");
  CHECK(info.contains("cuda_built"));
  REQUIRE(info["workers"].size() >= 1);
  if (info["devices"].empty()) {
    CHECK(info["backend"] == "cpu");
    CHECK_FALSE(info["reason"].get<std::string>().empty());
    CHECK(info["workers"][0]["kind"] == "cpu");
  } else {
    // The devices work inside the host's sandbox.
    CHECK(info["workers"][0]["kind"] == "cuda");
    CHECK_FALSE(info.contains("skipped"));
  }
  CHECK(node.plugin("gpu")["state"] == "running");
  CHECK(gpu_host_pid(node) > 0);
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
  // It is the node's own: not uninstalled, rolled back or replaced.
  r = node.joy({"uninstall", "gpu"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Contains("built into the node"));
  r = node.joy({"rollback", "gpu"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Contains("built into the node"));
  r = node.joy({"install", std::string{JOY_BUILD_DIR} + "/gpu-host"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Contains("built into the node"));
  // Refused before anything was copied.
  CHECK_FALSE(std::filesystem::exists(node.home() + "/plugins/gpu"));
  CHECK(node.call("gpu", "stats", image)["max"] == 255.0);
}

TEST_CASE("a node started with --gpu-service off has no gpu service, and "
          "the gpu host installs there as a plugin",
          "[nodes][gpu]") {
  node_fixture node;
  node.start({"--gpu-service", "off"});
  CHECK(node.plugin("gpu") == nullptr);
  auto r = node.joy({"call", "gpu", "info"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Contains("no plugin named 'gpu'"));
  node.ok({"install", std::string{JOY_BUILD_DIR} + "/gpu-host"});
  CHECK(node.call("gpu", "info")["workers"].size() >= 1);
}

TEST_CASE("a plugin asking for GPUs gets devices of its own through "
          "CUDA_VISIBLE_DEVICES",
          "[nodes][gpu]") {
  node_fixture node;
  // Two GPUs as told (this machine has none: their device nodes are
  // bound where they exist, so here none are).
  node.start({"--gpus", "2", "--gpu-service", "off"});
  node.ok({"install", fractal_asking(node, "one", 1)});
  node.ok({"install", fractal_asking(node, "two", 1)});
  node.ok({"install", example("fractal")});
  CHECK(node.call("one", "info")["visible_devices"] == "0");
  CHECK(node.call("two", "info")["visible_devices"] == "1");
  // A plugin that asked for none sees none.
  CHECK(node.call("fractal", "info")["visible_devices"] == "");
  auto st = node.status();
  CHECK(st["resources"]["gpus"] == 2);
  REQUIRE(st["gpu_devices"].size() == 2);
  CHECK(st["gpu_devices"][0]["holder"] == "one");
  CHECK(st["gpu_devices"][1]["holder"] == "two");
  CHECK(st["gpu_devices"][1]["name"] == "(as told: --gpus)");
  CHECK_THAT(node.ok({"status"}), Contains("(used by two)"));
  // None left: the third cannot run, and says why.
  auto three_dir = fractal_asking(node, "three", 1);
  node.ok({"install", three_dir});
  auto three = node.plugin("three");
  CHECK(three["state"] == "failed");
  CHECK_THAT(three["last_error"].get<std::string>(),
             Contains("asks for 1 GPU(s); this node has 2, 0 free"));
  auto r = node.joy({"call", "three", "info"});
  CHECK(r.exit_code == 1);
  // Uninstalling one frees its device for the next.
  node.ok({"uninstall", "one"});
  CHECK(node.status()["gpu_devices"][0]["holder"] == "");
  node.ok({"install", three_dir});
  CHECK(node.call("three", "info")["visible_devices"] == "0");
  CHECK(node.call("two", "info")["visible_devices"] == "1");
}

TEST_CASE("the fractal example renders the same image with its own kernel "
          "or on the CPU, and blurs it with the node's gpu service",
          "[nodes][gpu]") {
  node_fixture node;
  node.start({"--gpu-service", "on"});
  node.ok({"install", example("fractal")});
  auto info = node.call("fractal", "info");
  auto rendered = node.call("fractal", "render", 64, 48, 100);
  auto image = joy::from_json(rendered.dump());
  REQUIRE(image);
  auto* a = image->as_ndarray();
  REQUIRE(a != nullptr);
  REQUIRE(a->shape == std::vector<uint64_t>{48, 64});
  // Whichever path ran (the CPU here), the image is the function's.
  std::size_t wrong = 0;
  for (int y = 0; y < 48; ++y)
    for (int x = 0; x < 64; ++x)
      if (std::to_integer<uint8_t>(a->data.data()[y * 64 + x])
          != fractal::pixel(x, y, 64, 48, 100))
        ++wrong;
  CHECK(wrong == 0);
  auto blurred = node.call("fractal", "render_blurred", 64, 48, 2.0);
  CHECK(blurred["_rshape"] == json{48, 64});
  CHECK(node.plugin("gpu")["state"] == "running");
  auto r = node.joy({"call", "fractal", "render", "0", "10", "10"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Contains("width and height must be"));
  if (info["devices"] == 0)
    CHECK_FALSE(info["reason"].get<std::string>().empty());
}

TEST_CASE("R9: the gpu host killed mid-call fails the call as disconnected "
          "and comes back",
          "[nodes][gpu][slow]") {
  node_fixture node;
  // No GPU for the service, even on a machine with one: the blur below
  // takes minutes on the CPU (2048 x 2048 pixels, radius 900), and so is
  // surely running when the host is killed.
  node.start({"--gpu-service", "on", "--gpus", "0"});
  node.ok({"install", example("fractal")});
  node.call("gpu", "info");
  auto pid = gpu_host_pid(node);
  REQUIRE(pid > 0);
  auto before = cpu_seconds(pid);
  auto out = node.dir().path() / "call.out";
  std::vector<std::string> argv{bin("joy"), "call", "fractal", "render_blurred",
                                "2048",     "2048", "300"};
  child call{argv, node.env(), out.string()};
  // Mid-call: the host is computing.
  await([&] { return cpu_seconds(pid) - before > 0.5; },
        std::chrono::seconds{60});
  ::kill(pid, SIGKILL);
  CHECK(call.wait(std::chrono::seconds{30}) == 1);
  CHECK_THAT(read_file(out), Contains("disconnected"));
  // The node restarts it; the next call is answered by a new process.
  await([&] { return node.plugin("gpu")["state"] == "running"; },
        std::chrono::seconds{30});
  CHECK(node.call("gpu", "info")["workers"].size() >= 1);
  auto again = gpu_host_pid(node);
  CHECK(again > 0);
  CHECK(again != pid);
}
