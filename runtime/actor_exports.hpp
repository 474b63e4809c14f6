// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// Plugins written as typed actors: every handler of a `caf::typed_actor`
/// whose message starts with an atom becomes a method named after the atom,
/// callable like any exported function (CLI, api, other plugins). Arguments
/// convert as for `plugin_exports::add`; results convert to values (no
/// result: null; several: a list).
///
/// ```
/// using add_atom = caf::atom_constant<caf::atom("add")>;
/// using calculator = caf::typed_actor<
///   caf::replies_to<add_atom, int64_t, int64_t>::with<int64_t>>;
///
/// calculator::behavior_type calc() {
///   return {[](add_atom, int64_t a, int64_t b) { return a + b; }};
/// }
///
/// joy::export_actor<calculator>(plugin.exports, calc, {{"add", {"a", "b"}}});
/// ```
///
/// The actor is spawned, linked to the plugin's actor, on the first call;
/// it keeps its state between calls and runs concurrently with exported
/// functions. Its handlers may return `caf::result<T>` and delegate or use
/// response promises like any CAF actor.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <caf/atom.hpp>
#include <caf/replies_to.hpp>
#include <caf/spawn_options.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "runtime/plugin_api.hpp"
#include "runtime/plugin_exports.hpp"
#include "runtime/value_convert.hpp"

namespace joy {

/// Parameter names of the methods of an actor plugin, by method name (for
/// keyword arguments and error messages); methods not listed take
/// positional arguments only.
using method_params = std::map<std::string, std::vector<std::string>>;

namespace detail {

/// The plugin's instance of the author's actor, spawned on first use.
template <class Handle>
struct actor_slot {
  std::function<Handle(sdk_actor::pointer)> spawn;
  Handle handle;

  Handle get(sdk_actor::pointer self) {
    if (!handle)
      handle = spawn(self);
    return handle;
  }
};

/// The reply of a handler as one value.
inline value pack_reply() {
  return value{};
}

template <class R>
value pack_reply(R& r) {
  return to_value(std::move(r));
}

template <class R1, class R2, class... Rs>
value pack_reply(R1& r1, R2& r2, Rs&... rs) {
  return value{value_list{to_value(std::move(r1)), to_value(std::move(r2)),
                          to_value(std::move(rs))...}};
}

/// The node bounds every call (deadline, cancellation); this only bounds a
/// handler that never answers.
constexpr caf::timespan actor_call_bound = std::chrono::hours{24};

template <class Handle, class In, class Out>
struct method_exporter;

template <class Handle, class Atom, class... Args, class... Rs>
struct method_exporter<Handle, caf::detail::type_list<Atom, Args...>,
                       caf::output_tuple<Rs...>> {
  static void add(plugin_exports& xs,
                  const std::shared_ptr<actor_slot<Handle>>& slot,
                  const method_params& params) {
    static_assert(caf::is_atom_constant<Atom>::value,
                  "every handler of an actor plugin starts with an atom, "
                  "which names the method");
    auto name = caf::to_string(Atom::value);
    auto i = params.find(name);
    auto names = i != params.end() ? i->second : std::vector<std::string>{};
    xs.add(
      name,
      [slot, name](context& ctx, std::decay_t<Args>... args) -> future<value> {
        auto* self = ctx.api().self();
        if (self == nullptr)
          return make_error(errc::unavailable,
                            "method '" + name
                              + "' needs the plugin's actor, which is not "
                                "running");
        promise<value> p;
        reply(self->request(slot->get(self), actor_call_bound, Atom::value,
                            std::move(args)...),
              p);
        return p.get_future();
      },
      std::move(names));
  }

  template <class Handle2>
  static void reply(Handle2&& h, promise<value> p) {
    if constexpr (sizeof...(Rs) == 1 && (std::is_void<Rs>::value && ...)) {
      h.then([p]() mutable { p.set_value(value{}); },
             [p](caf::error& err) mutable { p.set_error(std::move(err)); });
    } else {
      h.then([p](Rs&... rs) mutable { p.set_value(pack_reply(rs...)); },
             [p](caf::error& err) mutable { p.set_error(std::move(err)); });
    }
  }
};

template <class Handle, class Sig>
struct signature_exporter;

template <class Handle, class In, class Out>
struct signature_exporter<Handle, caf::typed_mpi<In, Out>>
  : method_exporter<Handle, In, Out> {};

template <class Handle, class... Sigs>
void export_signatures(plugin_exports& xs,
                       const std::shared_ptr<actor_slot<Handle>>& slot,
                       const method_params& params,
                       caf::detail::type_list<Sigs...>) {
  (signature_exporter<Handle, Sigs>::add(xs, slot, params), ...);
}

} // namespace detail

/// Exports the handlers of the typed actor `Handle` as methods of the
/// plugin; `make` is its behavior function, as `spawn` takes it (it may take
/// the actor's pointer, or a stateful pointer).
template <class Handle, class F>
void export_actor(plugin_exports& xs, F make, method_params params = {}) {
  auto slot = std::make_shared<detail::actor_slot<Handle>>();
  slot->spawn = [make](sdk_actor::pointer self) -> Handle {
    return self->template spawn<caf::linked>(make);
  };
  detail::export_signatures<Handle>(xs, slot, params,
                                    typename Handle::signatures{});
}

} // namespace joy
