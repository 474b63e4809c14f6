// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The GPUs of this machine (DESIGN §9). Built without CUDA there are
/// none; built with it, any CUDA error while asking (no driver, no device)
/// also means none, and the reason is kept for `info()`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/value.hpp"

namespace joy::gpu {

struct device_info {
  int index = 0;
  std::string name;
  uint64_t memory_bytes = 0;
  /// Compute capability, e.g. 9.0 as {9, 0}.
  int major = 0;
  int minor = 0;
};

struct device_survey {
  std::vector<device_info> devices;
  /// Whether this build has the CUDA path.
  bool cuda_built = false;
  /// Why there are no devices, when there are none ("" otherwise).
  std::string reason;
};

/// Asks the CUDA runtime (when built with it). Never throws.
device_survey discover_devices();

/// A device as a value: `{index, name, memory_bytes, compute_capability}`.
value_map to_value(const device_info& device);

/// The survey as a value: `{backend, cuda_built, devices: [...], reason}`.
value to_value(const device_survey& survey);

} // namespace joy::gpu
