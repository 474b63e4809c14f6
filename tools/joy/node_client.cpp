// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "tools/joy/node_client.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <kj/debug.h>

#include "runtime/errc.hpp"
#include "runtime/paths.hpp"
#include "runtime/protocol.hpp"
#include "runtime/unique_fd.hpp"
#include "runtime/value_wire.hpp"

namespace joy::cli {

node_client::node_client(kj::AsyncIoContext io, kj::Own<rpc_link> link)
  : io_(kj::mv(io)), link_(kj::mv(link)) {
  // nop
}

node_client::~node_client() {
  node_ = nullptr;
  link_ = nullptr;
  // Tearing down the connection queues events; the loop must not die with
  // them pending.
  io_.waitScope.poll();
}

caf::error node_client::wait_impl(const std::function<void()>& fn) {
  KJ_IF_MAYBE (ex, kj::runCatchingExceptions(fn)) {
    switch (ex->getType()) {
      case kj::Exception::Type::DISCONNECTED:
        return make_error(errc::disconnected,
                          "the node closed the connection (did it stop?)");
      case kj::Exception::Type::OVERLOADED:
        return make_error(errc::timeout, "the node did not answer in time");
      default:
        return make_error(errc::internal, ex->getDescription().cStr());
    }
  }
  return caf::none;
}

caf::expected<std::unique_ptr<node_client>>
node_client::connect(const std::string& home,
                     std::chrono::milliseconds timeout) {
  auto path = socket_path(home);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path))
    return make_error(errc::invalid_argument,
                      "socket path " + path
                        + " is too long; use a shorter JOY_HOME");
  std::strcpy(addr.sun_path, path.c_str());
  unique_fd fd{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (!fd)
    return make_error(errc::io_error,
                      std::string{"socket: "} + std::strerror(errno));
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr))
      != 0) {
    auto e = errno;
    if (e == ENOENT || e == ECONNREFUSED)
      return make_error(errc::unavailable, "no node is running in " + home
                                             + " (start one with `joy start`)");
    if (e == EACCES || e == EPERM)
      return make_error(errc::permission_denied,
                        "not allowed to reach the node in " + home);
    return make_error(errc::io_error,
                      "cannot connect to " + path + ": " + std::strerror(e));
  }
  auto io = kj::setupAsyncIo();
  auto stream = io.lowLevelProvider->wrapUnixSocketFd(
    fd.release(), kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP
                    | kj::LowLevelAsyncIoProvider::ALREADY_CLOEXEC);
  auto link = rpc_link::connect(kj::mv(stream), stream_limits{});
  std::unique_ptr<node_client> client{
    new node_client(kj::mv(io), kj::mv(link))};
  auto gate = client->link_->bootstrap_as<wire::Gate>();
  auto req = gate.helloRequest();
  req.setVersion(protocol_version);
  req.setClient("joy-cli");
  auto resp = client->wait(req.send(), timeout);
  if (!resp) {
    if (code_of(resp.error()) == errc::disconnected)
      return make_error(errc::permission_denied,
                        "the node in " + home + " refused this connection");
    return resp.error();
  }
  auto result = resp->getResult();
  if (result.isErr())
    return read_error(result.getErr());
  auto session = result.getOk();
  client->node_ = session.getNode();
  client->node_id_ = session.getNodeId();
  client->version_ = session.getVersion();
  return client;
}

} // namespace joy::cli
