// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// What a plugin's sandbox allows (DESIGN §7): the node's settings, what the
/// manifest asks for, and the bubblewrap command line that enforces it.
///
/// The layers, outermost first, all set up before the plugin's first
/// instruction:
/// 1. `joy-exec` (still the daemon's user) joins the plugin's cgroup, sets
///    rlimits, drops to the plugin uid when the daemon is root (bubblewrap
///    run by root would map the plugin to real root), sets NO_NEW_PRIVS;
/// 2. bubblewrap: new user, mount, pid, ipc, uts, cgroup and (unless asked
///    for) network namespaces; only allowlisted paths, read-only, plus the
///    plugin's work dir and a size-capped private /tmp; the seccomp filter;
/// 3. `joy-exec --inner` applies Landlock, forks the plugin and reports its
///    exact exit status (bubblewrap reports a signal death as 128+N).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

#include "actors/sandbox/cgroup.hpp"
#include "runtime/manifest.hpp"

namespace joy {

/// The node-wide settings (joyd's flags).
struct sandbox_settings {
  /// false: plugins run as the daemon's user with no isolation
  /// (`--sandbox=none`, shown loudly in `joy status`).
  bool enabled = true;
  /// The bubblewrap binary.
  std::string bwrap = "/usr/bin/bwrap";
  /// The uids plugins run as when the daemon is root: each plugin gets one
  /// of its own from [uid, uid + uid_count), its gid equal. Ignored when
  /// the daemon is not root (plugins then keep its unprivileged uid).
  uid_t uid = 200000;
  uid_t uid_count = 65536;
  /// Landlock when the kernel has it.
  bool landlock = true;
  /// Defaults for what the manifest's `resources` leaves out.
  uint64_t memory_bytes = uint64_t{1} << 30;
  uint32_t pids = 128;
  double cpus = 1;
  uint64_t disk_bytes = uint64_t{256} << 20;
  uint32_t open_files = 1024;
};

/// One plugin's sandbox. Plain data: it travels to the spawner in its
/// launch_spec.
struct sandbox_policy {
  bool enabled = false;
  /// -1: keep the daemon's uid. Otherwise the first uid of the range the
  /// launcher picks the plugin's own from (the owner of its work dir, which
  /// keeps the choice across restarts).
  int64_t uid = -1;
  int64_t uid_count = 1;
  bool network = false;
  bool landlock = false;
  cgroup_limits limits;
  /// The private /tmp's size. (Not RLIMIT_FSIZE: it caps memfds too, and
  /// so the shared-memory blocks of large arrays.)
  uint64_t disk_bytes = 0;
  uint32_t open_files = 0;
  /// The installed plugin (read-only inside) and its work dir (writable,
  /// its HOME).
  std::string code_dir;
  std::string work_dir;
  /// Where a root node keeps the work dir's ext4 image (its size capped);
  /// empty: a plain directory.
  std::string work_image;
  /// Device nodes the plugin may use (its GPUs), bound where they exist.
  std::vector<std::string> devices;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sandbox_policy& x) {
  return f(caf::meta::type_name("joy::sandbox_policy"), x.enabled, x.uid,
           x.uid_count, x.network, x.landlock, x.limits.memory_bytes,
           x.limits.pids, x.limits.cpus, x.disk_bytes, x.open_files, x.code_dir,
           x.work_dir, x.work_image, x.devices);
}

/// The policy for a plugin with `manifest`, installed in `code_dir`, whose
/// work dir is `work_dir`. `daemon_is_root` decides the uid drop.
sandbox_policy make_sandbox_policy(const sandbox_settings& settings,
                                   const plugin_manifest& manifest,
                                   std::string code_dir, std::string work_dir,
                                   bool daemon_is_root);

/// Where bubblewrap finds what it binds into the sandbox. bubblewrap
/// resolves every source path as the plugin's uid, which cannot reach a
/// private `$JOY_HOME` (nor /root): a root daemon's joy-exec first binds them
/// under a world-traversable stage in a mount namespace of its own
/// (`joy-exec --stage`); otherwise they are the real paths.
struct sandbox_sources {
  std::string code_dir;
  std::string work_dir;
  std::string joy_exec;
  /// The child's fd with the seccomp program.
  int seccomp_fd = -1;
  /// The program that runs the plugin's entry (launch_spec::runtime), or
  /// empty.
  std::string runtime = {};
};

/// Inside the sandbox, joy-exec's second stage lives here.
constexpr const char* inner_exec_path = "/run/joy/joy-exec";

/// Inside the sandbox, a plugin's runtime (joy-python-host) lives here.
constexpr const char* inner_runtime_path = "/run/joy/runtime";

/// bubblewrap's arguments (without argv[0]) up to and including `--`, for
/// running `inner_exec_path` in the sandbox of `policy`.
/// The device nodes of the NVIDIA GPUs `indices` (all there are when
/// `all`), with the driver's shared control nodes, that exist on this
/// machine under `dev` (a test passes a fake /dev).
std::vector<std::string> gpu_device_nodes(const std::vector<uint32_t>& indices,
                                          bool all,
                                          const std::string& dev = "/dev");

std::vector<std::string> bwrap_arguments(const sandbox_policy& policy,
                                         const sandbox_sources& sources);

/// The paths Landlock leaves readable (system paths and the plugin's code)
/// and writable (its work dir, /tmp, /dev) inside the sandbox.
std::vector<std::string> landlock_read_only(const sandbox_policy& policy);
std::vector<std::string> landlock_read_write(const sandbox_policy& policy);
/// Where Landlock allows reading and writing existing files only: the
/// device nodes of /dev.
std::vector<std::string> landlock_files_only(const sandbox_policy& policy);

} // namespace joy
