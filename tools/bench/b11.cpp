// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// B11: what the gpu service's actors cost (DESIGN §9).
//
// With a CUDA device (the [gpu] rows; tools/gpu-check runs them):
// * message → kernel → reply: a ping (an empty kernel) through a gpu
//   device actor, p50 and p99, against an empty kernel launched and waited
//   for on the CUDA runtime alone (target: at most 15 µs more);
// * host → device: stats of a 256 MiB float32 array in a shared-memory
//   block (registered and copied straight from it, then reduced at device
//   speed), in GB/s, against cudaMemcpy from pinned memory;
// * blur throughput: gaussian_blur (sigma 2) of a 4096 x 4096 float32
//   image, GPU against CPU, in Mpixel/s.
// Always: the same blur through a gpu actor on the CPU backend against the
// CPU function called directly, which is what the actor path costs a node
// without a device.

#include <cstring>
#include <iostream>
#include <random>

#include <caf/scoped_actor.hpp>

#include "actors/gpu/backend.hpp"
#include "actors/gpu/cpu_kernels.hpp"
#include "actors/gpu/devices.hpp"
#include "actors/gpu/gpu_actor.hpp"
#include "runtime/shared_memory.hpp"
#include "runtime/system_config.hpp"
#include "tools/bench/bench.hpp"
#ifdef JOY_WITH_CUDA
#include "tools/bench/b11_cuda.hpp"
#endif

namespace joy::bench {

namespace {

using clock = std::chrono::steady_clock;
using gpu::gpu_actor;

constexpr caf::timespan bound = std::chrono::minutes{5};

/// A float32 array of `shape` in a shared-memory block, filled with noise.
ndarray noise(shm_pool& pool, std::vector<uint64_t> shape) {
  uint64_t n = 1;
  for (auto d : shape)
    n *= d;
  auto block = pool.allocate(n * 4);
  if (!block)
    throw std::runtime_error("B11: " + message_of(block.error()));
  std::mt19937 rng{11};
  std::uniform_real_distribution<float> dist{0, 1};
  auto* p = reinterpret_cast<float*>(block->data());
  for (uint64_t i = 0; i < n; ++i)
    p[i] = dist(rng);
  return ndarray{dtype::float32, std::move(shape), std::move(*block).freeze()};
}

/// Seconds per request of `xs...` to `actor` (the median of `reps`).
template <class... Ts>
double seconds_per(caf::scoped_actor& self, const gpu_actor& actor, int reps,
                   Ts... xs) {
  std::vector<double> s;
  for (int i = 0; i < reps; ++i) {
    auto t0 = clock::now();
    self->request(actor, bound, xs...)
      .receive([](value&) {},
               [](caf::error& err) {
                 throw std::runtime_error("B11: " + message_of(err));
               });
    s.push_back(std::chrono::duration<double>(clock::now() - t0).count());
  }
  std::sort(s.begin(), s.end());
  return s[s.size() / 2];
}

#ifdef JOY_WITH_CUDA
void device_rows(const options& opts, caf::actor_system& sys, shm_pool& pool,
                 const ndarray& image, double cpu_mpix,
                 std::vector<row>& rows) {
  auto backend = gpu::make_cuda_backend(0);
  if (!backend) {
    std::cerr << "B11: the CUDA rows are skipped: "
              << message_of(backend.error()) << "\n";
    return;
  }
  auto device = gpu::spawn_gpu_device(sys, std::move(*backend));
  caf::scoped_actor self{sys};
  // Message → kernel → reply, against a bare launch.
  auto n = std::min<std::size_t>(opts.samples, 20000);
  latencies ours;
  for (std::size_t i = 0; i < n + n / 10; ++i) {
    auto t0 = clock::now();
    self->request(device, bound, ping_atom_v)
      .receive([](value&) {},
               [](caf::error& err) {
                 throw std::runtime_error("B11: " + message_of(err));
               });
    if (i >= n / 10)
      ours.add(clock::now() - t0);
  }
  latencies bare;
  std::string why;
  if (!bare_launches(0, n, bare.ns, why))
    throw std::runtime_error("B11: " + why);
  for (double q : {0.5, 0.99}) {
    auto label = q == 0.5 ? std::string{"p50"} : std::string{"p99"};
    rows.push_back({"B11", "[gpu] message -> empty kernel -> reply " + label,
                    ours.quantile_us(q), "us", bare.quantile_us(q), "lower",
                    "an empty kernel launched and synchronized, CUDA "
                    "runtime alone (target: +15 us at most)"});
  }
  // Host → device from shared memory.
  constexpr std::size_t big = std::size_t{256} << 20;
  auto array = noise(pool, {big / 4});
  auto s = seconds_per(self, device, 5, stats_atom_v, array);
  auto pinned = pinned_copy_gbps(0, big, 5, why);
  if (pinned == 0)
    throw std::runtime_error("B11: " + why);
  rows.push_back({"B11", "[gpu] stats of 256 MiB from shared memory",
                  big / s / 1e9, "GB/s", pinned, "higher",
                  "cudaMemcpy host to device from pinned memory"});
  // Blur throughput, GPU against CPU.
  auto pixels = static_cast<double>(image.shape[0] * image.shape[1]);
  auto g = seconds_per(self, device, 5, blur_atom_v, image, 2.0);
  rows.push_back({"B11", "[gpu] gaussian_blur 4096x4096 float32 sigma 2",
                  pixels / g / 1e6, "Mpix/s", cpu_mpix, "higher",
                  "the same blur on the CPU (cpu_kernels)"});
  self->send_exit(device, caf::exit_reason::user_shutdown);
}
#endif

} // namespace

std::vector<row> run_b11(const options& opts) {
  caf::actor_system_config cfg;
  configure_actor_system(cfg, opts.workers);
  caf::actor_system sys{cfg};
  auto pool = shm_pool::make();
  std::vector<row> rows;
  auto image = noise(*pool, {4096, 4096});
  auto pixels = static_cast<double>(image.shape[0] * image.shape[1]);
  // The CPU function called directly, then through a gpu actor.
  std::vector<double> direct;
  for (int i = 0; i < 3; ++i) {
    auto t0 = clock::now();
    if (!gpu::gaussian_blur(image, 2.0))
      throw std::runtime_error("B11: the CPU blur failed");
    direct.push_back(std::chrono::duration<double>(clock::now() - t0).count());
  }
  std::sort(direct.begin(), direct.end());
  auto cpu_mpix = pixels / direct[1] / 1e6;
  {
    std::vector<std::unique_ptr<gpu::backend>> cpu;
    cpu.push_back(gpu::make_cpu_backend());
    auto actor = gpu::spawn_gpu_pool(sys, std::move(cpu));
    caf::scoped_actor self{sys};
    auto s = seconds_per(self, actor, 3, blur_atom_v, image, 2.0);
    rows.push_back(
      {"B11", "gaussian_blur 4096x4096 float32 sigma 2, gpu actor on the CPU",
       pixels / s / 1e6, "Mpix/s", cpu_mpix, "higher",
       "the CPU function called directly"});
    self->send_exit(actor, caf::exit_reason::user_shutdown);
  }
  auto survey = gpu::discover_devices();
  if (survey.devices.empty()) {
    std::cerr << "B11: no CUDA device (" << survey.reason
              << "): the [gpu] rows are skipped\n";
    return rows;
  }
#ifdef JOY_WITH_CUDA
  device_rows(opts, sys, *pool, image, cpu_mpix, rows);
#endif
  return rows;
}

} // namespace joy::bench
