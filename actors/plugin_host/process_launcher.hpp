// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// Starting plugin processes, behind a narrow interface so that unit tests
/// run plugins without spawning anything (DESIGN §7).
///
/// The real launcher posix_spawns the tiny `joy-exec` helper rather than
/// forking the big multithreaded daemon (fork of a process with 512 MiB
/// mapped costs ~16 ms here, posix_spawn ~0.45 ms). `joy-exec` does what must
/// happen inside the child — `PDEATHSIG`, fds, later the uid drop, rlimits
/// and seccomp — then execs the plugin. The daemon stays the parent: it
/// holds a pidfd and reads the exit status with `waitid(P_PIDFD)`.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <caf/expected.hpp>
#include <caf/meta/type_name.hpp>

#include "runtime/unique_fd.hpp"

namespace joy {

/// How a process ended.
struct exit_status {
  enum class how : uint8_t { exited, signaled };
  how kind = how::exited;
  /// The exit code, or the signal number.
  int code = 0;

  bool clean() const noexcept {
    return kind == how::exited && code == 0;
  }

  /// "exit code 3", "killed by signal 9 (SIGKILL)".
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

  /// Sends SIGKILL (a no-op after it ended).
  virtual void kill() noexcept = 0;
};

/// What to run.
struct launch_spec {
  /// The plugin's name, for logs and `JOY_PLUGIN_NAME`.
  std::string name;
  /// Absolute path of the executable.
  std::string executable;
  std::vector<std::string> args;
  /// The working directory (the installed plugin folder).
  std::string work_dir;
  /// stdout and stderr are appended here; empty means /dev/null.
  std::string log_file;
  /// The whole environment of the plugin (deny by default: nothing from the
  /// daemon's environment leaks in).
  std::vector<std::pair<std::string, std::string>> env;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, launch_spec& x) {
  return f(caf::meta::type_name("joy::launch_spec"), x.name, x.executable,
           x.args, x.work_dir, x.log_file, x.env);
}

/// A started process and the daemon's end of its socket. Shared pointers
/// make it a copyable message; exactly one owner (the plugin link on the kj
/// thread) ends up using it.
struct launched_process {
  std::shared_ptr<process> proc;
  std::shared_ptr<unique_fd> socket;
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

/// The real launcher: posix_spawn of `joy_exec` (the path of the helper).
std::shared_ptr<process_launcher> make_exec_launcher(std::string joy_exec);

} // namespace joy
