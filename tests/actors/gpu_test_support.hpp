// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// What the gpu tests share: arrays made from and read into vectors, and an
/// actor system with real threads (a device's work completes on threads of
/// its own, which the test coordinator cannot drive).
#pragma once

#include <cstring>
#include <memory>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "runtime/system_config.hpp"
#include "runtime/value.hpp"

namespace joy::test {

template <class T>
ndarray make(dtype type, std::vector<uint64_t> shape,
             const std::vector<T>& xs) {
  std::vector<std::byte> bytes(xs.size() * sizeof(T));
  std::memcpy(bytes.data(), xs.data(), bytes.size());
  return ndarray{type, std::move(shape), buffer::take(std::move(bytes))};
}

template <class T>
std::vector<T> read(const ndarray& a) {
  std::vector<T> out(a.data.size() / sizeof(T));
  std::memcpy(out.data(), a.data.data(), a.data.size());
  return out;
}

/// An actor system with Joy's settings and two worker threads.
struct threaded_actors {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;

  threaded_actors() {
    configure_actor_system(cfg, 2);
    sys = std::make_unique<caf::actor_system>(cfg);
  }
};

} // namespace joy::test
