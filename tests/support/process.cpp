// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "tests/support/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
// glibc 2.36's <sys/pidfd.h> lacks the extern "C" guards (fixed in 2.37).
extern "C" {
#include <sys/pidfd.h>
}
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace fs = std::filesystem;

namespace joy::test {

namespace {

std::vector<std::string>
make_env(const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> all;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos)
      all[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (auto& [k, v] : extra)
    all[k] = v;
  std::vector<std::string> out;
  for (auto& [k, v] : all)
    out.push_back(k + "=" + v);
  return out;
}

std::vector<char*> c_strings(std::vector<std::string>& xs) {
  std::vector<char*> out;
  for (auto& x : xs)
    out.push_back(x.data());
  out.push_back(nullptr);
  return out;
}

int decode_status(int status) {
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return -1;
}

std::string slurp_fd(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    auto n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

int spawn(const std::vector<std::string>& argv_in,
          const std::map<std::string, std::string>& env_in, int out_fd,
          int err_fd, int in_fd = -1) {
  auto argv = argv_in;
  auto env = make_env(env_in);
  auto c_argv = c_strings(argv);
  auto c_env = c_strings(env);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (in_fd >= 0)
    posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
  else
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  if (out_fd >= 0)
    posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
  if (err_fd >= 0)
    posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
  pid_t pid = -1;
  auto rc = ::posix_spawnp(&pid, c_argv[0], &fa, nullptr, c_argv.data(),
                           c_env.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    throw std::runtime_error("cannot start " + argv_in[0] + ": "
                             + std::strerror(rc));
  return pid;
}

} // namespace

std::string bin(const std::string& name) {
  return std::string{JOY_BIN_DIR} + "/" + name;
}

std::string example(const std::string& name) {
  return std::string{JOY_EXAMPLES_DIR} + "/" + name;
}

std::string test_data(const std::string& path) {
  return std::string{JOY_TEST_DATA_DIR} + "/" + path;
}

run_result run(const std::vector<std::string>& argv,
               const std::map<std::string, std::string>& env,
               std::chrono::milliseconds timeout) {
  // Output goes to files, not pipes: a daemon started by the command may
  // inherit them and keep a pipe open forever.
  char out_name[] = "/tmp/joy-out-XXXXXX";
  char err_name[] = "/tmp/joy-err-XXXXXX";
  int out_fd = ::mkostemp(out_name, O_CLOEXEC);
  int err_fd = ::mkostemp(err_name, O_CLOEXEC);
  ::unlink(out_name);
  ::unlink(err_name);
  run_result result;
  int pid = spawn(argv, env, out_fd, err_fd);
  int pidfd = static_cast<int>(::pidfd_open(pid, 0));
  pollfd p{pidfd, POLLIN, 0};
  int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (ready <= 0)
    ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(pidfd);
  result.exit_code = ready <= 0 ? -1 : decode_status(status);
  ::lseek(out_fd, 0, SEEK_SET);
  ::lseek(err_fd, 0, SEEK_SET);
  result.out = slurp_fd(out_fd);
  result.err = slurp_fd(err_fd);
  ::close(out_fd);
  ::close(err_fd);
  return result;
}

child::child(const std::vector<std::string>& argv,
             const std::map<std::string, std::string>& env,
             const std::string& log_file, int stdin_fd) {
  int log_fd = -1;
  if (!log_file.empty())
    log_fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                    0600);
  pid_ = spawn(argv, env, log_fd, log_fd, stdin_fd);
  if (log_fd >= 0)
    ::close(log_fd);
  pidfd_ = static_cast<int>(::pidfd_open(pid_, 0));
}

child::~child() {
  if (status_ < 0 && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  if (pidfd_ >= 0)
    ::close(pidfd_);
}

int child::wait(std::chrono::milliseconds timeout) {
  if (status_ >= 0)
    return decode_status(status_);
  pollfd p{pidfd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0)
    return -1;
  int status = 0;
  if (::waitpid(pid_, &status, 0) != pid_)
    return -1;
  status_ = status;
  return decode_status(status);
}

void child::kill(int sig) {
  if (status_ < 0)
    ::pidfd_send_signal(pidfd_, sig, nullptr, 0);
}

bool child::running() {
  if (status_ >= 0)
    return false;
  return wait(std::chrono::milliseconds{0}) < 0;
}

bool process_alive(int pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/stat"};
  std::string line;
  if (!std::getline(in, line))
    return false;
  // State is the field after the parenthesised command.
  auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size()
         && line[close + 2] != 'Z' && line[close + 2] != 'X';
}

namespace {

std::vector<int> scan_processes(const std::string& needle, bool program) {
  std::vector<int> out;
  std::error_code ec;
  for (auto& entry : fs::directory_iterator{"/proc", ec}) {
    auto name = entry.path().filename().string();
    if (name.empty()
        || name.find_first_not_of("0123456789") != std::string::npos)
      continue;
    // Plain read(2): the process may vanish while we look, which is no error.
    std::string cmd;
    int fd = ::open((entry.path() / "cmdline").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      char buf[4096];
      ssize_t n;
      while ((n = ::read(fd, buf, sizeof(buf))) > 0)
        cmd.append(buf, static_cast<std::size_t>(n));
      ::close(fd);
    }
    if (program)
      cmd = cmd.substr(0, cmd.find('\0'));
    for (auto& c : cmd)
      if (c == '\0')
        c = ' ';
    int pid = std::atoi(name.c_str());
    if (cmd.find(needle) != std::string::npos && pid != ::getpid()
        && process_alive(pid))
      out.push_back(pid);
  }
  return out;
}

} // namespace

std::vector<int> find_processes(const std::string& needle) {
  return scan_processes(needle, false);
}

std::vector<int> find_programs(const std::string& needle) {
  return scan_processes(needle, true);
}

} // namespace joy::test
