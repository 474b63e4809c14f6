// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// A real node for the node benchmarks: joyd in a temp home with copies of
/// joy-bench-plugin installed, stopped and removed at the end.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/bench/bench.hpp"

namespace joy::bench {

/// Runs `argv` and returns its stdout; throws with its stderr on failure.
std::string run(const std::vector<std::string>& argv);

class bench_node {
public:
  /// `joy start` with `start_args`, then one bench plugin per name.
  bench_node(const options& opts, std::vector<std::string> start_args,
             const std::vector<std::string>& plugins);

  ~bench_node();

  bench_node(const bench_node&) = delete;
  bench_node& operator=(const bench_node&) = delete;

  std::string joy(std::vector<std::string> args);

  nlohmann::json call(std::vector<std::string> args);

  std::string home() const {
    return (dir_ / "h").string();
  }

  /// A scratch folder next to the home.
  const std::filesystem::path& dir() const {
    return dir_;
  }

private:
  std::string joy_;
  std::string bench_plugin_;
  std::filesystem::path dir_;
};

} // namespace joy::bench
