// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "tools/bench/bench_node.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>

extern char** environ;

namespace joy::bench {

namespace fs = std::filesystem;

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

bench_node::bench_node(const options& opts, std::vector<std::string> start_args,
                       const std::vector<std::string>& plugins)
  : joy_(opts.bin_dir + "/joy"),
    bench_plugin_(opts.bin_dir + "/joy-bench-plugin") {
  char tmpl[] = "/tmp/joy-bench-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr)
    throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  start_args.insert(start_args.begin(), "start");
  joy(start_args);
  for (auto& name : plugins) {
    auto folder = dir_ / "src" / name;
    fs::create_directories(folder);
    fs::copy_file(bench_plugin_, folder / "joy-bench-plugin");
    std::ofstream{folder / "plugin.json"} << nlohmann::json{
      {"name", name},
      {"type", "native"},
      {"version", "0.1.0"},
      {"entry", "joy-bench-plugin"},
      // Room for a 1 GiB array and its copy (B7a, B7b).
      {"resources", {{"memory", "4GiB"}}}}.dump();
    joy({"install", folder.string()});
  }
}

bench_node::~bench_node() {
  try {
    joy({"stop"});
  } catch (...) {
    // Nothing more to do; the temp dir goes anyway.
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::string bench_node::joy(std::vector<std::string> args) {
  args.insert(args.begin(), {joy_, "--home", home()});
  return run(args);
}

nlohmann::json bench_node::call(std::vector<std::string> args) {
  args.insert(args.begin(), "call");
  return nlohmann::json::parse(joy(std::move(args)));
}

} // namespace joy::bench
