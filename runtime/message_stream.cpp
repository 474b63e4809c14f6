// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "runtime/message_stream.hpp"

#include <sys/socket.h>

#include <cstring>

#include <capnp/rpc.capnp.h>
#include <kj/debug.h>
#include <kj/io.h>

#include "runtime/value.hpp"

namespace joy {

namespace {

constexpr std::size_t rx_capacity = 64 * 1024;

/// Messages up to this size are copied into the outgoing batch; larger ones
/// are written from the caller's memory.
constexpr std::size_t copy_threshold = 32 * 1024;

/// A batch this large leaves at once instead of waiting for the loop to
/// go idle.
constexpr std::size_t batch_limit = 256 * 1024;

/// Above this many queued bytes, writers wait for the socket (backpressure).
constexpr std::size_t queue_limit = 4 * 1024 * 1024;

uint32_t load_le32(const kj::byte* p) noexcept {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8
         | static_cast<uint32_t>(p[2]) << 16
         | static_cast<uint32_t>(p[3]) << 24;
}

void store_le32(kj::byte* p, uint32_t x) noexcept {
  p[0] = static_cast<kj::byte>(x);
  p[1] = static_cast<kj::byte>(x >> 8);
  p[2] = static_cast<kj::byte>(x >> 16);
  p[3] = static_cast<kj::byte>(x >> 24);
}

std::size_t header_bytes(uint64_t segments) noexcept {
  // u32 (count - 1), u32 per segment, padded to a word.
  return static_cast<std::size_t>(((4 + 4 * segments) + 7) & ~uint64_t{7});
}

kj::String check_rpc(capnp::rpc::Message::Reader msg, bool nested) {
  auto bad = [](capnp::rpc::Exception::Reader ex) {
    return static_cast<uint16_t>(ex.getType()) > 3;
  };
  auto type_of = [](capnp::rpc::Exception::Reader ex) {
    return static_cast<uint16_t>(ex.getType());
  };
  switch (msg.which()) {
    case capnp::rpc::Message::ABORT:
      if (bad(msg.getAbort()))
        return kj::str("abort with exception type ", type_of(msg.getAbort()));
      break;
    case capnp::rpc::Message::RETURN: {
      auto ret = msg.getReturn();
      if (ret.isException() && bad(ret.getException()))
        return kj::str("return with exception type ",
                       type_of(ret.getException()));
      break;
    }
    case capnp::rpc::Message::RESOLVE: {
      auto res = msg.getResolve();
      if (res.isException() && bad(res.getException()))
        return kj::str("resolve with exception type ",
                       type_of(res.getException()));
      break;
    }
    case capnp::rpc::Message::UNIMPLEMENTED:
      // The peer echoes one of our messages; check the echo too, once.
      if (nested)
        return kj::str("nested 'unimplemented' message");
      return check_rpc(msg.getUnimplemented(), true);
    default:
      break;
  }
  return nullptr;
}

} // namespace

capnp::ReaderOptions reader_options(const stream_limits& limits) {
  capnp::ReaderOptions opts;
  opts.traversalLimitInWords = limits.max_message_words;
  // Up to three pointer levels per value level (a map: Value -> entry list
  // -> Entry -> Value), plus the RPC envelope. Values deeper than
  // max_value_depth are refused by the value decoder with a clear error.
  opts.nestingLimit = static_cast<int>(3 * max_value_depth + 16);
  return opts;
}

kj::String check_rpc_message(capnp::MessageReader& reader) {
  return check_rpc(reader.getRoot<capnp::rpc::Message>(), false);
}

validating_stream::validating_stream(kj::Own<kj::AsyncCapabilityStream> stream,
                                     stream_limits limits)
  : stream_(kj::mv(stream)),
    limits_(limits),
    rx_(kj::heapArray<kj::byte>(rx_capacity)),
    current_(kj::heap<batch>()) {
  // nop
}

validating_stream::~validating_stream() noexcept(false) {
  // nop
}

// -- reading ------------------------------------------------------------------

void validating_stream::violation(kj::StringPtr what) {
  if (violation_ == nullptr)
    violation_ = kj::str(what);
  kj::throwFatalException(
    KJ_EXCEPTION(FAILED, "protocol violation by peer", what));
}

kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>>
validating_stream::tryReadMessage(kj::ArrayPtr<kj::AutoCloseFd> fd_space,
                                  capnp::ReaderOptions options,
                                  kj::ArrayPtr<capnp::word>) {
  KJ_IF_MAYBE (err, write_error_) {
    return kj::cp(*err);
  }
  return read_canceler_.wrap(
    kj::evalNow([&] { return read_loop(fd_space, options); }));
}

kj::Promise<void> validating_stream::fill(std::size_t at_least) {
  auto have = rx_end_ - rx_begin_;
  if (have >= at_least)
    return kj::READY_NOW;
  if (eof_)
    return KJ_EXCEPTION(
      DISCONNECTED, "peer closed the connection in the middle of a message");
  if (rx_begin_ + at_least > rx_.size()) {
    // Compact: move the partial message to the front.
    std::memmove(rx_.begin(), rx_.begin() + rx_begin_, have);
    rx_begin_ = 0;
    rx_end_ = have;
  }
  // One recvmsg per read (minBytes 1), so fds can be matched to messages.
  auto max_fds = limits_.max_fds;
  auto fd_buf = kj::heapArray<kj::AutoCloseFd>(max_fds);
  auto* buf_ptr = fd_buf.begin();
  return stream_
    ->tryReadWithFds(rx_.begin() + rx_end_, 1, rx_.size() - rx_end_, buf_ptr,
                     max_fds)
    .then(
      [this, at_least, fd_buf = kj::mv(fd_buf)](
        kj::AsyncCapabilityStream::ReadResult r) mutable -> kj::Promise<void> {
        if (r.byteCount == 0) {
          eof_ = true;
          if (rx_end_ == rx_begin_)
            return kj::READY_NOW; // clean end at a message boundary
          return KJ_EXCEPTION(
            DISCONNECTED,
            "peer closed the connection in the middle of a message");
        }
        rx_end_ += r.byteCount;
        rx_total_ += r.byteCount;
        if (r.capCount > 0) {
          auto fds = kj::heapArray<kj::AutoCloseFd>(r.capCount);
          for (std::size_t i = 0; i < r.capCount; ++i)
            fds[i] = kj::mv(fd_buf[i]);
          fds_.push_back(pending_fds{rx_total_, kj::mv(fds)});
        }
        return fill(at_least);
      });
}

kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>>
validating_stream::read_loop(kj::ArrayPtr<kj::AutoCloseFd> fd_space,
                             capnp::ReaderOptions options) {
  auto have = rx_end_ - rx_begin_;
  if (have == 0 && eof_)
    return kj::Maybe<capnp::MessageReaderAndFds>(nullptr);
  if (have < 8) {
    return fill(8).then([this, fd_space, options]() {
      if (eof_ && rx_end_ == rx_begin_)
        return kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>>(
          kj::Maybe<capnp::MessageReaderAndFds>(nullptr));
      return read_loop(fd_space, options);
    });
  }
  const kj::byte* p = rx_.begin() + rx_begin_;
  uint64_t segments = uint64_t{load_le32(p)} + 1;
  if (segments > limits_.max_segments)
    violation(kj::str("message with ", segments, " segments (at most ",
                      limits_.max_segments, " allowed)"));
  auto hdr = header_bytes(segments);
  if (have < hdr)
    return fill(hdr).then(
      [this, fd_space, options]() { return read_loop(fd_space, options); });
  auto sizes = kj::heapArray<uint32_t>(segments);
  uint64_t total = 0;
  for (uint64_t i = 0; i < segments; ++i) {
    sizes[i] = load_le32(p + 4 + 4 * i);
    total += sizes[i];
  }
  if (total > limits_.max_message_words)
    violation(kj::str("message of ", total * 8,
                      " bytes exceeds the link's limit of ",
                      limits_.max_message_words * 8, " bytes"));
  if (total == 0)
    violation("empty message");
  auto msg_bytes = hdr + total * sizeof(capnp::word);
  uint64_t start = rx_total_ - have;
  if (have >= msg_bytes) {
    auto body = kj::heapArray<capnp::word>(total);
    std::memcpy(body.begin(), p + hdr, total * sizeof(capnp::word));
    rx_begin_ += msg_bytes;
    if (rx_begin_ == rx_end_)
      rx_begin_ = rx_end_ = 0;
    return finish(fd_space, options, kj::mv(body), sizes, start,
                  start + msg_bytes);
  }
  if (msg_bytes <= rx_.size())
    return fill(msg_bytes).then(
      [this, fd_space, options]() { return read_loop(fd_space, options); });
  // Too big for the buffer: read the rest straight into the message. What
  // this side has to send goes first: reading a large message takes a
  // while, and while messages keep arriving the loop never waits, so the
  // batch would wait too. The answers to a stream's chunks are what lets
  // its sender send more (B7b stalled on them, its window drained).
  flush_now();
  auto body = kj::heapArray<capnp::word>(total);
  auto body_have = have - hdr;
  std::memcpy(body.begin(), p + hdr, body_have);
  rx_begin_ = rx_end_ = 0;
  return read_large(fd_space, options, kj::mv(body), kj::mv(sizes), body_have,
                    start);
}

kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>>
validating_stream::read_large(kj::ArrayPtr<kj::AutoCloseFd> fd_space,
                              capnp::ReaderOptions options,
                              kj::Array<capnp::word> body,
                              kj::Array<uint32_t> sizes, std::size_t have,
                              uint64_t start) {
  auto bytes = body.asBytes();
  if (have == bytes.size()) {
    auto end = start + header_bytes(sizes.size()) + bytes.size();
    return finish(fd_space, options, kj::mv(body), sizes, start, end);
  }
  auto max_fds = limits_.max_fds;
  auto fd_buf = kj::heapArray<kj::AutoCloseFd>(max_fds);
  auto* buf_ptr = fd_buf.begin();
  auto* dst = bytes.begin() + have;
  auto want = bytes.size() - have;
  return stream_->tryReadWithFds(dst, 1, want, buf_ptr, max_fds)
    .then([this, fd_space, options, body = kj::mv(body), sizes = kj::mv(sizes),
           have, start, fd_buf = kj::mv(fd_buf)](
            kj::AsyncCapabilityStream::ReadResult r) mutable
          -> kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>> {
      if (r.byteCount == 0) {
        eof_ = true;
        return KJ_EXCEPTION(
          DISCONNECTED,
          "peer closed the connection in the middle of a message");
      }
      rx_total_ += r.byteCount;
      if (r.capCount > 0) {
        auto fds = kj::heapArray<kj::AutoCloseFd>(r.capCount);
        for (std::size_t i = 0; i < r.capCount; ++i)
          fds[i] = kj::mv(fd_buf[i]);
        fds_.push_back(pending_fds{rx_total_, kj::mv(fds)});
      }
      return read_large(fd_space, options, kj::mv(body), kj::mv(sizes),
                        have + r.byteCount, start);
    });
}

kj::Maybe<capnp::MessageReaderAndFds> validating_stream::finish(
  kj::ArrayPtr<kj::AutoCloseFd> fd_space, capnp::ReaderOptions options,
  kj::Array<capnp::word> body, kj::ArrayPtr<const uint32_t> sizes,
  uint64_t start, uint64_t end) {
  auto segs = kj::heapArray<kj::ArrayPtr<const capnp::word>>(sizes.size());
  std::size_t offset = 0;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    segs[i] = body.slice(offset, offset + sizes[i]);
    offset += sizes[i];
  }
  // Our own reader, for the checks, with the link's limits.
  if (options.traversalLimitInWords > limits_.max_message_words)
    options.traversalLimitInWords = limits_.max_message_words;
  auto reader = kj::heap<capnp::SegmentArrayMessageReader>(
    kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>>(segs.begin(),
                                                        segs.size()),
    options);
  kj::String problem;
  KJ_IF_MAYBE (ex, kj::runCatchingExceptions(
                     [&] { problem = check_rpc_message(*reader); })) {
    violation(kj::str("malformed message: ", ex->getDescription()));
  }
  if (problem != nullptr)
    violation(problem);
  // Match fds: those of a read that ended inside or at the end of this
  // message belong to it; older ones belonged to no message (a peer that
  // sent fds without a message) and are closed.
  std::size_t nfds = 0;
  while (!fds_.empty() && fds_.front().chunk_end <= start)
    fds_.pop_front();
  if (!fds_.empty() && fds_.front().chunk_end <= end) {
    auto& bundle = fds_.front().fds;
    for (auto& fd : bundle) {
      if (nfds < fd_space.size())
        fd_space[nfds++] = kj::mv(fd);
    }
    fds_.pop_front();
  }
  capnp::MessageReaderAndFds result{
    kj::Own<capnp::MessageReader>(kj::mv(reader))
      .attach(kj::mv(body), kj::mv(segs)),
    fd_space.slice(0, nfds)};
  return kj::mv(result);
}

