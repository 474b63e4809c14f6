// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// joy-exec: the tiny helper joyd posix_spawns for every plugin (DESIGN §7).
// It does what must happen inside the child, then execs the plugin — or, in
// a sandbox, bubblewrap, which runs joy-exec's second stage:
//
//   joy-exec --parent PID --cwd DIR [--cgroup PROCS_FILE]... [--uid U --gid G]
//            [--stage DIR CODE WORK [--work-image IMAGE]] [--rlimit-nofile N]
//            [--rlimit-nproc N]
//            [--keep-fds N] -- EXECUTABLE [ARGS...]
//   joy-exec --inner --status-fd FD [--landlock] [--landlock-ro PATH]...
//            [--landlock-rw PATH]... [--landlock-files PATH]...
//            [--landlock-tcp] -- EXECUTABLE [ARGS...]
//
// joyd has already placed the plugin's socket at fd 3, stdin on /dev/null
// and stdout/stderr on the plugin's log; a sandbox adds its fds after 3.
//
// With --stage DIR CODE WORK (a root daemon's sandboxes), in a mount
// namespace of its own, the plugin's folder, its work dir and joy-exec itself
// are bound under DIR/code, DIR/work and DIR/joy-exec, where bubblewrap —
// which resolves its sources as the plugin's uid — can reach them. (An fd
// opened before the new namespace cannot be bound: its mount is foreign.)
// With --work-image, the work dir is that ext4 image on a loop device
// instead, so that its size is capped.
//
// The first stage joins the plugin's cgroup, sets rlimits, drops to the
// plugin's uid (bubblewrap started by root would map the plugin to real
// root), arms PDEATHSIG (after the uid change, which clears it) and
// NO_NEW_PRIVS, closes every fd beyond --keep-fds, and execs.
//
// The second stage runs inside bubblewrap, after its mounts (Landlock
// forbids mounting, so it cannot come earlier): it applies Landlock, forks
// the plugin and waits for it, then writes "exit N" or "signal N" to the
// status fd, because bubblewrap reports a death by signal N as exit code
// 128+N, which a plugin can fake.

#include <fcntl.h>
#include <grp.h>
#include <linux/loop.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "actors/sandbox/landlock.hpp"

