// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// Large ndarrays between real plugin processes through a real node: 1 GiB by
// the shm arm (the node passes the block on without mapping it) and by the
// stream arm, with every byte checked against a seeded pattern.

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>

#include <catch2/catch.hpp>

#include "actors/plugin_host/process_launcher.hpp"
#include "tests/nodes/node_fixture.hpp"

using namespace joy::test;
using Catch::Matchers::Contains;

namespace {

const std::string gib = std::to_string(uint64_t{1} << 30);

/// A node with `arrays` and `arrays-2` installed.
class arrays_node : public node_fixture {
public:
  explicit arrays_node(std::vector<std::string> start_args = {}) {
    std::vector<std::string> args{"start"};
    args.insert(args.end(), start_args.begin(), start_args.end());
    ok(args);
    ok({"install", example("arrays")});
    ok({"install", copy_example("arrays", "arrays-2")});
  }

  /// The plugin's own process (its status shows its sandbox's pid).
  int pid_of(const std::string& name) {
    auto pids = find_programs(home() + "/plugins/" + name + "/");
    REQUIRE(pids.size() == 1);
    return pids[0];
  }

  /// How many mappings of Joy's shared-memory blocks `pid` has.
  static int shm_mappings(int pid) {
    auto maps = read_file("/proc/" + std::to_string(pid) + "/maps");
    int n = 0;
    for (std::size_t i = 0; (i = maps.find("joy-shm", i)) != std::string::npos;
         ++i)
      ++n;
    return n;
  }
};

} // namespace

TEST_CASE("a 1 GiB ndarray goes plugin to plugin through shared memory "
          "intact",
          "[nodes][large]") {
  arrays_node node;
  CHECK(node.ok({"call", "arrays", "send", "\"arrays-2\"", gib, "7"})
        == "true\n");
  CHECK(node.ok({"call", "arrays", "round_trip", "\"arrays-2\"", gib, "8"})
        == "true\n");
  // Heap memory is moved into shared memory by the SDK.
  CHECK(
    node.ok({"call", "arrays", "send_heap", "\"arrays-2\"", "100000003", "9"})
    == "true\n");
  // Sizes around the inline limit and the pattern's word size.
  for (auto n : {"16777215", "16777216", "16777217", "65537", "1"})
    CHECK(node.ok({"call", "arrays", "send", "\"arrays-2\"", n, "3"})
          == "true\n");
}

TEST_CASE("the node passes shared memory on without mapping it",
          "[nodes][large]") {
  arrays_node node;
  CHECK(
    node.ok({"call", "arrays", "send_to_keep", "\"arrays-2\"", "67108864", "5"})
    == "true\n");
  // arrays-2 holds the array: it maps the block, the node never does.
  CHECK(arrays_node::shm_mappings(node.pid_of("arrays-2")) >= 1);
  CHECK(arrays_node::shm_mappings(node.daemon_pid()) == 0);
  CHECK(node.ok({"call", "arrays-2", "drop"}) == "1\n");
}

TEST_CASE("with --large-data stream a 1 GiB ndarray arrives whole in chunks",
          "[nodes][large]") {
  arrays_node node{{"--large-data", "stream"}};
  CHECK(node.ok({"call", "arrays", "send", "\"arrays-2\"", gib, "11"})
        == "true\n");
  auto quarter = std::to_string(uint64_t{1} << 28);
  CHECK(node.ok({"call", "arrays", "round_trip", "\"arrays-2\"", quarter, "12"})
        == "true\n");
  CHECK(node.ok(
          {"call", "arrays", "send_to_keep", "\"arrays-2\"", "33554433", "13"})
        == "true\n");
  // Nothing went through shared memory.
  CHECK(arrays_node::shm_mappings(node.pid_of("arrays-2")) == 0);
}

TEST_CASE("the CLI prints arrays of any size, which the node streams to it",
          "[nodes][large]") {
  arrays_node node;
  // The plugin answers by the shm arm from 64 KiB on; the CLI passes no
  // fds, so the node streams the block to it. Both sides of 64 KiB and of
  // the 16 MiB inline limit (which binds only what travels inline).
  for (uint64_t n : {3u, 65535u, 65536u, 1000000u, 20000000u}) {
    INFO(n << " bytes");
    auto seed = std::to_string(n % 97);
    auto printed = node.ok({"call", "arrays", "make", std::to_string(n), seed});
    auto array = nlohmann::json::parse(printed);
    CHECK(array["_rtype"] == "ndarray");
    CHECK(array["_rshape"] == nlohmann::json::array({n}));
    CHECK(array["_rvalue"].get<std::string>().size() == (n + 2) / 3 * 4);
    // What the CLI prints, it takes back as an argument (as far as the
    // kernel lets one argument of a command line be: 128 KiB).
    if (n <= 65536u)
      CHECK(node.ok({"call", "arrays", "check", array.dump(), seed})
            == "true\n");
  }
  // The plugin is still fine.
  CHECK(node.ok({"call", "arrays", "send", "\"arrays-2\"", "1000", "2"})
        == "true\n");
}

TEST_CASE("a plugin's socket holds whole stream chunks without a ping-pong",
          "[nodes][large]") {
  // Linux's default send buffer (208 KiB) cut each 1 MiB chunk of the
  // stream arm into five write/wake/read turns (B7b: 0.17-0.28 GB/s, 0.75-1.0
  // with 4 MiB). The launcher widens both ends, past net.core.wmem_max where
  // it may (as root, as in CI; elsewhere a small wmem_max caps it).
  int max = 0;
  std::ifstream{"/proc/sys/net/core/wmem_max"} >> max;
  int want = ::geteuid() == 0 ? 4 << 20 : std::min(4 << 20, max);
  auto launcher = joy::make_exec_launcher(bin("joy-exec"));
  joy::launch_spec spec;
  spec.name = "hello";
  spec.executable = example("hello") + "/hello";
  spec.work_dir = example("hello");
  auto p = launcher->launch(spec);
  REQUIRE(p);
  int size = 0;
  socklen_t len = sizeof(size);
  REQUIRE(::getsockopt(p->socket->get(), SOL_SOCKET, SO_SNDBUF, &size, &len)
          == 0);
  // Linux reports twice what was set (its bookkeeping overhead).
  CHECK(size >= want);
  // Killed, it leaves no process behind.
  p->socket->reset();
  p->proc->kill();
  pollfd pfd{p->proc->exit_fd(), POLLIN, 0};
  REQUIRE(::poll(&pfd, 1, 10000) == 1);
  CHECK(p->proc->reap().has_value());
}
