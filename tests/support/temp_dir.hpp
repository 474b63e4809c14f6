// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// Hermetic scratch space for tests: every run gets unique, short
/// directories (unix socket paths must stay under 108 bytes) named
/// `/tmp/joy-t-<pid>-<random>`. A directory whose owning test process is gone
/// is a leftover of a killed run; `sweep_leftovers()` removes those at start.
#pragma once

#include <filesystem>
#include <string>

namespace joy::test {

/// A fresh directory, removed with everything in it on destruction.
class temp_dir {
public:
  temp_dir();
  ~temp_dir();

  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::filesystem::path& path() const noexcept {
    return path_;
  }

  /// `path() / name`.
  std::filesystem::path operator/(const std::string& name) const {
    return path_ / name;
  }

private:
  std::filesystem::path path_;
};

/// Removes `/tmp/joy-t-<pid>-*` directories whose process no longer exists.
void sweep_leftovers();

/// Reads a whole file ("" if missing).
std::string read_file(const std::filesystem::path& path);

/// Writes a whole file, creating parent directories.
void write_file(const std::filesystem::path& path, const std::string& text);

} // namespace joy::test
