// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// joy-test-hostile: a plugin that tries to escape its sandbox, for the tests
// only (never installed anywhere else). Every probe reports what the kernel
// answered *inside* the sandbox — "ok", or the errno's name — so that a test
// proves each denial by its errno, not by a guess from outside. The same
// program with a manifest asking for the network plays the plugin with
// legitimate needs.

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/plugin.hpp"

namespace {

std::string outcome(long rc) {
  if (rc >= 0)
    return "ok";
  const char* name = strerrorname_np(errno);
  return name ? name : std::to_string(errno);
}

std::string read_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return outcome(-1);
  char c;
  auto n = ::read(fd, &c, 1);
  auto r = outcome(n < 0 ? -1 : 0);
  ::close(fd);
  return r;
}

std::string write_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return outcome(-1);
  auto n = ::write(fd, "x", 1);
  auto r = outcome(n < 0 ? -1 : 0);
  ::close(fd);
  return r;
}

std::string open_socket(const std::string& family) {
  int domain = family == "inet"      ? AF_INET
               : family == "inet6"   ? AF_INET6
               : family == "netlink" ? AF_NETLINK
               : family == "packet"  ? AF_PACKET
               : family == "unix"    ? AF_UNIX
                                     : -1;
  int type = family == "packet" ? SOCK_RAW : SOCK_STREAM;
  if (family == "netlink")
    type = SOCK_RAW;
  int fd = ::socket(domain, type | SOCK_CLOEXEC, 0);
  auto r = outcome(fd);
  if (fd >= 0)
    ::close(fd);
  return r;
}

std::string connect_tcp(const std::string& host, int64_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return outcome(-1);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  auto rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  auto r = outcome(rc);
  ::close(fd);
  return r;
}

/// Connects to the abstract unix socket `name` (without the leading NUL).
std::string connect_abstract(const std::string& name) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return outcome(-1);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path + 1, name.data(),
              std::min(name.size(), sizeof(addr.sun_path) - 2));
  auto len
    = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  auto rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), len);
  auto r = outcome(rc);
  ::close(fd);
  return r;
}

std::string try_syscall(const std::string& what) {
  if (what == "ptrace")
    return outcome(::ptrace(PTRACE_ATTACH, ::getppid(), nullptr, nullptr));
  if (what == "process_vm_readv") {
    char buf[8];
    iovec local{buf, sizeof(buf)};
    iovec remote{reinterpret_cast<void*>(0x400000), sizeof(buf)};
    return outcome(::process_vm_readv(::getppid(), &local, 1, &remote, 1, 0));
  }
  if (what == "unshare")
    return outcome(::unshare(CLONE_NEWUSER));
  if (what == "unshare-net")
    return outcome(::unshare(CLONE_NEWNET));
  if (what == "clone-newuser") {
    // clone() with a namespace flag, bypassing unshare.
    long rc = ::syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, nullptr, nullptr,
                        nullptr, nullptr);
    if (rc == 0)
      _exit(0);
    if (rc > 0)
      ::waitpid(static_cast<pid_t>(rc), nullptr, 0);
    return outcome(rc);
  }
  if (what == "mount")
    return outcome(::mount("none", "/tmp", "tmpfs", 0, nullptr));
  if (what == "bpf") {
    union bpf_attr attr {};
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    return outcome(::syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof(attr)));
  }
  if (what == "keyctl")
    return outcome(::syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, "joy"));
  if (what == "io_uring") {
    io_uring_params params{};
    long fd = ::syscall(SYS_io_uring_setup, 4, &params);
    if (fd >= 0)
      ::close(static_cast<int>(fd));
    return outcome(fd);
  }
  if (what == "setuid")
    return outcome(::setuid(0));
  if (what == "forge-exit") {
    // Its parent reports its exit status on fd 4: write a clean exit there.
    auto path = "/proc/" + std::to_string(::getppid()) + "/fd/4";
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
      auto n = ::write(fd, "exit 0\n", 7);
      ::close(fd);
      return outcome(n < 0 ? -1 : 0);
    }
    return outcome(-1);
  }
  errno = EINVAL;
  return "unknown probe " + what;
}

/// Forks until the kernel says no; returns the errno and the count.
joy::value fork_bomb(int64_t max) {
  std::vector<pid_t> children;
  std::string result = "ok";
  for (int64_t i = 0; i < max; ++i) {
    pid_t pid = ::fork();
    if (pid < 0) {
      result = outcome(-1);
      break;
    }
    if (pid == 0) {
      ::pause();
      _exit(0);
    }
    children.push_back(pid);
  }
  for (auto pid : children)
    ::kill(pid, SIGKILL);
  for (auto pid : children)
    ::waitpid(pid, nullptr, 0);
  return joy::value{joy::value_map{
    {"result", joy::value{result}},
    {"forked", joy::value{static_cast<int64_t>(children.size())}}}};
}

