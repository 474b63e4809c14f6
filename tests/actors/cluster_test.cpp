// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// The cluster's directory and its failure detector, on the test
// coordinator's clock: no sleeps, no sockets.

#include <catch2/catch.hpp>

#include "actors/cluster/cluster_actor.hpp"
#include "actors/cluster/phi_accrual.hpp"
#include "runtime/errc.hpp"
#include "tests/support/actor_fixture.hpp"

using namespace joy;
using namespace std::chrono_literals;

namespace {

node_entry node(std::string id, std::string address,
                uint64_t memory = 8ull << 30) {
  node_entry x;
  x.node_id = std::move(id);
  x.address = std::move(address);
  x.version = "0.1.0";
  x.total = resources{4, memory, 0};
  return x;
}

cluster_config head_config() {
  cluster_config cfg;
  cfg.self = node("head", "10.0.0.1:7700");
  return cfg;
}

} // namespace

TEST_CASE("phi stays low while heartbeats keep their rhythm and grows with "
          "silence",
          "[actors][cluster]") {
  phi_accrual d;
  auto t = phi_accrual::clock::time_point{} + 1h;
  CHECK(d.phi(t) == 0);
  for (int i = 0; i < 20; ++i) {
    d.heartbeat(t);
    t += 1s;
  }
  // One second after the last beat: exactly on time.
  CHECK(d.phi(t - 1s + 1s) < 1);
  // Within the acceptable pause: still trusted.
  CHECK_FALSE(d.suspects(t - 1s + 3s));
  // Akka's defaults suspect a silent node about 4.5 s after its last beat:
  // within the 6 s, never before the pause is over.
  auto last = t - 1s;
  auto first_suspected = last;
  while (!d.suspects(first_suspected))
    first_suspected += 10ms;
  CHECK(first_suspected - last > 4s);
  CHECK(first_suspected - last < 5500ms);
  // Phi only grows with silence.
  CHECK(d.phi(last + 6s) > d.phi(last + 5s));
}

TEST_CASE("a jittery node gets more slack than a steady one",
          "[actors][cluster]") {
  phi_accrual steady;
  phi_accrual jittery;
  auto t1 = phi_accrual::clock::time_point{} + 1h;
  auto t2 = t1;
  for (int i = 0; i < 50; ++i) {
    steady.heartbeat(t1);
    jittery.heartbeat(t2);
    t1 += 1s;
    t2 += i % 2 == 0 ? 200ms : 1800ms;
  }
  // The same silence after each one's last beat (the loops' last steps
  // were 1 s and 1.8 s).
  auto silence = 4800ms;
  CHECK(jittery.phi(t2 - 1800ms + silence) < steady.phi(t1 - 1s + silence));
  CHECK(steady.suspects(t1 - 1s + silence));
  CHECK_FALSE(jittery.suspects(t2 - 1800ms + silence));
}

TEST_CASE("however jittery its heartbeats were, a silent node is suspected "
          "about five seconds after the last one",
          "[actors][cluster]") {
  // Beats 0.2 s and 1.8 s apart learn a deviation of 0.8 s; uncapped, phi
  // would reach 8 only ~8 s after the last beat.
  phi_accrual jittery;
  auto t = phi_accrual::clock::time_point{} + 1h;
  for (int i = 0; i < 50; ++i) {
    jittery.heartbeat(t);
    t += i % 2 == 0 ? 200ms : 1800ms;
  }
  auto last = jittery.last();
  CHECK_FALSE(jittery.suspects(last + 4500ms));
  CHECK(jittery.suspects(last + 5100ms));
  // The floor wins over a ceiling set below it.
  phi_accrual odd{phi_accrual_config{8.0, 1s, 3s, 100ms, 10ms}};
  phi_accrual plain{phi_accrual_config{8.0, 1s, 3s, 100ms, 100ms}};
  for (auto* d : {&odd, &plain})
    d->heartbeat(last);
  CHECK(odd.phi(last + 4300ms) == Approx(plain.phi(last + 4300ms)));
}

