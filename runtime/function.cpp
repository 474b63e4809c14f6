// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "runtime/function.hpp"

#include <caf/actor_cast.hpp>
#include <caf/local_actor.hpp>

#include "runtime/kj_thread.hpp"

namespace joy {

local_function::local_function(caf::actor owner, body fn)
  : owner_(std::move(owner)), fn_(std::move(fn)) {
  // nop
}

caf::actor local_function::target() const {
  return owner_;
}

void local_function::invoke(value_list args, value_map kwargs,
                            reply_handle reply) const {
  fn_(std::move(args), std::move(kwargs), std::move(reply));
}

remote_function::remote_function(kj_thread& kj, uint64_t capability)
  : cap_(kj, capability) {
  // nop
}

caf::actor remote_function::target() const {
  return cap_.thread().gateway();
}

function_ref make_function(caf::actor owner, std::string name,
                           local_function::body fn) {
  return function_ref{
    std::make_shared<const local_function>(std::move(owner), std::move(fn)),
    std::move(name)};
}

caf::result<value> run_local_function(caf::local_actor* self,
                                      const function_ref& f, value_list args,
                                      value_map kwargs) {
  auto* local = dynamic_cast<const local_function*>(f.impl.get());
  if (local == nullptr
      || caf::actor_cast<caf::actor_addr>(local->target()) != self->address())
    return make_error(errc::invalid_argument,
                      "function '" + f.name
                        + "' does not belong to this actor");
  local->invoke(std::move(args), std::move(kwargs), reply_handle{self});
  return caf::delegated<value>{};
}

} // namespace joy
