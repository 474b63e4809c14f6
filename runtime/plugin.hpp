// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The C++ plugin SDK (library `joy_plugin`). A plugin is a program whose
/// `main` describes the plugin and hands it to `run_plugin`, which connects
/// back to the node over the inherited socket (fd 3), serves the plugin's
/// actor and returns when the node closes the connection:
///
/// ```
/// int main(int argc, char** argv) {
///   joy::plugin p{"hello"};
///   p.exports.add("add", [](int64_t a, int64_t b) { return a + b; },
///                 {"a", "b"});
///   return joy::run_plugin(argc, argv, std::move(p));
/// }
/// ```
///
/// Exported functions run in the plugin's actor, one at a time.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/expected.hpp>

#include "runtime/plugin_actor.hpp"
#include "runtime/plugin_exports.hpp"
#include "runtime/value.hpp"

namespace joy {

struct plugin {
  explicit plugin(std::string plugin_name = {}) : name(std::move(plugin_name)) {
    // nop
  }

  /// The plugin's name, as in its manifest.
  std::string name;
  /// Its default service: the functions callers see.
  plugin_exports exports;
  /// ImJoy's lifecycle; each is optional.
  std::function<caf::expected<value>()> setup;
  std::function<caf::expected<value>(const value& ctx)> run;
  std::function<void()> exit;
};

/// Spawns the plugin's actor in `sys` (also usable in-process, e.g. in tests
/// and benchmarks).
plugin_actor spawn_plugin_actor(caf::actor_system& sys,
                                std::shared_ptr<const plugin> def);

/// Runs the plugin process: connects to the node on fd 3, serves `def`, and
/// returns the exit code when the node closes the connection. Started by
/// hand (no socket on fd 3) it explains itself and returns 2.
int run_plugin(int argc, char** argv, plugin def);

} // namespace joy
