// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The CAF settings every Joy process uses.
///
/// Why `scheduler.policy=sharing`? On 2 vCPUs the work-stealing scheduler
/// adds 64–78 µs per hop (idle workers sleep-poll); the sharing scheduler
/// wakes a worker through a condition variable, ~10 µs per hop (DESIGN §5).
#pragma once

#include <cstddef>

#include <caf/actor_system_config.hpp>

namespace joy {

/// Applies Joy's settings to `cfg`: the sharing scheduler with `workers`
/// threads (0 keeps CAF's default of one per core) and Joy's message types.
void configure_actor_system(caf::actor_system_config& cfg, std::size_t workers);

/// Keeps freed heap memory in the process instead of handing it back to the
/// kernel at every turn; call once, first thing in `main`.
///
/// glibc gives the top of a thread's heap back (madvise, mprotect) as soon
/// as 128 KiB of it are free, and takes it again (page faults) on the next
/// burst. The kj thread and CAF's workers allocate and free a message's
/// buffers on every call, so under load a plugin spent a third of its kj
/// thread's time in malloc's trimming and growing: B4 (100 calls in flight)
/// went from about 0.5 to 0.7 of raw Cap'n Proto once up to 4 MiB stay.
///
/// Large messages need more: bytes up to 16 MiB travel inside a call's
/// message, and the node decodes and re-encodes them on the way. With
/// buffers from 4 MiB on in mappings of their own, every such buffer landed
/// in fresh pages, and first touches are slow on VMs like ours (a
/// paravirtualized guest with virtio-balloon, each fault a trip to the
/// hypervisor): 8 MiB
/// plugin -> node -> plugin went at 0.04 GB/s. So allocations up to glibc's
/// limit of 32 MiB come from the heap, and up to 64 MiB of its free top is
/// kept: 1.0 GB/s (B7a.inline). The price is that a process which once
/// handled large messages keeps up to 64 MiB per arena it used for them.
void tune_allocator();

/// From this size on malloc maps each allocation afresh (glibc's largest
/// mmap threshold, which `tune_allocator` sets).
constexpr std::size_t heap_mmap_threshold = std::size_t{32} << 20;

} // namespace joy
