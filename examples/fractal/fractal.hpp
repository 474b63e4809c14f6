// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// The fractal example's one computation, written once for both paths: the
// CUDA kernel (fractal.cu) and the CPU fallback (main.cpp) call the same
// function, and both are compiled without fused multiply-adds, so the two
// give the same image bit for bit.
#pragma once

#include <cstdint>
#include <string>

#ifdef __CUDACC__
#define FRACTAL_HD __host__ __device__
#else
#define FRACTAL_HD
#endif

namespace fractal {

/// The pixel (x, y) of a width x height view of the Mandelbrot set over
/// [-2.5, 1] x [-1.25, 1.25]: its escape iteration scaled to 0..255 (255:
/// inside the set).
FRACTAL_HD inline uint8_t pixel(int x, int y, int width, int height,
                                int max_iter) {
  double cx = -2.5 + 3.5 * (x + 0.5) / width;
  double cy = -1.25 + 2.5 * (y + 0.5) / height;
  double zx = 0, zy = 0;
  int i = 0;
  for (; i < max_iter; ++i) {
    double xx = zx * zx, yy = zy * zy;
    if (xx + yy > 4.0)
      break;
    double t = xx - yy + cx;
    zy = 2.0 * zx * zy + cy;
    zx = t;
  }
  return static_cast<uint8_t>(i >= max_iter ? 255 : (i * 255) / max_iter);
}

/// Renders on CUDA device 0 of what this process sees into `out` (width x
/// height bytes). False, with the reason in `why`, when there is no device
/// or CUDA fails: the caller then renders on the CPU.
bool render_cuda(uint8_t* out, int width, int height, int max_iter,
                 std::string& why);

/// How many CUDA devices this process sees (0 on any error, with `why`).
int cuda_devices(std::string& why);

} // namespace fractal
