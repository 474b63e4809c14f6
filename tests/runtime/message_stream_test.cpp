// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// The validating message stream: what it lets through, what it refuses
// (the malformed frames of reliability.md §3 and out-of-range RPC exception
// types), batching, large messages and fd passing.

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <capnp/message.h>
#include <capnp/rpc.capnp.h>
#include <capnp/serialize.h>
#include <kj/async-io.h>

#include "runtime/message_stream.hpp"
#include "runtime/unique_fd.hpp"
#include "schema/value.capnp.h"

using namespace joy;

namespace {

/// A validating stream on one end of a socketpair; raw bytes on the other.
struct stream_pair {
  kj::AsyncIoContext io = kj::setupAsyncIo();
  unique_fd raw;
  kj::Own<validating_stream> stream;

  explicit stream_pair(stream_limits limits = {}) {
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    raw.reset(sv[1]);
    stream = kj::heap<validating_stream>(
      io.lowLevelProvider->wrapUnixSocketFd(
        sv[0], kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP),
      limits);
  }

  void send_raw(const void* data, std::size_t size) {
    REQUIRE(::write(raw.get(), data, size) == static_cast<ssize_t>(size));
  }

  void send_raw(const std::vector<uint32_t>& words) {
    send_raw(words.data(), words.size() * 4);
  }

  void send(capnp::MessageBuilder& msg) {
    auto words = capnp::messageToFlatArray(msg);
    send_raw(words.begin(), words.size() * sizeof(capnp::word));
  }

  /// Reads one message; returns the error text, or "" if it was accepted.
  std::string read_error() {
    std::string error;
    KJ_IF_MAYBE (ex, kj::runCatchingExceptions([&] {
                   auto msg = stream
                                ->tryReadMessage(
                                  nullptr, capnp::ReaderOptions{}, nullptr)
                                .wait(io.waitScope);
                   if (msg == nullptr)
                     error = "EOF";
                 })) {
      error = ex->getDescription().cStr();
      if (error.empty())
        error = "exception";
    }
    return error;
  }

  kj::Own<capnp::MessageReader> read() {
    auto msg = stream->tryReadMessage(nullptr, capnp::ReaderOptions{}, nullptr)
                 .wait(io.waitScope);
    KJ_IF_MAYBE (m, msg) {
      return kj::mv(m->reader);
    }
    FAIL("unexpected EOF");
    return {};
  }
};

void build_value(capnp::MallocMessageBuilder& msg, int64_t x) {
  msg.initRoot<wire::Value>().setInt64(x);
}

} // namespace

TEST_CASE("a well-formed message passes and reads back intact",
          "[runtime][stream]") {
  stream_pair p;
  capnp::MallocMessageBuilder msg;
  build_value(msg, 42);
  p.send(msg);
  auto reader = p.read();
  CHECK(reader->getRoot<wire::Value>().getInt64() == 42);
}

TEST_CASE("many messages in one write are all read, in order",
          "[runtime][stream]") {
  stream_pair p;
  kj::Vector<kj::byte> all;
  for (int64_t i = 0; i < 200; ++i) {
    capnp::MallocMessageBuilder msg;
    build_value(msg, i);
    auto words = capnp::messageToFlatArray(msg);
    all.addAll(words.asBytes());
  }
  p.send_raw(all.begin(), all.size());
  for (int64_t i = 0; i < 200; ++i)
    CHECK(p.read()->getRoot<wire::Value>().getInt64() == i);
}

TEST_CASE("a clean end of stream at a message boundary reads as EOF",
          "[runtime][stream]") {
  stream_pair p;
  p.raw.reset();
  CHECK(p.read_error() == "EOF");
}

TEST_CASE("a message cut off by the peer closing is an error, not EOF",
          "[runtime][stream]") {
  stream_pair p;
  p.send_raw({0, 4, 0, 0}); // one segment of 4 words, only 1 word sent
  p.raw.reset();
  auto err = p.read_error();
  CHECK(err.find("middle of a message") != std::string::npos);
}

