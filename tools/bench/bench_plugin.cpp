// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// joy-bench-plugin: the plugin side of joy-bench's node benchmarks. Two
// copies run on a node joy-bench starts; one measures calls to the other
// from inside the plugin, where a plugin author's calls start, and returns
// the figures.

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include "runtime/plugin.hpp"

namespace {

using clock = std::chrono::steady_clock;

/// p50 and p99 of `ns`, in microseconds.
joy::value summary(std::vector<int64_t> ns) {
  std::sort(ns.begin(), ns.end());
  auto at = [&](double q) {
    return static_cast<double>(ns[static_cast<std::size_t>(
             q * static_cast<double>(ns.size() - 1))])
           / 1000.0;
  };
  return joy::value{joy::value_map{{"p50", joy::value{at(0.5)}},
                                   {"p99", joy::value{at(0.99)}}}};
}

/// Runs `step(i)` n times one after the other (each once the previous one
/// answered), timing each; resolves to the latencies in ns.
joy::future<std::vector<int64_t>>
timed_loop(int64_t n, std::function<joy::future<joy::value>(int64_t)> step) {
  struct state {
    int64_t i = 0;
    int64_t n = 0;
    std::vector<int64_t> ns;
    joy::promise<std::vector<int64_t>> done;
    std::function<joy::future<joy::value>(int64_t)> step;
  };
  auto st = std::make_shared<state>();
  st->n = n;
  st->step = std::move(step);
  st->ns.reserve(static_cast<std::size_t>(n));
  auto next = std::make_shared<std::function<void()>>();
  *next = [st, next] {
    if (st->i == st->n) {
      st->done.set_value(std::move(st->ns));
      *next = nullptr; // breaks the cycle
      return;
    }
    auto t0 = clock::now();
    st->step(st->i++).on_complete([st, next, t0](caf::expected<joy::value> r) {
      if (!r) {
        st->done.set_error(std::move(r.error()));
        *next = nullptr;
        return;
      }
      st->ns.push_back(
        std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - t0)
          .count());
      (*next)();
    });
  };
  auto fut = st->done.get_future();
  (*next)();
  return fut;
}

double gbps(uint64_t bytes, clock::duration d) {
  return static_cast<double>(bytes) / 1e9
         / std::chrono::duration<double>(d).count();
}

double median(std::vector<double> xs) {
  std::sort(xs.begin(), xs.end());
  return xs[xs.size() / 2];
}

/// An ndarray of `bytes` to `other`, which reads all of it, vs memcpy of
/// the same bytes here; GB/s, medians of `reps`. The array is in the pool
/// (the shm arm) or, `on_heap`, in plain memory (inline up to 16 MiB).
joy::future<joy::value> measure_arrays(joy::context& ctx, std::string other,
                                       uint64_t bytes, int64_t reps,
                                       bool on_heap) {
  auto out
    = on_heap ? joy::writable_buffer::on_heap(bytes) : ctx.allocate(bytes);
  if (!out)
    return out.error();
  std::memset(out->data(), 1, bytes);
  joy::ndarray a{joy::dtype::uint8, {bytes}, std::move(*out).freeze()};
  // memcpy into memory that is already faulted in, as the pool's is.
  std::vector<std::byte> dst(bytes, std::byte{0});
  std::vector<double> copy;
  for (int64_t r = 0; r < reps; ++r) {
    auto t0 = clock::now();
    std::memcpy(dst.data(), a.data.data(), bytes);
    copy.push_back(gbps(bytes, clock::now() - t0));
  }
  auto& api = ctx.api();
  auto arg = std::make_shared<joy::ndarray>(std::move(a));
  return timed_loop(reps,
                    [&api, other, arg](int64_t) {
                      return api.call(other, "touch", {joy::value{*arg}});
                    })
    .then([bytes, copy](std::vector<int64_t> ns) {
      std::vector<double> ours;
      for (auto x : ns)
        ours.push_back(gbps(bytes, std::chrono::nanoseconds{x}));
      return joy::value{joy::value_map{{"ours", joy::value{median(ours)}},
                                       {"memcpy", joy::value{median(copy)}}}};
    });
}

} // namespace

