// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "runtime/reply_handle.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_control_block.hpp>
#include <caf/no_stages.hpp>

#include "runtime/outbox.hpp"

namespace joy {

reply_handle::reply_handle(caf::local_actor* self) {
  auto* elem = self->current_mailbox_element();
  if (elem == nullptr || elem->mid.is_answered() || elem->mid.is_response())
    return;
  self_ = self->ctrl();
  source_.swap(elem->sender);
  stages_.swap(elem->stages);
  mid_ = elem->mid;
  elem->mid.mark_as_answered();
}

reply_handle::reply_handle(caf::strong_actor_ptr self,
                           caf::mailbox_element& request) {
  if (request.mid.is_answered() || request.mid.is_response()
      || !request.mid.is_request())
    return;
  self_ = std::move(self);
  source_.swap(request.sender);
  stages_.swap(request.stages);
  mid_ = request.mid;
  request.mid.mark_as_answered();
}

reply_handle& reply_handle::operator=(reply_handle&& other) noexcept {
  if (this != &other) {
    if (pending())
      deliver(make_error(errc::disconnected, "the call was dropped"));
    self_ = std::move(other.self_);
    source_ = std::move(other.source_);
    stages_ = std::move(other.stages_);
    mid_ = other.mid_;
  }
  return *this;
}

void reply_handle::delegate(const caf::strong_actor_ptr& dest,
                            caf::message msg) {
  if (!pending())
    return;
  if (!dest) {
    deliver(make_error(errc::disconnected, "the callee is gone"));
    return;
  }
  outbox::send(dest,
               caf::make_mailbox_element(std::move(source_), mid_,
                                         std::move(stages_), std::move(msg)));
  self_.reset();
  source_.reset();
  stages_.clear();
}

reply_handle::~reply_handle() {
  if (pending())
    deliver(make_error(errc::disconnected,
                       "the call was dropped before it completed"));
}

void reply_handle::deliver(caf::message msg) {
  // Same routing as caf::response_promise, but without an execution unit:
  // we may run on a foreign thread, so the receiver is scheduled through the
  // scheduler's thread-safe queue instead of the current worker's.
  if (!stages_.empty()) {
    auto next = std::move(stages_.back());
    stages_.pop_back();
    outbox::send(next,
                 caf::make_mailbox_element(std::move(source_), mid_,
                                           std::move(stages_), std::move(msg)));
  } else if (source_) {
    outbox::send(source_,
                 caf::make_mailbox_element(std::move(self_), mid_.response_id(),
                                           caf::no_stages, std::move(msg)));
  }
  self_.reset();
  source_.reset();
  stages_.clear();
}

} // namespace joy
