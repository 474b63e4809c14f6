// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// Typed-actor plugins, in process: the plugin's actor from the SDK serves
// the handlers of an author's typed actor as methods.

#include <catch2/catch.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include "runtime/actor_exports.hpp"
#include "runtime/plugin.hpp"
#include "runtime/system_config.hpp"

using namespace joy;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

using scale_atom = caf::atom_constant<caf::atom("scale")>;
using total_atom = caf::atom_constant<caf::atom("total")>;
using reset_atom = caf::atom_constant<caf::atom("reset")>;
using split_atom = caf::atom_constant<caf::atom("split")>;

using counter_actor = caf::typed_actor<
  caf::replies_to<scale_atom, double, double>::with<double>,
  caf::replies_to<total_atom>::with<int64_t>, caf::reacts_to<reset_atom>,
  caf::replies_to<split_atom, std::string>::with<std::string, int64_t>>;

struct counter_state {
  int64_t calls = 0;
};

counter_actor::behavior_type
counter(counter_actor::stateful_pointer<counter_state> self) {
  return {
    [self](scale_atom, double x, double by) -> caf::result<double> {
      ++self->state.calls;
      if (by == 0)
        return make_error(errc::invalid_argument, "scale: by must not be 0");
      return x * by;
    },
    [self](total_atom) { return self->state.calls; },
    [self](reset_atom) { self->state.calls = 0; },
    [self](split_atom, std::string s) {
      ++self->state.calls;
      return caf::make_result(s, static_cast<int64_t>(s.size()));
    },
  };
}

struct fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  plugin_actor actor;

  fixture() {
    configure_actor_system(cfg, 1);
    sys = std::make_unique<caf::actor_system>(cfg);
    plugin def{"counter"};
    export_actor<counter_actor>(def.exports, counter,
                                {{"scale", {"x", "by"}}, {"split", {"text"}}});
    actor = spawn_plugin_actor(*sys, std::make_shared<const plugin>(def));
  }

  ~fixture() {
    caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    sys->await_all_actors_done();
  }

  caf::expected<value> call(const std::string& method, value_list args,
                            value_map kwargs = {}) {
    call_request req;
    req.method = method;
    req.args = std::move(args);
    req.kwargs = std::move(kwargs);
    caf::expected<value> result = make_error(errc::internal, "no answer");
    caf::scoped_actor self{*sys};
    self->request(actor, 10s, call_atom_v, std::move(req))
      .receive([&](value& x) { result = std::move(x); },
               [&](caf::error& err) { result = std::move(err); });
    return result;
  }
};

} // namespace

TEST_CASE("the handlers of a typed actor are a plugin's methods",
          "[runtime][actor_exports]") {
  fixture f;
  SECTION("arguments convert and results come back as values") {
    CHECK(f.call("scale", {value{2}, value{1.5}}) == value{3.0});
    CHECK(f.call("scale", {}, value_map{{"by", value{2.0}}, {"x", value{4}}})
          == value{8.0});
  }
  SECTION("several results become a list, none becomes null") {
    CHECK(f.call("split", {value{"abc"}})
          == value{value_list{value{"abc"}, value{3}}});
    CHECK(f.call("reset", {}) == value{});
  }
  SECTION("the actor keeps its state between calls") {
    REQUIRE(f.call("scale", {value{1}, value{1}}));
    REQUIRE(f.call("split", {value{"x"}}));
    CHECK(f.call("total", {}) == value{2});
    REQUIRE(f.call("reset", {}) == value{});
    CHECK(f.call("total", {}) == value{0});
  }
  SECTION("the actor's errors and bad arguments reach the caller") {
    auto err = f.call("scale", {value{1}, value{0}});
    REQUIRE(!err);
    CHECK(code_of(err.error()) == errc::invalid_argument);
    CHECK_THAT(message_of(err.error()), Contains("by must not be 0"));
    auto bad = f.call("scale", {value{"x"}, value{1}});
    REQUIRE(!bad);
    CHECK_THAT(message_of(bad.error()), Contains("argument 1 (x)"));
    auto missing = f.call("nope", {});
    REQUIRE(!missing);
    CHECK(code_of(missing.error()) == errc::not_found);
  }
  SECTION("describe lists the actor's methods") {
    caf::scoped_actor self{*f.sys};
    value desc;
    self->request(f.actor, 10s, describe_atom_v)
      .receive([&](value& x) { desc = std::move(x); }, [](caf::error&) {});
    auto text = to_string(desc);
    for (auto name : {"scale", "total", "reset", "split"})
      CHECK_THAT(text, Contains(name));
  }
}

TEST_CASE("a plugin's run(ctx) is callable as the method run and is described",
          "[runtime][actor_exports]") {
  caf::actor_system_config cfg;
  configure_actor_system(cfg, 1);
  caf::actor_system sys{cfg};
  plugin def{"runner"};
  def.exports.add("twice", [](int64_t x) { return 2 * x; }, {"x"});
  def.on_run([](value ctx) {
    auto* m = ctx.as_map();
    auto* config = m != nullptr ? m->find("config") : nullptr;
    return config != nullptr ? *config : value{};
  });
  auto actor = spawn_plugin_actor(sys, std::make_shared<const plugin>(def));
  caf::scoped_actor self{sys};
  call_request req;
  req.method = "run";
  req.args
    = {value{value_map{{"config", value{value_map{{"sigma", value{2}}}}}}}};
  value got;
  self->request(actor, 10s, call_atom_v, req)
    .receive([&](value& x) { got = std::move(x); },
             [](caf::error& err) { FAIL(message_of(err)); });
  CHECK(got == value{value_map{{"sigma", value{2}}}});
  value desc;
  self->request(actor, 10s, describe_atom_v)
    .receive([&](value& x) { desc = std::move(x); }, [](caf::error&) {});
  auto* methods = desc.as_map()->find("methods");
  REQUIRE(methods != nullptr);
  CHECK(methods->as_map()->contains("twice"));
  REQUIRE(methods->as_map()->contains("run"));
  CHECK(to_string(*methods->as_map()->find("run"))
        == to_string(value{value_map{{"arity", value{int64_t{1}}},
                                     {"params", value_list{value{"ctx"}}}}}));
  caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
}
