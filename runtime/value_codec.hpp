// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// `value_codec`: the function arm of the value model, for the connections
/// of one kj thread. A function read from the wire becomes a
/// `remote_function` whose capability the kj context keeps; a function
/// written to the wire goes as its capability — the same one for a remote
/// function (Cap'n Proto then proxies calls through this process), a new
/// `Callable` server for a local one, whose calls run in the function's
/// owner.
///
/// ```
/// value_codec codec{ctx};
/// write_value(x, builder, &codec);
/// auto y = read_value(reader, &codec);
/// ```
#pragma once

#include "runtime/kj_thread.hpp"
#include "runtime/value_wire.hpp"

namespace joy {

class value_codec final : public function_hooks {
public:
  explicit value_codec(kj_context& ctx) : ctx_(ctx) {
    // nop
  }

  caf::error write_function(const function_ref& f,
                            wire::Function::Builder out) override;

  caf::expected<function_ref> read_function(wire::Function::Reader in) override;

private:
  kj_context& ctx_;
};

/// The capability of a function value, as `write_function` would send it.
/// Call on the kj thread. Errors as for write_function.
caf::expected<wire::Callable::Client> callable_for(kj_context& ctx,
                                                   const function_ref& f);

/// Makes the gateway of this kj thread run calls of remote functions: it
/// answers `(invoke_atom, function_ref, value_list, value_map) -> value`.
/// Call once, on the kj thread.
void serve_remote_functions(kj_context& ctx);

/// Turns the exception of a broken Cap'n Proto call into Joy's error.
caf::error error_from_exception(const kj::Exception& ex,
                                const std::string& what);

} // namespace joy
