// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// The baselines' server processes: joy-bench re-executed with its end of a
// socketpair on fd 3.

#include <unistd.h>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include "runtime/protocol.hpp"
#include "schema/plugin.capnp.h"
#include "tools/bench/bench.hpp"

namespace joy::bench {

namespace {

/// Adds two int64s straight from the Cap'n Proto message.
class raw_plugin final : public wire::Plugin::Server {
public:
  kj::Promise<void> call(CallContext context) override {
    auto args = context.getParams().getArgs();
    auto sum = args[0].getInt64() + args[1].getInt64();
    context.getResults().initResult().initOk().setInt64(sum);
    return kj::READY_NOW;
  }
};

} // namespace

int serve_capnp() {
  auto io = kj::setupAsyncIo();
  auto stream = io.lowLevelProvider->wrapSocketFd(
    plugin_fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
  capnp::TwoPartyVatNetwork network{*stream,
                                    capnp::rpc::twoparty::Side::SERVER};
  auto rpc = capnp::makeRpcServer(network, kj::heap<raw_plugin>());
  network.onDisconnect().wait(io.waitScope);
  return 0;
}

int serve_echo() {
  char buf[4096];
  for (;;) {
    auto n = ::read(plugin_fd, buf, sizeof(buf));
    if (n <= 0)
      return 0;
    if (::write(plugin_fd, buf, static_cast<std::size_t>(n)) != n)
      return 1;
  }
}

} // namespace joy::bench
