// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// joy-bench's shared vocabulary: a result row, latency statistics, and the
/// benchmarks' entry points. Every benchmark measures its baseline in the
/// same run and reports ours / baseline, because these machines are shared
/// and noisy.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace joy::bench {

struct row {
  std::string id;
  std::string name;
  double value = 0;
  std::string unit;
  double baseline = 0;
  /// "higher" or "lower": which way is better.
  std::string better;
  /// What the baseline is.
  std::string baseline_name;

  double ratio() const {
    return baseline != 0 ? value / baseline : 0;
  }
};

/// Latencies in nanoseconds.
struct latencies {
  std::vector<int64_t> ns;

  void add(std::chrono::steady_clock::duration d) {
    ns.push_back(
      std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
  }

  /// The q-quantile in microseconds (q in [0, 1]).
  double quantile_us(double q) {
    if (ns.empty())
      return 0;
    std::sort(ns.begin(), ns.end());
    auto i = static_cast<std::size_t>(q * static_cast<double>(ns.size() - 1));
    return static_cast<double>(ns[i]) / 1000.0;
  }
};

struct options {
  /// Round trips per latency measurement.
  std::size_t samples = 20000;
  /// Calls per throughput measurement.
  std::size_t calls = 200000;
  /// Where joy-exec, hello and this binary live.
  std::string bin_dir;
  std::string examples_dir;
  /// CAF worker threads in the measuring process.
  std::size_t workers = 2;
};

/// B1: in-process request/response to a plugin-interface actor with
/// joy::value arguments vs a raw CAF typed actor with two int64s.
std::vector<row> run_b1(const options& opts);

/// B3: an actor calling hello.add in a plugin process through the kj
/// thread vs a raw Cap'n Proto round trip between two processes vs a raw
/// unix socket ping-pong; plus the seam's hand-off rate vs executeSync.
std::vector<row> run_b3(const options& opts);

/// Child modes (the bench re-executes itself with the socket on fd 3).
int serve_capnp();
int serve_echo();

} // namespace joy::bench
