// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The seam between CAF and Cap'n Proto (DESIGN §5, docs/design/seam.md).
///
/// Every process has exactly one kj thread, and it owns every Cap'n Proto
/// object. Actors never touch kj objects; they talk to the kj thread in two
/// ways:
///
/// * **CAF → kj**: `kj_thread::post(task)` pushes a task onto a lock-free
///   queue. The kj loop drains the queue in batches, woken by an `eventfd`
///   that is written only when the queue goes from empty to non-empty.
/// * **kj → CAF**: a continuation delivers a `reply_handle` taken from the
///   waiting actor (the requester gets the result directly), or sends a
///   message. To ask an actor something, kj code calls
///   `kj_context::request()`, which enqueues a request whose sender is a
///   companion actor; the companion forwards the response into the queue and
///   the kj side resolves the promise.
///
/// Why not `kj::Executor::executeSync`? It blocks the calling CAF worker
/// and tops out near 22 k hand-offs/s here; `executeAsync` needs an event
/// loop on the caller, which CAF workers do not have.
///
/// Shutdown order (see `stop()`): the owner stops accepting work, then
/// `stop()` runs the stop hooks (they close connections gracefully), drops
/// every resource and background task (pending reply handles deliver
/// `errc::disconnected`), closes the queue (later posts are dropped the same
/// way) and joins the thread. Only then may the `actor_system` be destroyed.
///
/// ```
/// joy::kj_thread kj{sys};
/// kj.post([](joy::kj_context& ctx) {
///   ctx.tasks().add(ctx.timer().afterDelay(1 * kj::SECONDS));
/// });
/// kj.stop();
/// ```
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <caf/actor_cast.hpp>
#include <caf/actor_control_block.hpp>
#include <caf/actor_system.hpp>
#include <caf/mailbox_element.hpp>
#include <caf/message.hpp>
#include <caf/message_id.hpp>
#include <capnp/capability.h>
#include <kj/async-io.h>
#include <kj/async-unix.h>
#include <kj/async.h>
#include <kj/timer.h>

#include "runtime/errc.hpp"
#include "runtime/large_data.hpp"
#include "runtime/outbox.hpp"
#include "runtime/reply_handle.hpp"

namespace joy {

class kj_thread;

/// An object owned by the kj thread and addressed by id from other threads
/// (a plugin link, a server connection). Destroyed on the kj thread.
class kj_resource {
public:
  virtual ~kj_resource() noexcept(false);
};

/// What a task running on the kj thread may use. Valid only on that thread.
class kj_context {
public:
  kj_context(const kj_context&) = delete;
  kj_context& operator=(const kj_context&) = delete;

  kj::AsyncIoProvider& io() noexcept {
    return *io_.provider;
  }

  kj::LowLevelAsyncIoProvider& low_level() noexcept {
    return *io_.lowLevelProvider;
  }

  kj::UnixEventPort& event_port() noexcept {
    return io_.unixEventPort;
  }

  /// The real monotonic timer, or a manual one in tests.
  kj::Timer& timer() noexcept {
    return *timer_;
  }

  /// Background promises; a failure is logged, never fatal.
  kj::TaskSet& tasks() noexcept {
    return tasks_;
  }

  caf::actor_system& system() noexcept {
    return sys_;
  }

  /// The thread this context belongs to.
  kj_thread& thread() noexcept {
    return *thread_;
  }

  // -- capabilities --------------------------------------------------------

  /// Keeps `cap` on this thread under a fresh id, for handles that live in
  /// other threads (remote function values).
  uint64_t keep(capnp::Capability::Client cap);

  /// The capability kept under `id`, or nullptr.
  capnp::Capability::Client* capability(uint64_t id) noexcept;

  /// Lets go of the capability kept under `id` (its last local reference:
  /// Cap'n Proto releases it at the peer).
  void release(uint64_t id);

