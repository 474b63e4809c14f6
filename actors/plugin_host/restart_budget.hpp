// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// Supervision, Erlang style (DESIGN §7): a plugin that crashes is started
/// again at once while it crashed at most `intensity` times within `period`;
/// beyond that, again after a delay that doubles from `backoff_min` up to
/// `backoff_max`; and when it crashes once more after the longest delay, the
/// supervisor gives up and the plugin is `failed`.
///
/// Pure logic over time points the caller passes in, so that tests decide
/// what time it is.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>

#include <caf/meta/type_name.hpp>
#include <caf/timespan.hpp>

namespace joy {

struct restart_policy {
  uint32_t intensity = 5;
  caf::timespan period = std::chrono::seconds{30};
  caf::timespan backoff_min = std::chrono::milliseconds{500};
  caf::timespan backoff_max = std::chrono::seconds{30};
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, restart_policy& x) {
  return f(caf::meta::type_name("joy::restart_policy"), x.intensity, x.period,
           x.backoff_min, x.backoff_max);
}

class restart_budget {
public:
  using clock = std::chrono::steady_clock;

  enum class verdict { restart_now, restart_later, give_up };

  struct decision {
    verdict what = verdict::restart_now;
    /// For restart_later.
    caf::timespan delay{0};
  };

  explicit restart_budget(restart_policy policy) : policy_(policy) {
    // nop
  }

  /// The plugin crashed at `now`.
  decision on_crash(clock::time_point now);

  /// Crashes counted since the budget was last reset.
  uint32_t crashes() const noexcept {
    return total_;
  }

  /// Forgets every crash (an explicit restart, a new version).
  void reset() noexcept;

private:
  restart_policy policy_;
  std::deque<clock::time_point> recent_;
  /// Delays used since the last quiet period.
  uint32_t level_ = 0;
  bool at_max_ = false;
  uint32_t total_ = 0;
};

} // namespace joy
