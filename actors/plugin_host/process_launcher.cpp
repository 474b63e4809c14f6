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
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include <sys/mman.h>

#include "actors/sandbox/landlock.hpp"
#include "actors/sandbox/seccomp_filter.hpp"
#include "actors/sandbox/uid_claims.hpp"
#include "runtime/errc.hpp"
#include "runtime/log.hpp"
#include "runtime/protocol.hpp"

namespace fs = std::filesystem;

namespace joy {

std::string exit_status::describe() const {
  switch (kind) {
    case how::exited:
      return "exit code " + std::to_string(code);
    case how::out_of_memory:
      return "killed by the memory limit (" + std::to_string(memory_limit >> 20)
             + " MiB)";
    case how::signaled:
      break;
  }
  const char* name = sigabbrev_np(code);
  std::string what = name ? " (SIG" + std::string{name} : std::string{};
  if (code == SIGXCPU)
    what += ": CPU time limit";
  else if (code == SIGXFSZ)
    what += ": file size limit";
  if (name)
    what += ")";
  return "killed by signal " + std::to_string(code) + what;
}

process::~process() {
  // nop
}

process_launcher::~process_launcher() {
  // nop
}

namespace {

/// Send buffer of each end of a plugin's socket. The stream arm moves large
/// data as 1 MiB chunks over it; with Linux's default (208 KiB) each chunk
/// is five write/wake/read ping-pongs between the node and the plugin, and
/// a plugin receiving a stream from another host got 0.17-0.28 GB/s where
/// 4 MiB gives 0.75-1.0 (B7b). Calls are small and unaffected.
constexpr int socket_buffer_bytes = 4 << 20;

/// Widens `fd`'s send buffer: past `net.core.wmem_max` where the node may
/// (CAP_NET_ADMIN, as root), else up to it. Best effort: a small buffer is
/// slower, not wrong.
void widen_send_buffer(int fd) {
  int bytes = socket_buffer_bytes;
  if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof(bytes)) != 0)
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
}

/// What a sandboxed process has besides its pid: joy-exec's status report
/// and its cgroup.
struct process_extras {
  /// The plugin's log: its exit reason is appended there.
  unique_fd log;
  unique_fd status;
  std::unique_ptr<plugin_cgroup> cgroup;
  uint64_t memory_limit = 0;
};

/// Parses joy-exec's "exit N" / "signal N" report, the pipe's last line;
/// nullopt if there is none (the sandbox failed before the plugin ran, or
/// was killed whole). `outer` is bubblewrap's own status: the report must
/// agree with it (exit N, or 128+N for signal N), so that a plugin that
/// got at the pipe cannot make a crash look clean or the reverse.
std::optional<exit_status> read_report(int fd, const exit_status& outer) {
  std::string text;
  char buf[512];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0 && text.size() < 65536)
    text.append(buf, static_cast<std::size_t>(n));
  while (!text.empty() && text.back() == '\n')
    text.pop_back();
  auto line = text.substr(
    text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1);
  if (outer.kind != exit_status::how::exited)
    return std::nullopt; // bubblewrap itself was killed
  int value = 0;
  char tail = 0;
  if (std::sscanf(line.c_str(), "exit %d%c", &value, &tail) == 1
      && value == outer.code)
    return exit_status{exit_status::how::exited, value};
  if (std::sscanf(line.c_str(), "signal %d%c", &value, &tail) == 1 && value > 0
      && value < 65 && 128 + value == outer.code)
    return exit_status{exit_status::how::signaled, value};
  return std::nullopt;
}

