// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// joy-bench: Joy's benchmarks (a tool, not a test). Each benchmark runs its
// baseline in the same run and prints ours / baseline.
//
//   joy-bench                 # all, as a table
//   joy-bench --json          # [{"id", "name", "value", "unit", "baseline",
//                             #   "ratio", "better"}, ...]
//   joy-bench --only B3

#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>

#include "runtime/allocator.hpp"
#include "runtime/paths.hpp"
#include "runtime/value_json.hpp"
#include "tools/bench/bench.hpp"

int main(int argc, char** argv) {
  // Ours and the baselines (the --serve modes) alike.
  joy::tune_allocator();
  if (argc == 2 && std::string{argv[1]} == "--serve-capnp")
    return joy::bench::serve_capnp();
  if (argc == 2 && std::string{argv[1]} == "--serve-echo")
    return joy::bench::serve_echo();
  CLI::App app{"joy-bench: Joy's benchmarks, each against a baseline measured "
               "in the same run"};
  bool as_json = false;
  std::vector<std::string> only;
  joy::bench::options opts;
  opts.bin_dir = joy::self_dir();
  opts.examples_dir = opts.bin_dir + "/../examples";
  app.add_flag("--json", as_json, "Print JSON");
  app
    .add_option("--only", only,
                "Run only these benchmarks (B1, B3, B4, B8, B11, BPY; B9, B7c "
                "and B12 run "
                "together; B6 and B7b run "
                "together, as do B5, B7a and CB)")
    ->delimiter(',');
  app.add_option("--samples", opts.samples, "Round trips per latency figure");
  app.add_option("--calls", opts.calls, "Calls per throughput figure");
  app.add_option("--workers", opts.workers,
                 "CAF worker threads in the measuring process");
  app.add_option("--examples", opts.examples_dir,
                 "Where the example plugins are laid out");
  CLI11_PARSE(app, argc, argv);
  auto want = [&](const std::string& id) {
    return only.empty()
           || std::find(only.begin(), only.end(), id) != only.end();
  };
  std::vector<joy::bench::row> rows;
  try {
    if (want("B1")) {
      auto r = joy::bench::run_b1(opts);
      rows.insert(rows.end(), r.begin(), r.end());
    }
    if (want("B3")) {
      auto r = joy::bench::run_b3(opts);
      rows.insert(rows.end(), r.begin(), r.end());
    }
    if (want("B4")) {
      auto r = joy::bench::run_b4(opts);
      rows.insert(rows.end(), r.begin(), r.end());
    }
    if (want("BPY")) {
      auto r = joy::bench::run_bpy(opts);
      rows.insert(rows.end(), r.begin(), r.end());
    }
    if (want("B11")) {
      auto r = joy::bench::run_b11(opts);
      rows.insert(rows.end(), r.begin(), r.end());
    }
    if (want("B8")) {
      auto r = joy::bench::run_b8(opts);
      rows.insert(rows.end(), r.begin(), r.end());
    }
    if (want("B6") || want("B7b")) {
      auto r = joy::bench::run_cluster_benches(opts);
      rows.insert(rows.end(), r.begin(), r.end());
    }
    if (want("B9") || want("B7c") || want("B12")) {
      auto r = joy::bench::run_bridge_benches(opts);
      rows.insert(rows.end(), r.begin(), r.end());
    }
    if (want("B5") || want("B7a") || want("CB")) {
      auto r = joy::bench::run_node_benches(opts);
      rows.insert(rows.end(), r.begin(), r.end());
    }
  } catch (const std::exception& ex) {
    std::cerr << "joy-bench: " << ex.what() << "\n";
    return 1;
  }
  if (as_json) {
    joy::json out = joy::json::array();
    for (auto& r : rows) {
      joy::json x = joy::json::object();
      x["id"] = r.id;
      x["name"] = r.name;
      x["value"] = r.value;
      x["unit"] = r.unit;
      x["baseline"] = r.baseline;
      x["baseline_name"] = r.baseline_name;
      x["ratio"] = r.ratio();
      x["better"] = r.better;
      out.push_back(std::move(x));
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::printf("%-12s %-66s %14s %-11s %14s %8s\n", "id", "benchmark", "value",
              "unit", "baseline", "ratio");
  for (auto& r : rows) {
    std::printf("%-12s %-66s %14.2f %-11s %14.2f %8.2f\n", r.id.c_str(),
                r.name.c_str(), r.value, r.unit.c_str(), r.baseline, r.ratio());
    if (!r.baseline_name.empty())
      std::printf("%-12s   baseline: %s (%s is better)\n", "",
                  r.baseline_name.c_str(), r.better.c_str());
  }
  return 0;
}
