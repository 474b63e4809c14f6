// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// A real node for integration tests: its own home in a fresh temp dir,
/// driven through the real `joy` CLI, and stopped for sure at the end (the
/// daemon, and any process still running from the home).
#pragma once

#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

namespace joy::test {

/// `eventually(pred)` as a requirement: the test stops unless it holds in
/// time.
template <class Pred>
void await(Pred pred,
           std::chrono::milliseconds timeout = std::chrono::seconds{10}) {
  REQUIRE(eventually(pred, timeout));
}

class node_fixture {
public:
  node_fixture() : home_((dir_ / "h").string()) {
    env_["JOY_HOME"] = home_;
    env_["JOY_LOG"] = "debug";
  }

  ~node_fixture() {
    stop_everything();
  }

  const std::string& home() const {
    return home_;
  }

  const temp_dir& dir() const {
    return dir_;
  }

  /// Runs `joy args...` against this node. `joy start` runs the node
  /// without its built-in gpu service unless the test asks for it
  /// (`--gpu-service on`), so that a node has exactly the plugins its test
  /// installs.
  run_result joy(const std::vector<std::string>& args,
                 std::chrono::milliseconds timeout = std::chrono::seconds{60}) {
    std::vector<std::string> argv{bin("joy")};
    argv.insert(argv.end(), args.begin(), args.end());
    if (!args.empty() && args[0] == "start"
        && std::find(args.begin(), args.end(), "--gpu-service") == args.end())
      argv.insert(argv.end(), {"--gpu-service", "off"});
    return run(argv, env_, timeout);
  }

  /// `joy args...` must succeed; returns stdout.
  std::string ok(const std::vector<std::string>& args) {
    auto r = joy(args);
    INFO("joy " << join(args) << "\nstdout: " << r.out << "\nstderr: " << r.err
                << "\njoyd.log:\n"
                << read_file(home_ + "/logs/joyd.log"));
    REQUIRE(r.exit_code == 0);
    return r.out;
  }

  void start() {
    ok({"start"});
  }

  /// `joy start` with more of its options.
  void start(const std::vector<std::string>& options) {
    std::vector<std::string> args{"start"};
    args.insert(args.end(), options.begin(), options.end());
    ok(args);
  }

  /// `joy call plugin method args...` must succeed; returns its JSON.
  template <class... Ts>
  nlohmann::json call(const std::string& plugin, const std::string& method,
                      const Ts&... args) {
    std::vector<std::string> argv{"call", plugin, method,
                                  nlohmann::json(args).dump()...};
    return nlohmann::json::parse(ok(argv));
  }

  /// A plugin folder running bin/joy-test-hostile (copied in, so that its
  /// sandbox can reach it) with `manifest` merged into its plugin.json.
  std::string hostile_plugin(const std::string& name,
                             const nlohmann::json& manifest = {}) {
    auto dst = dir_.path() / "src" / name;
    std::filesystem::create_directories(dst);
    nlohmann::json doc{
      {"name", name}, {"type", "native"}, {"entry", "joy-test-hostile"}};
    if (manifest.is_object())
      doc.update(manifest);
    write_file(dst / "plugin.json", doc.dump(2));
    std::filesystem::copy_file(
      bin("joy-test-hostile"), dst / "joy-test-hostile",
      std::filesystem::copy_options::overwrite_existing);
    return dst.string();
  }

  nlohmann::json status() {
    return nlohmann::json::parse(ok({"status", "--json"}));
  }

  nlohmann::json plugin(const std::string& name) {
    auto st = status();
    for (auto& p : st["plugins"])
      if (p["name"] == name)
        return p;
    return nullptr;
  }

  /// The daemon's pid from its lock file (0: none).
  int daemon_pid() const {
    std::ifstream in{home_ + "/joyd.lock"};
    int pid = 0;
    in >> pid;
    return pid;
  }

  /// True while a daemon holds the home's lock.
  bool daemon_running() const {
    int fd = ::open((home_ + "/joyd.lock").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      return false;
    bool locked = ::flock(fd, LOCK_EX | LOCK_NB) != 0;
    ::close(fd);
    return locked;
  }

  /// Plugin processes still running from this home (not their sandboxes).
  std::vector<int> processes_in_home() const {
    return find_programs(home_ + "/plugins/");
  }

  /// Every process whose command line names this home (plugins and the
  /// sandbox processes around them).
  std::vector<int> anything_in_home() const {
    return find_processes(home_ + "/");
  }

  /// The environment `joy` runs with (JOY_HOME of this node).
  const std::map<std::string, std::string>& env() const {
    return env_;
  }

  /// A copy of an example plugin folder under another name.
  std::string copy_example(const std::string& example_name,
                           const std::string& new_name) {
    auto dst = dir_.path() / "src" / new_name;
    std::filesystem::create_directories(dst.parent_path());
    std::filesystem::copy(test::example(example_name), dst,
                          std::filesystem::copy_options::recursive);
    auto manifest = nlohmann::json::parse(read_file(dst / "plugin.json"));
    manifest["name"] = new_name;
    write_file(dst / "plugin.json", manifest.dump(2));
    return dst.string();
  }

  /// A plugin folder whose entry runs `joy-test-evil <mode>`.
  std::string evil_plugin(const std::string& mode) {
    auto name = "evil-" + mode;
    auto dst = dir_.path() / "src" / name;
    write_file(
      dst / "plugin.json",
      nlohmann::json{{"name", name}, {"type", "native"}, {"entry", "run.sh"}}
        .dump());
    // Copied in: a sandboxed plugin sees nothing of the build tree.
    std::filesystem::copy_file(
      bin("joy-test-evil"), dst / "joy-test-evil",
      std::filesystem::copy_options::overwrite_existing);
    write_file(dst / "run.sh",
               "#!/bin/sh\nexec ./joy-test-evil " + mode + "\n");
    std::filesystem::permissions(dst / "run.sh",
                                 std::filesystem::perms::owner_all);
    return dst.string();
  }

  void stop_everything() {
    if (daemon_running()) {
      auto pid = daemon_pid();
      auto r = joy({"stop"}, std::chrono::seconds{30});
      if (r.exit_code != 0 && pid > 0)
        ::kill(pid, SIGKILL);
      eventually([&] { return !daemon_running(); }, std::chrono::seconds{10});
    }
    for (int pid : processes_in_home())
      ::kill(pid, SIGKILL);
  }

  static std::string join(const std::vector<std::string>& xs) {
    std::string out;
    for (auto& x : xs)
      out += (out.empty() ? "" : " ") + x;
    return out;
  }

private:
  temp_dir dir_;
  std::string home_;
  std::map<std::string, std::string> env_;
};

} // namespace joy::test
