// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// `rpc_link`: one Cap'n Proto two-party connection over a socket, always
/// through a `validating_stream`. Lives on the kj thread.
///
/// ```
/// auto link = rpc_link::connect(ctx.low_level().wrapUnixSocketFd(fd, ...),
/// limits); auto host = link->bootstrap_as<wire::Host>();
/// ```
#pragma once

#include <capnp/rpc-twoparty.h>
#include <capnp/rpc.h>
#include <kj/async-io.h>

#include "runtime/message_stream.hpp"

namespace joy {

class rpc_link {
public:
  /// The accepting side: serves `bootstrap` to the peer.
  static kj::Own<rpc_link> serve(kj::Own<kj::AsyncCapabilityStream> stream,
                                 stream_limits limits,
                                 capnp::Capability::Client bootstrap);

  /// The connecting side: reaches the peer's bootstrap capability.
  static kj::Own<rpc_link> connect(kj::Own<kj::AsyncCapabilityStream> stream,
                                   stream_limits limits);

  /// A byte stream that passes no fds (TCP, TLS) as the capability stream
  /// the validating stream reads: fds sent on it are refused.
  static kj::Own<kj::AsyncCapabilityStream>
  without_fds(kj::Own<kj::AsyncIoStream> stream);

  rpc_link(kj::Own<kj::AsyncCapabilityStream> stream, stream_limits limits,
           capnp::rpc::twoparty::Side side,
           kj::Maybe<capnp::Capability::Client> bootstrap);

  ~rpc_link() noexcept(false);

  /// The peer's bootstrap capability (connecting side only).
  template <class T>
  typename T::Client bootstrap_as() {
    return bootstrap().castAs<T>();
  }

  capnp::Capability::Client bootstrap();

  /// Resolves when the peer is gone (EOF, error or protocol violation).
  kj::Promise<void> on_disconnect() {
    return network_.onDisconnect();
  }

  validating_stream& stream() noexcept {
    return *stream_;
  }

private:
  kj::Own<validating_stream> stream_;
  capnp::TwoPartyVatNetwork network_;
  capnp::RpcSystem<capnp::rpc::twoparty::VatId> rpc_;
};

} // namespace joy