TEST_CASE(
  "a segment count of 0xFFFFFFFF (count overflow) is refused before parsing",
  "[runtime][stream]") {
  stream_pair p;
  p.send_raw({0xFFFFFFFFu, 1, 0, 0});
  auto err = p.read_error();
  CHECK(err.find("segments") != std::string::npos);
  // The link is done: nothing more is read from it.
  CHECK_FALSE(err.empty());
}

TEST_CASE("more segments than allowed are refused", "[runtime][stream]") {
  stream_pair p;
  std::vector<uint32_t> frame{512}; // 513 segments
  frame.resize(1 + 513 + 1, 1);
  p.send_raw(frame);
  CHECK(p.read_error().find("513 segments") != std::string::npos);
}

TEST_CASE("a message larger than the link's cap is refused from its header",
          "[runtime][stream]") {
  stream_limits limits;
  limits.max_message_words = 1024;
  stream_pair p{limits};
  // Claims 1 GiB; only the header is ever sent.
  p.send_raw({0, 1u << 27});
  CHECK(p.read_error().find("exceeds the link's limit") != std::string::npos);
}

TEST_CASE("segment sizes that overflow 32 bits when summed are refused",
          "[runtime][stream]") {
  stream_pair p;
  p.send_raw({1, 0xFFFFFFFFu, 0xFFFFFFFFu, 0});
  CHECK(p.read_error().find("exceeds") != std::string::npos);
}

TEST_CASE("an empty message is refused", "[runtime][stream]") {
  stream_pair p;
  p.send_raw({0, 0});
  CHECK(p.read_error().find("empty message") != std::string::npos);
}

TEST_CASE("garbage inside a well-framed RPC message is refused, not crashed on",
          "[runtime][stream]") {
  std::mt19937 rng{7};
  for (int round = 0; round < 200; ++round) {
    stream_pair p;
    std::vector<uint32_t> frame{0, 16};
    for (int i = 0; i < 32; ++i)
      frame.push_back(rng());
    p.send_raw(frame);
    // Either refused or (rarely) a structurally valid message of no harm.
    auto err = p.read_error();
    CHECK(err != "EOF");
  }
}

TEST_CASE(
  "RPC exceptions with an out-of-range type are refused wherever they appear",
  "[runtime][stream]") {
  auto bad = static_cast<capnp::rpc::Exception::Type>(0xFFFF);
  SECTION("in a return") {
    stream_pair p;
    capnp::MallocMessageBuilder msg;
    auto ret = msg.initRoot<capnp::rpc::Message>().initReturn();
    ret.setAnswerId(1);
    auto ex = ret.initException();
    ex.setReason("boom");
    ex.setType(bad);
    p.send(msg);
    CHECK(p.read_error().find("return with exception type 65535")
          != std::string::npos);
  }
  SECTION("in an abort") {
    stream_pair p;
    capnp::MallocMessageBuilder msg;
    msg.initRoot<capnp::rpc::Message>().initAbort().setType(
      static_cast<capnp::rpc::Exception::Type>(7));
    p.send(msg);
    CHECK(p.read_error().find("abort with exception type 7")
          != std::string::npos);
  }
  SECTION("in a resolve") {
    stream_pair p;
    capnp::MallocMessageBuilder msg;
    msg.initRoot<capnp::rpc::Message>().initResolve().initException().setType(
      static_cast<capnp::rpc::Exception::Type>(4));
    p.send(msg);
    CHECK(p.read_error().find("resolve with exception type 4")
          != std::string::npos);
  }
  SECTION("echoed inside an 'unimplemented'") {
    stream_pair p;
    capnp::MallocMessageBuilder msg;
    auto inner = msg.initRoot<capnp::rpc::Message>().initUnimplemented();
    inner.initReturn().initException().setType(bad);
    p.send(msg);
    CHECK(p.read_error().find("exception type 65535") != std::string::npos);
  }
  SECTION("but the four defined types pass") {
    stream_pair p;
    for (uint16_t t = 0; t <= 3; ++t) {
      capnp::MallocMessageBuilder msg;
      auto ex
        = msg.initRoot<capnp::rpc::Message>().initReturn().initException();
      ex.setType(static_cast<capnp::rpc::Exception::Type>(t));
      p.send(msg);
      CHECK(p.read_error().empty());
    }
  }
}

