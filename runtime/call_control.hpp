// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// `call_control`: what travels with one call besides its arguments — the
/// caller's cancellation and the callee's progress (DESIGN §5,
/// "Cancellation").
///
/// It is made where a call enters a process from the wire (the node's
/// control socket, a plugin's `Plugin.call`) and rides along in the
/// `call_request`. The kj side cancels it when the caller gives up (the
/// call is dropped: Ctrl-C, a deadline, a broken link); code that runs the
/// call polls `cancelled()` — safe from any thread, so even a function that
/// blocks its actor sees it — and reports `progress()`, which goes back to
/// the caller's monitor and renews the caller's deadline.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <capnp/capability.h>
#include <kj/async.h>
#include <kj/time.h>

namespace joy {

/// The bound of a kj-side wait for a call whose deadline someone else
/// enforces (the node, or the caller, who cancels by dropping the call):
/// it only ends a wait for an answer that never comes.
constexpr kj::Duration unbounded_call = 24 * 3600 * kj::SECONDS;

class kj_thread;
class kj_context;

class call_control {
public:
  /// Where progress goes, run on the kj thread.
  using reporter = std::function<void(kj_context&, double, std::string)>;

  /// Progress goes to `report` (null: nobody listens), run on `kj`'s thread.
  call_control(kj_thread* kj, reporter report);

  call_control(const call_control&) = delete;
  call_control& operator=(const call_control&) = delete;

  /// True once the caller gave up.
  bool cancelled() const noexcept {
    return cancelled_.load(std::memory_order_acquire);
  }

  /// Marks the call cancelled and runs the cancel hook; call on the kj
  /// thread (where the caller's side of the call lives).
  void cancel();

  /// Runs `fn` on cancellation (on the kj thread), for the part of the call
  /// that is itself on the wire; replaces an earlier hook.
  void on_cancel(std::function<void()> fn);

  /// Reports progress to the caller (any thread).
  void progress(double fraction, std::string message) const;

private:
  std::atomic<bool> cancelled_{false};
  kj_thread* kj_;
  reporter report_;
  std::function<void()> on_cancel_;
};

/// Completes once `control` is cancelled: the side of a call's race that
/// stands for its caller giving up. Replaces `control`'s cancel hook. It
/// never fails, and never completes if `control` goes first (a control
/// dropped with the last holder of the call is no cancellation). Call on
/// the kj thread.
kj::Promise<void> when_cancelled(call_control& control);

/// Reports to a caller's `CallMonitor` capability, kept on `ctx`'s thread
/// until the last copy of the reporter goes. Call on that thread.
call_control::reporter report_to_monitor(kj_context& ctx,
                                         capnp::Capability::Client monitor);

/// `promise`, such that dropping it before it completes (the caller gave
/// up) cancels `control`.
template <class T>
kj::Promise<T> cancel_on_drop(kj::Promise<T> promise,
                              std::shared_ptr<call_control> control) {
  auto done = std::make_shared<bool>(false);
  return promise
    .then([done](T x) {
      *done = true;
      return x;
    })
    .attach(kj::defer([done, control = std::move(control)] {
      if (!*done)
        control->cancel();
    }));
}

} // namespace joy
