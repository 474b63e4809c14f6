// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// The CAF <-> kj seam: ordering, floods, timeouts on the manual clock,
// shutdown with calls pending, and reply handles that are never dropped
// silently.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "runtime/kj_thread.hpp"
#include "runtime/reply_handle.hpp"
#include "runtime/system_config.hpp"
#include "runtime/type_ids.hpp"

using namespace joy;
using namespace std::chrono_literals;

namespace {

/// Answers `call(x)` through the kj thread: the request's reply handle goes
/// to kj, which delivers x + 1 after `delay` on the kj timer (0: at once).
using seam_actor = caf::typed_actor<
  caf::replies_to<call_atom, int64_t, int64_t>::with<int64_t>>;

seam_actor spawn_seam_actor(caf::actor_system& sys, kj_thread& kj) {
  return sys.spawn([&kj](
                     seam_actor::pointer self) -> seam_actor::behavior_type {
    return {[self, &kj](call_atom, int64_t x,
                        int64_t delay_ms) -> caf::result<int64_t> {
      kj.post([rh = reply_handle{self}, x, delay_ms](kj_context& ctx) mutable {
        if (delay_ms == 0) {
          rh.deliver_value(x + 1);
          return;
        }
        ctx.tasks().add(ctx.timer()
                          .afterDelay(delay_ms * kj::MILLISECONDS)
                          .then([rh = std::move(rh), x]() mutable {
                            rh.deliver_value(x + 1);
                          }));
      });
      return caf::delegated<int64_t>{};
    }};
  });
}

/// Holds every request's reply handle on the kj thread in a promise that
/// never resolves.
seam_actor spawn_black_hole(caf::actor_system& sys, kj_thread& kj) {
  return sys.spawn(
    [&kj](seam_actor::pointer self) -> seam_actor::behavior_type {
      return {[self, &kj](call_atom, int64_t, int64_t) -> caf::result<int64_t> {
        kj.post([rh = reply_handle{self}](kj_context& ctx) mutable {
          auto never = kj::newPromiseAndFulfiller<void>();
          ctx.tasks().add(never.promise
                            .then([rh = std::move(rh)]() mutable {
                              rh.deliver_value(int64_t{0});
                            })
                            .attach(kj::mv(never.fulfiller)));
        });
        return caf::delegated<int64_t>{};
      }};
    });
}

struct seam_fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;

  seam_fixture() {
    configure_actor_system(cfg, 2);
    sys = std::make_unique<caf::actor_system>(cfg);
  }
};

/// Issues `n` requests at once from an event-based actor; returns the
/// results (or error codes as negative numbers) in completion order.
std::vector<int64_t> flood(caf::actor_system& sys, seam_actor target, int n,
                           int64_t delay_ms) {
  auto results = std::make_shared<std::vector<int64_t>>();
  auto done = std::make_shared<std::promise<void>>();
  auto fut = done->get_future();
  sys.spawn([=](caf::event_based_actor* self) {
    for (int i = 0; i < n; ++i)
      self->request(target, 30s, call_atom_v, int64_t{i}, delay_ms)
        .then(
          [=](int64_t x) {
            results->push_back(x);
            if (static_cast<int>(results->size()) == n)
              done->set_value();
          },
          [=](caf::error& err) {
            results->push_back(-static_cast<int64_t>(code_of(err)));
            if (static_cast<int>(results->size()) == n)
              done->set_value();
          });
  });
  REQUIRE(fut.wait_for(30s) == std::future_status::ready);
  return *results;
}

} // namespace

TEST_CASE(
  "tasks posted from many threads run on the kj thread in each poster's order",
  "[runtime][seam]") {
  seam_fixture f;
  kj_thread kj{*f.sys};
  constexpr int threads = 4;
  constexpr int per_thread = 5000;
  std::vector<std::vector<int>> seen(threads);
  std::atomic<int> wrong_thread{0};
  std::atomic<int> total{0};
  std::promise<void> all;
  std::vector<std::thread> posters;
  for (int t = 0; t < threads; ++t)
    posters.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i)
        kj.post([&, t, i](kj_context&) {
          if (!kj.on_kj_thread())
            ++wrong_thread;
          seen[t].push_back(i);
          if (++total == threads * per_thread)
            all.set_value();
        });
    });
  for (auto& p : posters)
    p.join();
  REQUIRE(all.get_future().wait_for(10s) == std::future_status::ready);
  CHECK(wrong_thread == 0);
  for (auto& s : seen) {
    REQUIRE(s.size() == static_cast<std::size_t>(per_thread));
    CHECK(std::is_sorted(s.begin(), s.end()));
  }
  // Batching: far fewer eventfd wake-ups than tasks.
  CHECK(kj.wakeups() <= kj.tasks_run());
}

