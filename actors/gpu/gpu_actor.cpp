// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/gpu/gpu_actor.hpp"

#include <chrono>
#include <cstdint>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "runtime/errc.hpp"

namespace joy::gpu {

namespace {

/// How long the pool waits for a device. Callers bound their calls (the
/// node's deadline and cancellation); this only frees the pool from a
/// device that never answers.
constexpr caf::timespan device_bound = std::chrono::hours{1};

// -- device -------------------------------------------------------------------

/// A device actor also hears its backend's completions.
using device_actor
  = gpu_actor::extend<caf::reacts_to<done_atom, uint64_t, value>,
                      caf::reacts_to<done_atom, uint64_t, caf::error>>;

struct device_state {
  std::unique_ptr<backend> impl;
  lost_fn on_lost;
  uint64_t next_id = 0;
  std::unordered_map<uint64_t, caf::typed_response_promise<value>> pending;
  static inline const char* name = "joy.gpu.device";
};

using device_self = device_actor::stateful_pointer<device_state>;

/// Registers a pending reply and the callback that completes it: a message
/// to this actor, because a backend calls back on a thread of its own.
backend::done_fn track(device_self self,
                       caf::typed_response_promise<value>& rp) {
  auto id = self->state.next_id++;
  self->state.pending.emplace(id, rp);
  auto me = caf::actor_cast<caf::actor>(self);
  return [me, id](caf::expected<value> result) {
    if (result)
      caf::anon_send(me, done_atom_v, id, std::move(*result));
    else
      caf::anon_send(me, done_atom_v, id, std::move(result.error()));
  };
}

template <class T>
void finish(device_self self, uint64_t id, T&& x) {
  auto i = self->state.pending.find(id);
  if (i == self->state.pending.end())
    return;
  auto rp = std::move(i->second);
  self->state.pending.erase(i);
  if constexpr (std::is_same_v<std::decay_t<T>, caf::error>) {
    auto& st = self->state;
    if (st.on_lost && st.impl->lost()) {
      auto f = std::move(st.on_lost);
      st.on_lost = nullptr;
      f(st.impl->describe(), x);
    }
  }
  rp.deliver(std::forward<T>(x));
}

device_actor::behavior_type
device(device_self self, std::unique_ptr<backend> impl, lost_fn on_lost) {
  self->state.impl = std::move(impl);
  self->state.on_lost = std::move(on_lost);
  return {
    [self](blur_atom, ndarray& image, double sigma) -> caf::result<value> {
      auto rp = self->make_response_promise<value>();
      self->state.impl->gaussian_blur(std::move(image), sigma, track(self, rp));
      return rp;
    },
    [self](matmul_atom, ndarray& a, ndarray& b) -> caf::result<value> {
      auto rp = self->make_response_promise<value>();
      self->state.impl->matmul(std::move(a), std::move(b), track(self, rp));
      return rp;
    },
    [self](stats_atom, ndarray& array) -> caf::result<value> {
      auto rp = self->make_response_promise<value>();
      self->state.impl->stats(std::move(array), track(self, rp));
      return rp;
    },
    [self](ping_atom) -> caf::result<value> {
      auto rp = self->make_response_promise<value>();
      self->state.impl->ping(track(self, rp));
      return rp;
    },
    [self](describe_atom) { return self->state.impl->describe(); },
    [self](done_atom, uint64_t id, value& result) {
      finish(self, id, std::move(result));
    },
    [self](done_atom, uint64_t id, caf::error& err) {
      finish(self, id, std::move(err));
    },
  };
}

// -- pool ---------------------------------------------------------------------

struct slot {
  gpu_actor device;
  value description;
  uint64_t in_flight = 0;
  uint64_t done = 0;
};

struct pool_state {
  std::vector<slot> slots;
  static inline const char* name = "joy.gpu.pool";
};

using pool_self = gpu_actor::stateful_pointer<pool_state>;

/// The device with the least work in flight (the first, on ties).
std::size_t least_busy(const std::vector<slot>& slots) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < slots.size(); ++i)
    if (slots[i].in_flight < slots[best].in_flight)
      best = i;
  return best;
}

template <class... Ts>
caf::result<value> dispatch(pool_self self, Ts&&... xs) {
  auto i = least_busy(self->state.slots);
  auto& s = self->state.slots[i];
  ++s.in_flight;
  auto rp = self->make_response_promise<value>();
  auto settle = [self, i] {
    auto& s = self->state.slots[i];
    --s.in_flight;
    ++s.done;
  };
  self->request(s.device, device_bound, std::forward<Ts>(xs)...)
    .then(
      [rp, settle](value& result) mutable {
        settle();
        rp.deliver(std::move(result));
      },
      [rp, settle](caf::error& err) mutable {
        settle();
        rp.deliver(std::move(err));
      });
  return rp;
}

gpu_actor::behavior_type pool(pool_self self, std::vector<slot> slots) {
  self->state.slots = std::move(slots);
  for (auto& s : self->state.slots)
    self->link_to(s.device);
  return {
    [self](blur_atom a, ndarray& image, double sigma) {
      return dispatch(self, a, std::move(image), sigma);
    },
    [self](matmul_atom a, ndarray& x, ndarray& y) {
      return dispatch(self, a, std::move(x), std::move(y));
    },
    [self](stats_atom a, ndarray& array) {
      return dispatch(self, a, std::move(array));
    },
    [self](ping_atom a) { return dispatch(self, a); },
    [self](describe_atom) {
      value_list out;
      for (auto& s : self->state.slots) {
        auto d = s.description;
        if (auto* m = d.as_map()) {
          m->insert("in_flight", value{static_cast<int64_t>(s.in_flight)});
          m->insert("done", value{static_cast<int64_t>(s.done)});
        }
        out.push_back(std::move(d));
      }
      return value{std::move(out)};
    },
  };
}

} // namespace

gpu_actor spawn_gpu_device(caf::actor_system& sys, std::unique_ptr<backend> b,
                           lost_fn on_lost) {
  // A thread of its own: besides the CPU backend's work, a CUDA backend
  // does host work in proportion to its inputs (staging copies, page
  // registration), which must not hold a scheduler worker.
  return sys.spawn<caf::detached>(device, std::move(b), std::move(on_lost));
}

gpu_actor spawn_gpu_pool(caf::actor_system& sys,
                         std::vector<std::unique_ptr<backend>> backends,
                         lost_fn on_lost) {
  std::vector<slot> slots;
  for (auto& b : backends) {
    slot s;
    s.description = b->describe();
    s.device = spawn_gpu_device(sys, std::move(b), on_lost);
    slots.push_back(std::move(s));
  }
  return sys.spawn(pool, std::move(slots));
}

} // namespace joy::gpu