// -- writing ------------------------------------------------------------------

void validating_stream::append_message(
  kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments, bool copy) {
  auto& b = *current_;
  auto hdr = header_bytes(segments.size());
  auto at = b.bytes.size();
  b.bytes.resize(at + hdr);
  auto* p = b.bytes.begin() + at;
  std::memset(p, 0, hdr);
  store_le32(p, static_cast<uint32_t>(segments.size() - 1));
  for (std::size_t i = 0; i < segments.size(); ++i)
    store_le32(p + 4 + 4 * i, static_cast<uint32_t>(segments[i].size()));
  std::size_t total = hdr;
  if (copy) {
    for (auto seg : segments) {
      auto bytes = seg.asBytes();
      auto off = b.bytes.size();
      b.bytes.resize(off + bytes.size());
      std::memcpy(b.bytes.begin() + off, bytes.begin(), bytes.size());
      total += bytes.size();
    }
    b.pieces.add(batch::piece{nullptr, at, total});
  } else {
    b.pieces.add(batch::piece{nullptr, at, hdr});
    for (auto seg : segments) {
      auto bytes = seg.asBytes();
      b.pieces.add(batch::piece{bytes.begin(), 0, bytes.size()});
      total += bytes.size();
    }
  }
  b.total += total;
  ++b.messages;
  queued_ += total;
}

