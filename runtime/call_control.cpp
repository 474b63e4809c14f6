// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "runtime/call_control.hpp"

#include "runtime/kj_thread.hpp"
#include "schema/plugin.capnp.h"

namespace joy {

call_control::call_control(kj_thread* kj, reporter report)
  : kj_(kj), report_(std::move(report)) {
  // nop
}

void call_control::cancel() {
  if (cancelled_.exchange(true, std::memory_order_acq_rel))
    return;
  if (on_cancel_) {
    auto fn = std::move(on_cancel_);
    on_cancel_ = nullptr;
    fn();
  }
}

void call_control::on_cancel(std::function<void()> fn) {
  if (cancelled()) {
    fn();
    return;
  }
  on_cancel_ = std::move(fn);
}

kj::Promise<void> when_cancelled(call_control& control) {
  auto paf = kj::newPromiseAndFulfiller<void>();
  auto fulfiller = std::make_shared<kj::Own<kj::PromiseFulfiller<void>>>(
    kj::mv(paf.fulfiller));
  control.on_cancel([fulfiller] { (*fulfiller)->fulfill(); });
  return paf.promise.catch_(
    [](kj::Exception&&) -> kj::Promise<void> { return kj::NEVER_DONE; });
}

void call_control::progress(double fraction, std::string message) const {
  if (kj_ == nullptr || !report_)
    return;
  kj_->post([report = report_, fraction,
             message = std::move(message)](kj_context& ctx) mutable {
    report(ctx, fraction, std::move(message));
  });
}

call_control::reporter report_to_monitor(kj_context& ctx,
                                         capnp::Capability::Client monitor) {
  auto kept = std::make_shared<kept_capability>(ctx.thread(),
                                                ctx.keep(kj::mv(monitor)));
  return [kept](kj_context& ctx, double fraction, std::string message) {
    auto* cap = ctx.capability(kept->id());
    if (cap == nullptr)
      return;
    auto req = cap->castAs<wire::CallMonitor>().progressRequest();
    req.setFraction(fraction);
    req.setMessage(message);
    ctx.tasks().add(req.send().ignoreResult().catch_([](kj::Exception&&) {}));
  };
}

} // namespace joy
