// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// How one process moves binary data too large to travel inline (DESIGN
/// §3). Set once per kj thread (`kj_context::set_large_data`); the codecs
/// of that thread follow it (value_codec.hpp).
///
/// * A plugin with a pool sends large bytes by the **shm arm**: bytes already
///   in a pool block go as that block, zero-copy; large heap bytes are copied
///   into one first. It maps blocks it receives.
/// * A plugin without a pool (its node runs `--large-data=stream`, or the
///   data must leave the host) sends them by the **stream arm**: the
///   receiver pulls them in chunks into memory of its own.
/// * A node **relays**: it passes shm blocks and streams on as the
///   capabilities they are, never mapping or buffering the bytes (but for
///   its links to other hosts and its bridge, which must read them:
///   docs/design/large-data.md). A stream that arrives from another host
///   **lands** in a block of the node's own pool instead, where the reader
///   asked for it and the pool has room: the plugin it goes to maps that
///   block rather than pulling every chunk through its socket.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace joy {

class shm_pool;
class shm_mapping_cache;

struct large_data_policy {
  /// Pass large bytes on without reading them (a node).
  bool relay = false;
  /// Where large bytes go before they are sent; null: the stream arm.
  std::shared_ptr<shm_pool> pool;
  /// Blocks received lately (a node: blocks it had to read) stay mapped
  /// here; null: map every time.
  std::shared_ptr<shm_mapping_cache> mappings;
  /// A node's pool for streams from other hosts (value_codec::landing);
  /// null: they are relayed as capabilities.
  std::shared_ptr<shm_pool> landing;
  /// Bytes of landed blocks in use at once; a stream that would pass it is
  /// relayed instead, and its plugin pulls it into its own memory.
  std::size_t landing_max_bytes = std::size_t{2} << 30;
  /// Bytes that already sit in shared memory go by the shm arm from this
  /// size on (smaller ones are cheaper inline than an fd).
  std::size_t shm_min_bytes = std::size_t{64} << 10;
  /// Largest stream a receiver accepts (it allocates the declared size).
  uint64_t max_stream_bytes = uint64_t{16} << 30;
  /// Bytes per chunk of the stream arm.
  std::size_t chunk_bytes = std::size_t{1} << 20;
  /// Bytes of a stream in flight before its sender waits for answers: eight
  /// chunks keep a link busy instead of one chunk per round trip (more made
  /// 256 MiB between nodes slower, B7b).
  std::size_t stream_window_bytes = std::size_t{8} << 20;
};

/// A node's policy: it relays, and keeps the last blocks it had to read
/// (for another host or a browser) mapped, up to 4 of them and 1 GiB. A
/// block mapped afresh took three times the CPU to send (B7b). With
/// `shared_memory` (its plugins use the shm arm), streams from other hosts
/// land in a pool of its own: up to 2 GiB of landed blocks in use and 1 GiB
/// of freed ones kept, or a quarter and an eighth of `memory_bytes` (the
/// machine's) where that is less. Landed memory is the node's, not its
/// plugins', so it must fit the machine.
large_data_policy node_large_data_policy(bool shared_memory = true,
                                         uint64_t memory_bytes = UINT64_MAX);

} // namespace joy
