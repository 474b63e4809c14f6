// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// `reply_handle`: the response an actor owes its requester, taken out of
/// the actor so that another thread (the kj thread) can deliver it directly.
///
/// This is the kj → CAF half of the seam (see kj_thread.hpp and
/// docs/design/seam.md). An actor handling a request takes the handle, posts
/// it to the kj thread with the work, and returns `caf::delegated<T>`; when
/// the Cap'n Proto call completes, the kj continuation delivers the result
/// straight into the requester's mailbox. Compared with sending the result
/// back to the actor first, this saves one actor hop per call (measured in
/// joy-bench B3).
///
/// ```
/// [=](call_atom, call_request req) -> caf::result<value> {
///   kj.post([rh = reply_handle{self}, req](kj_context& ctx) mutable {
///     ctx.tasks().add(do_call(ctx, req).then(
///       [rh = std::move(rh)](value v) mutable { rh.deliver(std::move(v)); }));
///   });
///   return caf::delegated<value>{};
/// }
/// ```
///
/// A reply is delivered exactly once: a handle destroyed while still pending
/// (its call was dropped, the kj thread stopped) delivers
/// `errc::disconnected`, so a requester never waits for an answer that
/// cannot come.
#pragma once

#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>
#include <caf/local_actor.hpp>
#include <caf/mailbox_element.hpp>
#include <caf/message.hpp>
#include <caf/message_id.hpp>

#include "runtime/errc.hpp"

namespace joy {

class reply_handle {
public:
  reply_handle() noexcept = default;

  /// Takes over the response to the request `self` is handling right now.
  /// The handler must not answer it otherwise (return `caf::delegated<T>`).
  explicit reply_handle(caf::local_actor* self);

  /// Takes over the response to `request`, a request that arrived at the
  /// actor `self` outside of its mailbox (the kj gateway's requests).
  reply_handle(caf::strong_actor_ptr self, caf::mailbox_element& request);

  reply_handle(reply_handle&& other) noexcept = default;

  /// A pending handle that is overwritten delivers `errc::disconnected`.
  reply_handle& operator=(reply_handle&& other) noexcept;

  reply_handle(const reply_handle&) = delete;
  reply_handle& operator=(const reply_handle&) = delete;

  ~reply_handle();

  /// True until delivered. An asynchronous message (no requester) is never
  /// pending.
  bool pending() const noexcept {
    return source_ != nullptr || !stages_.empty();
  }

  /// Delivers `msg` as the response; thread-safe, at most once.
  void deliver(caf::message msg);

  /// Delivers an error response.
  void deliver(caf::error err) {
    deliver(caf::make_message(std::move(err)));
  }

  /// Hands the request on to `dest` with `msg` as its content; `dest`
  /// answers the original requester directly (CAF's delegation).
  void delegate(const caf::strong_actor_ptr& dest, caf::message msg);

  /// Delivers a single value.
  template <class T>
  void deliver_value(T&& x) {
    deliver(caf::make_message(std::forward<T>(x)));
  }

  /// Delivers the value, or the error.
  template <class T>
  void deliver(caf::expected<T> res) {
    if (res)
      deliver_value(std::move(*res));
    else
      deliver(std::move(res.error()));
  }

private:
  caf::strong_actor_ptr self_;
  caf::strong_actor_ptr source_;
  caf::mailbox_element::forwarding_stack stages_;
  caf::message_id mid_;
};

} // namespace joy
