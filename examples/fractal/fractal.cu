// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include <cuda_runtime.h>

#include "fractal.hpp"

namespace fractal {

namespace {

__global__ void render_kernel(uint8_t* out, int width, int height,
                              int max_iter) {
  int x = blockIdx.x * blockDim.x + threadIdx.x;
  int y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x < width && y < height)
    out[static_cast<size_t>(y) * width + x]
      = pixel(x, y, width, height, max_iter);
}

bool failed(cudaError_t err, const char* what, std::string& why) {
  if (err == cudaSuccess)
    return false;
  why = std::string{what} + ": " + cudaGetErrorString(err);
  return true;
}

} // namespace

int cuda_devices(std::string& why) {
  int n = 0;
  if (failed(cudaGetDeviceCount(&n), "CUDA", why))
    return 0;
  return n;
}

bool render_cuda(uint8_t* out, int width, int height, int max_iter,
                 std::string& why) {
  if (cuda_devices(why) == 0) {
    if (why.empty())
      why = "no CUDA device";
    return false;
  }
  auto bytes = static_cast<size_t>(width) * height;
  uint8_t* device = nullptr;
  if (failed(cudaMalloc(&device, bytes), "cudaMalloc", why))
    return false;
  dim3 block{16, 16};
  dim3 grid{(width + block.x - 1) / block.x, (height + block.y - 1) / block.y};
  render_kernel<<<grid, block>>>(device, width, height, max_iter);
  bool ok = !failed(cudaGetLastError(), "launch", why)
            && !failed(cudaMemcpy(out, device, bytes, cudaMemcpyDeviceToHost),
                       "cudaMemcpy", why);
  cudaFree(device);
  return ok;
}

} // namespace fractal
