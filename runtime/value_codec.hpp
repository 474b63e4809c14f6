// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// `value_codec`: the capability arms of the value model, for the
/// connections of one kj thread.
///
/// Functions: a function read from the wire becomes a `remote_function`
/// whose capability the kj context keeps; a function written to the wire
/// goes as its capability — the same one for a remote function (Cap'n Proto
/// then proxies calls through this process), a new `Callable` server for a
/// local one, whose calls run in the function's owner.
///
/// Large binary data, as the thread's `large_data_policy` says: by the shm
/// arm (a `SharedMemory` capability whose server hands over the block's
/// memfd), by the stream arm (a `ByteSource` the receiver pipes into a sink
/// of its own), or relayed untouched by a node.
///
/// Streamed bytes arrive after the message that announces them: a reader
/// must wait for `settle()` (or use `finish`) before it lets the value out.
///
/// ```
/// value_codec codec{ctx};
/// write_value(x, builder, &codec);
/// auto y = read_value(reader, &codec);
/// return codec.finish(std::move(y)).then(...);
/// ```
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "runtime/kj_thread.hpp"
#include "runtime/value_wire.hpp"

namespace joy {

class writable_buffer;

class value_codec final : public wire_hooks {
public:
  /// `fd_passing`: whether the connection carries file descriptors (plugin
  /// links do; the CLI's does not), which the shm arm needs.
  explicit value_codec(kj_context& ctx, bool fd_passing = true)
    : ctx_(ctx), fd_passing_(fd_passing) {
    // nop
  }

  /// For a node reading a value from another host for its plugin `tenant`,
  /// which it settles (`finish`) before passing the value on: a stream in
  /// it lands in the node's landing pool where the policy has one with
  /// room, so the plugin maps that block instead of pulling every chunk
  /// through its socket (B7b). Streams that do not fit stay relayed
  /// capabilities. Blocks are reused only for the same tenant
  /// (shm_pool::allocate).
  static value_codec landing(kj_context& ctx, std::string tenant) {
    value_codec codec{ctx, false};
    codec.land_ = true;
    codec.tenant_ = std::move(tenant);
    return codec;
  }

  caf::error write_function(const function_ref& f,
                            wire::Function::Builder out) override;

  caf::expected<function_ref> read_function(wire::Function::Reader in) override;

  caf::error write_binary(const buffer& b, wire::Binary::Builder out) override;

  caf::expected<buffer> read_binary(wire::Binary::Reader in) override;

  /// Whether no stream this codec started reading is still arriving: what
  /// it read is whole now.
  bool settled() const noexcept {
    return pending_.empty();
  }

  /// Resolves when every stream this codec started reading has arrived
  /// whole: with no error, or with the first failure. Never throws.
  kj::Promise<caf::error> settle();

  /// `x` once the streams inside it arrived (or the streams' error).
  template <class T>
  kj::Promise<caf::expected<T>> finish(caf::expected<T> x) {
    if (!x || pending_.empty())
      return kj::Promise<caf::expected<T>>{std::move(x)};
    return settle().then(
      [x = std::move(x)](caf::error err) mutable -> caf::expected<T> {
        if (err)
          return err;
        return std::move(x);
      });
  }

private:
  /// Where a stream of `size` bytes lands, if this codec lands streams and
  /// the node's landing pool has room; none: relay it.
  std::optional<writable_buffer> landing_block(uint64_t size);

  /// Pipes `size` bytes from `source` into `dst`; they are there once this
  /// codec settles.
  caf::expected<buffer> pull(wire::ByteSource::Client source, uint64_t size,
                             writable_buffer dst);

  kj_context& ctx_;
  bool fd_passing_;
  bool land_ = false;
  std::string tenant_;
  std::vector<kj::Promise<void>> pending_;
};

/// A function whose calls are served on the kj thread itself, not by an
/// actor (the Python host's functions, a node's plugin methods): it makes
/// its own `Callable`.
class kj_callable_function : public function_impl {
public:
  /// None by default: calls reach it only as a capability. One that returns
  /// its kj thread's gateway is callable from actors too (see
  /// serve_remote_functions).
  caf::actor target() const override;

  /// A capability whose calls run this function. Called on the kj thread.
  virtual wire::Callable::Client callable(kj_context& ctx) const = 0;

  /// Runs a call an actor made through the gateway without going through
  /// the capability (no encoding of the arguments on this thread), if it
  /// can: then it answers `reply` and returns true. Default: false.
  virtual bool invoke(kj_context& ctx, value_list& args, value_map& kwargs,
                      reply_handle& reply) const;
};

/// Serves one `Callable.call` on the kj thread: reads the arguments, waits
/// for streamed ones, runs `fn` with them and writes its outcome. Every
/// `Callable` server's `call` is this with its own `fn`.
kj::Promise<void> serve_callable(
  kj_context& ctx,
  capnp::CallContext<wire::Callable::CallParams, wire::Callable::CallResults>
    context,
  kj::Function<kj::Promise<caf::expected<value>>(arguments)> fn);

/// The capability of a function value, as `write_function` would send it.
/// Call on the kj thread. Errors as for write_function.
caf::expected<wire::Callable::Client> callable_for(kj_context& ctx,
                                                   const function_ref& f);

/// Makes the gateway of this kj thread run calls of remote functions and
/// of functions served on it: it answers `(invoke_atom, function_ref,
/// value_list, value_map) -> value`. Call once, on the kj thread.
void serve_remote_functions(kj_context& ctx);

/// Answers `(fetch_atom, value)` sent to the gateway with the value whose
/// every byte is readable in this process: shared-memory blocks a node
/// relays are mapped (read-only; the SDK seals them against shrinking),
/// streams are pulled into memory. For the one part of a node that must
/// look at bytes it relays: the bridge, which writes them into msgpack.
void serve_readable_values(kj_context& ctx);

/// Whether some bytes in `x` are a relayed capability, not memory.
bool has_unreadable_bytes(const value& x);

/// Turns the exception of a broken Cap'n Proto call into Joy's error.
caf::error error_from_exception(const kj::Exception& ex,
                                const std::string& what);

} // namespace joy
