// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// Starting plugin processes, behind a narrow interface so that unit tests
/// run plugins without spawning anything (DESIGN §7).
///
/// The real launcher posix_spawns the tiny `joy-exec` helper rather than
/// forking the big multithreaded daemon (fork of a process with 512 MiB
/// mapped costs ~16 ms here, posix_spawn ~0.45 ms). `joy-exec` does what must
/// happen inside the child — cgroup, rlimits, uid drop, `PDEATHSIG`, fds —
/// then execs the plugin, or bubblewrap around it (actors/sandbox). The
/// daemon stays the parent: it holds a pidfd and reads the exit status with
/// `waitid(P_PIDFD)`.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <caf/expected.hpp>
#include <caf/meta/type_name.hpp>

#include "actors/sandbox/cgroup.hpp"
#include "actors/sandbox/sandbox_policy.hpp"
#include "runtime/unique_fd.hpp"

namespace joy {

/// How a process ended: from waitid, or in a sandbox from joy-exec's status
/// report and the cgroup's events (bubblewrap alone turns signal N into
/// exit code 128+N).
struct exit_status {
  enum class how : uint8_t { exited, signaled, out_of_memory };
  how kind = how::exited;
  /// The exit code, or the signal number.
  int code = 0;
  /// For out_of_memory: the cgroup's limit.
  uint64_t memory_limit = 0;

  bool clean() const noexcept {
    return kind == how::exited && code == 0;
  }

  /// "exit code 3", "killed by signal 9 (SIGKILL)", "killed by the memory
  /// limit (64 MiB)", "killed by signal 24 (SIGXCPU: CPU time limit)".
  std::string describe() const;
};

/// A started child process. Its methods are called on the kj thread once
/// the process is handed there; destroying it kills and reaps the process
/// if that has not happened yet (no zombie is ever left behind).
class process {
public:
  virtual ~process();

  virtual int pid() const noexcept = 0;

  /// Becomes readable when the process has exited (a pidfd).
  virtual int exit_fd() const noexcept = 0;

  /// Collects the exit status once `exit_fd()` is readable; nullopt while
  /// the process still runs.
  virtual std::optional<exit_status> reap() = 0;

  /// Sends SIGKILL to it and everything it started (its cgroup or its
  /// sandbox's pid namespace); a no-op after it ended.
  virtual void kill() noexcept = 0;
};

/// What to run.
struct launch_spec {
  /// The plugin's name, for logs and `JOY_PLUGIN_NAME`.
  std::string name;
  /// Absolute path of the executable.
  std::string executable;
  /// A program that runs `executable` for it (joy-python-host for a
  /// Python plugin's script), or empty. It runs as `runtime executable
  /// args...`; in a sandbox it is bound read-only at `inner_runtime_path`.
  std::string runtime;
  std::vector<std::string> args;
  /// The working directory (the installed plugin folder).
  std::string work_dir;
  /// stdout and stderr are appended here, through a pipe the node drains
  /// (log_drain.hpp); empty means /dev/null.
  std::string log_file;
  /// The log's hard cap: output beyond it is dropped until rotation makes
  /// room.
  uint64_t log_cap = uint64_t{64} << 20;
  /// The whole environment of the plugin (deny by default: nothing from the
  /// daemon's environment leaks in).
  std::vector<std::pair<std::string, std::string>> env;
  /// Its sandbox; `sandbox.enabled == false` runs it as the daemon's user,
  /// but still in a cgroup with limits when the node has cgroups.
  sandbox_policy sandbox;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, launch_spec& x) {
  return f(caf::meta::type_name("joy::launch_spec"), x.name, x.executable,
           x.runtime, x.args, x.work_dir, x.log_file, x.log_cap, x.env,
           x.sandbox);
}

/// A started process and the daemon's end of its socket. Shared pointers
/// make it a copyable message; exactly one owner (the plugin link on the kj
/// thread) ends up using it.
struct launched_process {
  std::shared_ptr<process> proc;
  std::shared_ptr<unique_fd> socket;
  /// The read end of the plugin's stdout and stderr (may be empty), for
  /// `log_file` capped at `log_cap`.
  std::shared_ptr<unique_fd> output;
  std::string log_file;
  uint64_t log_cap = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, launched_process& x) {
  // Not serializable: it carries live process handles and fds.
  int pid = x.proc ? x.proc->pid() : -1;
  return f(caf::meta::type_name("joy::launched_process"), pid);
}

class process_launcher {
public:
  virtual ~process_launcher();

  /// Starts a process; blocking (call it from a detached actor). Errors:
  /// not_found (executable missing), io_error (spawn failed).
  virtual caf::expected<launched_process> launch(const launch_spec& spec) = 0;
};

struct exec_launcher_config {
  /// The helper's path.
  std::string joy_exec;
  /// bubblewrap's path, for sandboxed plugins.
  std::string bwrap = "/usr/bin/bwrap";
  /// A root daemon's sandboxes bind the plugin's folders here first, in a
  /// mount namespace of their own (see sandbox_sources).
  std::string stage_dir = "/run/joy-stage";
  /// A root daemon's plugins keep their work dir in an ext4 image of
  /// `resources.disk` bytes on a loop device, so that its size is capped;
  /// empty (or no /dev/loop-control) leaves work dirs uncapped.
  std::string mkfs = "/usr/sbin/mkfs.ext4";
  /// Where a root daemon claims its plugins' uids, shared by every daemon
  /// on the machine (uid_claims).
  std::string uid_claims_dir = "/var/lib/joy/plugin-uids";
  /// Where plugins' cgroups go; null: no cgroups (limits unenforced).
  std::shared_ptr<cgroup_tree> cgroups;
};

/// The real launcher: posix_spawn of `joy_exec`. Errors: internal (the
/// seccomp filters could not be built).
caf::expected<std::shared_ptr<process_launcher>>
make_exec_launcher(exec_launcher_config cfg);

/// True when `cfg` can cap work dirs with images on this machine.
bool can_cap_work_dirs(const exec_launcher_config& cfg);

/// An unsandboxed launcher without cgroups (benchmarks, tests).
std::shared_ptr<process_launcher> make_exec_launcher(std::string joy_exec);

} // namespace joy
