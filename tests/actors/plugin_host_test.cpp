// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// The plugin host against fake processes (plugins served in this process
// through the SDK's real connection code): starting on demand, queueing
// while starting, failing fast when the process dies, restarting on the
// next call, deadlines and start timeouts on the manual kj clock.

#include <catch2/catch.hpp>

#include <chrono>
#include <future>
#include <memory>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/plugin_host/plugin_host_actor.hpp"
#include "actors/plugin_host/plugin_link.hpp"
#include "actors/plugin_host/spawner_actor.hpp"
#include "runtime/system_config.hpp"
#include "tests/support/fake_plugin.hpp"
#include "tests/support/process.hpp"

using namespace joy;
using namespace std::chrono_literals;

namespace {

plugin test_plugin(std::string setup_error = {}) {
  plugin p{"calc"};
  p.exports.add("add", [](int64_t a, int64_t b) { return a + b; }, {"a", "b"});
  p.exports.add("echo", [](value x) { return x; });
  if (!setup_error.empty())
    p.on_setup([setup_error]() -> caf::expected<value> {
      return make_error(errc::plugin_error, setup_error);
    });
  return p;
}

struct host_fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::unique_ptr<test::fake_launcher> launcher;
  std::unique_ptr<kj_thread> kj;
  spawner_actor spawner;
  plugin_host_actor host;
  /// Where the host's link lists itself while the plugin runs.
  std::shared_ptr<running_plugins> running
    = std::make_shared<running_plugins>();
  /// Plugins of other nodes the host's link calls straight.
  std::shared_ptr<remote_plugins> remote = std::make_shared<remote_plugins>();

  explicit host_fixture(plugin def = test_plugin(), test::fake_behavior b = {},
                        bool manual_clock = false,
                        std::size_t max_in_flight = 1024) {
    configure_actor_system(cfg, 2);
    sys = std::make_unique<caf::actor_system>(cfg);
    launcher = std::make_unique<test::fake_launcher>(*sys, std::move(def), b);
    kj_thread::options opts;
    opts.manual_clock = manual_clock;
    kj = std::make_unique<kj_thread>(*sys, opts);
    // The launcher is owned here; the spawner only borrows it.
    std::shared_ptr<process_launcher> borrowed{launcher.get(),
                                               [](process_launcher*) {}};
    spawner = spawn_spawner(*sys, borrowed);
    plugin_host_config hc;
    hc.launch.name = "calc";
    hc.node_id = "test-node";
    hc.start_timeout = 10s;
    hc.call_timeout = 30s;
    hc.max_in_flight = max_in_flight;
    hc.routes.running = running;
    hc.routes.remote = remote;
    host = spawn_plugin_host(*sys, *kj, spawner, hc, plugin_observer{});
  }

