// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/gpu/devices.hpp"

#ifdef JOY_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace joy::gpu {

device_survey discover_devices() {
  device_survey out;
#ifdef JOY_WITH_CUDA
  out.cuda_built = true;
  int count = 0;
  if (auto err = cudaGetDeviceCount(&count); err != cudaSuccess) {
    // No driver, no device, a driver too old: all mean the CPU path.
    out.reason = std::string{"CUDA: "} + cudaGetErrorString(err);
    return out;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess)
      continue;
    out.devices.push_back(
      device_info{i, prop.name, prop.totalGlobalMem, prop.major, prop.minor});
  }
  if (out.devices.empty())
    out.reason = "CUDA reports no usable device";
#else
  out.reason = "built without CUDA";
#endif
  return out;
}

value_map to_value(const device_info& d) {
  return value_map{{"index", value{int64_t{d.index}}},
                   {"name", value{d.name}},
                   {"memory_bytes", value{d.memory_bytes}},
                   {"compute_capability", value{std::to_string(d.major) + "."
                                                + std::to_string(d.minor)}}};
}

value to_value(const device_survey& survey) {
  value_list devices;
  for (auto& d : survey.devices)
    devices.emplace_back(to_value(d));
  value_map out;
  out.insert("backend",
             value{survey.devices.empty() ? "cpu" : std::string{"cuda"}});
  out.insert("cuda_built", value{survey.cuda_built});
  out.insert("devices", value{std::move(devices)});
  if (!survey.reason.empty())
    out.insert("reason", value{survey.reason});
  return value{std::move(out)};
}

} // namespace joy::gpu
