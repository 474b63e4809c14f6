// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/cluster/phi_accrual.hpp"

#include <algorithm>
#include <cmath>

namespace joy {

phi_accrual::phi_accrual(phi_accrual_config cfg) : cfg_(cfg) {
  reset();
}

void phi_accrual::reset() {
  intervals_.clear();
  sum_ = 0;
  sum_sq_ = 0;
  started_ = false;
  // Seed the history as Akka does (the expected interval, +-1/4), so the
  // first heartbeats are judged by the configuration, not by one sample.
  auto mean = static_cast<double>(cfg_.expected_interval.count());
  for (double x : {mean - mean / 4, mean + mean / 4}) {
    intervals_.push_back(x);
    sum_ += x;
    sum_sq_ += x * x;
  }
}

void phi_accrual::heartbeat(clock::time_point now) {
  if (started_) {
    auto ms = std::chrono::duration<double, std::milli>(now - last_).count();
    intervals_.push_back(ms);
    sum_ += ms;
    sum_sq_ += ms * ms;
    if (intervals_.size() > std::max<std::size_t>(cfg_.window, 2)) {
      auto old = intervals_.front();
      intervals_.pop_front();
      sum_ -= old;
      sum_sq_ -= old * old;
    }
  }
  started_ = true;
  last_ = now;
}

double phi_accrual::phi(clock::time_point now) const {
  if (!started_)
    return 0;
  auto n = static_cast<double>(intervals_.size());
  auto mean = sum_ / n + static_cast<double>(cfg_.acceptable_pause.count());
  auto variance = std::max(0.0, sum_sq_ / n - (sum_ / n) * (sum_ / n));
  auto std_dev = std::clamp(
    std::sqrt(variance), static_cast<double>(cfg_.min_std_deviation.count()),
    static_cast<double>(
      std::max(cfg_.min_std_deviation, cfg_.max_std_deviation).count()));
  auto elapsed = std::chrono::duration<double, std::milli>(now - last_).count();
  // The logistic approximation of the normal CDF (Akka's): accurate to
  // ~1e-4 and, unlike erfc, well-behaved far out in the tail.
  auto y = (elapsed - mean) / std_dev;
  auto e = std::exp(-y * (1.5976 + 0.070566 * y * y));
  if (elapsed > mean)
    return -std::log10(e / (1.0 + e));
  return -std::log10(1.0 - 1.0 / (1.0 + e));
}

} // namespace joy