TEST_CASE("the directory locates plugins and services on the nodes that "
          "publish them",
          "[actors][cluster]") {
  test::actor_fixture f;
  auto cluster = spawn_cluster(f.sys, head_config());
  auto epoch
    = f.request<uint64_t>(cluster, join_atom_v, node("b", "10.0.0.2:7700"));
  REQUIRE(epoch);
  REQUIRE(f.request<bool>(
    cluster, publish_atom_v, std::string{"b"},
    std::vector<std::string>{"image-ops"}, resources{1, 1ull << 30, 0},
    std::vector<service_entry>{
      {"public/image-ops:default", "image-ops", "native", {"blur"}}}));
  auto at
    = f.request<location>(cluster, locate_atom_v, std::string{"image-ops"},
                          true, std::string{"head"});
  REQUIRE(at);
  CHECK(at->node_id == "b");
  CHECK(at->address == "10.0.0.2:7700");
  // Any spelling of the id.
  auto svc
    = f.request<location>(cluster, locate_atom_v, std::string{"image-ops"},
                          false, std::string{"head"});
  REQUIRE(svc);
  CHECK(svc->node_id == "b");
  auto listed = f.request<value>(cluster, list_atom_v, value{});
  REQUIRE(listed);
  REQUIRE(listed->as_list()->size() == 1);
  auto missing = f.request<location>(
    cluster, locate_atom_v, std::string{"nope"}, true, std::string{"head"});
  REQUIRE_FALSE(missing);
  CHECK(code_of(missing.error()) == errc::not_found);
  // A node publishes only once it joined.
  auto stranger = f.request<bool>(cluster, publish_atom_v, std::string{"x"},
                                  std::vector<std::string>{}, resources{},
                                  std::vector<service_entry>{});
  REQUIRE_FALSE(stranger);
  CHECK(code_of(stranger.error()) == errc::not_found);
  anon_send_exit(cluster, caf::exit_reason::user_shutdown);
}

TEST_CASE("a silent node is down within six seconds, its plugins fail fast, "
          "and it comes back by joining",
          "[actors][cluster]") {
  test::actor_fixture f;
  auto cfg = head_config();
  auto cluster = spawn_cluster(f.sys, cfg);
  REQUIRE(
    f.request<uint64_t>(cluster, join_atom_v, node("b", "10.0.0.2:7700")));
  REQUIRE(f.request<bool>(cluster, publish_atom_v, std::string{"b"},
                          std::vector<std::string>{"hello"}, resources{},
                          std::vector<service_entry>{}));
  for (int i = 0; i < 10; ++i) {
    f.advance(1s);
    REQUIRE(f.request<uint64_t>(cluster, heartbeat_atom_v, std::string{"b"},
                                uint64_t(i)));
  }
  // Silence: up for the acceptable pause, down before six seconds.
  f.advance(3s);
  auto nodes = f.request<std::vector<node_entry>>(cluster, nodes_atom_v);
  REQUIRE(nodes);
  CHECK(nodes->at(1).up);
  f.advance(2500ms);
  nodes = f.request<std::vector<node_entry>>(cluster, nodes_atom_v);
  REQUIRE(nodes);
  REQUIRE(nodes->size() == 2);
  CHECK(nodes->at(0).node_id == "head");
  CHECK_FALSE(nodes->at(1).up);
  auto gone = f.request<location>(cluster, locate_atom_v, std::string{"hello"},
                                  true, std::string{"head"});
  REQUIRE_FALSE(gone);
  CHECK(code_of(gone.error()) == errc::disconnected);
  // Its heartbeats are refused until it joins again.
  auto late = f.request<uint64_t>(cluster, heartbeat_atom_v, std::string{"b"},
                                  uint64_t{99});
  REQUIRE_FALSE(late);
  CHECK(code_of(late.error()) == errc::not_found);
  auto epoch
    = f.request<uint64_t>(cluster, join_atom_v, node("b", "10.0.0.2:7700"));
  REQUIRE(epoch);
  CHECK(f.request<location>(cluster, locate_atom_v, std::string{"hello"}, true,
                            std::string{"head"}));
  anon_send_exit(cluster, caf::exit_reason::user_shutdown);
}

TEST_CASE("a node whose connection closed is down at once",
          "[actors][cluster]") {
  test::actor_fixture f;
  auto cluster = spawn_cluster(f.sys, head_config());
  auto before
    = f.request<uint64_t>(cluster, join_atom_v, node("b", "10.0.0.2:7700"));
  REQUIRE(before);
  caf::anon_send(cluster, down_atom_v, std::string{"b"});
  f.run();
  auto nodes = f.request<std::vector<node_entry>>(cluster, nodes_atom_v);
  REQUIRE(nodes);
  CHECK_FALSE(nodes->at(1).up);
  // Membership changed: workers see a new epoch.
  auto after
    = f.request<uint64_t>(cluster, join_atom_v, node("b", "10.0.0.2:7700"));
  REQUIRE(after);
  CHECK(*after > *before);
  anon_send_exit(cluster, caf::exit_reason::user_shutdown);
}

