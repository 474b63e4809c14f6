// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// Three nodes on three network hosts (namespaces joined by a switch), with
// mutual TLS as a real deployment has it: joining, direct calls between
// workers, and partitions (R3) both ways and one way, healed again. The
// detector runs with its defaults (1 s heartbeats, 3 s pause, phi 8).

#include <signal.h>

#include <chrono>
#include <thread>

#include <catch2/catch.hpp>

#include "tests/nodes/node_fixture.hpp"
#include "tests/support/test_network.hpp"

using namespace joy;
using namespace joy::test;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

struct host_node : node_fixture {
  test_network* net = nullptr;
  int index = 0;

  /// `joy start` inside this node's network host.
  void start_in(const std::vector<std::string>& options) {
    std::vector<std::string> argv{bin("joy"), "start"};
    argv.insert(argv.end(), options.begin(), options.end());
    auto r = run(net->in(index, argv), env());
    INFO(r.out << r.err << read_file(home() + "/logs/joyd.log"));
    REQUIRE(r.exit_code == 0);
  }

  std::string log() {
    return read_file(home() + "/logs/joyd.log");
  }

  /// id -> state of every node, as this node's status shows them.
  std::map<std::string, std::string> view() {
    auto st = status();
    std::map<std::string, std::string> out{
      {st["node_id"].get<std::string>(), "up"}};
    for (auto& n : st["cluster"])
      out[n["node_id"].get<std::string>()] = n["state"].get<std::string>();
    return out;
  }

  std::size_t count(const std::string& what) {
    auto text = log();
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos;
         at = text.find(what, at + 1))
      ++n;
    return n;
  }
};

double seconds_since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

/// The number of lines a plugin's log has that contain `what`.
std::size_t lines_with(const std::string& file, const std::string& what) {
  auto text = read_file(file);
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos;
       at = text.find(what, at + 1))
    ++n;
  return n;
}

} // namespace

