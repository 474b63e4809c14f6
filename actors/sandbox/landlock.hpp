// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// Landlock, the kernel's unprivileged access control (DESIGN §7): the
/// innermost layer of a plugin's sandbox, applied by `joy-exec` inside
/// bubblewrap right before the plugin runs (Landlock forbids the mounts
/// bubblewrap makes, so it cannot come earlier).
///
/// Plain C++ with no Joy dependencies: `joy-exec` links it. Debian 12's
/// headers know ABI 2; the newer rights (truncate, TCP) are defined here and
/// used only when the running kernel reports their ABI.
#pragma once

#include <string>
#include <vector>

namespace joy::landlock {

/// The kernel's Landlock ABI version; 0 when it has none (or it is off).
int abi_version() noexcept;

/// What the process may still touch once restricted.
struct ruleset {
  /// Read and execute, no writes.
  std::vector<std::string> read_only;
  /// Everything, including creating and removing files.
  std::vector<std::string> read_write;
  /// Reading and writing existing files only (device nodes in /dev).
  std::vector<std::string> files_only;
  /// Allow TCP bind and connect (only enforced from ABI 4 on; below that,
  /// the network namespace and seccomp stand alone).
  bool tcp = false;
};

/// Restricts the calling thread (and what it execs) to `rules`. Paths that
/// do not exist are skipped. Returns 0, or an errno; ENOSYS or EOPNOTSUPP
/// when the kernel has no Landlock.
int restrict_self(const ruleset& rules) noexcept;

} // namespace joy::landlock
