// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// B5, B7a and callback round trips: measured inside a plugin on a real node
// (joyd in a temp home, two copies of joy-bench-plugin), because that is
// where a plugin author's calls start. Baselines run in the same plugin in
// the same run: a plain call for B5 and callbacks, memcpy for B7a.

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "tools/bench/bench.hpp"

extern char** environ;

namespace joy::bench {

namespace {

namespace fs = std::filesystem;

/// Runs `argv` and returns its stdout; throws with its stderr on failure.
std::string run(const std::vector<std::string>& argv) {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0)
    throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  std::vector<char*> args;
  for (auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc
    = ::posix_spawn(&pid, argv[0].c_str(), &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(out[1]);
  ::close(err[1]);
  auto drain = [](int fd) {
    std::string s;
    char buf[4096];
    for (ssize_t n; (n = ::read(fd, buf, sizeof(buf))) > 0;)
      s.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    return s;
  };
  auto text = drain(out[0]);
  auto errors = drain(err[0]);
  if (rc != 0)
    throw std::runtime_error("cannot run " + argv[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error(argv[0] + " " + argv[1] + " failed: " + errors);
  return text;
}

/// A node in a temp home with two bench plugins; stopped and removed at
/// the end.
class bench_node {
public:
  explicit bench_node(const options& opts) : joy_(opts.bin_dir + "/joy") {
    char tmpl[] = "/tmp/joy-bench-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr)
      throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    joy({"start"});
    for (auto name : {"bench-a", "bench-b"}) {
      auto folder = dir_ / "src" / name;
      fs::create_directories(folder);
      fs::copy_file(opts.bin_dir + "/joy-bench-plugin",
                    folder / "joy-bench-plugin");
      std::ofstream{folder / "plugin.json"} << nlohmann::json{
        {"name", name},
        {"type", "native"},
        {"version", "0.1.0"},
        {"entry", "joy-bench-plugin"}}.dump();
      joy({"install", folder.string()});
    }
  }

  ~bench_node() {
    try {
      joy({"stop"});
    } catch (...) {
      // Nothing more to do; the temp dir goes anyway.
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string joy(std::vector<std::string> args) {
    args.insert(args.begin(), {joy_, "--home", (dir_ / "h").string()});
    return run(args);
  }

  nlohmann::json call(std::vector<std::string> args) {
    args.insert(args.begin(), "call");
    return nlohmann::json::parse(joy(std::move(args)));
  }

private:
  std::string joy_;
  fs::path dir_;
};

} // namespace

std::vector<row> run_node_benches(const options& opts) {
  bench_node node{opts};
  std::vector<row> rows;
  auto id = node.call({"bench-b", "offer"}).get<std::string>();
  auto n = std::to_string(std::max<std::size_t>(opts.samples / 4, 100));
  node.call({"bench-a", "measure", "\"bench-b\"", nlohmann::json(id).dump(),
             "200"}); // warm-up
  // Best of three rounds per figure (noise only adds time).
  double plain50 = 1e18, plain99 = 1e18, cb50 = 1e18, cb99 = 1e18, gs50 = 1e18,
         gs99 = 1e18;
  for (int round = 0; round < 3; ++round) {
    auto m = node.call(
      {"bench-a", "measure", "\"bench-b\"", nlohmann::json(id).dump(), n});
    plain50 = std::min(plain50, m["plain"]["p50"].get<double>());
    plain99 = std::min(plain99, m["plain"]["p99"].get<double>());
    cb50 = std::min(cb50, m["callback"]["p50"].get<double>());
    cb99 = std::min(cb99, m["callback"]["p99"].get<double>());
    gs50 = std::min(gs50, m["get_service_call"]["p50"].get<double>());
    gs99 = std::min(gs99, m["get_service_call"]["p99"].get<double>());
  }
  rows.push_back(row{"B5.p50", "plugin: get_service(x).f(), p50", gs50, "us",
                     cb50, "lower", "one call of f on a service already held"});
  rows.push_back(row{"B5.p99", "plugin: get_service(x).f(), p99", gs99, "us",
                     cb99, "lower", "one call of f on a service already held"});
  rows.push_back(row{"CB.p50",
                     "plugin: callback round trip (a function value living "
                     "in another plugin), p50",
                     cb50, "us", plain50, "lower",
                     "plain api.call(plugin, method), p50"});
  rows.push_back(row{"CB.p99", "plugin: callback round trip, p99", cb99, "us",
                     plain99, "lower", "plain api.call(plugin, method), p99"});
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
  return rows;
}

} // namespace joy::bench
