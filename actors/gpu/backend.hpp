// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// Where a gpu actor's work runs (DESIGN §9): one CUDA device, or the CPU.
/// A backend starts an operation and says when it is done through a
/// callback, so that a device actor can keep a device busy with many
/// operations in flight while earlier replies flow back.
///
/// Every operation checks its arguments as the CPU functions do
/// (cpu_kernels.hpp), with the same error texts, and gives results that
/// agree with them within the tolerances documented in docs/gpu.md.
#pragma once

#include <functional>
#include <memory>

#include <caf/expected.hpp>

#include "runtime/value.hpp"

namespace joy::gpu {

class backend {
public:
  /// Called exactly once per operation, on any thread (for CUDA, the
  /// driver's callback thread): it must not block, and must not call CUDA.
  using done_fn = std::function<void(caf::expected<value>)>;

  virtual ~backend();

  /// What `info()` shows of it: `{kind: "cuda" | "cpu", index, name, ...}`.
  virtual value describe() const = 0;

  /// True once the device cannot work any more (a CUDA error that sticks to
  /// the context): only a new process can use it again.
  virtual bool lost() const noexcept {
    return false;
  }

  /// Launches a kernel that does nothing and completes like any operation
  /// (the CPU: at once) with null: the device's liveness check, and B11's
  /// measure of the message → kernel → reply path.
  virtual void ping(done_fn done) = 0;

  /// Result: an ndarray of the image's dtype and shape.
  virtual void gaussian_blur(ndarray image, double sigma, done_fn done) = 0;

  /// Result: the (m x n) product, of the arguments' dtype.
  virtual void matmul(ndarray a, ndarray b, done_fn done) = 0;

  /// Result: `{min, max, mean, std}` as float64.
  virtual void stats(ndarray array, done_fn done) = 0;
};

/// The CPU functions of cpu_kernels.hpp as a backend.
std::unique_ptr<backend> make_cpu_backend();

/// Device `index` of the CUDA runtime, with its own stream, stream-ordered
/// memory pool, pinned staging buffers and cuBLAS handle. Errors:
/// unavailable (a build without CUDA, or any CUDA error while opening).
caf::expected<std::unique_ptr<backend>> make_cuda_backend(int index);

} // namespace joy::gpu
