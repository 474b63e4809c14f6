// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The memory allocator of Joy's processes.
///
/// Every Joy program that calls `tune_allocator()` (the daemon, C++ plugins
/// through the SDK, the Python and GPU hosts, joy-bench) runs on mimalloc
/// when Joy is built with it (`JOY_WITH_MIMALLOC`, the default).
///
/// Why not glibc's malloc? A call crosses threads: the kj thread allocates
/// the message it hands a CAF worker, and the worker frees it, and the other
/// way round for the reply. glibc's per-thread caches take a free only into
/// the freeing thread's cache, which never allocates those sizes itself, so
/// past 7 blocks per size every such free takes the allocating thread's
/// arena lock while that thread mallocs under it. With 100 calls in flight
/// into a plugin (B4) that lock was a third of its futex calls. mimalloc
/// hands a block freed by another thread back to its owner without a lock:
/// the plugin's CPU per call went from 15–16 to 11 µs and its futex calls
/// from 0.9 to 0.37 per call (B4: 0.90–1.05 → 1.17–1.20 of raw Cap'n Proto
/// in interleaved runs against a build without it). The price is at start:
/// loading and setting up one more library, and first allocations spread over
/// more fresh pages, which are dear to touch on this VM. A plugin's cold start
/// (B8) took about 2 ms more in interleaved runs against a build without it
/// (17.6–18.3 against 15.5–16.4 ms), and the bridge holds 18 instead of 14 KiB
/// per idle client (B12; docs/benchmarks.md). Steady calls are what a plugin
/// spends its life on, so Joy takes that trade; `-DJOY_WITH_MIMALLOC=OFF`
/// builds with glibc's malloc.
///
/// Built without mimalloc, glibc's malloc is tuned instead: it keeps up to
/// 64 MiB of freed heap instead of handing it back at every turn (trimming
/// and regrowing the kj thread's heap on every burst of calls took a third
/// of that thread), and serves up to 32 MiB from the heap (bytes up to
/// 16 MiB travel inside a call's message; in mappings of their own, every
/// such buffer landed in fresh pages: 8 MiB plugin -> node -> plugin went at
/// 0.04 GB/s, 1.0 GB/s from the heap, B7a.inline).
#pragma once

#include <cstddef>

namespace joy {

/// Sets up the process's allocator; call once, first thing in `main`.
void tune_allocator();

/// From this size on the allocator maps each allocation afresh (glibc's
/// largest mmap threshold, which `tune_allocator` sets; mimalloc gives
/// allocations past half its 32 MiB segments a segment of their own).
constexpr std::size_t heap_mmap_threshold = std::size_t{32} << 20;

} // namespace joy