namespace {

[[noreturn]] void die(const char* what, const char* detail) {
  std::fprintf(stderr, "joy-exec: %s%s%s\n", what, detail ? ": " : "",
               detail ? detail : "");
  _exit(127);
}

[[noreturn]] void die_errno(const char* what) {
  die(what, std::strerror(errno));
}

unsigned long long number(const char* text, const char* option) {
  char* end = nullptr;
  errno = 0;
  auto n = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0')
    die("not a number", option);
  return n;
}

void set_limit(int resource, rlim_t value, const char* name) {
  rlimit lim{value, value};
  if (::setrlimit(resource, &lim) != 0)
    die_errno(name);
}

void join_cgroup(const char* procs_file) {
  int fd = ::open(procs_file, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    die_errno(procs_file);
  auto pid = std::to_string(::getpid());
  if (::write(fd, pid.data(), pid.size()) != static_cast<ssize_t>(pid.size()))
    die_errno(procs_file);
  ::close(fd);
}

void drop_to(uid_t uid, gid_t gid) {
  if (::setgroups(0, nullptr) != 0)
    die_errno("setgroups");
  if (::setresgid(gid, gid, gid) != 0)
    die_errno("setresgid");
  if (::setresuid(uid, uid, uid) != 0)
    die_errno("setresuid");
  // Make sure there is no way back.
  if (uid != 0 && (::setuid(0) == 0 || ::seteuid(0) == 0))
    die("uid drop", "could regain root");
}

/// Attaches `image` to a free loop device (released when its last mount
/// goes) and mounts its ext4 on `target`. The image stays locked while the
/// loop device holds it, so that no second sandbox mounts it at once: two
/// mounts of one ext4 would corrupt it.
void mount_image(const char* image, const std::string& target) {
  int img = ::open(image, O_RDWR | O_CLOEXEC);
  if (img < 0)
    die_errno(image);
  // A restarted plugin's previous sandbox may still be letting go of it.
  for (int i = 0; ::flock(img, LOCK_EX | LOCK_NB) != 0; ++i) {
    if (errno != EWOULDBLOCK || i == 200)
      die("the work dir's image is in use", image);
    ::usleep(5000);
  }
  int ctl = ::open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (ctl < 0)
    die_errno("/dev/loop-control");
  for (int attempt = 0;; ++attempt) {
    int n = ::ioctl(ctl, LOOP_CTL_GET_FREE);
    if (n < 0)
      die_errno("LOOP_CTL_GET_FREE");
    auto dev = "/dev/loop" + std::to_string(n);
    int loop = ::open(dev.c_str(), O_RDWR | O_CLOEXEC);
    if (loop < 0)
      die_errno(dev.c_str());
    loop_config cfg{};
    cfg.fd = static_cast<uint32_t>(img);
    cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
    if (::ioctl(loop, LOOP_CONFIGURE, &cfg) != 0) {
      ::close(loop);
      // Another spawn took the same free device first.
      if (errno == EBUSY && attempt < 16)
        continue;
      die_errno("LOOP_CONFIGURE");
    }
    if (::mount(dev.c_str(), target.c_str(), "ext4", MS_NOSUID | MS_NODEV,
                nullptr)
        != 0)
      die_errno(target.c_str());
    // The mount holds the device now; AUTOCLEAR frees it after the last
    // unmount, that is when the plugin's namespaces are gone.
    ::close(loop);
    break;
  }
  ::close(ctl);
  ::close(img);
}

void stage(const char* dir, const char* code, const char* work,
           const char* image, const char* self, const char* runtime) {
  if (::unshare(CLONE_NEWNS) != 0)
    die_errno("unshare(CLONE_NEWNS)");
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    die_errno("mount --make-rprivate /");
  if (::mount("joy-stage", dir, "tmpfs", MS_NOSUID | MS_NODEV,
              "mode=0755,size=64k")
      != 0)
    die_errno(dir);
  auto at = [&](const char* name) { return std::string{dir} + "/" + name; };
  auto bind = [&](const char* source, const std::string& target) {
    if (::mount(source, target.c_str(), nullptr, MS_BIND, nullptr) != 0)
      die_errno(target.c_str());
  };
  for (const char* d : {"code", "work"})
    if (::mkdir(at(d).c_str(), 0755) != 0)
      die_errno(at(d).c_str());
  for (const char* file : {"joy-exec", "runtime"}) {
    if (file == std::string_view{"runtime"} && runtime == nullptr)
      continue;
    int f = ::open(at(file).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0755);
    if (f < 0)
      die_errno("stage joy-exec");
    ::close(f);
  }
  bind(code, at("code"));
  if (image != nullptr)
    mount_image(image, at("work"));
  else
    bind(work, at("work"));
  bind(self, at("joy-exec"));
  if (runtime != nullptr)
    bind(runtime, at("runtime"));
}

struct options {
  long parent = -1;
  const char* cwd = nullptr;
  const char* stage = nullptr;
  const char* stage_code = nullptr;
  const char* stage_work = nullptr;
  const char* work_image = nullptr;
  const char* stage_runtime = nullptr;
  std::vector<const char*> cgroups;
  long long uid = -1;
  long long gid = -1;
  long long nofile = -1;
  long long nproc = -1;
  int keep_fds = 3;
  bool inner = false;
  int status_fd = -1;
  bool landlock = false;
  joy::landlock::ruleset rules;
  char** exec = nullptr;
};

options parse(int argc, char** argv) {
  options o;
  int i = 1;
  auto value = [&](const char* option) -> const char* {
    if (i + 1 >= argc)
      die("missing value", option);
    return argv[++i];
  };
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--parent")
      o.parent = static_cast<long>(number(value("--parent"), "--parent"));
    else if (a == "--cwd")
      o.cwd = value("--cwd");
    else if (a == "--stage") {
      o.stage = value("--stage");
      o.stage_code = value("--stage");
      o.stage_work = value("--stage");
    } else if (a == "--stage-runtime")
      o.stage_runtime = value("--stage-runtime");
    else if (a == "--work-image")
      o.work_image = value("--work-image");
    else if (a == "--cgroup")
      o.cgroups.push_back(value("--cgroup"));
    else if (a == "--uid")
      o.uid = static_cast<long long>(number(value("--uid"), "--uid"));
    else if (a == "--gid")
      o.gid = static_cast<long long>(number(value("--gid"), "--gid"));
    else if (a == "--rlimit-nproc")
      o.nproc = static_cast<long long>(number(value(a.c_str()), "nproc"));
    else if (a == "--rlimit-nofile")
      o.nofile = static_cast<long long>(number(value(a.c_str()), "nofile"));
    else if (a == "--keep-fds")
      o.keep_fds = static_cast<int>(number(value(a.c_str()), "--keep-fds"));
    else if (a == "--inner")
      o.inner = true;
    else if (a == "--status-fd")
      o.status_fd = static_cast<int>(number(value(a.c_str()), "--status-fd"));
    else if (a == "--landlock")
      o.landlock = true;
    else if (a == "--landlock-ro")
      o.rules.read_only.emplace_back(value(a.c_str()));
    else if (a == "--landlock-rw")
      o.rules.read_write.emplace_back(value(a.c_str()));
    else if (a == "--landlock-files")
      o.rules.files_only.emplace_back(value(a.c_str()));
    else if (a == "--landlock-tcp")
      o.rules.tcp = true;
    else if (a == "--") {
      ++i;
      break;
    } else
      die("usage: joy-exec --parent PID --cwd DIR [...] -- EXECUTABLE "
          "[ARGS...]",
          argv[i]);
  }
  if (i >= argc)
    die("no executable given", nullptr);
  o.exec = argv + i;
  return o;
}

void arm_pdeathsig(long parent) {
  // PDEATHSIG follows the thread that spawned us (the daemon's long-lived
  // spawner thread); a uid change clears it, so it is armed last.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
    die_errno("prctl(PR_SET_PDEATHSIG)");
  // The parent may have died before PDEATHSIG was armed.
  if (parent > 0 && ::getppid() != parent)
    _exit(127);
}

[[noreturn]] int outer(const options& o) {
  for (auto* procs : o.cgroups)
    join_cgroup(procs);
  if (o.stage != nullptr) {
    // By path: /proc/self/exe itself points into the old namespace.
    char self[4096];
    auto n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
      die_errno("readlink(/proc/self/exe)");
    self[n] = '\0';
    stage(o.stage, o.stage_code, o.stage_work, o.work_image, self,
          o.stage_runtime);
  }
  set_limit(RLIMIT_CORE, 0, "RLIMIT_CORE");
  if (o.nofile >= 0)
    set_limit(RLIMIT_NOFILE, static_cast<rlim_t>(o.nofile), "RLIMIT_NOFILE");
  // Processes of the plugin's own uid: a fork bomb's limit even where
  // there is no pids cgroup (it does not bind root, so only with --uid).
  if (o.nproc > 0)
    set_limit(RLIMIT_NPROC, static_cast<rlim_t>(o.nproc), "RLIMIT_NPROC");
  if (o.uid >= 0)
    drop_to(static_cast<uid_t>(o.uid),
            static_cast<gid_t>(o.gid >= 0 ? o.gid : o.uid));
  arm_pdeathsig(o.parent);
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    die_errno("prctl(PR_SET_NO_NEW_PRIVS)");
  // Nothing but stdio, the plugin's socket and the sandbox's fds crosses.
  if (::close_range(static_cast<unsigned>(o.keep_fds) + 1, ~0U, 0) != 0)
    die_errno("close_range");
  if (o.cwd != nullptr && ::chdir(o.cwd) != 0)
    die_errno("chdir");
  ::execv(o.exec[0], o.exec);
  die("cannot execute", std::strerror(errno));
}

void report(int fd, const std::string& text) {
  if (fd >= 0)
    while (::write(fd, text.data(), text.size()) < 0 && errno == EINTR) {
      // retry
    }
}

[[noreturn]] int inner(const options& o) {
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
    die_errno("prctl(PR_SET_PDEATHSIG)");
  if (o.landlock) {
    int err = joy::landlock::restrict_self(o.rules);
    if (err != 0)
      die("landlock", std::strerror(err));
  }
  // Not dumpable: the plugin (same uid, our child) may not open our fds
  // through /proc and write its own exit report. exec makes it dumpable
  // again; we stay protected.
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
    die_errno("prctl(PR_SET_DUMPABLE)");
  pid_t child = ::fork();
  if (child < 0)
    die_errno("fork");
  if (child == 0) {
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
      die_errno("prctl(PR_SET_PDEATHSIG)");
    if (::close_range(4, ~0U, 0) != 0)
      die_errno("close_range");
    ::execv(o.exec[0], o.exec);
    die("cannot execute plugin", std::strerror(errno));
  }
  // The plugin alone holds its socket: its death must close it.
  ::close(3);
  ::close_range(static_cast<unsigned>(o.status_fd) + 1, ~0U, 0);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0) {
    if (errno != EINTR)
      die_errno("waitpid");
  }
  if (WIFSIGNALED(status)) {
    report(o.status_fd, "signal " + std::to_string(WTERMSIG(status)) + "\n");
    _exit(128 + WTERMSIG(status));
  }
  report(o.status_fd, "exit " + std::to_string(WEXITSTATUS(status)) + "\n");
  _exit(WEXITSTATUS(status));
}

} // namespace

int main(int argc, char** argv) {
  auto o = parse(argc, argv);
  if (o.inner)
    inner(o);
  outer(o);
}