void validating_stream::schedule_flush() {
  if (current_->total >= batch_limit) {
    flush_now();
    return;
  }
  if (!flush_scheduled_) {
    flush_scheduled_ = true;
    // Runs once the event queue is otherwise empty: everything the RPC
    // system sends in this turn leaves in one write.
    flush_task_ = kj::evalLast([this] {
                    flush_scheduled_ = false;
                    flush_now();
                  }).eagerlyEvaluate(nullptr);
  }
}

void validating_stream::flush_now() {
  if (current_->pieces.empty())
    return;
  auto b = kj::mv(current_);
  current_ = kj::heap<batch>();
  writes_ = writes_
              .then([this, b = kj::mv(b)]() mutable {
                return write_batch(kj::mv(b));
              })
              .eagerlyEvaluate([this](kj::Exception&& ex) {
                if (write_error_ == nullptr) {
                  write_error_ = kj::cp(ex);
                  // Nobody checks write failures; surface them as read
                  // failures so the RPC system notices.
                  read_canceler_.cancel(ex);
                }
              });
}

kj::Promise<void> validating_stream::write_batch(kj::Own<batch> b) {
  KJ_IF_MAYBE (err, write_error_) {
    for (auto& w : b->waiters)
      w->reject(kj::cp(*err));
    return kj::READY_NOW;
  }
  auto pieces = kj::heapArray<kj::ArrayPtr<const kj::byte>>(b->pieces.size());
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    auto& pc = b->pieces[i];
    pieces[i] = pc.external != nullptr
                  ? kj::arrayPtr(pc.external, pc.size)
                  : kj::arrayPtr(b->bytes.begin() + pc.offset, pc.size);
  }
  ++writes_issued_;
  messages_written_ += b->messages;
  auto size = b->total;
  auto promise = stream_->write(pieces);
  return promise.attach(kj::mv(pieces))
    .then(
      [this, b = kj::mv(b), size]() mutable {
        queued_ -= size;
        for (auto& w : b->waiters)
          w->fulfill();
      },
      [this, size](kj::Exception&& ex) {
        queued_ -= size;
        kj::throwFatalException(kj::mv(ex));
      });
}

