// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// Deterministic actor tests under Catch2: a port of the parts of CAF's
/// `test_coordinator_fixture` Joy needs. The scheduler is CAF's test
/// coordinator: nothing runs until the test says so, and time only moves
/// when the test advances it.
///
/// ```
/// actor_fixture f;
/// auto core = spawn_core(f.sys);
/// auto res = f.request<service_info>(core, get_atom_v, "hello");
/// ```
#pragma once

#include <memory>
#include <optional>

#include <catch2/catch.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/expected.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "runtime/system_config.hpp"

namespace joy::test {

namespace detail {

/// Configures before the actor system exists (base classes are built first).
struct testing_config {
  caf::actor_system_config cfg;

  testing_config() {
    add_message_types(cfg);
    cfg.set("scheduler.policy", caf::atom("testing"));
  }
};

} // namespace detail

class actor_fixture : private detail::testing_config {
public:
  actor_fixture()
    : sys(cfg),
      sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())) {
    // nop
  }

  ~actor_fixture() {
    sched.run();
  }

  /// Runs every job that is ready; returns how many ran.
  std::size_t run() {
    return sched.run();
  }

  /// Moves the clock forward, firing due timeouts, then runs.
  void advance(caf::timespan t) {
    sched.advance_time(t);
    run();
  }

  /// Sends a request from a probe actor, runs until quiet and returns the
  /// response or the error; an unanswered request fails the test.
  template <class T, class Handle, class... Ts>
  caf::expected<T> request(const Handle& dest, Ts... xs) {
    auto out = std::make_shared<std::optional<caf::expected<T>>>();
    sys.spawn([=](caf::event_based_actor* self) {
      self->request(dest, caf::infinite, xs...)
        .then([out](T& x) { *out = std::move(x); },
              [out](caf::error& err) { *out = std::move(err); });
    });
    run();
    REQUIRE(out->has_value());
    return std::move(**out);
  }

  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;
};

} // namespace joy::test
