// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The shm arm of large data (DESIGN §3): blocks of sealed memfd memory that
/// plugins on one host share instead of copying.
///
/// A plugin allocates from its `shm_pool` (reached through
/// `joy::context::allocate`), fills the block and sends it. The wire carries
/// the block as a `SharedMemory` capability whose server hands over the
/// memfd (value_codec.hpp); a relaying node passes the capability on without
/// mapping it; the receiving plugin maps the fd read-only after checking its
/// seals and size. The block returns to the pool when the last holder, in
/// any process, lets go.
///
/// Blocks are pre-faulted when made, so filling a fresh block costs no page
/// faults, and a pool keeps freed blocks for the next allocation of a
/// similar size.
///
/// ```
/// auto out = pool->allocate(n);          // caf::expected<writable_buffer>
/// std::memcpy(out->data(), src, n);
/// joy::buffer b = std::move(*out).freeze();
/// ```
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "runtime/value.hpp"

namespace joy {

/// A memfd mapped into this process. Sealed against growing and shrinking,
/// so a mapping can never fault past the end.
class shm_block {
public:
  /// Makes a block of at least `size` bytes, mapped read-write and
  /// pre-faulted.
  static caf::expected<std::shared_ptr<shm_block>> create(std::size_t size);

  /// Maps a block another process sent: the fd must be a memfd sealed
  /// against shrinking (else the sender could truncate it under our reads)
  /// and hold at least `offset + size` bytes. Maps it read-only; `fd` is
  /// duplicated, the caller keeps its own.
  static caf::expected<std::shared_ptr<const shm_block>>
  map(int fd, uint64_t offset, uint64_t size);

  shm_block(const shm_block&) = delete;
  shm_block& operator=(const shm_block&) = delete;

  ~shm_block();

  int fd() const noexcept {
    return fd_;
  }

  std::byte* data() const noexcept {
    return base_;
  }

  std::size_t size() const noexcept {
    return size_;
  }

private:
  shm_block(int fd, std::byte* base, std::size_t size) noexcept
    : fd_(fd), base_(base), size_(size) {
    // nop
  }

  int fd_;
  std::byte* base_;
  std::size_t size_;
};

/// The blocks a process received lately, kept mapped: senders reuse their
/// pool's blocks, so the next array usually arrives in a block mapped
/// already, which saves mapping and unmapping it (for 1 GiB, more time than
/// copying it). Bounded by blocks and bytes; the oldest go first. Thread-safe.
class shm_mapping_cache {
public:
  explicit shm_mapping_cache(std::size_t max_bytes = std::size_t{2} << 30,
                             std::size_t max_blocks = 8)
    : max_bytes_(max_bytes), max_blocks_(max_blocks) {
    // nop
  }

  /// As `shm_block::map`, from the cache when `fd` is a block seen before.
  caf::expected<std::shared_ptr<const shm_block>> map(int fd, uint64_t offset,
                                                      uint64_t size);

  std::size_t size() const;

private:
  struct entry {
    uint64_t dev;
    uint64_t ino;
    std::shared_ptr<const shm_block> block;
  };

  std::size_t max_bytes_;
  std::size_t max_blocks_;
  mutable std::mutex mtx_;
  std::vector<entry> entries_; // most recently used last
};

/// A buffer origin inside a shared-memory block: the wire sends such bytes
/// by the shm arm. `block()` is mapped in this process.
class shm_origin : public buffer_origin {
public:
  virtual const shm_block& block() const noexcept = 0;
};

/// Bytes being written by their owner before they are sent: `freeze` makes
/// the immutable `buffer`. Backed by a pool block, or by the heap where a
/// plugin has no pool (shared memory turned off on its node).
class writable_buffer {
public:
  writable_buffer() = default;

  /// Heap memory of `size` bytes (uninitialised).
  static caf::expected<writable_buffer> on_heap(std::size_t size);

  std::byte* data() const noexcept {
    return data_;
  }

  std::size_t size() const noexcept {
    return size_;
  }

  /// True when the bytes live in shared memory.
  bool shared() const noexcept {
    return origin_ != nullptr;
  }

  /// The bytes, immutable from now on.
  buffer freeze() &&;

private:
  friend class shm_pool;

  std::shared_ptr<void> owner_;
  std::shared_ptr<const buffer_origin> origin_;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

/// A pool of shared-memory blocks for one process. Thread-safe: plugin
/// actors allocate, the kj thread copies large heap buffers into blocks.
class shm_pool : public std::enable_shared_from_this<shm_pool> {
public:
  struct options {
    /// Blocks are whole multiples of this (2 MiB: huge-page friendly).
    std::size_t granularity = std::size_t{2} << 20;
    /// Free blocks kept for reuse, in bytes; beyond it they are unmapped.
    std::size_t max_cached = std::size_t{1} << 30;
  };

  static std::shared_ptr<shm_pool> make(options opts);

  static std::shared_ptr<shm_pool> make() {
    return make(options{});
  }

  /// `size` bytes in a block of this pool: a cached block when one of at
  /// least `size` and at most twice that is free, else a new one.
  ///
  /// `tenant` names who the bytes are for. A freed block is reused only for
  /// the tenant it last served: whoever received a block's fd can keep it,
  /// and must not see what the block holds next for someone else. A
  /// plugin's own pool has one tenant; a node's landing pool has one per
  /// plugin (value_codec::landing).
  caf::expected<writable_buffer> allocate(std::size_t size,
                                          const std::string& tenant = {});

  /// A copy of `src` in a block of this pool.
  caf::expected<buffer> copy_of(const buffer& src);

  struct counters {
    uint64_t blocks_made = 0;
    uint64_t blocks_reused = 0;
    std::size_t bytes_cached = 0;
    std::size_t blocks_in_use = 0;
    /// Bytes of the blocks lent out (whole blocks, not what was asked).
    std::size_t bytes_in_use = 0;
  };

  counters stats() const;

  const options& config() const noexcept {
    return opts_;
  }

private:
  explicit shm_pool(options opts) : opts_(opts) {
    // nop
  }

  class lease;

  struct free_block {
    std::shared_ptr<shm_block> block;
    std::string tenant;
  };

  void give_back(std::shared_ptr<shm_block> block, std::string tenant);

  options opts_;
  mutable std::mutex mtx_;
  std::vector<free_block> free_; // oldest first
  counters stats_;
};

} // namespace joy
