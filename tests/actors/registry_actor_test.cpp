// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/registry/registry_actor.hpp"
#include "runtime/errc.hpp"
#include "runtime/system_config.hpp"
#include "tests/support/temp_dir.hpp"

using joy::errc;
using joy::plugin_record;

namespace {

constexpr auto timeout = std::chrono::seconds{5};

plugin_record make_record(const std::string& name, const std::string& version,
                          int64_t installed_at) {
  plugin_record rec;
  rec.name = name;
  rec.version = version;
  rec.type = "native";
  rec.source = "/src/" + name;
  rec.manifest = R"({"name":")" + name + R"("})";
  rec.sha256 = std::string(64, 'c');
  rec.path = "/plugins/" + name + "/" + version;
  rec.installed_at = installed_at;
  rec.updated_at = installed_at;
  return rec;
}

/// An actor system with Joy's settings and a registry on `path`.
struct registry_fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  joy::registry_actor registry;

  explicit registry_fixture(const std::string& path) {
    joy::configure_actor_system(cfg, 2);
    sys = std::make_unique<caf::actor_system>(cfg);
    auto store = joy::plugin_store::open(path);
    if (!store)
      FAIL("cannot open " << path << ": " << joy::message_of(store.error()));
    registry = joy::spawn_registry(*sys, std::move(*store));
  }

  ~registry_fixture() {
    caf::anon_send_exit(registry, caf::exit_reason::user_shutdown);
    registry = nullptr;
    sys.reset();
  }
};

/// What a request failed with, as (code, message); fails if it succeeded
/// with a reply of type `Reply`.
template <class Reply, class... Ts>
std::pair<errc, std::string> expect_error(caf::scoped_actor& self,
                                          const joy::registry_actor& registry,
                                          Ts&&... xs) {
  std::pair<errc, std::string> result{errc::internal, "no reply"};
  self->request(registry, timeout, std::forward<Ts>(xs)...)
    .receive([&](Reply&) { FAIL("expected an error"); },
             [&](caf::error& err) {
               result = {joy::code_of(err), joy::message_of(err)};
             });
  return result;
}

} // namespace

TEST_CASE("the registry actor stores, lists and forgets plugins",
          "[actors][registry]") {
  registry_fixture f{":memory:"};
  caf::scoped_actor self{*f.sys};
  auto rec = make_record("hello", "1.0", 10);
  self->request(f.registry, timeout, joy::put_atom_v, rec)
    .receive([&](plugin_record& stored) { CHECK(stored == rec); },
             [&](caf::error& err) { FAIL(joy::message_of(err)); });
  auto rec2 = make_record("hello", "2.0", 20);
  self->request(f.registry, timeout, joy::put_atom_v, rec2)
    .receive([&](plugin_record& stored) { CHECK(stored == rec2); },
             [&](caf::error& err) { FAIL(joy::message_of(err)); });
  auto rec3 = make_record("abc", "1", 30);
  self->request(f.registry, timeout, joy::put_atom_v, rec3)
    .receive([&](plugin_record&) {},
             [&](caf::error& err) { FAIL(joy::message_of(err)); });
  self->request(f.registry, timeout, joy::get_atom_v, std::string{"hello"})
    .receive([&](plugin_record& active) { CHECK(active == rec2); },
             [&](caf::error& err) { FAIL(joy::message_of(err)); });
  self->request(f.registry, timeout, joy::list_atom_v)
    .receive(
      [&](std::vector<plugin_record>& all) {
        REQUIRE(all.size() == 2);
        CHECK(all[0].name == "abc");
        CHECK(all[1] == rec2);
      },
      [&](caf::error& err) { FAIL(joy::message_of(err)); });
  self->request(f.registry, timeout, joy::remove_atom_v, std::string{"hello"})
    .receive([&](bool removed) { CHECK(removed); },
             [&](caf::error& err) { FAIL(joy::message_of(err)); });
  auto [code, msg] = expect_error<plugin_record>(
    self, f.registry, joy::get_atom_v, std::string{"hello"});
  CHECK(code == errc::not_found);
  CHECK(msg == "no plugin named 'hello'");
}

TEST_CASE("the registry actor replies not_found for unknown names and keys",
          "[actors][registry]") {
  registry_fixture f{":memory:"};
  caf::scoped_actor self{*f.sys};
  auto [c1, m1] = expect_error<plugin_record>(self, f.registry, joy::get_atom_v,
                                              std::string{"nope"});
  CHECK(c1 == errc::not_found);
  CHECK(m1 == "no plugin named 'nope'");
  auto [c2, m2] = expect_error<bool>(self, f.registry, joy::remove_atom_v,
                                     std::string{"nope"});
  CHECK(c2 == errc::not_found);
  CHECK(m2 == "no plugin named 'nope'");
  auto [c3, m3] = expect_error<std::string>(self, f.registry, joy::meta_atom_v,
                                            std::string{"node_id"});
  CHECK(c3 == errc::not_found);
  CHECK(m3 == "no node setting 'node_id'");
  auto [c4, m4] = expect_error<plugin_record>(self, f.registry, joy::put_atom_v,
                                              plugin_record{});
  CHECK(c4 == errc::invalid_argument);
  CHECK(m4 == "registry: a plugin record needs a name and a version");
}

TEST_CASE("the registry actor reads and writes node settings",
          "[actors][registry]") {
  registry_fixture f{":memory:"};
  caf::scoped_actor self{*f.sys};
  std::string key = "node_id";
  self->request(f.registry, timeout, joy::meta_atom_v, key, std::string{"n-1"})
    .receive([&](bool ok) { CHECK(ok); },
             [&](caf::error& err) { FAIL(joy::message_of(err)); });
  self->request(f.registry, timeout, joy::meta_atom_v, key)
    .receive([&](std::string& value) { CHECK(value == "n-1"); },
             [&](caf::error& err) { FAIL(joy::message_of(err)); });
}

TEST_CASE("what the registry actor acknowledged is on disk",
          "[actors][registry]") {
  joy::test::temp_dir dir;
  auto path = (dir / "registry.db").string();
  {
    registry_fixture f{path};
    caf::scoped_actor self{*f.sys};
    for (int i = 0; i < 10; ++i) {
      auto rec = make_record("p" + std::to_string(i), "1", i);
      self->request(f.registry, timeout, joy::put_atom_v, rec)
        .receive([&](plugin_record&) {},
                 [&](caf::error& err) { FAIL(joy::message_of(err)); });
    }
  }
  auto store = joy::plugin_store::open(path);
  REQUIRE(store);
  auto all = store->list();
  REQUIRE(all);
  CHECK(all->size() == 10);
}
