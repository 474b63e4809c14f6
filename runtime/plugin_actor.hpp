// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The plugin's typed interface (DESIGN §4). Every plugin is an actor with
/// this interface: in its own process the SDK's plugin actor implements it;
/// in the daemon, the plugin's `plugin_host` implements it by forwarding over
/// Cap'n Proto, so callers cannot tell the difference.
///
/// The interface is generic, so any plugin can be called by name; the SDK
/// gives authors typed functions on top (see plugin_exports.hpp).
#pragma once

#include <memory>
#include <string>

#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/timespan.hpp>
#include <caf/typed_actor.hpp>

#include "runtime/call_control.hpp"
#include "runtime/function.hpp"
#include "runtime/type_ids.hpp"
#include "runtime/value.hpp"

namespace joy {

/// One call of a plugin method. A struct, so that fields can be appended
/// (caller identity, tracing) without touching every actor's interface.
struct call_request {
  /// The service within the plugin; empty means its default service (its
  /// exported functions).
  std::string service;
  std::string method;
  value_list args;
  value_map kwargs;
  /// The caller's budget; zero means the callee's default. The deadline
  /// travels with the call so every hop can give up when the caller has.
  caf::timespan timeout{0};
  /// Cancellation and progress (see call_control.hpp); null for calls that
  /// did not come over the wire. Never serialized.
  std::shared_ptr<call_control> control;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, call_request& x) {
  return f(caf::meta::type_name("joy::call_request"), x.service, x.method,
           x.args, x.kwargs, x.timeout);
}

using plugin_actor = caf::typed_actor<
  /// Calls `method` of `service`. Errors: not_found (no such service or
  /// method), invalid_argument (wrong arity or types, naming the argument),
  /// plugin_error (the function failed), timeout, disconnected.
  caf::replies_to<call_atom, call_request>::with<value>,
  /// Runs the plugin's `setup()`; called once after it starts.
  caf::replies_to<setup_atom>::with<value>,
  /// Runs the plugin's `run(ctx)`.
  caf::replies_to<run_atom, value>::with<value>,
  /// Describes the plugin: name and exported methods with their arity.
  caf::replies_to<describe_atom>::with<value>,
  /// Asks the plugin to finish; it runs its `exit()` and stops.
  caf::reacts_to<exit_atom>>;

/// The actor of a plugin process made with the SDK: a plugin that also runs
/// the function values it hands out.
using sdk_actor = plugin_actor::extend_with<function_owner>;

} // namespace joy
