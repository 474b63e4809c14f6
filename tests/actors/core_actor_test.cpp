// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// The core's service directory, on CAF's deterministic test scheduler.

#include <catch2/catch.hpp>

#include "actors/core/core_actor.hpp"
#include "actors/core/service_snapshot.hpp"
#include "runtime/errc.hpp"
#include "tests/support/actor_fixture.hpp"

using namespace joy;

namespace {

service_info svc(std::string id, std::string node = "n1") {
  service_info x;
  x.id = std::move(id);
  x.node = std::move(node);
  return x;
}

} // namespace

TEST_CASE("service ids parse in every form hypha allows", "[actors][core]") {
  auto full = parse_service_id("ws/client:svc");
  REQUIRE(full);
  CHECK(full->workspace == "ws");
  CHECK(full->client == "client");
  CHECK(full->service == "svc");
  auto bare = parse_service_id("hello");
  REQUIRE(bare);
  CHECK(bare->workspace.empty());
  CHECK(bare->service.empty());
  CHECK(to_string(*parse_service_id("hello:default")) == "hello:default");
  for (auto bad : {"", "/x", "ws/", "a:", "a:b:c", "ws/a/b"}) {
    INFO(bad);
    CHECK_FALSE(parse_service_id(bad));
  }
}

TEST_CASE("a registered service resolves by every id form, in workspace public",
          "[actors][core]") {
  test::actor_fixture f;
  auto core = spawn_core(f.sys);
  auto reg = f.request<service_info>(core, register_atom_v, svc("hello"));
  REQUIRE(reg);
  CHECK(reg->id == "public/hello:default");
  CHECK(reg->workspace == "public");
  CHECK(reg->client == "hello");
  CHECK(reg->service == "default");
  for (auto id :
       {"hello", "hello:default", "public/hello", "public/hello:default"}) {
    INFO(id);
    auto got = f.request<service_info>(core, get_atom_v, std::string{id});
    REQUIRE(got);
    CHECK(got->node == "n1");
  }
  auto other
    = f.request<service_info>(core, get_atom_v, std::string{"ws2/hello"});
  REQUIRE_FALSE(other);
  CHECK(code_of(other.error()) == errc::not_found);
}

TEST_CASE(
  "registering again replaces, unregistering removes, listing is ordered",
  "[actors][core]") {
  test::actor_fixture f;
  auto core = spawn_core(f.sys);
  REQUIRE(f.request<service_info>(core, register_atom_v, svc("b")));
  REQUIRE(f.request<service_info>(core, register_atom_v, svc("a")));
  REQUIRE(f.request<service_info>(core, register_atom_v, svc("a", "n2")));
  auto all = f.request<std::vector<service_info>>(core, list_atom_v);
  REQUIRE(all);
  REQUIRE(all->size() == 2);
  CHECK((*all)[0].id == "public/a:default");
  CHECK((*all)[0].node == "n2");
  CHECK((*all)[1].id == "public/b:default");
  REQUIRE(f.request<bool>(core, unregister_atom_v, std::string{"a"}));
  auto again = f.request<bool>(core, unregister_atom_v, std::string{"a"});
  REQUIRE_FALSE(again);
  CHECK(code_of(again.error()) == errc::not_found);
  auto bad = f.request<service_info>(core, register_atom_v, svc("x:y:z"));
  REQUIRE_FALSE(bad);
  CHECK(code_of(bad.error()) == errc::invalid_argument);
}

TEST_CASE("the core tells its listener every change, and a snapshot fed by "
          "it finds what the core finds",
          "[actors][core]") {
  test::actor_fixture f;
  std::vector<directory_change> heard;
  auto core
    = spawn_core(f.sys, [&](const directory_change& c) { heard.push_back(c); });
  service_snapshot snapshot;
  auto sync = [&] {
    for (auto& c : heard)
      snapshot.apply(c);
    heard.clear();
  };
  auto tools = svc("demo:tools");
  value_map object;
  object.insert("name", value{"tools"});
  tools.object = value{object};
  REQUIRE(f.request<service_info>(core, register_atom_v, tools));
  REQUIRE(f.request<service_info>(core, register_atom_v, svc("demo:more")));
  REQUIRE(f.request<service_info>(core, register_atom_v, svc("other:x")));
  REQUIRE(f.request<service_info>(core, register_atom_v, svc("hello")));
  REQUIRE(heard.size() == 4);
  CHECK(heard[0].what == directory_change::kind::registered);
  CHECK(heard[0].service.id == "public/demo:tools");
  sync();
  for (auto id : {"demo:tools", "public/demo:tools"}) {
    INFO(id);
    REQUIRE(snapshot.find(id) != nullptr);
    CHECK(*snapshot.find(id) == value{object});
  }
  CHECK(snapshot.find("ws2/demo:tools") == nullptr);
  CHECK(snapshot.find("not an id:") == nullptr);
  // Default services are the node's to make (it may start the plugin).
  CHECK(snapshot.find("hello") == nullptr);
  CHECK(snapshot.find("public/hello:default") == nullptr);

  REQUIRE(f.request<bool>(core, unregister_atom_v, std::string{"demo:more"}));
  sync();
  CHECK(snapshot.find("demo:more") == nullptr);
  CHECK(snapshot.find("demo:tools") != nullptr);

  // A plugin that went away takes all its services along.
  REQUIRE(f.request<bool>(core, forget_atom_v, std::string{"demo"}));
  sync();
  CHECK(snapshot.find("demo:tools") == nullptr);
  CHECK(snapshot.find("other:x") != nullptr);
  CHECK(snapshot.size() == 2); // other:x and hello's default, never served
}
