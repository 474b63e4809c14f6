// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// joy-test-evil: a hostile peer for the tests (never installed anywhere). As
// a plugin, it talks to its node on fd 3; with --connect PATH it talks to a
// node's control socket instead. Modes:
//
//   segcount      a frame header claiming 0xFFFFFFFF + 1 segments
//   oversize      a frame header claiming a 1 GiB message
//   bad-exception an RPC Abort whose exception type is 0xFFFF
//   bad-return    an RPC Return whose exception type is 7
//   garbage       64 KiB of random bytes
//   exit3         exit with code 3 at once
//   mute          keep the socket open and never speak
//
// After sending, it waits until the peer closes the connection.

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <capnp/message.h>
#include <capnp/rpc.capnp.h>
#include <capnp/serialize.h>

namespace {

void send_all(int fd, const void* data, std::size_t size) {
  auto* p = static_cast<const char*>(data);
  while (size > 0) {
    auto n = ::write(fd, p, size);
    if (n <= 0)
      return;
    p += n;
    size -= static_cast<std::size_t>(n);
  }
}

void send_message(int fd, capnp::MessageBuilder& msg) {
  auto words = capnp::messageToFlatArray(msg);
  send_all(fd, words.begin(), words.size() * sizeof(capnp::word));
}

void wait_for_close(int fd) {
  char buf[4096];
  while (::read(fd, buf, sizeof(buf)) > 0) {
    // drain
  }
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: joy-test-evil MODE [--connect SOCKET]\n");
    return 2;
  }
  std::string mode = argv[1];
  int fd = 3;
  if (argc == 4 && std::string{argv[2]} == "--connect") {
    fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, argv[3], sizeof(addr.sun_path) - 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      std::perror("connect");
      return 1;
    }
  }
  if (mode == "exit3")
    return 3;
  if (mode == "segcount") {
    uint32_t frame[] = {0xFFFFFFFFu, 1, 0, 0};
    send_all(fd, frame, sizeof(frame));
  } else if (mode == "oversize") {
    uint32_t frame[] = {0, 1u << 27};
    send_all(fd, frame, sizeof(frame));
  } else if (mode == "bad-exception") {
    capnp::MallocMessageBuilder msg;
    auto ex = msg.initRoot<capnp::rpc::Message>().initAbort();
    ex.setReason("evil");
    ex.setType(static_cast<capnp::rpc::Exception::Type>(0xFFFF));
    send_message(fd, msg);
  } else if (mode == "bad-return") {
    capnp::MallocMessageBuilder msg;
    auto ret = msg.initRoot<capnp::rpc::Message>().initReturn();
    ret.setAnswerId(0);
    ret.initException().setType(static_cast<capnp::rpc::Exception::Type>(7));
    send_message(fd, msg);
  } else if (mode == "garbage") {
    std::mt19937 rng{42};
    std::vector<uint32_t> junk(16384);
    for (auto& x : junk)
      x = rng();
    junk[0] = 0; // one segment...
    junk[1] = 8; // ...of 8 words, then garbage and more frames
    send_all(fd, junk.data(), junk.size() * 4);
  } else if (mode != "mute") {
    std::fprintf(stderr, "joy-test-evil: unknown mode %s\n", mode.c_str());
    return 2;
  }
  wait_for_close(fd);
  return 0;
}
