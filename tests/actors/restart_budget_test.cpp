// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include <catch2/catch.hpp>

#include <chrono>

#include "actors/plugin_host/restart_budget.hpp"

using namespace std::chrono_literals;
using joy::restart_budget;
using verdict = restart_budget::verdict;

namespace {

joy::restart_policy small_policy() {
  joy::restart_policy p;
  p.intensity = 2;
  p.period = std::chrono::seconds{10};
  p.backoff_min = std::chrono::milliseconds{100};
  p.backoff_max = std::chrono::milliseconds{400};
  return p;
}

} // namespace

TEST_CASE("crashes within the intensity restart at once, then after doubling "
          "delays, then the budget gives up",
          "[actors][supervision]") {
  restart_budget b{small_policy()};
  restart_budget::clock::time_point t{};
  CHECK(b.on_crash(t).what == verdict::restart_now);
  CHECK(b.on_crash(t + 1s).what == verdict::restart_now);
  auto d = b.on_crash(t + 2s);
  CHECK(d.what == verdict::restart_later);
  CHECK(d.delay == std::chrono::milliseconds{100});
  d = b.on_crash(t + 3s);
  CHECK(d.what == verdict::restart_later);
  CHECK(d.delay == std::chrono::milliseconds{200});
  d = b.on_crash(t + 4s);
  CHECK(d.what == verdict::restart_later);
  CHECK(d.delay == std::chrono::milliseconds{400});
  CHECK(b.on_crash(t + 5s).what == verdict::give_up);
  CHECK(b.crashes() == 6);
}

TEST_CASE("crashes further apart than the period are each forgiven",
          "[actors][supervision]") {
  restart_budget b{small_policy()};
  restart_budget::clock::time_point t{};
  for (int i = 0; i < 50; ++i)
    CHECK(b.on_crash(t + i * 11s).what == verdict::restart_now);
  // A burst after a quiet period starts the backoff from its shortest delay.
  b.on_crash(t + 1000s);
  b.on_crash(t + 1000s);
  b.on_crash(t + 1000s);
  auto d = b.on_crash(t + 1001s);
  CHECK(d.what == verdict::restart_later);
  CHECK(d.delay == std::chrono::milliseconds{200});
  d = b.on_crash(t + 2000s);
  CHECK(d.what == verdict::restart_now);
}

TEST_CASE("a reset budget starts afresh", "[actors][supervision]") {
  restart_budget b{small_policy()};
  restart_budget::clock::time_point t{};
  for (int i = 0; i < 6; ++i)
    b.on_crash(t);
  CHECK(b.on_crash(t).what == verdict::give_up);
  b.reset();
  CHECK(b.crashes() == 0);
  CHECK(b.on_crash(t).what == verdict::restart_now);
}

TEST_CASE("an intensity of zero backs off from the first crash",
          "[actors][supervision]") {
  auto p = small_policy();
  p.intensity = 0;
  restart_budget b{p};
  auto d = b.on_crash({});
  CHECK(d.what == verdict::restart_later);
  CHECK(d.delay == std::chrono::milliseconds{100});
}