class pidfd_process final : public process {
public:
  pidfd_process(int pid, unique_fd pidfd, process_extras extras)
    : pid_(pid), pidfd_(std::move(pidfd)), extras_(std::move(extras)) {
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
    // `extras_.cgroup` kills stragglers and goes away with us.
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
    if (extras_.status)
      if (auto reported = read_report(extras_.status.get(), status_))
        status_ = *reported;
    if (auto& cg = extras_.cgroup) {
      // A SIGKILL with an OOM kill in its cgroup is the memory limit.
      if (status_.kind == exit_status::how::signaled && status_.code == SIGKILL
          && cg->oom_kills() > 0)
        status_ = exit_status{exit_status::how::out_of_memory, SIGKILL,
                              extras_.memory_limit};
      cg->kill_all();
      // Processes of a dead pid namespace may take a moment to leave their
      // cgroup; the graveyard retries what this short wait does not cover.
      for (int i = 0; i < 10 && !cg->remove_now(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds{1});
      cg->remove();
    }
    if (extras_.log)
      log_line_to(extras_.log.get(),
                  status_.clean() ? log_level::info : log_level::warning, "joy",
                  "the plugin exited: " + status_.describe());
    return status_;
  }

  void kill() noexcept override {
    if (reaped_)
      return;
    ::pidfd_send_signal(pidfd_.get(), SIGKILL, nullptr, 0);
    if (extras_.cgroup)
      extras_.cgroup->kill_all();
  }

private:
  int pid_;
  unique_fd pidfd_;
  process_extras extras_;
  bool reaped_ = false;
  exit_status status_;
};

/// The fd numbers a sandboxed joy-exec finds (3 is the plugin's socket).
constexpr int status_fd = 4;
constexpr int seccomp_fd = 5;

/// Moves `fd` above the numbers the child uses, so that no dup2 of the
/// spawn clobbers a source of a later one.
unique_fd lift(unique_fd fd) {
  if (!fd)
    return fd;
  unique_fd out{::fcntl(fd.get(), F_DUPFD_CLOEXEC, 16)};
  return out;
}

caf::error sys_error(const std::string& what) {
  return make_error(errc::io_error, what + ": " + std::strerror(errno));
}

class exec_launcher final : public process_launcher {
public:
  exec_launcher(exec_launcher_config cfg, std::vector<uint8_t> bpf_local,
                std::vector<uint8_t> bpf_network)
    : cfg_(std::move(cfg)),
      bpf_local_(std::move(bpf_local)),
      bpf_network_(std::move(bpf_network)),
      landlock_abi_(landlock::abi_version()),
      images_(can_cap_work_dirs(cfg_)) {
    // nop
  }

