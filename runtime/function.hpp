// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// Function values (DESIGN §3): what a `function_ref` points at.
///
/// * A **local function** was made in this process; its body runs in its
///   owner actor, which serves `function_owner`.
/// * A **remote function** came in over the wire: a Cap'n Proto capability
///   kept on the kj thread (kj objects never leave it), addressed by id.
///   Calls go to the kj gateway; when the last copy of the value goes, the
///   capability is released, and Cap'n Proto tells the process that made
///   the function. A holder that dies releases everything it held.
///
/// Either way a call is the same request, sent to `f.impl->target()`:
///
/// ```
/// self->request(f.impl->target(), timeout, invoke_atom_v, f, args, kwargs)
///   .then([](value& result) { ... }, [](caf::error& err) { ... });
/// ```
#pragma once

#include <functional>
#include <string>

#include <caf/replies_to.hpp>
#include <caf/result.hpp>
#include <caf/typed_actor.hpp>

#include "runtime/kj_thread.hpp"
#include "runtime/reply_handle.hpp"
#include "runtime/type_ids.hpp"
#include "runtime/value.hpp"

namespace joy {

/// What every owner of local functions serves: runs one of them.
using function_owner = caf::typed_actor<
  /// Calls a function this actor owns. Errors: those of the function;
  /// invalid_argument when the function is not this actor's.
  caf::replies_to<invoke_atom, function_ref, value_list,
                  value_map>::with<value>>;

/// A function made in this process.
class local_function final : public function_impl {
public:
  /// Runs in the owner; answers through `reply`, at once or later.
  using body = std::function<void(value_list args, value_map kwargs,
                                  reply_handle reply)>;

  local_function(caf::actor owner, body fn);

  caf::actor target() const override;

  /// Runs the body; call only in the owner.
  void invoke(value_list args, value_map kwargs, reply_handle reply) const;

private:
  caf::actor owner_;
  body fn_;
};

/// A function living in another process, kept as a capability on `kj`.
class remote_function final : public function_impl {
public:
  remote_function(kj_thread& kj, uint64_t capability);

  caf::actor target() const override;

  kj_thread& thread() const noexcept {
    return cap_.thread();
  }

  uint64_t capability() const noexcept {
    return cap_.id();
  }

private:
  /// Released, on the kj thread, when the last copy of the value goes.
  kept_capability cap_;
};

/// Makes a function value whose body runs in `owner`.
function_ref make_function(caf::actor owner, std::string name,
                           local_function::body fn);

/// The method `name` of a service object: a map whose function members are
/// its methods. Errors: not_found, naming the methods it has.
caf::expected<function_ref> method_of(const value_map& object,
                                      const std::string& name);

/// The same, for any value: one that is not a map has no methods.
caf::expected<function_ref> method_of(const value& object,
                                      const std::string& name);

/// The body of an owner's invoke handler: runs `f` if `self` owns it.
caf::result<value> run_local_function(caf::local_actor* self,
                                      const function_ref& f, value_list args,
                                      value_map kwargs);

} // namespace joy
