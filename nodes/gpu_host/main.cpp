// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// joy-gpu-host: the gpu service (DESIGN §9) as a plugin process, so that a
// driver fault or CUDA's memory footprint never touches joyd, and the node
// supervises it like any plugin. Each CUDA device gets a gpu actor of its
// own (actors/gpu/gpu_actor.hpp); without one, a CPU actor does the work.
// Calls are handed to the least busy device and answered when their work
// completes, so the plugin's actor stays free while devices run.
//
//   joy call gpu info
//   joy call gpu stats "$(joy call arrays gradient 64 64)"
//   joy call gpu gaussian_blur "$(joy call arrays gradient 64 64)" 2.0

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string_view>

#include <caf/typed_event_based_actor.hpp>

#include "actors/gpu/backend.hpp"
#include "actors/gpu/devices.hpp"
#include "actors/gpu/gpu_actor.hpp"
#include "runtime/future.hpp"
#include "runtime/plugin.hpp"

namespace {

using joy::gpu::gpu_actor;

/// The node bounds each call (deadline, cancellation); this only frees the
/// plugin's actor from a pool that never answers.
constexpr caf::timespan pool_bound = std::chrono::hours{24};

/// The pool, made in `setup` (CUDA contexts take a while to create, and
/// need the plugin's actor system).
struct service {
  joy::gpu::device_survey survey;
  gpu_actor pool;
  /// Devices CUDA reported but that would not open, and why.
  joy::value_list skipped;

  void start(caf::actor_system& sys, joy::api& api) {
    std::vector<std::unique_ptr<joy::gpu::backend>> backends;
    for (auto& d : survey.devices) {
      auto b = joy::gpu::make_cuda_backend(d.index);
      if (b) {
        backends.push_back(std::move(*b));
        continue;
      }
      api.error("gpu " + std::to_string(d.index) + " (" + d.name
                + ") is not used: " + joy::message_of(b.error()));
      skipped.emplace_back(
        joy::value_map{{"index", joy::value{int64_t{d.index}}},
                       {"reason", joy::value{joy::message_of(b.error())}}});
    }
    if (backends.empty())
      backends.push_back(joy::gpu::make_cpu_backend());
    api.log(survey.devices.empty()
              ? "gpu: the CPU path (" + survey.reason + ")"
              : "gpu: " + std::to_string(backends.size()) + " CUDA device(s), "
                  + survey.devices[0].name);
    // A lost device (a CUDA error that sticks to its context) works again
    // only in a new process: exit, and the node starts a fresh host. Calls
    // in flight then fail as `disconnected`, as for any crash.
    pool = joy::gpu::spawn_gpu_pool(
      sys, std::move(backends),
      [](const joy::value& device, const caf::error& err) {
        std::fprintf(stderr,
                     "joy-gpu-host: %s is lost (%s); exiting so that the "
                     "node starts a fresh host\n",
                     joy::to_string(device).c_str(),
                     joy::message_of(err).c_str());
        std::fflush(stderr);
        std::_Exit(75);
      });
  }

  /// Asks the pool; the call's future completes in the plugin's actor.
  template <class... Ts>
  joy::future<joy::value> ask(joy::context& ctx, Ts&&... xs) const {
    auto* self = ctx.api().self();
    if (self == nullptr || !pool)
      return joy::make_error(joy::errc::unavailable,
                             "the gpu service is not running");
    joy::promise<joy::value> p;
    self->request(pool, pool_bound, std::forward<Ts>(xs)...)
      .then([p](joy::value& x) mutable { p.set_value(std::move(x)); },
            [p](caf::error& err) mutable { p.set_error(std::move(err)); });
    return p.get_future();
  }
};

} // namespace

int main(int argc, char** argv) {
  auto svc = std::make_shared<service>();
  svc->survey = joy::gpu::discover_devices();
  // `joy-gpu-host --probe`: joyd asks this way at start, so that CUDA is
  // never loaded into joyd itself. A line per device: index, memory in
  // bytes, compute capability and name, tab-separated.
  if (argc == 2 && std::string_view{argv[1]} == "--probe") {
    for (auto& d : svc->survey.devices)
      std::printf("%d\t%llu\t%d.%d\t%s\n", d.index,
                  static_cast<unsigned long long>(d.memory_bytes), d.major,
                  d.minor, d.name.c_str());
    return 0;
  }
  joy::plugin gpu{"gpu"};
  gpu.exports.add("info", [svc](joy::context& ctx) {
    return svc->ask(ctx, joy::describe_atom_v).then([svc](joy::value workers) {
      auto out = joy::gpu::to_value(svc->survey);
      auto* m = out.as_map();
      m->insert("workers", std::move(workers));
      if (!svc->skipped.empty())
        m->insert("skipped", joy::value{svc->skipped});
      return out;
    });
  });
  gpu.exports.add("gaussian_blur",
                  [svc](joy::context& ctx, joy::ndarray image, double sigma) {
                    return svc->ask(ctx, joy::blur_atom_v, std::move(image),
                                    sigma);
                  },
                  {"image", "sigma"});
  gpu.exports.add("matmul",
                  [svc](joy::context& ctx, joy::ndarray a, joy::ndarray b) {
                    return svc->ask(ctx, joy::matmul_atom_v, std::move(a),
                                    std::move(b));
                  },
                  {"a", "b"});
  gpu.exports.add("stats",
                  [svc](joy::context& ctx, joy::ndarray array) {
                    return svc->ask(ctx, joy::stats_atom_v, std::move(array));
                  },
                  {"array"});
  gpu.on_setup([svc](joy::context& ctx) {
    auto* self = ctx.api().self();
    if (self == nullptr)
      return;
    svc->start(self->system(), ctx.api());
  });
  return joy::run_plugin(argc, argv, std::move(gpu));
}
