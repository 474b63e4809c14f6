// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// B11's baselines, straight on the CUDA runtime (b11_cuda.cu; built only
/// with CUDA): what the gpu service's path is compared with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace joy::bench {

/// Launches an empty kernel on a stream of device `index` and waits for it,
/// `n` times; the latencies in ns. False, with `why`, on any CUDA error.
bool bare_launches(int index, std::size_t n, std::vector<int64_t>& ns,
                   std::string& why);

/// Copies `bytes` from pinned host memory to the device `reps` times with
/// cudaMemcpy; GB/s (1e9 bytes) of the median copy, or 0 with `why`.
double pinned_copy_gbps(int index, std::size_t bytes, int reps,
                        std::string& why);

} // namespace joy::bench