kj::Promise<void> validating_stream::write_with_fds(
  kj::ArrayPtr<const int> fds,
  kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments) {
  // A message with fds leaves in a sendmsg of its own (see the file comment).
  flush_now();
  auto hdr_bytes = header_bytes(segments.size());
  auto hdr = kj::heapArray<kj::byte>(hdr_bytes);
  std::memset(hdr.begin(), 0, hdr_bytes);
  store_le32(hdr.begin(), static_cast<uint32_t>(segments.size() - 1));
  for (std::size_t i = 0; i < segments.size(); ++i)
    store_le32(hdr.begin() + 4 + 4 * i,
               static_cast<uint32_t>(segments[i].size()));
  auto more = kj::heapArray<kj::ArrayPtr<const kj::byte>>(segments.size());
  for (std::size_t i = 0; i < segments.size(); ++i)
    more[i] = segments[i].asBytes();
  auto paf = kj::newPromiseAndFulfiller<void>();
  writes_ = writes_
              .then([this, fds, hdr = kj::mv(hdr), more = kj::mv(more),
                     f = kj::mv(paf.fulfiller)]() mutable {
                KJ_IF_MAYBE (err, write_error_) {
                  f->reject(kj::cp(*err));
                  return kj::Promise<void>(kj::READY_NOW);
                }
                ++writes_issued_;
                ++messages_written_;
                auto* fp = f.get();
                return stream_->writeWithFds(hdr, more, fds)
                  .attach(kj::mv(hdr), kj::mv(more))
                  .then([fp]() { fp->fulfill(); },
                        [fp](kj::Exception&& ex) {
                          fp->reject(kj::cp(ex));
                          kj::throwFatalException(kj::mv(ex));
                        })
                  .attach(kj::mv(f));
              })
              .eagerlyEvaluate([this](kj::Exception&& ex) {
                if (write_error_ == nullptr) {
                  write_error_ = kj::cp(ex);
                  read_canceler_.cancel(ex);
                }
              });
  return kj::mv(paf.promise);
}

