// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// `validating_stream`: the `capnp::MessageStream` that every link to an
/// untrusted peer — plugins and, later, other nodes — goes through.
///
/// Reading, it checks the framing before Cap'n Proto sees a byte: the
/// segment count (1..512; Debian's 0.9.2 accepts 0xFFFFFFFF+1 and overruns),
/// the total size against the link's cap, and then, on a reader of our own,
/// that every RPC `Exception.type` in the message is in range (0.9.2
/// crashes stringifying an out-of-range type from a peer). A violation ends
/// the link with a clear error; it never reaches Cap'n Proto.
///
/// It also makes the link cheaper than Cap'n Proto's own stream: reads are
/// buffered, so several small messages cost one `recvmsg`, and writes issued
/// in one turn of the event loop leave in one `sendmsg`.
///
/// File descriptors (the shm arm) keep working. The sender sends a message
/// that carries fds in a `sendmsg` of its own; Linux then ends the reader's
/// `recvmsg` right after that message's first chunk, so the fds belong to
/// the one message that starts in the bytes read and does not end before
/// them.
#pragma once

#include <cstdint>
#include <deque>

#include <kj/io.h>

#include <capnp/message.h>
#include <capnp/serialize-async.h>
#include <kj/async-io.h>
#include <kj/debug.h>
#include <kj/vector.h>

namespace joy {

/// Per-link limits.
struct stream_limits {
  /// Largest message accepted or sent, in words (default 64 MiB, as Cap'n
  /// Proto's own traversal limit).
  uint64_t max_message_words = uint64_t{8} << 20;
  /// Largest segment table accepted.
  uint32_t max_segments = 512;
  /// Most fds accepted per message; 0 refuses fd passing.
  uint32_t max_fds = 0;
  /// Unanswered incoming calls may hold at most this many words of
  /// parameters; beyond it the link stops reading (backpressure) instead of
  /// buffering without bound.
  uint64_t flow_limit_words = uint64_t{16} << 20;
};

/// Reader options matching `limits`, for the RPC system on this link: the
/// traversal limit equals the message cap, the nesting limit leaves room for
/// values nested `max_value_depth` deep inside an RPC message.
capnp::ReaderOptions reader_options(const stream_limits& limits);

/// Checks a complete message's RPC content: every `Exception.type` must be
/// one of the four Cap'n Proto defines. Returns a description of the first
/// violation, or an empty string. Exposed for tests and fuzzing.
kj::String check_rpc_message(capnp::MessageReader& reader);

class validating_stream final : public capnp::MessageStream {
public:
  validating_stream(kj::Own<kj::AsyncCapabilityStream> stream,
                    stream_limits limits);

  ~validating_stream() noexcept(false);

  // -- capnp::MessageStream ---------------------------------------------------

  kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>>
  tryReadMessage(kj::ArrayPtr<kj::AutoCloseFd> fd_space,
                 capnp::ReaderOptions options,
                 kj::ArrayPtr<capnp::word> scratch) override;

  kj::Promise<void> writeMessage(
    kj::ArrayPtr<const int> fds,
    kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments) override;

  kj::Promise<void> writeMessages(
    kj::ArrayPtr<kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>>> messages)
    override;

  kj::Maybe<int> getSendBufferSize() override;

  kj::Promise<void> end() override;

  // -- observers --------------------------------------------------------------

  /// Number of write syscalls issued so far (batching shows as fewer writes
  /// than messages).
  uint64_t writes_issued() const noexcept {
    return writes_issued_;
  }

  uint64_t messages_written() const noexcept {
    return messages_written_;
  }

  /// Why the peer was cut off, if it was (for the link's exit report).
  kj::Maybe<kj::StringPtr> violation_reason() const noexcept {
    KJ_IF_MAYBE (v, violation_) {
      return kj::StringPtr{*v};
    }
    return nullptr;
  }

private:
  struct pending_fds {
    uint64_t chunk_end; // stream offset just past the read that carried them
    kj::Array<kj::AutoCloseFd> fds;
  };

  struct batch {
    // Bytes copied in (framing and small messages) and pieces in order; a
    // piece with `external` set points at caller memory kept alive until the
    // batch is written.
    struct piece {
      const kj::byte* external;
      std::size_t offset; // into `bytes`, when not external
      std::size_t size;
    };
    kj::Vector<kj::byte> bytes;
    kj::Vector<piece> pieces;
    kj::Vector<kj::Own<kj::PromiseFulfiller<void>>> waiters;
    std::size_t total = 0;
    std::size_t messages = 0;
  };

  kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>>
  read_loop(kj::ArrayPtr<kj::AutoCloseFd> fd_space,
            capnp::ReaderOptions options);

  kj::Promise<void> fill(std::size_t at_least);

  kj::Promise<kj::Maybe<capnp::MessageReaderAndFds>>
  read_large(kj::ArrayPtr<kj::AutoCloseFd> fd_space,
             capnp::ReaderOptions options, kj::Array<capnp::word> body,
             kj::Array<uint32_t> sizes, std::size_t have, uint64_t start);

  kj::Maybe<capnp::MessageReaderAndFds>
  finish(kj::ArrayPtr<kj::AutoCloseFd> fd_space, capnp::ReaderOptions options,
         kj::Array<capnp::word> body, kj::ArrayPtr<const uint32_t> sizes,
         uint64_t start, uint64_t end);

  [[noreturn]] void violation(kj::StringPtr what);

  void
  append_message(kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments,
                 bool copy);
  void schedule_flush();
  void flush_now();
  kj::Promise<void> write_batch(kj::Own<batch> b);
  kj::Promise<void>
  write_with_fds(kj::ArrayPtr<const int> fds,
                 kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments);

  kj::Own<kj::AsyncCapabilityStream> stream_;
  stream_limits limits_;

  // -- reading ----------------------------------------------------------------
  kj::Array<kj::byte> rx_;
  std::size_t rx_begin_ = 0;
  std::size_t rx_end_ = 0;
  uint64_t rx_total_ = 0; // bytes received so far
  std::deque<pending_fds> fds_;
  bool eof_ = false;
  kj::Maybe<kj::String> violation_;
  kj::Canceler read_canceler_;

  // -- writing ----------------------------------------------------------------
  kj::Own<batch> current_;
  bool flush_scheduled_ = false;
  kj::Promise<void> writes_ = kj::READY_NOW; // tail of the write chain
  kj::Maybe<kj::Exception> write_error_;
  std::size_t queued_ = 0; // bytes accepted but not yet written
  uint64_t writes_issued_ = 0;
  uint64_t messages_written_ = 0;
  kj::Promise<void> flush_task_ = kj::READY_NOW;
};

} // namespace joy
