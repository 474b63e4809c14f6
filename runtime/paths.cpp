// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "runtime/paths.hpp"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace joy {

std::string default_home() {
  if (const char* env = std::getenv("JOY_HOME"); env != nullptr && *env != '\0')
    return std::filesystem::absolute(env).lexically_normal().string();
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home == '\0') {
    if (auto* pw = ::getpwuid(::getuid()))
      home = pw->pw_dir;
  }
  return std::string{home != nullptr ? home : "/tmp"} + "/.joy";
}

std::string self_dir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec)
    return ".";
  return exe.parent_path().string();
}

std::string socket_path(const std::string& home) {
  return home + "/joyd.sock";
}

} // namespace joy
