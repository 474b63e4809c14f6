// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/plugin_host/process_launcher.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
// glibc 2.36's <sys/pidfd.h> lacks the extern "C" guards (fixed in 2.37).
extern "C" {
#include <sys/pidfd.h>
}
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "runtime/errc.hpp"
#include "runtime/protocol.hpp"

namespace joy {

std::string exit_status::describe() const {
  if (kind == how::exited)
    return "exit code " + std::to_string(code);
  const char* name = sigabbrev_np(code);
  return "killed by signal " + std::to_string(code)
         + (name ? " (SIG" + std::string{name} + ")" : std::string{});
}

process::~process() {
  // nop
}

process_launcher::~process_launcher() {
  // nop
}

namespace {

class pidfd_process final : public process {
public:
  pidfd_process(int pid, unique_fd pidfd)
    : pid_(pid), pidfd_(std::move(pidfd)) {
    // nop
  }

  ~pidfd_process() override {
    if (reaped_)
      return;
    // Never leave a zombie or an orphan: kill, then wait (immediate after
    // SIGKILL).
    kill();
    siginfo_t info{};
    while (::waitid(P_PIDFD, static_cast<id_t>(pidfd_.get()), &info, WEXITED)
             < 0
           && errno == EINTR) {
      // retry
    }
  }

  int pid() const noexcept override {
    return pid_;
  }

  int exit_fd() const noexcept override {
    return pidfd_.get();
  }

  std::optional<exit_status> reap() override {
    if (reaped_)
      return status_;
    siginfo_t info{};
    if (::waitid(P_PIDFD, static_cast<id_t>(pidfd_.get()), &info,
                 WEXITED | WNOHANG)
        < 0)
      return std::nullopt;
    if (info.si_pid == 0)
      return std::nullopt; // still running
    reaped_ = true;
    if (info.si_code == CLD_EXITED)
      status_ = exit_status{exit_status::how::exited, info.si_status};
    else
      status_ = exit_status{exit_status::how::signaled, info.si_status};
    return status_;
  }

  void kill() noexcept override {
    if (!reaped_)
      ::pidfd_send_signal(pidfd_.get(), SIGKILL, nullptr, 0);
  }

private:
  int pid_;
  unique_fd pidfd_;
  bool reaped_ = false;
  exit_status status_;
};

class exec_launcher final : public process_launcher {
public:
  explicit exec_launcher(std::string joy_exec)
    : joy_exec_(std::move(joy_exec)) {
    // nop
  }

  caf::expected<launched_process> launch(const launch_spec& spec) override {
    if (::access(spec.executable.c_str(), X_OK) != 0)
      return make_error(errc::not_found, "cannot run " + spec.executable + ": "
                                           + std::strerror(errno));
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
      return make_error(errc::io_error,
                        std::string{"socketpair: "} + std::strerror(errno));
    unique_fd ours{sv[0]};
    unique_fd theirs{sv[1]};
    unique_fd log;
    if (!spec.log_file.empty()) {
      log.reset(::open(spec.log_file.c_str(),
                       O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
      if (!log)
        return make_error(errc::io_error, "cannot open " + spec.log_file + ": "
                                            + std::strerror(errno));
    } else {
      log.reset(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    }
    std::vector<std::string> args{
      joy_exec_,      "--parent",    std::to_string(::getpid()),
      "--cwd",        spec.work_dir, "--",
      spec.executable};
    args.insert(args.end(), spec.args.begin(), spec.args.end());
    std::vector<std::string> env;
    for (auto& [k, v] : spec.env)
      env.push_back(k + "=" + v);
    std::vector<char*> c_args;
    for (auto& a : args)
      c_args.push_back(a.data());
    c_args.push_back(nullptr);
    std::vector<char*> c_env;
    for (auto& e : env)
      c_env.push_back(e.data());
    c_env.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, log.get(), 1);
    posix_spawn_file_actions_adddup2(&fa, log.get(), 2);
    // dup2 clears CLOEXEC on the target (also when the fds are equal, since
    // glibc 2.29): the plugin's end lands on fd 3 and nothing else leaks.
    posix_spawn_file_actions_adddup2(&fa, theirs.get(), plugin_fd);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    // The daemon blocks and ignores signals in its threads; the plugin must
    // start with the defaults. Its own process group keeps a terminal's
    // Ctrl-C away from plugins of a foreground daemon.
    sigset_t none;
    sigemptyset(&none);
    sigset_t all;
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK
                                      | POSIX_SPAWN_SETSIGDEF
                                      | POSIX_SPAWN_SETPGROUP);
    pid_t pid = -1;
    int rc = ::posix_spawn(&pid, joy_exec_.c_str(), &fa, &attr, c_args.data(),
                           c_env.data());
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0)
      return make_error(errc::io_error,
                        "cannot start " + joy_exec_ + ": " + std::strerror(rc));
    unique_fd pidfd{static_cast<int>(::pidfd_open(pid, 0))};
    if (!pidfd) {
      // Cannot happen for our own unreaped child; be safe anyway.
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return make_error(errc::io_error,
                        std::string{"pidfd_open: "} + std::strerror(errno));
    }
    ::fcntl(pidfd.get(), F_SETFD, FD_CLOEXEC);
    launched_process out;
    out.proc = std::make_shared<pidfd_process>(pid, std::move(pidfd));
    out.socket = std::make_shared<unique_fd>(std::move(ours));
    return out;
  }

private:
  std::string joy_exec_;
};

} // namespace

std::shared_ptr<process_launcher> make_exec_launcher(std::string joy_exec) {
  return std::make_shared<exec_launcher>(std::move(joy_exec));
}

} // namespace joy
