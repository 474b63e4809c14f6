// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "runtime/outbox.hpp"

namespace joy {

namespace {

// The outbox of the kj thread running on this thread, if any. Per thread
// like CAF's own execution unit: reply handles are delivered from any
// thread and cannot be told which loop, if any, they run on.
thread_local outbox* current = nullptr;

} // namespace

outbox::outbox(std::function<void()> arm) : arm_(std::move(arm)) {
  // nop
}

outbox::~outbox() {
  send_held();
}

void outbox::push(caf::strong_actor_ptr dest, caf::mailbox_element_ptr elem) {
  if (!armed_) {
    // The first send of a burst goes at once: its receiver starts waking
    // while the loop works through the rest, which then travel together.
    armed_ = true;
    arm_();
    dest->enqueue(std::move(elem), nullptr);
    return;
  }
  items_.emplace_back(std::move(dest), std::move(elem));
  if (items_.size() >= max_held)
    send_held();
}

void outbox::flush() {
  send_held();
  // Only now: a send from inside the batch's enqueues must not overtake it.
  armed_ = false;
}

void outbox::send_held() {
  // Enqueueing may run code that sends again (a companion's callback):
  // that lands in `items_`, after this batch.
  auto batch = std::move(items_);
  items_.clear();
  for (auto& [dest, elem] : batch)
    dest->enqueue(std::move(elem), nullptr);
  batch.clear();
  if (items_.empty())
    items_.swap(batch); // keeps the capacity
}

void outbox::send(const caf::strong_actor_ptr& dest,
                  caf::mailbox_element_ptr elem) {
  if (!dest)
    return;
  if (current != nullptr)
    current->push(dest, std::move(elem));
  else
    dest->enqueue(std::move(elem), nullptr);
}

void outbox::install(outbox* box) noexcept {
  current = box;
}

} // namespace joy