/// Writes to `path` until an error; returns the errno and the bytes.
joy::value fill(const std::string& path, int64_t max_mib) {
  ::signal(SIGXFSZ, SIG_IGN); // see EFBIG instead of dying
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return joy::value{joy::value_map{{"result", joy::value{outcome(-1)}}}};
  std::vector<char> block(1 << 20, 'x');
  int64_t written = 0;
  std::string result = "ok";
  while (written < (max_mib << 20)) {
    auto n = ::write(fd, block.data(), block.size());
    if (n < 0) {
      result = outcome(-1);
      break;
    }
    written += n;
  }
  ::close(fd);
  ::unlink(path.c_str());
  return joy::value{joy::value_map{{"result", joy::value{result}},
                                   {"bytes", joy::value{written}}}};
}

/// Touches `mib` MiB; under a smaller memory limit it never returns.
int64_t hog(int64_t mib) {
  std::vector<char*> blocks;
  for (int64_t i = 0; i < mib; ++i) {
    auto* p = static_cast<char*>(std::malloc(1 << 20));
    if (p == nullptr)
      return i;
    std::memset(p, 1, 1 << 20);
    blocks.push_back(p);
  }
  for (auto* p : blocks)
    std::free(p);
  return mib;
}

/// Spins for `seconds` of wall time; returns the CPU seconds it got.
double spin(double seconds) {
  auto end = std::chrono::steady_clock::now()
             + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
               std::chrono::duration<double>{seconds});
  volatile uint64_t x = 0;
  while (std::chrono::steady_clock::now() < end)
    for (int i = 0; i < 100000; ++i)
      x = x + 1;
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec)
         + static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

} // namespace

int main(int argc, char** argv) {
  joy::plugin p{"hostile"};
  p.exports.add("read", [](std::string path) { return read_path(path); },
                {"path"});
  p.exports.add("write", [](std::string path) { return write_path(path); },
                {"path"});
  p.exports.add("socket",
                [](std::string family) { return open_socket(family); },
                {"family"});
  p.exports.add(
    "connect",
    [](std::string host, int64_t port) { return connect_tcp(host, port); },
    {"host", "port"});
  p.exports.add("connect_abstract",
                [](std::string name) { return connect_abstract(name); },
                {"name"});
  p.exports.add("syscall", [](std::string what) { return try_syscall(what); },
                {"what"});
  p.exports.add("fork_bomb", [](int64_t max) { return fork_bomb(max); },
                {"max"});
  p.exports.add("fill",
                [](std::string path, int64_t mib) { return fill(path, mib); },
                {"path", "mib"});
  p.exports.add("hog", [](int64_t mib) { return hog(mib); }, {"mib"});
  // Floods its stdout: the node's disk must not pay for it.
  p.exports.add("spam",
                [](int64_t mib) {
                  std::string line(1023, 'x');
                  line += '\n';
                  for (int64_t i = 0; i < mib * 1024; ++i)
                    if (::write(1, line.data(), line.size()) < 0)
                      return false;
                  return true;
                },
                {"mib"});
  p.exports.add("spin", [](double seconds) { return spin(seconds); },
                {"seconds"});
  p.exports.add("whoami", [] {
    char host[256] = {};
    ::gethostname(host, sizeof(host) - 1);
    return joy::value{joy::value_map{
      {"uid", joy::value{static_cast<int64_t>(::getuid())}},
      {"pid", joy::value{static_cast<int64_t>(::getpid())}},
      {"hostname", joy::value{std::string{host}}},
      {"home", joy::value{std::string{std::getenv("HOME") ? std::getenv("HOME")
                                                          : ""}}}}};
  });
  // Deaths of every kind, for the supervision tests.
  p.exports.add("die",
                [](std::string how) -> int64_t {
                  if (how == "segv")
                    ::raise(SIGSEGV);
                  else if (how == "abort")
                    std::abort();
                  else if (how == "kill")
                    ::raise(SIGKILL);
                  else if (how == "exit3")
                    _exit(3);
                  else if (how == "cpu") {
                    // SIGXCPU at the soft limit (the hard one would be a
                    // SIGKILL); this thread takes it.
                    rusage ru{};
                    ::getrusage(RUSAGE_SELF, &ru);
                    rlim_t used = static_cast<rlim_t>(ru.ru_utime.tv_sec
                                                      + ru.ru_stime.tv_sec);
                    rlimit lim{used + 1, used + 10};
                    ::setrlimit(RLIMIT_CPU, &lim);
                    sigset_t xcpu;
                    sigemptyset(&xcpu);
                    sigaddset(&xcpu, SIGXCPU);
                    ::pthread_sigmask(SIG_UNBLOCK, &xcpu, nullptr);
                    spin(30);
                  }
                  return 0;
                },
                {"how"});
  return joy::run_plugin(argc, argv, std::move(p));
}