  ~host_fixture() {
    caf::anon_send_exit(host, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(spawner, caf::exit_reason::user_shutdown);
    sys->await_all_actors_done();
    kj->stop();
    launcher.reset();
  }

  caf::expected<value> call(const std::string& method, value_list args,
                            caf::timespan timeout = caf::timespan{0}) {
    call_request req;
    req.method = method;
    req.args = std::move(args);
    req.timeout = timeout;
    caf::expected<value> result = make_error(errc::internal, "no answer");
    caf::scoped_actor self{*sys};
    self->request(host, 60s, call_atom_v, std::move(req))
      .receive([&](value& x) { result = std::move(x); },
               [&](caf::error& err) { result = std::move(err); });
    return result;
  }

  plugin_status status() {
    plugin_status out;
    caf::scoped_actor self{*sys};
    self->request(host, 10s, status_atom_v)
      .receive([&](plugin_status& s) { out = s; }, [](caf::error&) {});
    return out;
  }

  caf::expected<plugin_status> control(bool start) {
    caf::expected<plugin_status> out = make_error(errc::internal, "no answer");
    caf::scoped_actor self{*sys};
    auto handle = [&](plugin_status& s) { out = s; };
    auto fail = [&](caf::error& err) { out = std::move(err); };
    if (start)
      self->request(host, 60s, start_atom_v).receive(handle, fail);
    else
      self->request(host, 60s, stop_atom_v).receive(handle, fail);
    return out;
  }

  /// A call on the kj thread, straight to the link listed for `name`, as
  /// the node's api and control servers make it; fails with not_found when
  /// no link is listed.
  caf::expected<value> call_listed(const std::string& name,
                                   const std::string& method, value_list args) {
    auto done = std::make_shared<std::promise<caf::expected<value>>>();
    auto fut = done->get_future();
    call_request req;
    req.method = method;
    req.args = std::move(args);
    kj->post([this, done, name, req](kj_context& ctx) mutable {
      auto* link = running->find(name);
      if (link == nullptr) {
        done->set_value(make_error(errc::not_found, "not listed"));
        return;
      }
      ctx.tasks().add(
        link->call(std::move(req)).then([done](caf::expected<value> res) {
          done->set_value(std::move(res));
        }));
    });
    if (fut.wait_for(30s) != std::future_status::ready)
      return make_error(errc::timeout, "no answer from the kj thread");
    return fut.get();
  }

  /// Runs `f` on the kj thread and waits for it.
  template <class F>
  void on_kj(F f) {
    auto done = std::make_shared<std::promise<void>>();
    auto fut = done->get_future();
    kj->post([f, done](kj_context& ctx) mutable {
      f(ctx);
      done->set_value();
    });
    fut.wait();
  }

  bool listed(const std::string& name) {
    auto res = call_listed(name, "echo", {value{0}});
    return res || code_of(res.error()) != errc::not_found;
  }

  /// Issues a call from a background actor; the future holds its outcome.
  std::future<caf::expected<value>>
  call_async(const std::string& method, value_list args,
             caf::timespan timeout = caf::timespan{0}) {
    auto p = std::make_shared<std::promise<caf::expected<value>>>();
    auto fut = p->get_future();
    call_request req;
    req.method = method;
    req.args = std::move(args);
    req.timeout = timeout;
    auto h = host;
    sys->spawn([p, h, req](caf::event_based_actor* self) mutable {
      self->request(h, caf::infinite, call_atom_v, std::move(req))
        .then([p](value& x) { p->set_value(std::move(x)); },
              [p](caf::error& err) { p->set_value(std::move(err)); });
    });
    return fut;
  }
};

} // namespace

TEST_CASE("a call to a stopped plugin starts it and returns the result",
          "[actors][plugin_host]") {
  host_fixture f;
  CHECK(f.status().state == plugin_state::stopped);
  auto sum = f.call("add", {value{2}, value{3}});
  REQUIRE(sum);
  CHECK(*sum == value{5});
  auto s = f.status();
  CHECK(s.state == plugin_state::running);
  CHECK(s.starts == 1);
  CHECK(f.launcher->launches() == 1);
}

TEST_CASE("calls that arrive while the plugin starts all wait and succeed",
          "[actors][plugin_host]") {
  host_fixture f;
  std::vector<std::future<caf::expected<value>>> calls;
  for (int i = 0; i < 50; ++i)
    calls.push_back(f.call_async("add", {value{i}, value{1}}));
  for (int i = 0; i < 50; ++i) {
    auto res = calls[static_cast<std::size_t>(i)].get();
    REQUIRE(res);
    CHECK(*res == value{i + 1});
  }
  CHECK(f.launcher->launches() == 1);
}

TEST_CASE("plugin errors reach the caller with their code and message",
          "[actors][plugin_host]") {
  host_fixture f;
  auto res = f.call("add", {value{"x"}, value{1}});
  REQUIRE_FALSE(res);
  CHECK(code_of(res.error()) == errc::invalid_argument);
  CHECK_THAT(message_of(res.error()), Catch::Contains("argument 1 (a)"));
  auto missing = f.call("nope", {});
  REQUIRE_FALSE(missing);
  CHECK(code_of(missing.error()) == errc::not_found);
}

TEST_CASE("a plugin killed during a call fails that call at once, and its host "
          "starts it again",
          "[actors][plugin_host]") {
  host_fixture f;
  REQUIRE(f.call("echo", {value{1}}));
  auto pending = f.call_async("hang", {});
  // The call is in the plugin before the kill.
  REQUIRE(test::eventually([&] { return f.launcher->hanging_calls() == 1; }));
  auto t0 = std::chrono::steady_clock::now();
  f.launcher->kill_newest();
  REQUIRE(pending.wait_for(10s) == std::future_status::ready);
  auto res = pending.get();
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  REQUIRE_FALSE(res);
  CHECK(code_of(res.error()) == errc::disconnected);
  // The exit report says why, and the host restarts it (a crash within its
  // budget; with fake processes that may be done already).
  CHECK(test::eventually([&] {
    return f.status().last_error.find("signal 9") != std::string::npos;
  }));
  CHECK(test::eventually(
    [&] { return f.status().state == plugin_state::running; }));
  auto again = f.call("add", {value{40}, value{2}});
  REQUIRE(again);
  CHECK(*again == value{42});
  CHECK(f.launcher->launches() == 2);
  CHECK(f.status().starts == 2);
}

