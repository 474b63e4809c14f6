// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// Function values between two "processes" (two kj threads joined by a real
// socketpair and Cap'n Proto): callable many times, in both directions,
// released when the last holder drops them or dies.

#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <atomic>
#include <future>
#include <memory>
#include <optional>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "runtime/function.hpp"
#include "runtime/kj_thread.hpp"
#include "runtime/rpc_link.hpp"
#include "runtime/system_config.hpp"
#include "runtime/value_codec.hpp"
#include "tests/support/process.hpp"

using namespace joy;
using namespace std::chrono_literals;

namespace {

function_owner spawn_owner(caf::actor_system& sys) {
  return sys.spawn(
    [](function_owner::pointer self) -> function_owner::behavior_type {
      return {[self](invoke_atom, function_ref& f, value_list& args,
                     value_map& kwargs) -> caf::result<value> {
        return run_local_function(self, f, std::move(args), std::move(kwargs));
      }};
    });
}

/// A connection: the kj resource holding one end.
struct link_holder final : kj_resource {
  explicit link_holder(kj::Own<rpc_link> l) : link(kj::mv(l)) {
    // nop
  }
  kj::Own<rpc_link> link;
};

/// Two processes in one: side `a` offers `exported` as its bootstrap; side
/// `b` receives it as a remote function.
struct two_sides {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::unique_ptr<kj_thread> a;
  std::unique_ptr<kj_thread> b;
  function_owner owner_a;
  function_owner owner_b;

  two_sides() {
    configure_actor_system(cfg, 2);
    sys = std::make_unique<caf::actor_system>(cfg);
    a = std::make_unique<kj_thread>(*sys);
    b = std::make_unique<kj_thread>(*sys);
    owner_a = spawn_owner(*sys);
    owner_b = spawn_owner(*sys);
    for (auto* k : {a.get(), b.get()})
      k->post([](kj_context& ctx) { serve_remote_functions(ctx); });
  }

