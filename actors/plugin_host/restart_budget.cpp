// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/plugin_host/restart_budget.hpp"

#include <algorithm>

namespace joy {

restart_budget::decision restart_budget::on_crash(clock::time_point now) {
  ++total_;
  while (!recent_.empty() && now - recent_.front() > policy_.period)
    recent_.pop_front();
  if (recent_.empty()) {
    // A quiet period: whatever happened before is forgiven.
    level_ = 0;
    at_max_ = false;
  }
  recent_.push_back(now);
  if (recent_.size() <= policy_.intensity)
    return {verdict::restart_now, caf::timespan{0}};
  if (at_max_)
    return {verdict::give_up, caf::timespan{0}};
  auto delay = policy_.backoff_min;
  for (uint32_t i = 0; i < level_ && delay < policy_.backoff_max; ++i)
    delay *= 2;
  delay = std::min(delay, policy_.backoff_max);
  at_max_ = delay >= policy_.backoff_max;
  ++level_;
  return {verdict::restart_later, delay};
}

void restart_budget::reset() noexcept {
  recent_.clear();
  level_ = 0;
  at_max_ = false;
  total_ = 0;
}

} // namespace joy