TEST_CASE("three nodes on separate hosts join over mutual TLS, call each "
          "other directly, and survive partitions both ways and one way (R3)",
          "[nodes][cluster][netns]") {
  std::string why;
  auto net = test_network::make(3, why);
  if (!net) {
    WARN("skipped: this machine forbids network namespaces: " << why);
    return;
  }
  host_node nodes[3];
  for (int i = 0; i < 3; ++i) {
    nodes[i].net = net.get();
    nodes[i].index = i;
  }
  auto& a = nodes[0];
  auto& b = nodes[1];
  auto& c = nodes[2];
  auto ca = (a.dir() / "ca").string();
  a.ok({"cert", "ca", "--dir", ca});
  for (int i = 0; i < 3; ++i)
    a.ok({"cert", "node", "n" + std::to_string(i), "--ca", ca, "--out",
          nodes[i].home() + "/tls"});
  auto head = net->ip(0) + ":7700";
  a.start_in({"--sandbox", "none", "--listen", head});
  for (int i = 1; i < 3; ++i)
    nodes[i].start_in({"--sandbox", "none", "--address", net->ip(0), "--listen",
                       net->ip(i), "--token-file",
                       a.home() + "/cluster.token"});
  for (auto* n : {&b, &c})
    await([&] { return n->count("joined the head") == 1; });
  b.ok({"install", a.copy_example("demo", "demo-b")});
  c.ok({"install", a.copy_example("demo", "demo-c")});
  b.ok({"install", a.copy_example("arrays", "arrays-b")});
  c.ok({"install", a.copy_example("arrays", "arrays-c")});
  c.ok({"install", a.copy_example("hello", "hello-c")});
  auto c_id = c.status()["node_id"].get<std::string>();
  auto c_down = "node " + c_id + " at " + net->ip(2) + ":7700 is down";

  // Every node sees all three, up.
  for (auto& n : nodes)
    await([&] {
      auto v = n.view();
      return v.size() == 3 && std::all_of(v.begin(), v.end(), [](auto& kv) {
               return kv.second == "up";
             });
    });
  // Callbacks between two workers, and from the head's CLI.
  await([&] {
    return b.joy({"call", "demo-b", "loop_through", "\"demo-c\"", "100"}).out
           == "9900\n";
  });
  CHECK(a.call("demo-c", "loop_through", "demo-b", 10) == 90);
  // 256 MiB from B to C and back goes straight between them: the head's
  // host sends next to nothing meanwhile.
  auto head_before = net->bytes_from(0);
  auto quarter = std::to_string(256u << 20);
  CHECK(b.ok({"call", "arrays-b", "round_trip", "\"arrays-c\"", quarter, "9"})
        == "true\n");
  CHECK(net->bytes_from(0) - head_before < (4u << 20));
  CHECK(net->bytes_from(1) > (256u << 20));

  // -- partitions
  // ---------------------------------------------------------------
  auto demo_c_log = c.home() + "/logs/demo-c.log";
  int round = 0;
  struct partition {
    const char* what;
    bool one_way;
    std::chrono::seconds hold;
  };
  for (auto p :
       {partition{"both ways", false, 10s}, partition{"one way", true, 10s},
        partition{"both ways", false, 30s}, partition{"one way", true, 30s}}) {
    INFO("partition " << p.what << " for " << p.hold.count() << " s");
    ++round;
    auto joins_before = c.count("joined the head");
    auto downs_before = a.count(c_down);
    // A call in flight to C when it is cut off.
    run_result in_flight;
    auto long_call = std::thread{[&] {
      in_flight = b.joy({"call", "hello-c", "slow", "60", "\"x\""});
    }};
    std::this_thread::sleep_for(1s);
    auto cut_at = clock_type::now();
    if (p.one_way)
      net->drop(2, 0); // C's packets to the head are lost, not the reverse
    else
      net->cut(2);
    // Down within about 6 s (phi 8 after 1 s beats and a 3 s pause), as
    // the head's log says the moment it decides.
    await([&] { return a.count(c_down) > downs_before; }, 8s);
    auto detected = seconds_since(cut_at);
    CHECK(a.view()[c_id] == "down");
    CHECK(detected < 7); // "about 6 s", with room for a loaded CI machine
    // The call in flight fails with `disconnected` soon after.
    long_call.join();
    CHECK(in_flight.exit_code != 0);
    CHECK_THAT(in_flight.err, Catch::Contains("disconnected"));
    CHECK(seconds_since(cut_at) < detected + 3);
    // New calls fail fast, and do not run later: at most once.
    auto tag = std::to_string(1000 + round);
    auto started = clock_type::now();
    auto r = b.joy({"call", "demo-c", "chatter", tag});
    CHECK(r.exit_code != 0);
    CHECK_THAT(r.err, Catch::Contains("disconnected"));
    CHECK(seconds_since(started) < 1.5);
    // Hold, then heal.
    std::this_thread::sleep_for(p.hold - (clock_type::now() - cut_at));
    auto healed_at = clock_type::now();
    if (p.one_way)
      net->undrop(2, 0);
    else
      net->heal(2);
    await([&] { return c.count("joined the head") > joins_before; }, 15s);
    auto rejoined = seconds_since(healed_at);
    CHECK(rejoined < 6);
    // For the record in CI's log: R3's figures of this run.
    std::printf("R3 %s %llds: down after %.1f s, rejoined %.1f s after the "
                "heal\n",
                p.what, static_cast<long long>(p.hold.count()), detected,
                rejoined);
    // Views converge and calls go through again.
    for (auto& n : nodes)
      await([&] { return n.view()[c_id] == "up"; });
    await([&] {
      return b.joy({"call", "hello-c", "add", "2", "3"}).out == "5\n";
    });
    // The refused call never ran, not even once the way was open again.
    CHECK(lines_with(demo_c_log, "chatter line 1 of " + tag) == 0);
  }
}