TEST_CASE(
  "a spawn failure leaves the plugin failed, and waiting calls get the reason",
  "[actors][plugin_host]") {
  host_fixture f;
  f.launcher->fail_next_launch(
    "cannot run /nowhere/calc: No such file or directory");
  auto res = f.call("add", {value{1}, value{1}});
  REQUIRE_FALSE(res);
  CHECK(code_of(res.error()) == errc::unavailable);
  CHECK_THAT(message_of(res.error()), Catch::Contains("No such file"));
  CHECK(f.status().state == plugin_state::failed);
  // The next call tries again, and this time it works.
  REQUIRE(f.call("add", {value{1}, value{1}}));
}

TEST_CASE("a plugin whose setup fails is failed with setup's message",
          "[actors][plugin_host]") {
  host_fixture f{test_plugin("no GPU here")};
  auto started = f.control(true);
  REQUIRE_FALSE(started);
  CHECK(code_of(started.error()) == errc::unavailable);
  CHECK_THAT(message_of(started.error()),
             Catch::Contains("setup() failed: no GPU here"));
  auto s = f.status();
  CHECK(s.state == plugin_state::failed);
  CHECK_THAT(s.last_error, Catch::Contains("no GPU here"));
}

TEST_CASE("a plugin speaking another protocol version is refused with both "
          "versions named",
          "[actors][plugin_host]") {
  test::fake_behavior b;
  b.version = 99;
  host_fixture f{test_plugin(), b};
  auto started = f.control(true);
  REQUIRE_FALSE(started);
  CHECK_THAT(message_of(started.error()), Catch::Contains("protocol 99"));
}

TEST_CASE("a plugin that never says hello fails its start when the kj clock "
          "passes the start timeout",
          "[actors][plugin_host]") {
  test::fake_behavior b;
  b.say_hello = false;
  host_fixture f{test_plugin(), b, /*manual_clock=*/true};
  auto pending = f.call_async("add", {value{1}, value{2}});
  CHECK(pending.wait_for(100ms) == std::future_status::timeout);
  CHECK(f.status().state == plugin_state::starting);
  f.kj->advance_clock(11 * kj::SECONDS);
  REQUIRE(pending.wait_for(10s) == std::future_status::ready);
  auto res = pending.get();
  REQUIRE_FALSE(res);
  CHECK(code_of(res.error()) == errc::unavailable);
  CHECK_THAT(message_of(res.error()), Catch::Contains("did not say hello"));
}

TEST_CASE("a call past its deadline times out and is cancelled in the plugin",
          "[actors][plugin_host]") {
  host_fixture f{test_plugin(), {}, /*manual_clock=*/true};
  REQUIRE(f.call("echo", {value{1}}));
  auto pending = f.call_async("hang", {}, 5s);
  REQUIRE(test::eventually([&] { return f.launcher->hanging_calls() == 1; }));
  f.kj->advance_clock(6 * kj::SECONDS);
  REQUIRE(pending.wait_for(10s) == std::future_status::ready);
  auto res = pending.get();
  REQUIRE_FALSE(res);
  CHECK(code_of(res.error()) == errc::timeout);
  // The plugin saw the call go away; the plugin keeps serving.
  CHECK(test::eventually([&] { return f.launcher->cancelled_calls() == 1; }));
  auto sum = f.call("add", {value{1}, value{1}});
  REQUIRE(sum);
  CHECK(*sum == value{2});
}

TEST_CASE("stop runs the plugin's exit() and ends in stopped, stopping again "
          "is a no-op",
          "[actors][plugin_host]") {
  host_fixture f;
  REQUIRE(f.call("echo", {value{1}}));
  auto stopped = f.control(false);
  REQUIRE(stopped);
  CHECK(stopped->state == plugin_state::stopped);
  CHECK(f.launcher->exits() == 1);
  auto again = f.control(false);
  REQUIRE(again);
  CHECK(again->state == plugin_state::stopped);
  // A later call starts it anew.
  REQUIRE(f.call("echo", {value{3}}));
  CHECK(f.launcher->launches() == 2);
}