  ~two_sides() {
    caf::anon_send_exit(owner_a, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(owner_b, caf::exit_reason::user_shutdown);
    sys->await_all_actors_done();
    b->stop();
    a->stop();
  }

  /// Connects the sides; `b` gets `exported` as a remote function value,
  /// returned by a call to a's bootstrap (which lets go of it after the
  /// first call: only `b` holds it then). Like a plugin link, each side
  /// drops its connection when the other goes away.
  function_ref connect(function_ref exported) {
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    auto slot
      = std::make_shared<std::optional<function_ref>>(std::move(exported));
    auto giver
      = make_function(caf::actor_cast<caf::actor>(owner_a), "giver",
                      [slot](value_list, value_map, reply_handle reply) {
                        if (!*slot) {
                          reply.deliver(make_error(errc::not_found, "given"));
                          return;
                        }
                        value x{std::move(**slot)};
                        slot->reset();
                        reply.deliver_value(std::move(x));
                      });
    for (auto [k, fd] :
         {std::pair{a.get(), sv[0]}, std::pair{b.get(), sv[1]}}) {
      bool serving = k == a.get();
      auto id = k->next_id();
      k->post([fd = fd, giver, id, serving](kj_context& ctx) {
        auto stream = ctx.low_level().wrapUnixSocketFd(
          fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
        auto link = serving
                      ? rpc_link::serve(kj::mv(stream), stream_limits{},
                                        *callable_for(ctx, giver))
                      : rpc_link::connect(kj::mv(stream), stream_limits{});
        ctx.tasks().add(
          link->on_disconnect().then([&ctx, id] { ctx.drop(id); }));
        ctx.adopt(id, kj::heap<link_holder>(kj::mv(link)));
      });
      if (!serving) {
        std::promise<function_ref> boot;
        k->post([&boot, id](kj_context& ctx) {
          auto* holder = ctx.find_as<link_holder>(id);
          auto cap = holder->link->bootstrap_as<wire::Callable>();
          boot.set_value(function_ref{std::make_shared<const remote_function>(
                                        ctx.thread(), ctx.keep(cap)),
                                      "giver"});
        });
        bootstrap = boot.get_future().get();
      }
    }
    auto got = call(bootstrap, {});
    REQUIRE(got);
    REQUIRE(got->as_function() != nullptr);
    return *got->as_function();
  }

  function_ref bootstrap;

  caf::expected<value> call(const function_ref& f, value_list args) {
    caf::expected<value> out = make_error(errc::internal, "no answer");
    caf::scoped_actor self{*sys};
    self
      ->request(f.impl->target(), 30s, invoke_atom_v, f, std::move(args),
                value_map{})
      .receive([&](value& x) { out = std::move(x); },
               [&](caf::error& err) { out = std::move(err); });
    return out;
  }

  std::size_t kept(kj_thread& k) {
    std::promise<std::size_t> n;
    k.post([&n](kj_context& ctx) { n.set_value(ctx.kept()); });
    return n.get_future().get();
  }
};

/// A function that adds one, holding `sentinel` for as long as it lives.
function_ref add_one(caf::actor owner, std::shared_ptr<int> sentinel,
                     std::shared_ptr<std::atomic<int>> calls) {
  return make_function(
    std::move(owner), "add_one",
    [sentinel, calls](value_list args, value_map, reply_handle reply) {
      ++*calls;
      reply.deliver_value(value{*args.at(0).as_int64() + 1});
    });
}

} // namespace

TEST_CASE(
  "a function passed to another process is callable there any number of times",
  "[runtime][function]") {
  two_sides s;
  auto sentinel = std::make_shared<int>(0);
  auto calls = std::make_shared<std::atomic<int>>(0);
  auto remote = s.connect(
    add_one(caf::actor_cast<caf::actor>(s.owner_a), sentinel, calls));
  for (int64_t i = 0; i < 200; ++i) {
    auto res = s.call(remote, {value{i}});
    REQUIRE(res);
    CHECK(*res == value{i + 1});
  }
  CHECK(*calls == 200);
}

TEST_CASE(
  "100k callback round trips leave nothing behind once the holder lets go",
  "[runtime][function]") {
  two_sides s;
  auto sentinel = std::make_shared<int>(0);
  auto calls = std::make_shared<std::atomic<int>>(0);
  auto remote = s.connect(
    add_one(caf::actor_cast<caf::actor>(s.owner_a), sentinel, calls));
  auto baseline = s.kept(*s.b);
  // 100 in flight from an event-based actor, 100k in all.
  constexpr int total = 100000;
  auto done = std::make_shared<std::promise<int>>();
  auto fut = done->get_future();
  s.sys->spawn([remote, done](caf::event_based_actor* self) {
    auto issued = std::make_shared<int>(0);
    auto answered = std::make_shared<int>(0);
    auto wrong = std::make_shared<int>(0);
    auto next = std::make_shared<std::function<void()>>();
    // Ends the run: the closure refers to itself, so break that cycle (it
    // holds the function value) and end the actor.
    auto finish = [=] {
      if (++*answered == total) {
        done->set_value(*wrong);
        *next = nullptr;
        self->quit();
        return;
      }
      (*next)();
    };
    *next = [=] {
      if (*issued == total)
        return;
      int64_t i = (*issued)++;
      self
        ->request(remote.impl->target(), 30s, invoke_atom_v, remote,
                  value_list{value{i}}, value_map{})
        .then(
          [=](value& x) {
            if (x != value{i + 1})
              ++*wrong;
            finish();
          },
          [=](caf::error&) {
            ++*wrong;
            finish();
          });
    };
    for (int k = 0; k < 100; ++k)
      (*next)();
  });
  REQUIRE(fut.wait_for(120s) == std::future_status::ready);
  CHECK(fut.get() == 0);
  CHECK(*calls == total);
  CHECK(s.kept(*s.b) == baseline);
  // Dropping the last holder releases the capability, and the owner's
  // function with it.
  remote = function_ref{};
  CHECK(test::eventually([&] { return s.kept(*s.b) == baseline - 1; }));
  CHECK(test::eventually([&] { return sentinel.use_count() == 1; }));
}

TEST_CASE(
  "functions go both ways: one passed back as an argument calls its owner",
  "[runtime][function]") {
  two_sides s;
  // a's function calls whatever function it is given, with 41.
  auto a_owner = caf::actor_cast<caf::actor>(s.owner_a);
  auto call_it = make_function(
    a_owner, "call_it", [](value_list args, value_map, reply_handle reply) {
      auto* g = args.at(0).as_function();
      if (g == nullptr) {
        reply.deliver(
          make_error(errc::invalid_argument, "expected a function"));
        return;
      }
      reply.delegate(caf::actor_cast<caf::strong_actor_ptr>(g->impl->target()),
                     caf::make_message(invoke_atom_v, *g, value_list{value{41}},
                                       value_map{}));
    });
  auto remote = s.connect(call_it);
  // b's own function, passed to a as an argument.
  auto sentinel = std::make_shared<int>(0);
  auto calls = std::make_shared<std::atomic<int>>(0);
  auto mine = add_one(caf::actor_cast<caf::actor>(s.owner_b), sentinel, calls);
  for (int i = 0; i < 50; ++i) {
    auto res = s.call(remote, {value{mine}});
    REQUIRE(res);
    CHECK(*res == value{42});
  }
  CHECK(*calls == 50);
  // a held b's function only during each call: all released again.
  mine = function_ref{};
  CHECK(test::eventually([&] { return sentinel.use_count() == 1; }));
}

TEST_CASE("when the holder dies, the functions it held are released and calls "
          "fail fast",
          "[runtime][function]") {
  two_sides s;
  auto sentinel = std::make_shared<int>(0);
  auto calls = std::make_shared<std::atomic<int>>(0);
  auto remote = s.connect(
    add_one(caf::actor_cast<caf::actor>(s.owner_a), sentinel, calls));
  REQUIRE(s.call(remote, {value{1}}));
  CHECK(sentinel.use_count() > 1);
  // b "dies": its kj thread and every connection of it end.
  s.b->stop();
  CHECK(test::eventually([&] { return sentinel.use_count() == 1; }));
  // b's handle now answers at once.
  auto t0 = std::chrono::steady_clock::now();
  auto res = s.call(remote, {value{1}});
  CHECK_FALSE(res);
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
}

TEST_CASE("a function value cannot cross without a live connection",
          "[runtime][function]") {
  capnp::MallocMessageBuilder msg;
  auto err = write_value(value{function_ref{nullptr, "f"}},
                         msg.initRoot<wire::Value>());
  REQUIRE(err);
  CHECK(code_of(err) == errc::unimplemented);
}