TEST_CASE("a node that leaves is forgotten with its plugins, the head "
          "cannot leave",
          "[actors][cluster]") {
  test::actor_fixture f;
  auto cluster = spawn_cluster(f.sys, head_config());
  auto before
    = f.request<uint64_t>(cluster, join_atom_v, node("b", "10.0.0.2:7700"));
  REQUIRE(before);
  REQUIRE(f.request<bool>(cluster, publish_atom_v, std::string{"b"},
                          std::vector<std::string>{"image-ops"}, resources{},
                          std::vector<service_entry>{}));
  REQUIRE(f.request<bool>(cluster, leave_atom_v, std::string{"b"}));
  auto nodes = f.request<std::vector<node_entry>>(cluster, nodes_atom_v);
  REQUIRE(nodes);
  CHECK(nodes->size() == 1); // the head alone
  auto at
    = f.request<location>(cluster, locate_atom_v, std::string{"image-ops"},
                          true, std::string{"head"});
  REQUIRE_FALSE(at);
  CHECK(code_of(at.error()) == errc::not_found);
  CHECK(
    code_of(f.request<bool>(cluster, leave_atom_v, std::string{"b"}).error())
    == errc::not_found);
  auto head_id = nodes->at(0).node_id;
  CHECK(code_of(f.request<bool>(cluster, leave_atom_v, head_id).error())
        == errc::invalid_argument);
  // Back as a new member, with a new epoch.
  auto after
    = f.request<uint64_t>(cluster, join_atom_v, node("b", "10.0.0.2:7700"));
  REQUIRE(after);
  CHECK(*after > *before);
  anon_send_exit(cluster, caf::exit_reason::user_shutdown);
}

TEST_CASE("placement picks the node with the most room and refuses what fits "
          "nowhere",
          "[actors][cluster]") {
  test::actor_fixture f;
  auto cfg = head_config();
  cfg.self.total = resources{2, 2ull << 30, 0};
  auto cluster = spawn_cluster(f.sys, cfg);
  auto big = node("big", "10.0.0.3:7700", 64ull << 30);
  big.total.gpus = 1;
  REQUIRE(f.request<uint64_t>(cluster, join_atom_v, big));
  auto at
    = f.request<location>(cluster, place_atom_v, resources{1, 1ull << 30, 0});
  REQUIRE(at);
  CHECK(at->node_id == "big");
  auto gpu = f.request<location>(cluster, place_atom_v, resources{0, 0, 1});
  REQUIRE(gpu);
  CHECK(gpu->node_id == "big");
  auto none = f.request<location>(cluster, place_atom_v, resources{0, 0, 2});
  REQUIRE_FALSE(none);
  CHECK(code_of(none.error()) == errc::unavailable);
  // Committed resources count against a node.
  REQUIRE(f.request<bool>(cluster, publish_atom_v, std::string{"big"},
                          std::vector<std::string>{"hog"},
                          resources{4, 63ull << 30, 1},
                          std::vector<service_entry>{}));
  auto small
    = f.request<location>(cluster, place_atom_v, resources{1, 1ull << 30, 0});
  REQUIRE(small);
  CHECK(small->node_id == "head");
  anon_send_exit(cluster, caf::exit_reason::user_shutdown);
}

TEST_CASE("known nodes survive a restart of the head as JSON",
          "[actors][cluster]") {
  std::vector<node_entry> nodes{node("b", "10.0.0.2:7700"),
                                node("c", "[::1]:7700")};
  nodes[0].last_seen = 42;
  auto back = nodes_from_json(nodes_to_json(nodes));
  REQUIRE(back.size() == 2);
  CHECK(back[0].node_id == "b");
  CHECK(back[0].address == "10.0.0.2:7700");
  CHECK(back[0].last_seen == 42);
  CHECK(back[1].address == "[::1]:7700");
  CHECK(nodes_from_json("not json").empty());
  CHECK(nodes_from_json("[{\"address\": \"x\"}]").empty());
}