TEST_CASE("calls beyond the in-flight limit fail at once with overloaded",
          "[actors][plugin_host]") {
  host_fixture f{test_plugin(), {}, false, /*max_in_flight=*/8};
  REQUIRE(f.call("echo", {value{1}}));
  std::vector<std::future<caf::expected<value>>> hanging;
  for (int i = 0; i < 8; ++i)
    hanging.push_back(f.call_async("hang", {}));
  REQUIRE(test::eventually([&] { return f.launcher->hanging_calls() == 8; }));
  for (int i = 0; i < 5; ++i) {
    auto res = f.call("echo", {value{i}});
    REQUIRE_FALSE(res);
    CHECK(code_of(res.error()) == errc::overloaded);
  }
  // When the plugin goes, the hanging calls end; the limit frees up.
  f.launcher->kill_newest();
  for (auto& h : hanging) {
    REQUIRE(h.wait_for(10s) == std::future_status::ready);
    CHECK_FALSE(h.get());
  }
  REQUIRE(f.call("echo", {value{1}}));
}

TEST_CASE("a running plugin's link takes calls on the kj thread, and is no "
          "longer listed once the plugin stops or dies",
          "[actors][plugin_host]") {
  host_fixture f;
  CHECK_FALSE(f.listed("calc"));
  REQUIRE(f.call("echo", {value{1}}));
  auto res = f.call_listed("calc", "echo", {value{"straight"}});
  REQUIRE(res);
  CHECK(*res == value{"straight"});
  // Errors and the in-flight bookkeeping are the host path's.
  auto err = f.call_listed("calc", "no_such_method", {});
  REQUIRE_FALSE(err);
  CHECK(code_of(err.error()) == errc::not_found);
  CHECK_FALSE(f.listed("other"));
  REQUIRE(f.control(false));
  CHECK_FALSE(f.listed("calc"));
  REQUIRE(f.control(true));
  CHECK(f.listed("calc"));
  // A first crash is restarted at once, and the new link lists itself
  // again, maybe before a check could see the gap; with the restart
  // failing, the dead link must be gone for good.
  f.launcher->fail_next_launch("cannot run calc: gone");
  f.launcher->kill_newest();
  CHECK(
    test::eventually([&] { return f.status().state == plugin_state::failed; }));
  CHECK_FALSE(f.listed("calc"));
  CHECK(f.launcher->launches() == 2);
}

TEST_CASE("a plugin's api.call of a plugin reached on another node goes "
          "straight to the link to that node until that node is forgotten",
          "[actors][plugin_host]") {
  auto def = test_plugin();
  def.exports.add("relay",
                  [](context& ctx, std::string to, value x) {
                    return ctx.api().call(std::move(to), "echo",
                                          {std::move(x)});
                  },
                  {"to", "x"});
  host_fixture f{std::move(def)};
  // Seen on the kj thread only; read after the call that made it returned.
  auto seen = std::make_shared<std::vector<std::string>>();
  f.on_kj([&](kj_context&) {
    f.remote->serve(
      [seen](const location& where, std::string plugin, call_request req) {
        auto* x = req.args.size() == 1 ? req.args[0].as_int64() : nullptr;
        seen->push_back(where.node_id + " " + plugin + "." + req.method + "("
                        + (x != nullptr ? std::to_string(*x) : "?") + ")");
        return kj::Promise<caf::expected<value>>{
          caf::expected<value>{value{"from " + where.node_id}}};
      });
  });
  // Not reached anywhere yet: the node actor's path, and this host has no
  // node behind it.
  auto before = f.call("relay", {value{"far"}, value{7}});
  REQUIRE_FALSE(before);
  CHECK(code_of(before.error()) == errc::unavailable);
  f.on_kj([&](kj_context& ctx) {
    f.remote->remember("far", location{"b", "b:7701"}, ctx.timer().now());
  });
  auto res = f.call("relay", {value{"far"}, value{7}});
  REQUIRE(res);
  CHECK(*res == value{"from b"});
  CHECK(*seen == std::vector<std::string>{"b far.echo(7)"});
  // A call that found it gone there, or the link cut, forgets the node.
  f.on_kj([&](kj_context&) { f.remote->forget_node("b"); });
  auto after = f.call("relay", {value{"far"}, value{8}});
  REQUIRE_FALSE(after);
  CHECK(code_of(after.error()) == errc::unavailable);
  CHECK(seen->size() == 1);
}
