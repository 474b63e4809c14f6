// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// `plugin_stats`: per-plugin counters — calls, errors and a latency
/// histogram — written by the plugin's link on the kj thread and read by
/// the node for `joy status`, without messages in between (atomics).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace joy {

class plugin_stats {
public:
  /// Counts one finished call.
  void record(std::chrono::nanoseconds latency, bool ok) noexcept;

  uint64_t calls() const noexcept {
    return calls_.load(std::memory_order_relaxed);
  }

  uint64_t errors() const noexcept {
    return errors_.load(std::memory_order_relaxed);
  }

  /// The median latency in microseconds (0 before the first call), within
  /// about 10 %: the histogram has four buckets per doubling.
  uint64_t p50_us() const noexcept;

private:
  /// Bucket i holds latencies around 2^(i/4) microseconds.
  static constexpr std::size_t bucket_count = 128;

  std::atomic<uint64_t> calls_{0};
  std::atomic<uint64_t> errors_{0};
  std::array<std::atomic<uint64_t>, bucket_count> buckets_{};
};

/// Resident memory of a process in bytes, from /proc (0 if unknown).
uint64_t resident_bytes(int pid) noexcept;

} // namespace joy
