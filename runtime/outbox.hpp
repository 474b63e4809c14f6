// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The kj thread's outbox: of what code on the kj thread sends to actors,
/// the first message of a burst goes at once and the rest wait here until
/// the event loop has nothing else to do, then go out in one go
/// (docs/design/seam.md, "Batched sends").
///
/// Why: a message to an idle actor wakes a CAF worker (a futex and, on
/// these VMs, a context switch). Cap'n Proto hands the kj thread a burst of
/// calls from one read; sent one by one, each call woke the plugin's worker,
/// which answered it and went back to sleep before the next one came, so
/// the two threads traded a wake-up per call. Held until the loop would
/// wait, the rest of the burst reaches the actor together: two wake-ups
/// instead of one per call. The first message of a burst still goes at once,
/// so that a lone call waits for nothing.
///
/// Order is kept: every send from a kj thread goes through its outbox
/// (`kj_context::request`, `kj_context::send`, `reply_handle`), and the
/// outbox sends in the order it was given. On any other thread `send`
/// enqueues at once.
#pragma once

#include <cstddef>
#include <functional>
#include <utility>
#include <vector>

#include <caf/actor_control_block.hpp>
#include <caf/mailbox_element.hpp>

namespace joy {

class outbox {
public:
  /// Flushes on its own once it holds this many messages, so that a loop
  /// that never runs out of events still delivers.
  static constexpr std::size_t max_held = 64;

  /// `arm` arranges for `flush()` to run once the loop has nothing else to
  /// do (`kj::evalLast`); it is called when the first message arrives.
  explicit outbox(std::function<void()> arm);

  /// Sends whatever is still held.
  ~outbox();

  outbox(const outbox&) = delete;
  outbox& operator=(const outbox&) = delete;

  /// Sends `elem` to `dest`: at once if it is the first since the last
  /// `flush()`, else with the others at the next one.
  void push(caf::strong_actor_ptr dest, caf::mailbox_element_ptr elem);

  /// Sends everything held, oldest first; the next push goes at once. What
  /// `arm` schedules.
  void flush();

  /// How many messages are held (tests).
  std::size_t held() const noexcept {
    return items_.size();
  }

  /// Sends `elem` to `dest` through the calling thread's outbox when it has
  /// one, else at once. A null `dest` drops the message.
  static void send(const caf::strong_actor_ptr& dest,
                   caf::mailbox_element_ptr elem);

  /// Makes `box` the calling thread's outbox (nullptr: none). The kj thread
  /// installs its own for as long as its loop runs.
  static void install(outbox* box) noexcept;

private:
  void send_held();

  std::vector<std::pair<caf::strong_actor_ptr, caf::mailbox_element_ptr>>
    items_;
  std::function<void()> arm_;
  bool armed_ = false;
};

} // namespace joy