  caf::expected<launched_process> launch(const launch_spec& spec) override {
    // A runtime runs the entry: the runtime must be executable, the entry
    // readable.
    const auto& program = spec.runtime.empty() ? spec.executable : spec.runtime;
    if (::access(program.c_str(), X_OK) != 0)
      return make_error(errc::not_found,
                        "cannot run " + program + ": " + std::strerror(errno));
    if (!spec.runtime.empty() && ::access(spec.executable.c_str(), R_OK) != 0)
      return make_error(errc::not_found, "cannot read " + spec.executable + ": "
                                           + std::strerror(errno));
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
      return sys_error("socketpair");
    unique_fd ours{sv[0]};
    unique_fd theirs{sv[1]};
    widen_send_buffer(ours.get());
    widen_send_buffer(theirs.get());
    // The plugin writes into a pipe; the node appends what comes out to
    // its log, capped. The node's own lines (exit reasons) go to the file.
    unique_fd log;
    unique_fd output;
    unique_fd log_file;
    if (!spec.log_file.empty()) {
      unique_fd file{::open(spec.log_file.c_str(),
                            O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)};
      if (!file)
        return sys_error("cannot open " + spec.log_file);
      int out[2];
      if (::pipe2(out, O_CLOEXEC) != 0
          || ::fcntl(out[0], F_SETFL, O_NONBLOCK) != 0)
        return sys_error("pipe2");
      output.reset(out[0]);
      log.reset(out[1]);
      log_file = std::move(file);
    } else {
      log.reset(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    }
    auto& sb = spec.sandbox;
    if (!sb.work_dir.empty()) {
      std::error_code ec;
      fs::create_directories(sb.work_dir, ec);
      if (ec)
        return make_error(errc::io_error,
                          "cannot create " + sb.work_dir + ": " + ec.message());
    }
    process_extras extras;
    extras.memory_limit = sb.limits.memory_bytes;
    extras.log = std::move(log_file);
    std::vector<std::string> args{cfg_.joy_exec, "--parent",
                                  std::to_string(::getpid())};
    // In a sandbox, bubblewrap enters the folder (the dropped uid may not
    // reach it from outside).
    if (!sb.enabled)
      args.insert(args.end(), {"--cwd", spec.work_dir});
    if (cfg_.cgroups) {
      auto cg = cfg_.cgroups->create(spec.name, sb.limits);
      if (!cg)
        return std::move(cg.error());
      for (auto& f : (*cg)->procs_files())
        args.insert(args.end(), {"--cgroup", f});
      extras.cgroup = std::move(*cg);
    }
    if (sb.open_files > 0)
      args.insert(args.end(),
                  {"--rlimit-nofile", std::to_string(sb.open_files)});
    // The sandbox's fds, in child numbering.
    std::vector<std::pair<unique_fd, int>> passed;
    sandbox_sources sources{sb.code_dir, sb.work_dir, cfg_.joy_exec, seccomp_fd,
                            spec.runtime};
    if (sb.enabled) {
      if (auto err = prepare_sandbox(sb, passed, extras, args, sources))
        return err;
    }
    args.emplace_back("--");
    if (sb.enabled) {
      args.push_back(cfg_.bwrap);
      auto bw = bwrap_arguments(sb, sources);
      args.insert(args.end(), bw.begin(), bw.end());
      args.insert(args.end(), {inner_exec_path, "--inner", "--status-fd",
                               std::to_string(status_fd)});
      if (sb.landlock && landlock_abi_ > 0) {
        args.emplace_back("--landlock");
        for (auto& p : landlock_read_only(sb))
          args.insert(args.end(), {"--landlock-ro", p});
        for (auto& p : landlock_read_write(sb))
          args.insert(args.end(), {"--landlock-rw", p});
        for (auto& p : landlock_files_only(sb))
          args.insert(args.end(), {"--landlock-files", p});
        if (sb.network)
          args.emplace_back("--landlock-tcp");
      }
      args.emplace_back("--");
    }
    if (!spec.runtime.empty())
      args.push_back(sb.enabled ? inner_runtime_path : spec.runtime);
    args.push_back(spec.executable);
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
    theirs = lift(std::move(theirs));
    log = lift(std::move(log));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, log.get(), 1);
    posix_spawn_file_actions_adddup2(&fa, log.get(), 2);
    // dup2 clears CLOEXEC on the target: the plugin's end lands on fd 3,
    // the sandbox's fds after it, and nothing else leaks.
    posix_spawn_file_actions_adddup2(&fa, theirs.get(), plugin_fd);
    for (auto& [fd, target] : passed)
      posix_spawn_file_actions_adddup2(&fa, fd.get(), target);
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
    int rc = ::posix_spawn(&pid, cfg_.joy_exec.c_str(), &fa, &attr,
                           c_args.data(), c_env.data());
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0)
      return make_error(errc::io_error, "cannot start " + cfg_.joy_exec + ": "
                                          + std::strerror(rc));
    unique_fd pidfd{static_cast<int>(::pidfd_open(pid, 0))};
    if (!pidfd) {
      // Cannot happen for our own unreaped child; be safe anyway.
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return sys_error("pidfd_open");
    }
    ::fcntl(pidfd.get(), F_SETFD, FD_CLOEXEC);
    launched_process out;
    out.proc = std::make_shared<pidfd_process>(pid, std::move(pidfd),
                                               std::move(extras));
    out.socket = std::make_shared<unique_fd>(std::move(ours));
    if (output) {
      out.output = std::make_shared<unique_fd>(std::move(output));
      out.log_file = spec.log_file;
      out.log_cap = spec.log_cap;
    }
    return out;
  }

private:
  /// The work dir (owned by the plugin's uid), the stage of a root
  /// daemon, the seccomp program and the status pipe; the uid drop.
  caf::error prepare_sandbox(const sandbox_policy& sb,
                             std::vector<std::pair<unique_fd, int>>& passed,
                             process_extras& extras,
                             std::vector<std::string>& args,
                             sandbox_sources& sources) {
    std::error_code ec;
    if (sb.uid >= 0) {
      auto uid = plugin_uid(sb);
      if (!uid)
        return std::move(uid.error());
      // Only the top: what the plugin wrote before is its own already.
      if (::chown(sb.work_dir.c_str(), *uid, *uid) != 0
          || ::chmod(sb.work_dir.c_str(), 0700) != 0)
        return sys_error("cannot hand " + sb.work_dir + " to the plugin");
      if (auto err = ensure_stage())
        return err;
      args.insert(args.end(),
                  {"--uid", std::to_string(*uid), "--gid", std::to_string(*uid),
                   "--rlimit-nproc", std::to_string(sb.limits.pids), "--stage",
                   cfg_.stage_dir, sb.code_dir, sb.work_dir});
      if (images_ && sb.disk_bytes > 0 && !sb.work_image.empty()) {
        auto& image = sb.work_image;
        fs::create_directories(fs::path{image}.parent_path(), ec);
        if (auto err = make_image(image, sb, *uid))
          return err;
        args.insert(args.end(), {"--work-image", image});
      }
      sources.code_dir = cfg_.stage_dir + "/code";
      sources.work_dir = cfg_.stage_dir + "/work";
      sources.joy_exec = cfg_.stage_dir + "/joy-exec";
      if (!sources.runtime.empty()) {
        args.insert(args.end(), {"--stage-runtime", sources.runtime});
        sources.runtime = cfg_.stage_dir + "/runtime";
      }
    }
    // A fresh file description per spawn: bubblewrap reads it from the
    // current offset.
    auto& bpf = sb.network ? bpf_network_ : bpf_local_;
    unique_fd filter{::memfd_create("joy-seccomp", MFD_CLOEXEC)};
    if (!filter
        || ::write(filter.get(), bpf.data(), bpf.size())
             != static_cast<ssize_t>(bpf.size())
        || ::lseek(filter.get(), 0, SEEK_SET) != 0)
      return sys_error("cannot pass the seccomp filter");
    passed.emplace_back(lift(std::move(filter)), seccomp_fd);
    int pipe_fds[2];
    // The read end only is non-blocking: a full pipe must make the writer
    // wait, not lose the report.
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0
        || ::fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK) != 0)
      return sys_error("pipe2");
    extras.status.reset(pipe_fds[0]);
    passed.emplace_back(lift(unique_fd{pipe_fds[1]}), status_fd);
    args.insert(args.end(), {"--keep-fds", std::to_string(seccomp_fd)});
    return caf::none;
  }

  /// The ext4 image of a work dir, made on the plugin's first start.
  caf::error make_image(const std::string& image, const sandbox_policy& sb,
                        uid_t uid) {
    std::error_code ec;
    if (fs::exists(image, ec))
      return caf::none;
    auto tmp = image + ".new";
    {
      unique_fd fd{
        ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)};
      if (!fd || ::ftruncate(fd.get(), static_cast<off_t>(sb.disk_bytes)) != 0)
        return sys_error("cannot create " + tmp);
    }
    // No reserved blocks: the plugin may fill all of it; the root of the
    // file system belongs to the plugin's uid.
    std::vector<std::string> argv{cfg_.mkfs,
                                  "-q",
                                  "-F",
                                  "-m",
                                  "0",
                                  "-E",
                                  "root_owner=" + std::to_string(uid) + ":"
                                    + std::to_string(uid),
                                  tmp};
    std::vector<char*> c_argv;
    for (auto& a : argv)
      c_argv.push_back(a.data());
    c_argv.push_back(nullptr);
    char* no_env[] = {nullptr};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid = -1;
    int rc = ::posix_spawn(&pid, cfg_.mkfs.c_str(), &fa, nullptr, c_argv.data(),
                           no_env);
    posix_spawn_file_actions_destroy(&fa);
    int status = -1;
    if (rc == 0)
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        // retry
      }
    if (rc != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fs::remove(tmp, ec);
      return make_error(errc::io_error, "cannot make the work dir image "
                                          + image + " with " + cfg_.mkfs);
    }
    fs::rename(tmp, image, ec);
    if (ec)
      return make_error(errc::io_error,
                        "cannot create " + image + ": " + ec.message());
    return caf::none;
  }

  /// The plugin's own uid from its range, claimed on the machine
  /// (uid_claims): its work dir's owner when that is in the range (the
  /// choice of an earlier start), else the lowest one no claim and no other
  /// work dir next to it holds. Launches run one at a time (the spawner is
  /// one actor), and daemons claim one at a time (the claims' lock).
  caf::expected<uid_t> plugin_uid(const sandbox_policy& sb) {
    auto first = static_cast<uid_t>(sb.uid);
    auto count = static_cast<uid_t>(std::max<int64_t>(1, sb.uid_count));
    if (count == 1)
      return first; // one uid for all plugins: the user's choice
    auto in_range = [&](uid_t u) { return u >= first && u - first < count; };
    struct stat st {};
    uid_t owner = ::stat(sb.work_dir.c_str(), &st) == 0 ? st.st_uid : 0;
    std::vector<bool> taken(count, false);
    std::error_code ec;
    auto parent = fs::path{sb.work_dir}.parent_path();
    for (auto& e : fs::directory_iterator{parent, ec}) {
      struct stat other {};
      if (e.path() != fs::path{sb.work_dir}
          && ::stat(e.path().c_str(), &other) == 0 && in_range(other.st_uid))
        taken[other.st_uid - first] = true;
    }
    auto claimed = uid_claims{cfg_.uid_claims_dir}.claim(sb.work_dir, owner,
                                                         first, count, taken);
    if (claimed || code_of(claimed.error()) != errc::io_error)
      return claimed;
    // No place for claims (a read-only /var/lib, say): uids unique among
    // this daemon's plugins only, as before claims, and said once.
    if (!claims_warned_) {
      claims_warned_ = true;
      log(log_level::warning, "sandbox", message_of(claimed.error()),
          "; plugin uids are unique among this node's plugins only, not "
          "among other root daemons' (--plugin-uid-claims DIR)");
    }
    if (in_range(owner))
      return owner;
    for (uid_t i = 0; i < count; ++i)
      if (!taken[i])
        return first + i;
    return make_error(errc::unavailable, "every plugin uid from "
                                           + std::to_string(first)
                                           + " is taken");
  }

  /// The stage's mount point: root's, world-traversable, made once.
  caf::error ensure_stage() {
    if (stage_ready_)
      return caf::none;
    std::error_code ec;
    fs::create_directories(cfg_.stage_dir, ec);
    struct stat st {};
    if (ec || ::lstat(cfg_.stage_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)
        || st.st_uid != 0)
      return make_error(errc::io_error, "cannot make the sandbox stage "
                                          + cfg_.stage_dir
                                          + " (a directory owned by root)");
    ::chmod(cfg_.stage_dir.c_str(), 0755);
    stage_ready_ = true;
    return caf::none;
  }

  exec_launcher_config cfg_;
  std::vector<uint8_t> bpf_local_;
  std::vector<uint8_t> bpf_network_;
  int landlock_abi_;
  bool images_;
  bool stage_ready_ = false;
  bool claims_warned_ = false;
};

} // namespace

