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
///   p.on_setup([](joy::context& ctx) { ctx.api().log("ready"); });
///   return joy::run_plugin(argc, argv, std::move(p));
/// }
/// ```
///
/// Exported functions, callbacks and lifecycle hooks run in the plugin's
/// actor, one at a time; a function that returns a `joy::future` frees the
/// actor while it waits. The ImJoy `api` is reached through the
/// `joy::context&` a function may take first (plugin_api.hpp).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "runtime/plugin_actor.hpp"
#include "runtime/plugin_api.hpp"
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

  /// ImJoy's lifecycle: `setup()` once before the first call, `run(ctx)`
  /// when the plugin is run, `exit()` when it stops. Each hook is typed
  /// like an export (a leading `joy::context&`, a future result).
  template <class F>
  plugin& on_setup(F fn) {
    setup = plugin_exports::make("setup", std::move(fn));
    return *this;
  }

  template <class F>
  plugin& on_run(F fn) {
    run = plugin_exports::make("run", std::move(fn), {"ctx"});
    return *this;
  }

  template <class F>
  plugin& on_exit(F fn) {
    exit = plugin_exports::make("exit", std::move(fn));
    return *this;
  }

  std::optional<exported_function> setup;
  std::optional<exported_function> run;
  std::optional<exported_function> exit;
};

/// Where a plugin actor's api calls go: a node link on a kj thread
/// (`gateway` of that thread, `link` the resource made by connect_to_node).
/// Without one, api calls fail with `unavailable`.
struct plugin_node {
  caf::actor gateway;
  uint64_t link = 0;
  /// Where `context::allocate` takes shared memory from; null: the heap.
  std::shared_ptr<shm_pool> pool;
};

/// Spawns the plugin's actor in `sys` (also usable in-process, e.g. in
/// tests and benchmarks). It serves `plugin_actor` and `function_owner`.
plugin_actor spawn_plugin_actor(caf::actor_system& sys,
                                std::shared_ptr<const plugin> def,
                                plugin_node node = {});

/// Runs the plugin process: connects to the node on fd 3, serves `def`, and
/// returns the exit code when the node closes the connection. Started by
/// hand (no socket on fd 3) it explains itself and returns 2.
int run_plugin(int argc, char** argv, plugin def);

} // namespace joy
