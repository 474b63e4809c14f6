// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The gpu actors (DESIGN §9): one per device, owning its backend (a CUDA
/// device's stream, memory pool and staging buffers, or the CPU), and a
/// pool in front of them that hands each operation to the device with the
/// least work in flight. Operations complete asynchronously: a device
/// actor keeps taking work while earlier operations run, and answers each
/// when its backend says it is done.
///
/// Results are values: an ndarray for blur and matmul, a map for stats.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/gpu/backend.hpp"
#include "runtime/type_ids.hpp"
#include "runtime/value.hpp"

namespace joy::gpu {

using gpu_actor = caf::typed_actor<
  /// gaussian_blur(image, sigma).
  caf::replies_to<blur_atom, ndarray, double>::with<value>,
  /// matmul(a, b).
  caf::replies_to<matmul_atom, ndarray, ndarray>::with<value>,
  /// An empty kernel, answered null when it ran (see backend::ping).
  caf::replies_to<ping_atom>::with<value>,
  /// stats(array).
  caf::replies_to<stats_atom, ndarray>::with<value>,
  /// The backend's describe() for a device; for a pool, the list of its
  /// devices, each with `in_flight` and `done` counts.
  caf::replies_to<describe_atom>::with<value>>;

/// Called once when a device is lost (backend::lost), with what it was
/// (its describe()) and the error that revealed it.
using lost_fn = std::function<void(const value& device, const caf::error&)>;

/// An actor owning `b`, on a thread of its own, so that the host-side work
/// of an operation never holds a scheduler worker.
gpu_actor spawn_gpu_device(caf::actor_system& sys, std::unique_ptr<backend> b,
                           lost_fn on_lost = {});

/// A pool over one device actor per backend (at least one).
gpu_actor spawn_gpu_pool(caf::actor_system& sys,
                         std::vector<std::unique_ptr<backend>> backends,
                         lost_fn on_lost = {});

} // namespace joy::gpu
