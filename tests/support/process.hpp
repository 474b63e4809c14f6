// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// Real processes for integration tests: run a command and capture its
/// output, or start one in the background and stop it for sure.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace joy::test {

/// Where the build put `name` (`<build>/bin/name`).
std::string bin(const std::string& name);

/// Where the build laid out example plugin `name`.
std::string example(const std::string& name);

/// A file of the tests' own (tests/support/`path`), e.g. a test plugin.
std::string test_data(const std::string& path);

struct run_result {
  int exit_code = -1; // 128 + N when killed by signal N
  std::string out;
  std::string err;
};

/// Runs `argv` (argv[0] looked up on PATH) to completion with `env` added to
/// the environment; kills it
/// after `timeout`.
run_result run(const std::vector<std::string>& argv,
               const std::map<std::string, std::string>& env = {},
               std::chrono::milliseconds timeout = std::chrono::seconds{60});

/// A background process, killed (SIGKILL) and reaped on destruction.
class child {
public:
  /// `stdin_fd` (if >= 0) becomes its stdin; stdout and stderr go to
  /// `log_file` (if given).
  child(const std::vector<std::string>& argv,
        const std::map<std::string, std::string>& env = {},
        const std::string& log_file = "", int stdin_fd = -1);
  ~child();

  child(const child&) = delete;
  child& operator=(const child&) = delete;

  int pid() const noexcept {
    return pid_;
  }

  /// Waits up to `timeout` for the exit; returns the code (128 + N for a
  /// signal) or -1 on timeout.
  int wait(std::chrono::milliseconds timeout);

  /// Sends `sig` if still running.
  void kill(int sig);

  bool running();

private:
  int pid_ = -1;
  int pidfd_ = -1;
  int status_ = -1;
};

/// Polls `pred` every 10 ms until true or `timeout`; returns its last value.
template <class Pred>
bool eventually(Pred pred,
                std::chrono::milliseconds timeout = std::chrono::seconds{10});

/// True if a process with this pid exists (and is not a zombie).
bool process_alive(int pid);

/// The pids of processes whose command line contains `needle`.
std::vector<int> find_processes(const std::string& needle);

/// Processes whose program (argv[0]) contains `needle`.
std::vector<int> find_programs(const std::string& needle);

} // namespace joy::test

#include <thread>

template <class Pred>
bool joy::test::eventually(Pred pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pred())
      return true;
    if (std::chrono::steady_clock::now() >= deadline)
      return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
}