TEST_CASE("a flood of 100 calls in flight through the seam all complete",
          "[runtime][seam]") {
  seam_fixture f;
  kj_thread kj{*f.sys};
  auto actor = spawn_seam_actor(*f.sys, kj);
  for (int64_t delay : {int64_t{0}, int64_t{2}}) {
    auto results = flood(*f.sys, actor, 100, delay);
    std::sort(results.begin(), results.end());
    for (int i = 0; i < 100; ++i)
      CHECK(results[static_cast<std::size_t>(i)] == i + 1);
  }
  caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
}

TEST_CASE(
  "stopping the kj thread with calls pending fails each with disconnected",
  "[runtime][seam]") {
  seam_fixture f;
  auto kj = std::make_unique<kj_thread>(*f.sys);
  auto hole = spawn_black_hole(*f.sys, *kj);
  auto results = std::make_shared<std::vector<int64_t>>();
  auto done = std::make_shared<std::promise<void>>();
  std::promise<void> issued;
  f.sys->spawn([&, results, done](caf::event_based_actor* self) {
    for (int i = 0; i < 100; ++i)
      self->request(hole, 30s, call_atom_v, int64_t{i}, int64_t{0})
        .then([](int64_t) { FAIL("a black hole answered"); },
              [=](caf::error& err) {
                results->push_back(static_cast<int64_t>(code_of(err)));
                if (results->size() == 100)
                  done->set_value();
              });
    issued.set_value();
  });
  issued.get_future().wait();
  // Let the kj thread take the 100 tasks, then stop it under them.
  std::promise<void> drained;
  kj->post([&drained](kj_context&) { drained.set_value(); });
  drained.get_future().wait();
  auto t0 = std::chrono::steady_clock::now();
  kj->stop();
  REQUIRE(done->get_future().wait_for(10s) == std::future_status::ready);
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  for (auto code : *results)
    CHECK(code == static_cast<int64_t>(errc::disconnected));
  caf::anon_send_exit(hole, caf::exit_reason::user_shutdown);
}

TEST_CASE("a task posted after stop is dropped and its reply fails, not hangs",
          "[runtime][seam]") {
  seam_fixture f;
  kj_thread kj{*f.sys};
  kj.stop();
  auto actor = spawn_seam_actor(*f.sys, kj);
  caf::scoped_actor self{*f.sys};
  self->request(actor, 10s, call_atom_v, int64_t{1}, int64_t{0})
    .receive(
      [](int64_t) { FAIL("answered after stop"); },
      [](caf::error& err) { CHECK(code_of(err) == errc::disconnected); });
  caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
}

TEST_CASE(
  "kj timers follow the manual clock, so deadlines are tested without sleeping",
  "[runtime][seam]") {
  seam_fixture f;
  kj_thread::options opts;
  opts.manual_clock = true;
  kj_thread kj{*f.sys, opts};
  auto actor = spawn_seam_actor(*f.sys, kj);
  // A reply due in 10 minutes of kj time.
  auto answer = std::make_shared<std::promise<int64_t>>();
  auto fut = answer->get_future();
  f.sys->spawn([=](caf::event_based_actor* self) {
    self
      ->request(actor, caf::infinite, call_atom_v, int64_t{41}, int64_t{600000})
      .then([=](int64_t x) { answer->set_value(x); },
            [=](caf::error&) { answer->set_value(-1); });
  });
  CHECK(fut.wait_for(50ms) == std::future_status::timeout);
  kj.advance_clock(599 * kj::SECONDS);
  CHECK(fut.wait_for(50ms) == std::future_status::timeout);
  kj.advance_clock(2 * kj::SECONDS);
  REQUIRE(fut.wait_for(5s) == std::future_status::ready);
  CHECK(fut.get() == 42);
  caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
}

