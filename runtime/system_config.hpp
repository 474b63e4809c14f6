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
/// Allocations from 4 MiB on still get their own mappings, returned on free.
void tune_allocator();

} // namespace joy
