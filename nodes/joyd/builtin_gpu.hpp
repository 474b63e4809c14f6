// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// What joyd asks of joy-gpu-host at start (DESIGN §9): the GPUs of this
/// machine, and the node's built-in `gpu` service, joy-gpu-host laid out
/// as a plugin folder of the node's own, so that the node hosts, sandboxes
/// and supervises it like any plugin.
#pragma once

#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "actors/node/node_status.hpp"
#include "actors/registry/plugin_record.hpp"

namespace joy {

/// The CUDA devices `host_binary --probe` finds (none without it, on any
/// error, or after 10 s), so that CUDA never loads into joyd itself.
std::vector<gpu_device> probe_gpus(const std::string& host_binary);

/// Lays out `<home>/builtin/gpu`: the gpu host's manifest
/// (nodes/gpu_host/plugin.json, built into joyd) and a copy of
/// `host_binary`. A copy, so that the sandbox binds a folder holding
/// nothing else, and rebuilding joyd's folder never changes the program
/// under a running host; it is refreshed when the binary changed. Errors:
/// not_found (no such binary), io_error, and those of builtin_record.
caf::expected<plugin_record>
lay_out_gpu_service(const std::string& home, const std::string& host_binary);

} // namespace joy