TEST_CASE("kj code asks an actor through the companion and gets the answer",
          "[runtime][seam]") {
  seam_fixture f;
  kj_thread kj{*f.sys};
  using adder
    = caf::typed_actor<caf::replies_to<call_atom, int64_t>::with<int64_t>>;
  auto actor = f.sys->spawn([]() -> adder::behavior_type {
    return {[](call_atom, int64_t x) { return x * 2; }};
  });
  // 100 requests in flight from the kj side.
  std::promise<std::vector<int64_t>> out;
  kj.post([&out, actor](kj_context& ctx) {
    auto results = kj::heapArrayBuilder<kj::Promise<int64_t>>(100);
    for (int64_t i = 0; i < 100; ++i)
      results.add(ctx.request(actor, 10 * kj::SECONDS, call_atom_v, i)
                    .then([](caf::message msg) -> int64_t {
                      return msg.match_elements<int64_t>()
                               ? msg.get_as<int64_t>(0)
                               : -1;
                    }));
    ctx.tasks().add(
      kj::joinPromises(results.finish()).then([&out](kj::Array<int64_t> xs) {
        out.set_value(std::vector<int64_t>(xs.begin(), xs.end()));
      }));
  });
  auto fut = out.get_future();
  REQUIRE(fut.wait_for(10s) == std::future_status::ready);
  auto xs = fut.get();
  for (int64_t i = 0; i < 100; ++i)
    CHECK(xs[static_cast<std::size_t>(i)] == 2 * i);
  caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
}

TEST_CASE(
  "a kj-side request to an actor that never answers times out on the kj clock",
  "[runtime][seam]") {
  seam_fixture f;
  kj_thread::options opts;
  opts.manual_clock = true;
  kj_thread kj{*f.sys, opts};
  using mute
    = caf::typed_actor<caf::replies_to<call_atom, int64_t>::with<int64_t>>;
  // Keeps the promise forever without answering.
  auto keeper
    = std::make_shared<std::vector<caf::typed_response_promise<int64_t>>>();
  auto actor
    = f.sys->spawn([keeper](mute::pointer self) -> mute::behavior_type {
        return {[self, keeper](call_atom, int64_t) -> caf::result<int64_t> {
          auto rp = self->make_response_promise<int64_t>();
          keeper->push_back(rp);
          return rp;
        }};
      });
  std::promise<errc> out;
  kj.post([&out, actor](kj_context& ctx) {
    ctx.tasks().add(ctx.request(actor, 5 * kj::SECONDS, call_atom_v, int64_t{1})
                      .then([&out](caf::message msg) {
                        out.set_value(msg.match_elements<caf::error>()
                                        ? code_of(msg.get_as<caf::error>(0))
                                        : errc::internal);
                      }));
  });
  auto fut = out.get_future();
  CHECK(fut.wait_for(50ms) == std::future_status::timeout);
  kj.advance_clock(6 * kj::SECONDS);
  REQUIRE(fut.wait_for(5s) == std::future_status::ready);
  CHECK(fut.get() == errc::timeout);
  caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
}

TEST_CASE("a kj-side request to a dead actor fails at once",
          "[runtime][seam]") {
  seam_fixture f;
  kj_thread kj{*f.sys};
  using adder
    = caf::typed_actor<caf::replies_to<call_atom, int64_t>::with<int64_t>>;
  auto actor = f.sys->spawn([]() -> adder::behavior_type {
    return {[](call_atom, int64_t x) { return x; }};
  });
  {
    caf::scoped_actor self{*f.sys};
    self->monitor(actor);
    self->send_exit(actor, caf::exit_reason::user_shutdown);
    self->receive([](caf::down_msg&) {});
  }
  std::promise<bool> out;
  kj.post([&out, actor](kj_context& ctx) {
    ctx.tasks().add(
      ctx.request(actor, 60 * kj::SECONDS, call_atom_v, int64_t{1})
        .then([&out](caf::message msg) {
          out.set_value(msg.match_elements<caf::error>());
        }));
  });
  auto fut = out.get_future();
  REQUIRE(fut.wait_for(5s) == std::future_status::ready);
  CHECK(fut.get());
}

TEST_CASE("a reply handle dropped without delivering answers disconnected",
          "[runtime][seam]") {
  seam_fixture f;
  using dropper
    = caf::typed_actor<caf::replies_to<call_atom, int64_t>::with<int64_t>>;
  auto actor
    = f.sys->spawn([](dropper::pointer self) -> dropper::behavior_type {
        return {[self](call_atom, int64_t) -> caf::result<int64_t> {
          reply_handle rh{self};
          return caf::delegated<int64_t>{}; // rh goes out of scope here
        }};
      });
  caf::scoped_actor self{*f.sys};
  self->request(actor, 10s, call_atom_v, int64_t{1})
    .receive(
      [](int64_t) { FAIL("answered"); },
      [](caf::error& err) { CHECK(code_of(err) == errc::disconnected); });
  caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
}
