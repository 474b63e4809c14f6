// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// The baselines' server processes: joy-bench re-executed with its end of a
// socketpair on fd 3.

#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include "runtime/protocol.hpp"
#include "schema/plugin.capnp.h"
#include "tools/bench/bench.hpp"

extern char** environ;

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

capnp::Capability::Client raw_plugin_server() {
  return kj::heap<raw_plugin>();
}

server_child::server_child(const std::string& self, const char* mode) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    throw std::runtime_error("socketpair failed");
  socket.reset(sv[0]);
  unique_fd theirs{sv[1]};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, theirs.get(), plugin_fd);
  std::string path = self;
  std::string arg = mode;
  char* argv[] = {path.data(), arg.data(), nullptr};
  int rc = ::posix_spawn(&pid, path.c_str(), &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    throw std::runtime_error("cannot start " + self);
}

server_child::~server_child() {
  socket.reset();
  int status = 0;
  ::waitpid(pid, &status, 0);
}

struct raw_client::impl {
  server_child child;
  kj::AsyncIoContext io;
  kj::Own<kj::AsyncIoStream> stream;
  capnp::TwoPartyVatNetwork network;
  capnp::RpcSystem<capnp::rpc::twoparty::VatId> rpc;
  wire::Plugin::Client plugin;

  explicit impl(const std::string& self)
    : child(self, "--serve-capnp"),
      io(kj::setupAsyncIo()),
      stream(io.lowLevelProvider->wrapSocketFd(
        child.socket.release(), kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP)),
      network(*stream, capnp::rpc::twoparty::Side::CLIENT),
      rpc(capnp::makeRpcClient(network)),
      plugin(bootstrap(rpc)) {
    // nop
  }

  static wire::Plugin::Client
  bootstrap(capnp::RpcSystem<capnp::rpc::twoparty::VatId>& rpc) {
    capnp::MallocMessageBuilder vat_msg;
    auto vat = vat_msg.initRoot<capnp::rpc::twoparty::VatId>();
    vat.setSide(capnp::rpc::twoparty::Side::SERVER);
    return rpc.bootstrap(vat).castAs<wire::Plugin>();
  }
};

raw_client::raw_client(const std::string& self)
  : impl_(std::make_unique<impl>(self)) {
  // nop
}

raw_client::~raw_client() {
  // nop
}

kj::WaitScope& raw_client::wait_scope() {
  return impl_->io.waitScope;
}

wire::Plugin::Client& raw_client::plugin() {
  return impl_->plugin;
}

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
