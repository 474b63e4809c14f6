// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>

#include "tools/bench/b11_cuda.hpp"

namespace joy::bench {

namespace {

__global__ void empty_kernel() {}

bool failed(cudaError_t err, const char* what, std::string& why) {
  if (err == cudaSuccess)
    return false;
  why = std::string{what} + ": " + cudaGetErrorString(err);
  return true;
}

} // namespace

bool bare_launches(int index, std::size_t n, std::vector<int64_t>& ns,
                   std::string& why) {
  if (failed(cudaSetDevice(index), "cudaSetDevice", why))
    return false;
  cudaStream_t stream;
  if (failed(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking),
             "cudaStreamCreate", why))
    return false;
  bool ok = true;
  for (std::size_t i = 0; i < n + n / 10 && ok; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    empty_kernel<<<1, 1, 0, stream>>>();
    ok
      = !failed(cudaGetLastError(), "launch", why)
        && !failed(cudaStreamSynchronize(stream), "cudaStreamSynchronize", why);
    // The first tenth warms up.
    if (i >= n / 10)
      ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(
                     std::chrono::steady_clock::now() - t0)
                     .count());
  }
  cudaStreamDestroy(stream);
  return ok;
}

double pinned_copy_gbps(int index, std::size_t bytes, int reps,
                        std::string& why) {
  if (failed(cudaSetDevice(index), "cudaSetDevice", why))
    return 0;
  void* host = nullptr;
  void* device = nullptr;
  if (failed(cudaMallocHost(&host, bytes), "cudaMallocHost", why))
    return 0;
  if (failed(cudaMalloc(&device, bytes), "cudaMalloc", why)) {
    cudaFreeHost(host);
    return 0;
  }
  std::vector<double> seconds;
  for (int i = 0; i < reps + 1; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    if (failed(cudaMemcpy(device, host, bytes, cudaMemcpyHostToDevice),
               "cudaMemcpy", why))
      break;
    if (i > 0)
      seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count());
  }
  cudaFree(device);
  cudaFreeHost(host);
  if (seconds.empty())
    return 0;
  std::sort(seconds.begin(), seconds.end());
  return static_cast<double>(bytes) / seconds[seconds.size() / 2] / 1e9;
}

} // namespace joy::bench
