// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/plugin_host/plugin_stats.hpp"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

namespace joy {

void plugin_stats::record(std::chrono::nanoseconds latency, bool ok) noexcept {
  calls_.fetch_add(1, std::memory_order_relaxed);
  if (!ok)
    errors_.fetch_add(1, std::memory_order_relaxed);
  auto us = std::max(1.0, static_cast<double>(latency.count()) / 1000.0);
  auto i = static_cast<std::size_t>(std::lround(4.0 * std::log2(us)));
  buckets_[std::min(i, bucket_count - 1)].fetch_add(1,
                                                    std::memory_order_relaxed);
}

uint64_t plugin_stats::p50_us() const noexcept {
  std::array<uint64_t, bucket_count> snapshot;
  uint64_t total = 0;
  for (std::size_t i = 0; i < bucket_count; ++i) {
    snapshot[i] = buckets_[i].load(std::memory_order_relaxed);
    total += snapshot[i];
  }
  if (total == 0)
    return 0;
  uint64_t seen = 0;
  for (std::size_t i = 0; i < bucket_count; ++i) {
    seen += snapshot[i];
    if (2 * seen >= total)
      return static_cast<uint64_t>(
        std::lround(std::exp2(static_cast<double>(i) / 4.0)));
  }
  return 0;
}

namespace {

uint64_t own_resident_bytes(int pid) noexcept {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/status", pid);
  auto* f = std::fopen(path, "re");
  if (f == nullptr)
    return 0;
  char line[256];
  uint64_t kib = 0;
  while (std::fgets(line, sizeof(line), f) != nullptr)
    if (std::strncmp(line, "VmRSS:", 6) == 0) {
      std::sscanf(line + 6, "%lu", &kib);
      break;
    }
  std::fclose(f);
  return kib * 1024;
}

/// Appends the children of `pid` (of its main thread: plugins and their
/// sandboxes fork from it).
void children_of(int pid, std::vector<int>& out) {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, pid);
  auto* f = std::fopen(path, "re");
  if (f == nullptr)
    return;
  int child = 0;
  while (std::fscanf(f, "%d", &child) == 1)
    out.push_back(child);
  std::fclose(f);
}

} // namespace

uint64_t resident_bytes(int pid) noexcept {
  // /proc lives in memory: reading it does not wait on a disk. A sandboxed
  // plugin's pid is its sandbox's; the plugin is a few levels down.
  if (pid <= 0)
    return 0;
  std::vector<int> todo{pid};
  uint64_t total = 0;
  for (std::size_t i = 0; i < todo.size() && i < 256; ++i) {
    total += own_resident_bytes(todo[i]);
    children_of(todo[i], todo);
  }
  return total;
}

} // namespace joy
