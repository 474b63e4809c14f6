// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// The gpu actors over a fake backend that completes when the test says so
// (as a CUDA stream's callback would, from another thread): a device keeps
// taking work while earlier work runs, answers each call with its own
// result in whatever order they finish, and reports a lost device once.

#include <catch2/catch.hpp>

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/gpu/backend.hpp"
#include "actors/gpu/gpu_actor.hpp"
#include "runtime/errc.hpp"
#include "runtime/system_config.hpp"
#include "tests/actors/gpu_test_support.hpp"

using joy::value;
using joy::gpu::backend;

namespace {

/// Holds every operation's `done` until the test completes it.
struct held_work {
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<backend::done_fn> pending;
  bool lost = false;

  void hold(backend::done_fn done) {
    std::lock_guard<std::mutex> guard{mtx};
    pending.push_back(std::move(done));
    cv.notify_all();
  }

  /// Waits until `n` operations are held.
  bool wait_for(std::size_t n) {
    std::unique_lock<std::mutex> lock{mtx};
    return cv.wait_for(lock, std::chrono::seconds{10},
                       [&] { return pending.size() >= n; });
  }

  /// Completes operation `i` from another thread.
  void complete(std::size_t i, caf::expected<value> result) {
    backend::done_fn f;
    {
      std::lock_guard<std::mutex> guard{mtx};
      f = std::move(pending.at(i));
    }
    std::thread{[f = std::move(f), r = std::move(result)]() mutable {
      f(std::move(r));
    }}.join();
  }
};

class fake_backend final : public backend {
public:
  explicit fake_backend(std::shared_ptr<held_work> work)
    : work_(std::move(work)) {
    // nop
  }

  value describe() const override {
    return value{joy::value_map{{"kind", value{"fake"}}}};
  }

  bool lost() const noexcept override {
    std::lock_guard<std::mutex> guard{work_->mtx};
    return work_->lost;
  }

  void ping(done_fn done) override {
    work_->hold(std::move(done));
  }

  void gaussian_blur(joy::ndarray, double, done_fn done) override {
    work_->hold(std::move(done));
  }

  void matmul(joy::ndarray, joy::ndarray, done_fn done) override {
    work_->hold(std::move(done));
  }

  void stats(joy::ndarray, done_fn done) override {
    work_->hold(std::move(done));
  }

private:
  std::shared_ptr<held_work> work_;
};

constexpr auto timeout = std::chrono::seconds{30};

} // namespace

TEST_CASE("a gpu device actor takes new work while earlier work runs and "
          "answers each call with its own result",
          "[actors][gpu_actor]") {
  joy::test::threaded_actors env;
  auto work = std::make_shared<held_work>();
  auto device = joy::gpu::spawn_gpu_device(
    *env.sys, std::make_unique<fake_backend>(work));
  caf::scoped_actor self{*env.sys};
  using handle = decltype(self->request(device, timeout, joy::ping_atom_v));
  std::vector<handle> calls;
  for (int i = 0; i < 3; ++i)
    calls.push_back(self->request(device, timeout, joy::ping_atom_v));
  // All three reached the backend before any finished.
  REQUIRE(work->wait_for(3));
  // They finish out of order, one with an error.
  work->complete(2, value{int64_t{2}});
  work->complete(0, value{int64_t{0}});
  work->complete(1, joy::make_error(joy::errc::unavailable, "one failed"));
  std::vector<std::string> answers;
  for (auto& c : calls)
    c.receive(
      [&](value& v) { answers.push_back(joy::to_string(v)); },
      [&](caf::error& err) { answers.push_back(joy::message_of(err)); });
  CHECK(answers == std::vector<std::string>{"0", "one failed", "2"});
  self->send_exit(device, caf::exit_reason::user_shutdown);
}

TEST_CASE("a gpu pool reports a lost device once, with its description and "
          "the error that revealed it",
          "[actors][gpu_actor]") {
  joy::test::threaded_actors env;
  auto work = std::make_shared<held_work>();
  std::vector<std::unique_ptr<backend>> backends;
  backends.push_back(std::make_unique<fake_backend>(work));
  std::mutex mtx;
  std::vector<std::string> reports;
  auto pool = joy::gpu::spawn_gpu_pool(
    *env.sys, std::move(backends),
    [&](const value& device, const caf::error& err) {
      std::lock_guard<std::mutex> guard{mtx};
      reports.push_back(joy::to_string(device) + " " + joy::message_of(err));
    });
  caf::scoped_actor self{*env.sys};
  auto first = self->request(pool, timeout, joy::ping_atom_v);
  auto second = self->request(pool, timeout, joy::ping_atom_v);
  REQUIRE(work->wait_for(2));
  // An error while the device still works is just an error.
  work->complete(0, joy::make_error(joy::errc::invalid_argument, "bad"));
  first.receive([](value&) { FAIL("an answer"); },
                [](caf::error& err) { CHECK(joy::message_of(err) == "bad"); });
  {
    std::lock_guard<std::mutex> guard{mtx};
    CHECK(reports.empty());
  }
  // Then the context is lost.
  {
    std::lock_guard<std::mutex> guard{work->mtx};
    work->lost = true;
  }
  work->complete(1, joy::make_error(joy::errc::unavailable, "gpu 0: lost"));
  second.receive(
    [](value&) { FAIL("an answer"); },
    [](caf::error& err) { CHECK(joy::message_of(err) == "gpu 0: lost"); });
  auto third = self->request(pool, timeout, joy::ping_atom_v);
  REQUIRE(work->wait_for(3));
  work->complete(2, joy::make_error(joy::errc::unavailable, "gpu 0: lost"));
  third.receive([](value&) { FAIL("an answer"); }, [](caf::error&) {});
  std::lock_guard<std::mutex> guard{mtx};
  REQUIRE(reports.size() == 1);
  CHECK(reports[0].find("fake") != std::string::npos);
  CHECK(reports[0].find("gpu 0: lost") != std::string::npos);
  self->send_exit(pool, caf::exit_reason::user_shutdown);
}
