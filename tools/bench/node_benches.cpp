// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// B5, B7a and callback round trips: measured inside a plugin on a real node
// (joyd in a temp home, two copies of joy-bench-plugin), because that is
// where a plugin author's calls start. Baselines run in the same plugin in
// the same run: a plain call for B5 and callbacks, memcpy for B7a.

#include <nlohmann/json.hpp>

#include "tools/bench/bench.hpp"
#include "tools/bench/bench_node.hpp"

namespace joy::bench {

std::vector<row> run_node_benches(const options& opts) {
  bench_node node{opts, {}, {"bench-a", "bench-b"}};
  std::vector<row> rows;
  auto id = node.call({"bench-b", "offer"}).get<std::string>();
  auto n = std::to_string(std::max<std::size_t>(opts.samples / 4, 100));
  node.call({"bench-a", "measure", "\"bench-b\"", nlohmann::json(id).dump(),
             "200"}); // warm-up
  // Best of three rounds per figure (noise only adds time).
  double plain50 = 1e18, plain99 = 1e18, cb50 = 1e18, cb99 = 1e18, gs50 = 1e18,
         gs99 = 1e18, two50 = 1e18, gp50 = 1e18;
  for (int round = 0; round < 3; ++round) {
    auto m = node.call(
      {"bench-a", "measure", "\"bench-b\"", nlohmann::json(id).dump(), n});
    plain50 = std::min(plain50, m["plain"]["p50"].get<double>());
    plain99 = std::min(plain99, m["plain"]["p99"].get<double>());
    cb50 = std::min(cb50, m["callback"]["p50"].get<double>());
    cb99 = std::min(cb99, m["callback"]["p99"].get<double>());
    gs50 = std::min(gs50, m["get_service_call"]["p50"].get<double>());
    gs99 = std::min(gs99, m["get_service_call"]["p99"].get<double>());
    two50 = std::min(two50, m["get_service_then_call"]["p50"].get<double>());
    gp50 = std::min(gp50, m["plugin_method"]["p50"].get<double>());
  }
  rows.push_back(row{"B5.p50", "plugin: get_service(x).f(), p50", gs50, "us",
                     cb50, "lower", "one call of f on a service already held"});
  rows.push_back(row{"B5.p99", "plugin: get_service(x).f(), p99", gs99, "us",
                     cb99, "lower", "one call of f on a service already held"});
  rows.push_back(
    row{"B5.two.p50", "plugin: get_service(x), then f() on the object, p50",
        two50, "us", cb50, "lower", "one call of f on a service already held"});
  rows.push_back(row{"CB.p50",
                     "plugin: callback round trip (a function value living "
                     "in another plugin), p50",
                     cb50, "us", plain50, "lower",
                     "plain api.call(plugin, method), p50"});
  rows.push_back(row{"CB.p99", "plugin: callback round trip, p99", cb99, "us",
                     plain99, "lower", "plain api.call(plugin, method), p99"});
  rows.push_back(row{"GP.p50",
                     "plugin: a method of another plugin's default service "
                     "(get_plugin), held, p50",
                     gp50, "us", plain50, "lower",
                     "plain api.call(plugin, method), p50"});
  for (uint64_t mib : {16, 256, 1024}) {
    auto bytes = std::to_string(mib << 20);
    auto reps = mib >= 1024 ? "5" : mib >= 256 ? "7" : "15";
    auto r
      = node.call({"bench-a", "measure_arrays", "\"bench-b\"", bytes, reps});
    rows.push_back(row{"B7a." + std::to_string(mib) + "MiB",
                       "ndarray plugin -> plugin (shm), receiver reads it all, "
                         + std::to_string(mib) + " MiB",
                       r["ours"].get<double>(), "GB/s",
                       r["memcpy"].get<double>(), "higher",
                       "memcpy of the same bytes in one process"});
  }
  // Plain memory up to the inline cap travels inside the call's message,
  // through the node.
  auto r = node.call({"bench-a", "measure_heap_arrays", "\"bench-b\"",
                      std::to_string(std::size_t{8} << 20), "15"});
  rows.push_back(row{"B7a.inline.8MiB",
                     "ndarray in plain memory plugin -> plugin (inline, "
                     "through the node), receiver reads it all, 8 MiB",
                     r["ours"].get<double>(), "GB/s", r["memcpy"].get<double>(),
                     "higher", "memcpy of the same bytes in one process"});
  return rows;
}

} // namespace joy::bench
