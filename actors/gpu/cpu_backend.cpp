// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/gpu/backend.hpp"
#include "actors/gpu/cpu_kernels.hpp"
#include "runtime/errc.hpp"

namespace joy::gpu {

backend::~backend() = default;

namespace {

/// Answers `done` with `r`, as a value.
template <class T>
void answer(caf::expected<T> r, backend::done_fn& done) {
  if (r)
    done(value{std::move(*r)});
  else
    done(std::move(r.error()));
}

class cpu_backend final : public backend {
public:
  value describe() const override {
    value_map out;
    out.insert("kind", value{"cpu"});
    out.insert("index", value{int64_t{-1}});
    out.insert("name", value{"CPU"});
    return value{std::move(out)};
  }

  void ping(done_fn done) override {
    done(value{});
  }

  void gaussian_blur(ndarray image, double sigma, done_fn done) override {
    answer(joy::gpu::gaussian_blur(image, sigma), done);
  }

  void matmul(ndarray a, ndarray b, done_fn done) override {
    answer(joy::gpu::matmul(a, b), done);
  }

  void stats(ndarray array, done_fn done) override {
    answer(joy::gpu::stats(array), done);
  }
};

} // namespace

std::unique_ptr<backend> make_cpu_backend() {
  return std::make_unique<cpu_backend>();
}

#ifndef JOY_WITH_CUDA
caf::expected<std::unique_ptr<backend>> make_cuda_backend(int) {
  return make_error(errc::unavailable, "this build has no CUDA path");
}
#endif

} // namespace joy::gpu
