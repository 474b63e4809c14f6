// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The life of one plugin instance as its host reports it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <caf/error.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/type_name.hpp>

namespace joy {

/// A crash of a running plugin restarts it under its supervision budget
/// (restart_budget.hpp): at once, or after a delay in `backoff`, or never
/// again — `failed`, until it is started explicitly. A start that fails
/// (spawn error, exit or error during setup) is `failed` too, and the next
/// call tries again.
enum class plugin_state : uint8_t {
  stopped = 0,
  starting = 1,
  running = 2,
  stopping = 3,
  failed = 4,
  backoff = 5,
};

std::string_view to_string(plugin_state x) noexcept;

/// The state named `x` (as `to_string` writes it); `failed` for a name
/// this build does not know.
plugin_state plugin_state_from(std::string_view x) noexcept;

struct plugin_status {
  std::string name;
  plugin_state state = plugin_state::stopped;
  /// The process while starting or running; 0 otherwise.
  int32_t pid = 0;
  /// Why it last stopped or failed, e.g. "killed by signal 9 (SIGKILL)".
  std::string last_error;
  /// How many times it was started.
  uint64_t starts = 0;
  /// The methods its default service exports (known once it runs).
  std::vector<std::string> methods;
  /// Their parameters' names, in the same order (empty where unknown).
  std::vector<std::vector<std::string>> params;
  /// Counters since the node started (filled in by the node).
  uint64_t calls = 0;
  uint64_t errors = 0;
  uint64_t p50_us = 0;
  uint64_t memory_bytes = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, plugin_status& x) {
  auto state = static_cast<uint8_t>(x.state);
  auto load = caf::meta::load_callback([&]() -> caf::error {
    x.state = static_cast<plugin_state>(state);
    return caf::none;
  });
  return f(caf::meta::type_name("joy::plugin_status"), x.name, state, x.pid,
           x.last_error, x.starts, x.methods, x.params, x.calls, x.errors,
           x.p50_us, x.memory_bytes, load);
}

} // namespace joy
