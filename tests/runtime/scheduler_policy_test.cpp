// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// Joy's scheduling policy: actors run on the workers asked for, a sleeping
// worker is woken by work from any thread, and no scheduled actor is lost
// when many threads schedule at once.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/coordinator.hpp>
#include <caf/scoped_actor.hpp>

#include "runtime/scheduler_policy.hpp"
#include "runtime/system_config.hpp"
#include "tests/support/process.hpp"

using namespace joy;
using namespace std::chrono_literals;

namespace {

using joy_coordinator = caf::scheduler::coordinator<scheduler_policy>;

struct scheduler_fixture {
  static caf::actor_system_config& configured(caf::actor_system_config& cfg,
                                              std::size_t workers) {
    configure_actor_system(cfg, workers);
    return cfg;
  }

  explicit scheduler_fixture(std::size_t workers)
    : sys(configured(cfg, workers)) {
    // nop
  }

  joy_coordinator& coordinator() {
    auto* c = dynamic_cast<joy_coordinator*>(&sys.scheduler());
    REQUIRE(c != nullptr);
    return *c;
  }

  std::size_t sleeping() {
    auto& data = coordinator().data();
    std::lock_guard<std::mutex> guard{data.lock};
    return data.sleeping;
  }

  caf::actor_system_config cfg;
  caf::actor_system sys;
};

caf::behavior echo(caf::event_based_actor*) {
  return {[](int64_t x) { return x; }};
}

/// Counts what it is sent; answers the count when asked with a string.
caf::behavior counter(caf::event_based_actor*, std::shared_ptr<int64_t> n) {
  return {[n](int64_t) { ++*n; }, [n](const std::string&) { return *n; }};
}

} // namespace

TEST_CASE("configured actor systems run on Joy's scheduler with the workers "
          "asked for",
          "[runtime][scheduler]") {
  scheduler_fixture f{2};
  CHECK(f.coordinator().num_workers() == 2);
}

TEST_CASE("a sleeping worker is woken by a message sent from a thread "
          "outside the scheduler",
          "[runtime][scheduler]") {
  scheduler_fixture f{1};
  auto actor = f.sys.spawn(echo);
  for (int64_t round = 0; round < 20; ++round) {
    // The only worker has nothing to do: it must be asleep before the
    // message comes, so that only its wake-up can deliver it.
    REQUIRE(joy::test::eventually([&] { return f.sleeping() == 1; }));
    caf::scoped_actor self{f.sys};
    int64_t answer = -1;
    self->request(actor, 10s, round)
      .receive([&](int64_t x) { answer = x; },
               [&](caf::error& err) { FAIL(f.sys.render(err)); });
    CHECK(answer == round);
  }
}

TEST_CASE("messages from many threads to many actors all arrive while the "
          "workers sleep and wake",
          "[runtime][scheduler]") {
  scheduler_fixture f{2};
  constexpr int threads = 4;
  constexpr int per_thread = 5000;
  constexpr int actors = 8;
  std::vector<std::shared_ptr<int64_t>> counts;
  std::vector<caf::actor> targets;
  for (int i = 0; i < actors; ++i) {
    counts.push_back(std::make_shared<int64_t>(0));
    targets.push_back(f.sys.spawn(counter, counts.back()));
  }
  std::vector<std::thread> senders;
  for (int t = 0; t < threads; ++t)
    senders.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        caf::anon_send(targets[(t + i) % actors], int64_t{i});
        // Now and then a pause long enough for the workers to run dry and
        // go to sleep.
        if (i % 500 == 0)
          std::this_thread::sleep_for(1ms);
      }
    });
  for (auto& s : senders)
    s.join();
  int64_t total = 0;
  caf::scoped_actor self{f.sys};
  // Each actor answers after the messages the senders sent it before.
  for (auto& target : targets)
    self->request(target, 10s, std::string{"count"})
      .receive([&](int64_t n) { total += n; },
               [&](caf::error& err) { FAIL(f.sys.render(err)); });
  CHECK(total == int64_t{threads} * per_thread);
}
