// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// Bytes from a hostile peer into the validating stream: whatever arrives,
// it reads messages or refuses the link, and never crashes, overruns or
// allocates beyond its limits.

#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

#include <kj/async-io.h>

#include "runtime/message_stream.hpp"

namespace {

kj::AsyncIoContext& io() {
  static auto ctx = kj::setupAsyncIo();
  return ctx;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return 0;
  // Small limits, so that the fuzzer reaches them.
  joy::stream_limits limits;
  limits.max_message_words = 1 << 14;
  limits.max_segments = 16;
  limits.max_fds = 0;
  auto& ctx = io();
  joy::validating_stream stream{
    ctx.lowLevelProvider->wrapUnixSocketFd(
      sv[0], kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP),
    limits};
  // The whole input, then EOF (the socket buffer holds a fuzzer's input).
  size_t written = 0;
  while (written < size) {
    auto n = ::write(sv[1], data + written, size - written);
    if (n <= 0)
      break;
    written += static_cast<size_t>(n);
  }
  ::close(sv[1]);
  try {
    for (int i = 0; i < 64; ++i) {
      auto msg
        = stream.tryReadMessage(nullptr, joy::reader_options(limits), nullptr)
            .wait(ctx.waitScope);
      KJ_IF_MAYBE (m, msg) {
        // Whatever got through is walkable within the limits.
        m->reader->getRoot<capnp::AnyPointer>().targetSize();
      } else {
        break;
      }
    }
  } catch (const kj::Exception&) {
    // A refused link: the expected outcome for most inputs.
  }
  return 0;
}
