// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// The kj thread's outbox: the first send of a burst goes at once, the rest
// wait for the loop to run out of events, and nothing is reordered or lost.

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/mailbox_element.hpp>
#include <caf/scoped_actor.hpp>

#include "runtime/kj_thread.hpp"
#include "runtime/outbox.hpp"
#include "runtime/system_config.hpp"

using namespace joy;
using namespace std::chrono_literals;

namespace {

/// An actor system, a blocking actor to send to, and an outbox whose
/// flushes are counted instead of scheduled.
struct outbox_fixture {
  static std::unique_ptr<caf::actor_system>
  start(caf::actor_system_config& cfg) {
    configure_actor_system(cfg, 2);
    return std::make_unique<caf::actor_system>(cfg);
  }

  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys = start(cfg);
  caf::scoped_actor self{*sys};
  caf::strong_actor_ptr dest = caf::actor_cast<caf::strong_actor_ptr>(self);
  int armed = 0;
  outbox box{[this] { ++armed; }};
};

caf::mailbox_element_ptr number(int64_t i) {
  return caf::make_mailbox_element(nullptr, caf::make_message_id(), {}, i);
}

/// What `self` has received so far, in order, without waiting.
std::vector<int64_t> received(caf::scoped_actor& self) {
  std::vector<int64_t> xs;
  bool more = true;
  while (more)
    self->receive([&](int64_t x) { xs.push_back(x); },
                  caf::after(std::chrono::milliseconds{0}) >>
                    [&] { more = false; });
  return xs;
}

} // namespace

TEST_CASE_METHOD(
  outbox_fixture,
  "an outbox sends the first message of a burst at once and holds "
  "the rest until it is flushed",
  "[runtime][seam]") {
  box.push(dest, number(1));
  CHECK(armed == 1);
  CHECK(box.held() == 0);
  box.push(dest, number(2));
  box.push(dest, number(3));
  CHECK(armed == 1);
  CHECK(box.held() == 2);
  CHECK(received(self) == std::vector<int64_t>{1});
  box.flush();
  CHECK(box.held() == 0);
  CHECK(received(self) == std::vector<int64_t>{2, 3});
  // After a flush the next burst starts again: at once, and armed anew.
  box.push(dest, number(4));
  CHECK(armed == 2);
  CHECK(received(self) == std::vector<int64_t>{4});
}

TEST_CASE_METHOD(
  outbox_fixture,
  "an outbox that fills up sends what it holds without waiting for "
  "the flush, in order",
  "[runtime][seam]") {
  auto n = static_cast<int64_t>(outbox::max_held) + 1;
  for (int64_t i = 0; i < n; ++i)
    box.push(dest, number(i));
  CHECK(armed == 1);
  CHECK(box.held() == 0);
  auto xs = received(self);
  REQUIRE(xs.size() == static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    CHECK(xs[static_cast<std::size_t>(i)] == i);
}

TEST_CASE_METHOD(outbox_fixture,
                 "an outbox sends what it still holds when it is destroyed",
                 "[runtime][seam]") {
  {
    outbox own{[] {}};
    own.push(dest, number(1));
    own.push(dest, number(2));
    CHECK(own.held() == 1);
  }
  CHECK(received(self) == std::vector<int64_t>{1, 2});
}

TEST_CASE_METHOD(outbox_fixture,
                 "outside a kj thread outbox::send enqueues at once",
                 "[runtime][seam]") {
  outbox::send(dest, number(7));
  outbox::send(dest, number(8));
  outbox::send(nullptr, number(9)); // dropped, no crash
  CHECK(received(self) == std::vector<int64_t>{7, 8});
}

TEST_CASE_METHOD(
  outbox_fixture,
  "a burst sent from the kj thread arrives whole and in order once "
  "the loop runs out of events",
  "[runtime][seam]") {
  kj_thread kj{*sys};
  constexpr int64_t n = 1000;
  auto got = std::make_shared<std::vector<int64_t>>();
  auto done = std::make_shared<std::promise<void>>();
  auto fut = done->get_future();
  auto sink = sys->spawn([got, done](caf::event_based_actor*) {
    return caf::behavior{[got, done](int64_t x) {
      got->push_back(x);
      if (static_cast<int64_t>(got->size()) == n)
        done->set_value();
    }};
  });
  // One task, so one turn of the loop: the first message goes at once, the
  // rest in batches of outbox::max_held and the remainder at the flush.
  kj.post([sink](kj_context&) {
    for (int64_t i = 0; i < n; ++i)
      kj_context::send(sink, i);
  });
  REQUIRE(fut.wait_for(30s) == std::future_status::ready);
  for (int64_t i = 0; i < n; ++i)
    REQUIRE((*got)[static_cast<std::size_t>(i)] == i);
  caf::anon_send_exit(sink, caf::exit_reason::user_shutdown);
  kj.stop();
}

TEST_CASE_METHOD(
  outbox_fixture,
  "messages held in the kj thread's outbox are delivered when the "
  "thread stops",
  "[runtime][seam]") {
  {
    kj_thread kj{*sys};
    // Sent from a stop hook, after the loop stopped turning: nothing
    // would flush but the thread's own shutdown.
    kj.post([dest = caf::actor_cast<caf::actor>(self)](kj_context& ctx) {
      ctx.on_stop([dest] {
        for (int64_t i = 0; i < 3; ++i)
          kj_context::send(dest, i);
      });
    });
    kj.stop();
  }
  std::vector<int64_t> xs;
  for (int i = 0; i < 3; ++i)
    self->receive([&](int64_t x) { xs.push_back(x); },
                  caf::after(std::chrono::seconds{10}) >> [] {});
  CHECK(xs == std::vector<int64_t>{0, 1, 2});
}