int main(int argc, char** argv) {
  const char* name = std::getenv("JOY_PLUGIN_NAME");
  joy::plugin p{name != nullptr ? name : "bench"};

  p.exports.add("echo", [](joy::value x) { return x; }, {"x"});

  // A service whose member is a function value living in this plugin.
  p.exports.add("offer", [](joy::context& ctx) {
    joy::value_map svc;
    svc.insert("name", joy::value{"bench-svc"});
    svc.insert("f", joy::value{ctx.api().callback(
                      "f", [](joy::value x) { return x; }, {"x"})});
    return ctx.api().register_service(std::move(svc));
  });

  // Reads every byte, as a consumer of the array would, as fast as the
  // memory delivers: 16-byte vector adds into four independent sums, the
  // loads written out so that -O2 keeps them in registers. The scalar
  // loop this replaced summed a 16 MiB block at 9–16 GB/s, slower than
  // memcpy copies it, so B7a measured the loop rather than the transfer;
  // this one reads it at 57–73 GB/s on this VM.
  p.exports.add("touch",
                [](joy::ndarray a) {
                  using u64x2 = uint64_t __attribute__((vector_size(16)));
                  u64x2 s0 = {}, s1 = {}, s2 = {}, s3 = {};
                  auto* d = a.data.data();
                  std::size_t n = a.data.size() / 64;
                  for (std::size_t i = 0; i < n; ++i) {
                    u64x2 w0, w1, w2, w3;
                    std::memcpy(&w0, d + 64 * i, 16);
                    std::memcpy(&w1, d + 64 * i + 16, 16);
                    std::memcpy(&w2, d + 64 * i + 32, 16);
                    std::memcpy(&w3, d + 64 * i + 48, 16);
                    s0 += w0;
                    s1 += w1;
                    s2 += w2;
                    s3 += w3;
                  }
                  u64x2 t = s0 + s1 + s2 + s3;
                  uint64_t sum = t[0] + t[1];
                  for (std::size_t i = 64 * n; i < a.data.size(); ++i)
                    sum += static_cast<uint8_t>(d[i]);
                  return sum;
                },
                {"array"});

  // Plain calls, calls of a service's function value, get_service(x).f(),
  // get_service then f(), and calls of a method of `other`'s default
  // service (get_plugin), n each, in µs.
  p.exports.add(
    "measure",
    [](joy::context& ctx, std::string other, std::string service_id,
       int64_t n) -> joy::future<joy::value> {
      auto& api = ctx.api();
      auto out = std::make_shared<joy::value_map>();
      return timed_loop(n,
                        [&api, other](int64_t i) {
                          return api.call(other, "echo", {joy::value{i}});
                        })
        .then([&api, service_id, out](std::vector<int64_t> plain) {
          out->insert("plain", summary(std::move(plain)));
          return api.get_service(service_id);
        })
        .then([&api, service_id, out, n](joy::service svc) {
          auto s = std::make_shared<joy::service>(std::move(svc));
          return timed_loop(
                   n, [s](int64_t i) { return s->call("f", {joy::value{i}}); })
            .then([&api, service_id, out, n](std::vector<int64_t> cb) {
              out->insert("callback", summary(std::move(cb)));
              return timed_loop(n, [&api, service_id](int64_t i) {
                return api.get_service(service_id).call("f", {joy::value{i}});
              });
            })
            .then([&api, service_id, out, n](std::vector<int64_t> both) {
              out->insert("get_service_call", summary(std::move(both)));
              // The object first, then the call: two round trips.
              return timed_loop(n, [&api, service_id](int64_t i) {
                return api.get_service(service_id).then([i](joy::service s) {
                  return s.call("f", {joy::value{i}});
                });
              });
            });
        })
        .then([&api, other, out](std::vector<int64_t> two) {
          out->insert("get_service_then_call", summary(std::move(two)));
          return api.get_plugin(other);
        })
        .then([out, n](joy::service plugin) {
          // A method of the other plugin's default service, held.
          auto s = std::make_shared<joy::service>(std::move(plugin));
          return timed_loop(
            n, [s](int64_t i) { return s->call("echo", {joy::value{i}}); });
        })
        .then([out](std::vector<int64_t> held) {
          out->insert("plugin_method", summary(std::move(held)));
          return joy::value{std::move(*out)};
        });
    },
    {"other", "service_id", "n"});

  // Calls/s of `other`'s echo with `in_flight` calls always outstanding.
  p.exports.add("pipelined",
                [](joy::context& ctx, std::string other, int64_t n,
                   int64_t in_flight) -> joy::future<joy::value> {
                  struct state {
                    int64_t issued = 0;
                    int64_t done = 0;
                    int64_t n = 0;
                    bool over = false;
                    clock::time_point t0 = clock::now();
                    joy::promise<joy::value> finished;
                    std::function<void()> lane;
                  };
                  auto st = std::make_shared<state>();
                  st->n = n;
                  auto& api = ctx.api();
                  std::weak_ptr<state> weak = st;
                  st->lane = [weak, &api, other] {
                    auto st = weak.lock();
                    if (!st || st->over || st->issued >= st->n)
                      return;
                    ++st->issued;
                    api.call(other, "echo", {joy::value{st->issued}})
                      .on_complete([st](caf::expected<joy::value> r) {
                        if (st->over)
                          return;
                        if (!r) {
                          st->over = true;
                          st->finished.set_error(std::move(r.error()));
                          return;
                        }
                        if (++st->done == st->n) {
                          st->over = true;
                          auto s = std::chrono::duration<double>(clock::now()
                                                                 - st->t0);
                          st->finished.set_value(
                            joy::value{static_cast<double>(st->n) / s.count()});
                          return;
                        }
                        st->lane();
                      });
                  };
                  auto fut = st->finished.get_future();
                  for (int64_t i = 0; i < in_flight; ++i)
                    st->lane();
                  // Keeps the state until the last answer.
                  return fut.then([st](joy::value x) { return x; });
                },
                {"other", "n", "in_flight"});

  p.exports.add(
    "measure_arrays",
    [](joy::context& ctx, std::string other, uint64_t bytes, int64_t reps) {
      return measure_arrays(ctx, std::move(other), bytes, reps, false);
    },
    {"other", "bytes", "reps"});
  p.exports.add(
    "measure_heap_arrays",
    [](joy::context& ctx, std::string other, uint64_t bytes, int64_t reps) {
      return measure_arrays(ctx, std::move(other), bytes, reps, true);
    },
    {"other", "bytes", "reps"});

  return joy::run_plugin(argc, argv, std::move(p));
}
