// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// A fake `process_launcher` for unit tests: each "process" is a plugin
/// served inside the test process, on its own kj thread, through the SDK's
/// real connection code and a real socketpair — only the fork/exec is
/// missing. Its exit is signalled on an eventfd (like a pidfd), and tests
/// can kill it, refuse to start it, make it mute or make calls hang.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>

#include "actors/plugin_host/process_launcher.hpp"
#include "runtime/kj_thread.hpp"
#include "runtime/plugin.hpp"

namespace joy::test {

struct fake_behavior {
  /// Say hello at all (false: the start must time out).
  bool say_hello = true;
  /// The protocol version to claim.
  uint32_t version = 1;
  /// Calls of this method never return (until cancelled).
  std::string hanging_method = "hang";
};

class fake_launcher final : public process_launcher {
public:
  fake_launcher(caf::actor_system& sys, plugin def,
                fake_behavior behavior = {});
  ~fake_launcher() override;

  caf::expected<launched_process> launch(const launch_spec& spec) override;

  /// The next launch fails with this error (once).
  void fail_next_launch(std::string why);

  /// Kills the newest fake process the way SIGKILL would: its connection
  /// drops and it reports "killed by signal 9".
  void kill_newest();

  int launches() const noexcept {
    return launches_;
  }

  /// Calls of the hanging method that reached a plugin.
  int hanging_calls() const noexcept {
    return hanging_->load();
  }

  /// Calls of the hanging method that were cancelled by the caller.
  int cancelled_calls() const noexcept {
    return cancelled_->load();
  }

  /// How many times the plugin's exit() ran.
  int exits() const noexcept {
    return exits_->load();
  }

  fake_behavior& behavior() noexcept {
    return behavior_;
  }

private:
  class fake_process;

  caf::actor_system& sys_;
  std::shared_ptr<const plugin> def_;
  fake_behavior behavior_;
  std::shared_ptr<kj_thread> kj_;
  std::mutex mtx_;
  std::string fail_next_;
  std::weak_ptr<fake_process> newest_;
  std::atomic<int> launches_{0};
  std::shared_ptr<std::atomic<int>> hanging_
    = std::make_shared<std::atomic<int>>(0);
  std::shared_ptr<std::atomic<int>> cancelled_
    = std::make_shared<std::atomic<int>>(0);
  std::shared_ptr<std::atomic<int>> exits_
    = std::make_shared<std::atomic<int>>(0);
};

} // namespace joy::test
