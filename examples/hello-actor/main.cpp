// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// hello-actor: examples/hello written as a typed actor. Each handler is a
// method named after its atom; the actor keeps state between calls.
//
//   joy install build/examples/hello-actor
//   joy call hello-actor echo '"hi"'        # "hi"
//   joy call hello-actor add 2 3            # 5
//   joy call hello-actor count              # 1, 2, 3, ... calls so far

// --(doc-hello-actor-begin)--
#include <cstdint>

#include <caf/typed_event_based_actor.hpp>

#include "runtime/actor_exports.hpp"
#include "runtime/plugin.hpp"

using echo_atom = caf::atom_constant<caf::atom("echo")>;
using add_atom = caf::atom_constant<caf::atom("add")>;
using count_atom = caf::atom_constant<caf::atom("count")>;

using hello_actor
  = caf::typed_actor<caf::replies_to<echo_atom, joy::value>::with<joy::value>,
                     caf::replies_to<add_atom, int64_t, int64_t>::with<int64_t>,
                     caf::replies_to<count_atom>::with<int64_t>>;

struct hello_state {
  int64_t calls = 0;
};

hello_actor::behavior_type
hello(hello_actor::stateful_pointer<hello_state> self) {
  return {
    [self](echo_atom, joy::value x) {
      ++self->state.calls;
      return x;
    },
    [self](add_atom, int64_t a, int64_t b) -> caf::result<int64_t> {
      ++self->state.calls;
      int64_t sum;
      if (__builtin_add_overflow(a, b, &sum))
        return joy::make_error(joy::errc::invalid_argument,
                               "add: the sum does not fit in 64 bits");
      return sum;
    },
    [self](count_atom) { return ++self->state.calls; },
  };
}

int main(int argc, char** argv) {
  joy::plugin plugin{"hello-actor"};
  joy::export_actor<hello_actor>(plugin.exports, hello,
                                 {{"echo", {"value"}}, {"add", {"a", "b"}}});
  return joy::run_plugin(argc, argv, std::move(plugin));
}
// --(doc-hello-actor-end)--
