// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The CLI's connection to a node: a short-lived, synchronous Cap'n Proto
/// client over `<home>/joyd.sock` (no actors needed for a command that
/// makes one call and exits).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <caf/expected.hpp>
#include <kj/async-io.h>

#include "runtime/errc.hpp"
#include "runtime/rpc_link.hpp"
#include "schema/node.capnp.h"

namespace joy::cli {

class node_client {
public:
  /// Connects and says hello. Errors: unavailable (no node runs there),
  /// permission_denied, version_mismatch, timeout.
  static caf::expected<std::unique_ptr<node_client>>
  connect(const std::string& home, std::chrono::milliseconds timeout);

  ~node_client();

  wire::Node::Client& node() noexcept {
    return node_;
  }

  const std::string& node_id() const noexcept {
    return node_id_;
  }

  const std::string& node_version() const noexcept {
    return version_;
  }

  /// The client's event loop, for commands that serve capabilities.
  kj::AsyncIoContext& io() noexcept {
    return io_;
  }

  /// Resolves when the node closes the connection.
  kj::Promise<void> on_disconnect() {
    return link_->on_disconnect();
  }

  /// Waits for `promise`, at most `timeout` (zero: no limit). Cap'n Proto
  /// failures become Joy errors (a broken link is `disconnected`).
  template <class T>
  caf::expected<T> wait(kj::Promise<T> promise,
                        std::chrono::milliseconds timeout) {
    caf::expected<T> result = make_error(errc::internal, "no result");
    auto err = wait_impl([&] {
      if (timeout.count() > 0)
        promise = io_.provider->getTimer().timeoutAfter(
          timeout.count() * kj::MILLISECONDS, kj::mv(promise));
      result = promise.wait(io_.waitScope);
    });
    if (err)
      return err;
    return result;
  }

private:
  node_client(kj::AsyncIoContext io, kj::Own<rpc_link> link);

  caf::error wait_impl(const std::function<void()>& fn);

  kj::AsyncIoContext io_;
  kj::Own<rpc_link> link_;
  wire::Node::Client node_ = nullptr;
  std::string node_id_;
  std::string version_;
};

} // namespace joy::cli
