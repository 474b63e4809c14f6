// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "tests/support/temp_dir.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

namespace fs = std::filesystem;

namespace joy::test {

namespace {

constexpr const char* prefix = "joy-t-";

} // namespace

temp_dir::temp_dir() {
  std::random_device rd;
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto name = std::string{prefix} + std::to_string(::getpid()) + "-"
                + std::to_string(rd() % 1000000);
    auto candidate = fs::path{"/tmp"} / name;
    std::error_code ec;
    if (fs::create_directory(candidate, ec)) {
      fs::permissions(candidate, fs::perms::owner_all, ec);
      path_ = candidate;
      return;
    }
  }
  throw std::runtime_error("cannot create a temporary directory in /tmp");
}

temp_dir::~temp_dir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void sweep_leftovers() {
  std::error_code ec;
  for (auto& entry : fs::directory_iterator{"/tmp", ec}) {
    auto name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0)
      continue;
    auto rest = name.substr(std::string{prefix}.size());
    auto dash = rest.find('-');
    if (dash == std::string::npos)
      continue;
    auto pid = std::atoi(rest.substr(0, dash).c_str());
    if (pid <= 0 || pid == ::getpid())
      continue;
    if (::kill(pid, 0) == 0 || errno != ESRCH)
      continue; // still running (or not ours to judge)
    std::error_code rm;
    fs::remove_all(entry.path(), rm);
  }
}

std::string read_file(const fs::path& path) {
  std::ifstream in{path, std::ios::binary};
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void write_file(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream out{path, std::ios::binary | std::ios::trunc};
  out << text;
}

} // namespace joy::test
