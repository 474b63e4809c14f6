// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The phi-accrual failure detector (Hayashibara et al. 2004, as Akka and
/// Cassandra use it): instead of a fixed timeout it turns the time since
/// the last heartbeat into a suspicion level phi = -log10(P(a heartbeat
/// this late)), judged against the intervals seen so far. A node whose
/// heartbeats jitter gets more slack; a steady one is suspected sooner.
///
/// With Akka's defaults (1 s heartbeats, 3 s acceptable pause, threshold 8,
/// 100 ms minimum deviation) a silent node is suspected ~4.5 s after its
/// last heartbeat (reliability.md §2). Unlike Akka, the learned deviation
/// has a ceiling too: the acceptable pause is where an operator puts the
/// slack, and a deviation learned on a loaded machine must not stretch the
/// time to declare a silent node down without bound (the cluster promises
/// "down within about 6 s"; at most ~5 s after the last heartbeat with
/// these defaults). Time is passed in, never read, so tests drive it.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>

namespace joy {

struct phi_accrual_config {
  double threshold = 8.0;
  std::chrono::milliseconds expected_interval{1000};
  /// Pauses this long beyond the mean (GC, a busy machine) are tolerated.
  std::chrono::milliseconds acceptable_pause{3000};
  /// Floor of the deviation, so a perfectly steady sender is not suspected
  /// on the first late beat.
  std::chrono::milliseconds min_std_deviation{100};
  /// Ceiling of the deviation: phi 8 is reached 5.2 deviations past the
  /// mean and the pause, so this bounds the time to suspect a silent node.
  std::chrono::milliseconds max_std_deviation{200};
  std::size_t window = 100;
};

class phi_accrual {
public:
  using clock = std::chrono::steady_clock;

  explicit phi_accrual(phi_accrual_config cfg = {});

  /// A heartbeat arrived at `now`.
  void heartbeat(clock::time_point now);

  /// The suspicion level at `now`: 0 before the first heartbeat.
  double phi(clock::time_point now) const;

  /// True once phi reaches the threshold.
  bool suspects(clock::time_point now) const {
    return phi(now) >= cfg_.threshold;
  }

  /// Forgets the history (a node that came back starts afresh).
  void reset();

  clock::time_point last() const noexcept {
    return last_;
  }

  const phi_accrual_config& config() const noexcept {
    return cfg_;
  }

private:
  phi_accrual_config cfg_;
  std::deque<double> intervals_; // milliseconds
  double sum_ = 0;
  double sum_sq_ = 0;
  bool started_ = false;
  clock::time_point last_{};
};

} // namespace joy
