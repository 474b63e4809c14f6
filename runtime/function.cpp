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

caf::expected<function_ref> method_of(const value_map& object,
                                      const std::string& name) {
  if (auto* member = object.find(name))
    if (auto* f = member->as_function())
      return *f;
  std::string known;
  for (auto& [k, v] : object)
    if (v.as_function() != nullptr)
      known += (known.empty() ? "" : ", ") + k;
  return make_error(errc::not_found,
                    "the service has no method '" + name
                      + "' (it has: " + (known.empty() ? "none" : known) + ")");
}

caf::expected<function_ref> method_of(const value& object,
                                      const std::string& name) {
  if (auto* members = object.as_map())
    return method_of(*members, name);
  return method_of(value_map{}, name);
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