TEST_CASE("messages written in one event-loop turn leave in one write",
          "[runtime][stream]") {
  stream_pair p;
  std::vector<kj::Own<capnp::MallocMessageBuilder>> keep;
  kj::Vector<kj::Promise<void>> writes;
  for (int64_t i = 0; i < 100; ++i) {
    auto msg = kj::heap<capnp::MallocMessageBuilder>();
    build_value(*msg, i);
    writes.add(p.stream->writeMessage(nullptr, msg->getSegmentsForOutput()));
    keep.push_back(kj::mv(msg));
  }
  kj::joinPromises(writes.releaseAsArray()).wait(p.io.waitScope);
  // The peer reads them all, in order (waiting runs the batched flush).
  auto peer = p.io.lowLevelProvider->wrapSocketFd(
    p.raw.release(), kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
  for (int64_t i = 0; i < 100; ++i) {
    auto reader = capnp::readMessage(*peer).wait(p.io.waitScope);
    CHECK(reader->getRoot<wire::Value>().getInt64() == i);
  }
  CHECK(p.stream->messages_written() == 100);
  CHECK(p.stream->writes_issued() <= 2);
}

TEST_CASE("messages waiting to be sent leave before a large message is read, "
          "though the event loop never idles",
          "[runtime][stream]") {
  stream_pair p;
  // Larger than the read buffer, and already whole in the socket (whose
  // buffer is made large enough for it).
  int room = 1 << 20;
  REQUIRE(::setsockopt(p.raw.get(), SOL_SOCKET, SO_SNDBUF, &room, sizeof(room))
          == 0);
  std::vector<kj::byte> data(std::size_t{128} << 10, kj::byte{7});
  capnp::MallocMessageBuilder big;
  big.initRoot<wire::Value>().initBytes().setInline(
    capnp::Data::Reader{data.data(), data.size()});
  p.send(big);
  // An answer, say to a stream's chunk: batched until the loop would wait.
  capnp::MallocMessageBuilder answer;
  build_value(answer, 1);
  auto write = p.stream->writeMessage(nullptr, answer.getSegmentsForOutput());
  auto read
    = p.stream->tryReadMessage(nullptr, capnp::ReaderOptions{}, nullptr);
  // A task that queues itself again and again keeps the loop from waiting,
  // as chunks that keep arriving do; it stops once the peer has the answer.
  bool arrived = false;
  int turns = 0;
  kj::Function<kj::Promise<void>()> spin = [&]() -> kj::Promise<void> {
    pollfd pfd{p.raw.get(), POLLIN, 0};
    if (::poll(&pfd, 1, 0) == 1) {
      arrived = true;
      return kj::READY_NOW;
    }
    if (++turns == 10000)
      return kj::READY_NOW;
    return kj::evalLater([&] { return spin(); });
  };
  kj::evalLater([&] { return spin(); }).wait(p.io.waitScope);
  CHECK(arrived);
  KJ_IF_MAYBE (m, read.wait(p.io.waitScope)) {
    CHECK(m->reader->getRoot<wire::Value>().getBytes().getInline().size()
          == data.size());
  } else {
    FAIL("EOF");
  }
  write.wait(p.io.waitScope);
}

TEST_CASE("a message larger than the read buffer goes both ways intact",
          "[runtime][stream]") {
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  auto io = kj::setupAsyncIo();
  validating_stream a{io.lowLevelProvider->wrapUnixSocketFd(
                        sv[0], kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP),
                      stream_limits{}};
  validating_stream b{io.lowLevelProvider->wrapUnixSocketFd(
                        sv[1], kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP),
                      stream_limits{}};
  std::vector<kj::byte> data(3 << 20);
  std::mt19937 rng{1};
  for (auto& x : data)
    x = static_cast<kj::byte>(rng());
  capnp::MallocMessageBuilder msg;
  msg.initRoot<wire::Value>().initBytes().setInline(
    capnp::Data::Reader{data.data(), data.size()});
  auto write = a.writeMessage(nullptr, msg.getSegmentsForOutput());
  auto read = b.tryReadMessage(nullptr, capnp::ReaderOptions{}, nullptr);
  write.wait(io.waitScope);
  auto got = read.wait(io.waitScope);
  KJ_IF_MAYBE (m, got) {
    auto blob = m->reader->getRoot<wire::Value>().getBytes().getInline();
    REQUIRE(blob.size() == data.size());
    CHECK(std::memcmp(blob.begin(), data.data(), data.size()) == 0);
  } else {
    FAIL("EOF");
  }
}

TEST_CASE("file descriptors arrive with exactly the messages that carried them",
          "[runtime][stream]") {
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  auto io = kj::setupAsyncIo();
  stream_limits limits;
  limits.max_fds = 4;
  validating_stream a{io.lowLevelProvider->wrapUnixSocketFd(
                        sv[0], kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP),
                      limits};
  validating_stream b{io.lowLevelProvider->wrapUnixSocketFd(
                        sv[1], kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP),
                      limits};
  // Four pipes; messages 1 and 3 carry fds (one and two), 0 and 2 none.
  int p1[2], p2[2], p3[2];
  REQUIRE(::pipe2(p1, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(p2, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(p3, O_CLOEXEC) == 0);
  std::vector<std::vector<int>> fds{{}, {p1[1]}, {}, {p2[1], p3[1]}};
  std::vector<kj::Own<capnp::MallocMessageBuilder>> keep;
  kj::Vector<kj::Promise<void>> writes;
  for (std::size_t i = 0; i < fds.size(); ++i) {
    auto msg = kj::heap<capnp::MallocMessageBuilder>();
    build_value(*msg, static_cast<int64_t>(i));
    writes.add(a.writeMessage(kj::arrayPtr(fds[i].data(), fds[i].size()),
                              msg->getSegmentsForOutput()));
    keep.push_back(kj::mv(msg));
  }
  kj::joinPromises(writes.releaseAsArray()).wait(io.waitScope);
  for (std::size_t i = 0; i < fds.size(); ++i) {
    auto space = kj::heapArray<kj::AutoCloseFd>(4);
    auto got = b.tryReadMessage(space, capnp::ReaderOptions{}, nullptr)
                 .wait(io.waitScope);
    KJ_IF_MAYBE (m, got) {
      CHECK(m->reader->getRoot<wire::Value>().getInt64()
            == static_cast<int64_t>(i));
      REQUIRE(m->fds.size() == fds[i].size());
      // Each received fd is the write end of the pipe sent with it.
      int read_ends[] = {p1[0], p2[0], p3[0]};
      for (std::size_t k = 0; k < m->fds.size(); ++k) {
        int target = i == 1 ? read_ends[0] : read_ends[1 + k];
        char c = static_cast<char>('a' + i + k);
        REQUIRE(::write(m->fds[k].get(), &c, 1) == 1);
        char got_c = 0;
        REQUIRE(::read(target, &got_c, 1) == 1);
        CHECK(got_c == c);
      }
    } else {
      FAIL("EOF");
    }
  }
  for (int fd : {p1[0], p1[1], p2[0], p2[1], p3[0], p3[1]})
    ::close(fd);
}