  /// How many capabilities are kept (tests check for leaks with it).
  std::size_t kept() const noexcept {
    return capabilities_.size();
  }

  // -- large data -------------------------------------------------------------

  /// How this thread's codecs move large binary data (large_data.hpp).
  const large_data_policy& large_data() const noexcept {
    return large_data_;
  }

  void set_large_data(large_data_policy policy) {
    large_data_ = std::move(policy);
  }

  // -- CAF -> kj requests --------------------------------------------------

  /// Handles requests (and plain messages, whose reply handle is never
  /// pending) sent to the gateway (`kj_thread::gateway()`): called
  /// on this thread with the request's content; returns false to let the
  /// next handler look at it. A request no handler takes is answered with
  /// `errc::unimplemented`.
  using request_handler
    = std::function<bool(kj_context&, caf::message&, reply_handle&)>;

  void on_request(request_handler handler);

  // -- resources --------------------------------------------------------------

  /// Stores `obj` under `id` (from `kj_thread::next_id()`).
  void adopt(uint64_t id, kj::Own<kj_resource> obj);

  /// The resource under `id`, or nullptr.
  kj_resource* find(uint64_t id) noexcept;

  template <class T>
  T* find_as(uint64_t id) noexcept {
    return dynamic_cast<T*>(find(id));
  }

  /// Removes and destroys the resource (later, in its own event, so that a
  /// resource may drop itself from inside one of its callbacks).
  void drop(uint64_t id);

  /// Runs `fn` when the thread stops, before resources are destroyed; used
  /// for graceful goodbyes. Hooks run in reverse order of registration.
  void on_stop(std::function<void()> fn);

  // -- kj → CAF ---------------------------------------------------------------

  /// Sends a request to `dest` and returns its response message (a
  /// `caf::error` inside the message when it failed). Fails with
  /// `errc::timeout` after `timeout`.
  template <class Handle, class... Ts>
  kj::Promise<caf::message> request(const Handle& dest, kj::Duration timeout,
                                    Ts&&... xs) {
    return request_impl(caf::actor_cast<caf::strong_actor_ptr>(dest), timeout,
                        caf::make_message(std::forward<Ts>(xs)...));
  }

  /// Sends an asynchronous message to `dest`, without a sender.
  template <class Handle, class... Ts>
  static void send(const Handle& dest, Ts&&... xs) {
    auto ptr = caf::actor_cast<caf::strong_actor_ptr>(dest);
    if (ptr)
      outbox::send(ptr,
                   caf::make_mailbox_element(nullptr, caf::make_message_id(),
                                             {}, std::forward<Ts>(xs)...));
  }

private:
  friend class kj_thread;

  kj_context(kj_thread& thread, caf::actor_system& sys, kj::AsyncIoContext& io,
             kj::Timer& timer, kj::TaskSet::ErrorHandler& errors,
             caf::strong_actor_ptr companion);

  ~kj_context();

  kj::Promise<caf::message> request_impl(caf::strong_actor_ptr dest,
                                         kj::Duration timeout,
                                         caf::message msg);

  void fulfill(uint64_t request_id, caf::message msg);

  void dispatch(caf::message msg, reply_handle reply);

  void shutdown();

  kj_thread* thread_;
  caf::actor_system& sys_;
  kj::AsyncIoContext& io_;
  kj::Timer* timer_;
  kj::TaskSet tasks_;
  caf::strong_actor_ptr companion_;
  uint64_t last_request_ = 0;
  std::unordered_map<uint64_t, kj::Own<kj::PromiseFulfiller<caf::message>>>
    pending_;
  std::map<uint64_t, kj::Own<kj_resource>> resources_;
  std::unordered_map<uint64_t, capnp::Capability::Client> capabilities_;
  large_data_policy large_data_;
  std::vector<request_handler> request_handlers_;
  std::vector<std::function<void()>> stop_hooks_;
};

/// The kj thread of a process. See the file comment.
class kj_thread {
public:
  struct options {
    /// Use a manual clock (advanced with `advance_clock`) instead of the
    /// monotonic one, so timeout logic runs in tests without sleeping.
    bool manual_clock = false;
    /// Thread name as shown by `ps -L`.
    std::string name = "joy-kj";
  };

