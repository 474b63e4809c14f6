// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// A cgroup per plugin (DESIGN §7): its memory, pids and CPU limits, its OOM
/// kills, and a way to kill everything in it. Both hierarchies are served:
/// v1 (a directory per controller, as on the build machines) and v2 (one
/// tree; the daemon moves itself into a leaf so that it may delegate
/// controllers to its plugins).
///
/// The tree's root and the daemon's own `/proc/self/cgroup` are parameters,
/// so the tests run against a fake cgroupfs made of plain directories.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/expected.hpp>

namespace joy {

enum class cgroup_version { v1, v2 };

/// Zero means "no limit" for each field.
struct cgroup_limits {
  uint64_t memory_bytes = 0;
  uint32_t pids = 0;
  /// CPU bandwidth in cores (0.5 = half of one core).
  double cpus = 0;
};

/// Cgroups whose removal failed because their last processes were still
/// exiting; retried later (shared by a tree and its plugins' cgroups, used
/// from the spawner and the kj thread).
class cgroup_graveyard;

/// The cgroup of one plugin process. Destroying it kills what is left in it
/// and removes it (or leaves it to the graveyard while it is busy).
class plugin_cgroup {
public:
  plugin_cgroup(cgroup_version version, std::vector<std::string> dirs,
                bool real, std::shared_ptr<cgroup_graveyard> graveyard = {});
  ~plugin_cgroup();

  plugin_cgroup(const plugin_cgroup&) = delete;
  plugin_cgroup& operator=(const plugin_cgroup&) = delete;

  /// The `cgroup.procs` files a process writes its pid into to join.
  std::vector<std::string> procs_files() const;

  /// How many processes the kernel killed for the memory limit.
  uint64_t oom_kills() const;

  /// Memory in use now (bytes), 0 if unknown.
  uint64_t memory_bytes() const;

  /// SIGKILL to every process in it (cgroup.kill on v2 when the kernel has
  /// it, otherwise each pid until none is left).
  void kill_all() noexcept;

  /// Removes the directories; false while processes remain, and then
  /// the graveyard retries later.
  bool remove() noexcept;

  /// Tries to remove the directories, without handing them to the
  /// graveyard; true once they are gone.
  bool remove_now() noexcept;

private:
  std::string file(const char* controller, const char* name) const;

  cgroup_version version_;
  /// v1: memory, pids, cpu (empty where the controller is missing); v2: one.
  std::vector<std::string> dirs_;
  bool real_;
  bool removed_ = false;
  std::shared_ptr<cgroup_graveyard> graveyard_;
};

/// Where the daemon makes its plugins' cgroups: `<own cgroup>/joy.<pid>`.
class cgroup_tree {
public:
  /// Opens the hierarchy mounted at `fs_root` (normally /sys/fs/cgroup),
  /// finding the daemon's own cgroup in `self_cgroup` (normally
  /// /proc/self/cgroup). Errors: unavailable (no usable hierarchy),
  /// io_error (cannot create the daemon's directory).
  static caf::expected<std::shared_ptr<cgroup_tree>>
  open(const std::string& fs_root, const std::string& self_cgroup);

  ~cgroup_tree();

  cgroup_version version() const noexcept {
    return version_;
  }

  /// E.g. "cgroup v1 (memory, pids, cpu)".
  std::string describe() const;

  /// The least memory limit set on the daemon's own cgroup or one above it;
  /// UINT64_MAX where none is. What the daemon itself may use, under
  /// systemd's `MemoryMax` or in a container.
  uint64_t memory_limit() const;

  /// A new cgroup for plugin `name` with `limits`. Errors: io_error.
  caf::expected<std::unique_ptr<plugin_cgroup>>
  create(const std::string& name, const cgroup_limits& limits);

  /// Removes what daemons that are gone left behind (`joy.<pid>` of a dead
  /// pid, with their empty plugin cgroups). Returns how many it removed.
  int sweep();

private:
  cgroup_tree() = default;

  cgroup_version version_ = cgroup_version::v1;
  std::string root_;
  /// v1: the daemon's directory in memory, pids and cpu (empty: missing);
  /// v2: one entry.
  std::vector<std::string> bases_;
  std::vector<std::string> own_;
  bool real_ = false;
  uint64_t next_ = 0;
  std::shared_ptr<cgroup_graveyard> graveyard_;
};

} // namespace joy
