// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// joy-gpu-host: the gpu service (DESIGN §9) as a plugin process, so that a
// driver fault or CUDA's memory footprint never touches joyd, and the node
// supervises it like any plugin. Its functions run on the CPU here
// (actors/gpu/cpu_kernels.hpp); `info()` says which devices CUDA reports.
//
//   joy call gpu info
//   joy call gpu stats "$(joy call arrays gradient 64 64)"
//   joy call gpu gaussian_blur "$(joy call arrays gradient 64 64)" 2.0

#include <cstdio>
#include <string_view>

#include "actors/gpu/cpu_kernels.hpp"
#include "actors/gpu/devices.hpp"
#include "runtime/plugin.hpp"

int main(int argc, char** argv) {
  auto survey = joy::gpu::discover_devices();
  // `joy-gpu-host --probe`: joyd asks this way at start, so that CUDA is
  // never loaded into joyd itself.
  if (argc == 2 && std::string_view{argv[1]} == "--probe") {
    std::printf("%zu\n", survey.devices.size());
    for (auto& d : survey.devices)
      std::printf("%d %s\n", d.index, d.name.c_str());
    return 0;
  }
  joy::plugin gpu{"gpu"};
  gpu.exports.add("info", [survey] { return joy::gpu::to_value(survey); });
  gpu.exports.add("gaussian_blur",
                  [](joy::ndarray image, double sigma) {
                    return joy::gpu::gaussian_blur(image, sigma);
                  },
                  {"image", "sigma"});
  gpu.exports.add(
    "matmul",
    [](joy::ndarray a, joy::ndarray b) { return joy::gpu::matmul(a, b); },
    {"a", "b"});
  gpu.exports.add("stats",
                  [](joy::ndarray array) -> caf::expected<joy::value> {
                    auto s = joy::gpu::stats(array);
                    if (!s)
                      return std::move(s.error());
                    return joy::value{std::move(*s)};
                  },
                  {"array"});
  gpu.on_setup([survey](joy::context& ctx) {
    ctx.api().log(survey.devices.empty()
                    ? "gpu: the CPU path (" + survey.reason + ")"
                    : "gpu: " + std::to_string(survey.devices.size())
                        + " CUDA device(s), " + survey.devices[0].name);
  });
  return joy::run_plugin(argc, argv, std::move(gpu));
}