  explicit kj_thread(caf::actor_system& sys);
  kj_thread(caf::actor_system& sys, options opts);

  /// Calls `stop()`.
  ~kj_thread();

  kj_thread(const kj_thread&) = delete;
  kj_thread& operator=(const kj_thread&) = delete;

  /// Runs `f(kj_context&)` on the kj thread. Thread-safe and non-blocking.
  /// After `stop()`, `f` is destroyed without running.
  template <class F>
  void post(F&& f) {
    push(new task_impl<std::decay_t<F>>(std::forward<F>(f)));
  }

  /// The gateway: an actor handle whose requests run on the kj thread (see
  /// `kj_context::on_request`). Typed interfaces served there are reached
  /// by `caf::actor_cast`ing it to their handle type.
  caf::actor gateway() const noexcept {
    return gateway_;
  }

  /// A fresh id for a resource, usable before the resource exists.
  uint64_t next_id() noexcept {
    return ids_.fetch_add(1, std::memory_order_relaxed) + 1;
  }

  /// Advances the manual clock by `d` (tests only).
  void advance_clock(kj::Duration d);

  /// Stops the thread; see the file comment for the order. Idempotent; must
  /// not be called from the kj thread itself.
  void stop();

  /// True on the kj thread.
  bool on_kj_thread() const noexcept {
    return std::this_thread::get_id() == thread_.get_id();
  }

  /// Number of tasks run so far (for benchmarks and tests).
  uint64_t tasks_run() const noexcept {
    return tasks_run_.load(std::memory_order_relaxed);
  }

  /// Number of eventfd wake-ups so far: tasks_run() / wakeups() is the
  /// average batch size.
  uint64_t wakeups() const noexcept {
    return wakeups_.load(std::memory_order_relaxed);
  }

private:
  struct task_base {
    task_base* next = nullptr;
    virtual ~task_base() = default;
    virtual void run(kj_context& ctx) = 0;
  };

  template <class F>
  struct task_impl final : task_base {
    explicit task_impl(F fn) : f(std::move(fn)) {
      // nop
    }
    void run(kj_context& ctx) override {
      f(ctx);
    }
    F f;
  };

  void push(task_base* task);
  void run();
  void drain(kj_context& ctx);
  kj::Promise<void> pump(kj::UnixEventPort::FdObserver& observer,
                         kj_context& ctx);

  static task_base* closed_marker() noexcept;

  caf::actor_system& sys_;
  options opts_;
  int event_fd_ = -1;
  std::atomic<task_base*> head_{nullptr};
  std::atomic<uint64_t> ids_{0};
  std::atomic<uint64_t> tasks_run_{0};
  std::atomic<uint64_t> wakeups_{0};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  caf::actor gateway_;
  // The rest is touched only on the kj thread.
  std::promise<void>* run_started_ = nullptr;
  kj::TimerImpl* manual_timer_ = nullptr;
  kj::Own<kj::PromiseFulfiller<void>> stop_fulfiller_;
};

/// Holds a capability kept on a kj thread (`kj_context::keep`) for as long
/// as it lives, from any thread: the release is posted to that thread. What
/// remote function values and bytes left in another process hold.
class kept_capability {
public:
  kept_capability(kj_thread& kj, uint64_t id) : kj_(&kj), id_(id) {
    // nop
  }

  kept_capability(const kept_capability&) = delete;
  kept_capability& operator=(const kept_capability&) = delete;

  ~kept_capability();

  kj_thread& thread() const noexcept {
    return *kj_;
  }

  uint64_t id() const noexcept {
    return id_;
  }

private:
  kj_thread* kj_;
  uint64_t id_;
};

} // namespace joy