kj::Promise<void> validating_stream::writeMessage(
  kj::ArrayPtr<const int> fds,
  kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments) {
  KJ_IF_MAYBE (err, write_error_) {
    return kj::cp(*err);
  }
  uint64_t words = 0;
  for (auto seg : segments)
    words += seg.size();
  KJ_REQUIRE(words <= limits_.max_message_words,
             "message exceeds the link's size limit", words * 8,
             limits_.max_message_words * 8);
  if (fds.size() > 0)
    return write_with_fds(fds, segments);
  auto bytes = header_bytes(segments.size()) + words * sizeof(capnp::word);
  bool copy = bytes <= copy_threshold;
  // Resolve at once when the bytes were copied and the queue is short;
  // otherwise (caller memory in the batch, or backpressure) when written.
  bool wait = !copy || queued_ + bytes > queue_limit;
  append_message(segments, copy);
  kj::Promise<void> result = kj::READY_NOW;
  if (wait) {
    auto paf = kj::newPromiseAndFulfiller<void>();
    current_->waiters.add(kj::mv(paf.fulfiller));
    result = kj::mv(paf.promise);
  }
  schedule_flush();
  return result;
}

kj::Promise<void> validating_stream::writeMessages(
  kj::ArrayPtr<kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>>> messages) {
  kj::Promise<void> last = kj::READY_NOW;
  for (auto m : messages)
    last = writeMessage(nullptr, m);
  return last;
}

kj::Maybe<int> validating_stream::getSendBufferSize() {
  // Cap'n Proto sizes its window for streaming calls by this (the stream
  // arm paces itself: large_data_policy::stream_window_bytes).
  KJ_IF_MAYBE (fd, stream_->getFd()) {
    int size = 0;
    socklen_t len = sizeof(size);
    if (::getsockopt(*fd, SOL_SOCKET, SO_SNDBUF, &size, &len) == 0)
      return size;
  }
  return nullptr;
}

kj::Promise<void> validating_stream::end() {
  flush_now();
  auto done = kj::mv(writes_);
  writes_ = kj::READY_NOW;
  return done.then([this] { stream_->shutdownWrite(); });
}

} // namespace joy