bool can_cap_work_dirs(const exec_launcher_config& cfg) {
  // LOOP_CONFIGURE, which joy-exec attaches images with, came in Linux 5.8.
  utsname u{};
  int major = 0;
  int minor = 0;
  if (::uname(&u) != 0 || std::sscanf(u.release, "%d.%d", &major, &minor) != 2
      || major * 1000 + minor < 5008)
    return false;
  return ::geteuid() == 0 && !cfg.mkfs.empty()
         && ::access(cfg.mkfs.c_str(), X_OK) == 0
         && ::access("/dev/loop-control", R_OK | W_OK) == 0;
}

caf::expected<std::shared_ptr<process_launcher>>
make_exec_launcher(exec_launcher_config cfg) {
  auto local = build_seccomp_filter(seccomp_options{false});
  if (!local)
    return local.error();
  auto network = build_seccomp_filter(seccomp_options{true});
  if (!network)
    return network.error();
  return std::make_shared<exec_launcher>(std::move(cfg), std::move(*local),
                                         std::move(*network));
}

std::shared_ptr<process_launcher> make_exec_launcher(std::string joy_exec) {
  exec_launcher_config cfg;
  cfg.joy_exec = std::move(joy_exec);
  auto launcher = make_exec_launcher(std::move(cfg));
  if (!launcher)
    throw std::runtime_error(message_of(launcher.error()));
  return *launcher;
}

} // namespace joy
