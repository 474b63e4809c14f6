// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// Converts `joy::value` to and from `schema/value.capnp`. This is the only
/// place that reads or builds `wire::Value`: Cap'n Proto readers and builders
/// never enter a mailbox, they are converted here at the boundary.
///
/// Reading treats the message as untrusted: dtypes, codes, sizes, duplicate
/// keys and nesting are checked, and every failure is a clear error value.
#pragma once

#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/message.hpp>

#include "runtime/value.hpp"
#include "schema/value.capnp.h"

namespace joy {

/// What plain Cap'n Proto cannot carry alone: function values and large
/// binary data are capabilities, so only a live connection on the kj thread
/// can carry them (see value_codec.hpp). Without hooks, function values are
/// refused and binary data travels inline only, each with a clear error.
class wire_hooks {
public:
  virtual ~wire_hooks();

  virtual caf::error write_function(const function_ref& f,
                                    wire::Function::Builder out);

  virtual caf::expected<function_ref> read_function(wire::Function::Reader in);

  /// Writes bytes by the inline arm, refusing more than `max_inline_bytes`
  /// with an error that points to the shm and stream arms.
  virtual caf::error write_binary(const buffer& b, wire::Binary::Builder out);

  /// Reads the inline arm; the shm and stream arms get a clear error.
  virtual caf::expected<buffer> read_binary(wire::Binary::Reader in);
};

/// Writes `x` into `out`; binary data goes through `hooks->write_binary`.
caf::error write_value(const value& x, wire::Value::Builder out,
                       wire_hooks* hooks = nullptr);

/// Reads and validates a value.
caf::expected<value> read_value(wire::Value::Reader in,
                                wire_hooks* hooks = nullptr);

/// Initialises `out` (an uninitialised list field) with `xs`: a call's
/// arguments, say. The list is no level of nesting: each element may nest
/// `max_value_depth` levels, as a result may.
caf::error write_list(const value_list& xs,
                      capnp::List<wire::Value>::Builder out,
                      wire_hooks* hooks = nullptr);

caf::expected<value_list> read_list(capnp::List<wire::Value>::Reader in,
                                    wire_hooks* hooks = nullptr);

caf::error write_map(const value_map& xs, capnp::List<wire::Entry>::Builder out,
                     wire_hooks* hooks = nullptr);

caf::expected<value_map> read_map(capnp::List<wire::Entry>::Reader in,
                                  wire_hooks* hooks = nullptr);

/// Writes an error value with its trace (callers strip traces at trust
/// boundaries before they get here).
void write_error(errc code, std::string_view message, std::string_view trace,
                 wire::Error::Builder out);

/// Writes a CAF error (code and message; CAF errors carry no trace).
void write_error(const caf::error& err, wire::Error::Builder out);

/// Reads a wire error into a CAF error in Joy's category.
caf::error read_error(wire::Error::Reader in);

/// Writes `ok` or `err` into a Result.
void write_result(const caf::expected<value>& x, wire::Result::Builder out,
                  wire_hooks* hooks = nullptr);

/// An actor's answer (a message holding a value or a caf::error); anything
/// else is an `internal` error naming `what`.
caf::expected<value> response_value(const caf::message& msg,
                                    std::string_view what);

/// Writes an actor's answer (see response_value) into a Result.
void write_response(const caf::message& msg, wire::Result::Builder out,
                    wire_hooks* hooks, std::string_view what);

/// A call's positional and keyword arguments.
struct arguments {
  value_list args;
  value_map kwargs;
};

/// Reads and validates both; the first failure is the error.
/// Writes a call's arguments into `req`, any request builder with `args`
/// and `kwargs` fields (Plugin.call, Callable.call, Api.request).
template <class Builder>
caf::error write_arguments(const value_list& args, const value_map& kwargs,
                           Builder& req, wire_hooks* hooks = nullptr) {
  auto err
    = write_list(args, req.initArgs(static_cast<unsigned>(args.size())), hooks);
  if (!err)
    err = write_map(
      kwargs, req.initKwargs(static_cast<unsigned>(kwargs.size())), hooks);
  return err;
}

caf::expected<arguments> read_arguments(capnp::List<wire::Value>::Reader args,
                                        capnp::List<wire::Entry>::Reader kwargs,
                                        wire_hooks* hooks = nullptr);

/// Reads a Result: the value, or its error.
caf::expected<value> read_result(wire::Result::Reader in,
                                 wire_hooks* hooks = nullptr);

} // namespace joy
