// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "runtime/kj_thread.hpp"

#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <future>
#include <stdexcept>

#include <caf/actor_companion.hpp>
#include <caf/spawn_options.hpp>
#include <kj/debug.h>

#include "runtime/log.hpp"
#include "runtime/outbox.hpp"

namespace joy {

// -- kj_resource --------------------------------------------------------------

kj_resource::~kj_resource() noexcept(false) {
  // nop
}

// -- kj_context ---------------------------------------------------------------

kj_context::kj_context(kj_thread& thread, caf::actor_system& sys,
                       kj::AsyncIoContext& io, kj::Timer& timer,
                       kj::TaskSet::ErrorHandler& errors,
                       caf::strong_actor_ptr companion)
  : thread_(&thread),
    sys_(sys),
    io_(io),
    timer_(&timer),
    tasks_(errors),
    companion_(std::move(companion)) {
  // nop
}

kj_context::~kj_context() {
  // nop
}

void kj_context::adopt(uint64_t id, kj::Own<kj_resource> obj) {
  resources_[id] = kj::mv(obj);
}

kj_resource* kj_context::find(uint64_t id) noexcept {
  auto i = resources_.find(id);
  return i != resources_.end() ? i->second.get() : nullptr;
}

void kj_context::drop(uint64_t id) {
  auto i = resources_.find(id);
  if (i == resources_.end())
    return;
  // Destroy in a later event: the caller may be running inside the
  // resource (e.g. its disconnect callback).
  auto obj = kj::mv(i->second);
  resources_.erase(i);
  tasks_.add(kj::evalLater([obj = kj::mv(obj)]() mutable { obj = nullptr; }));
}

uint64_t kj_context::keep(capnp::Capability::Client cap) {
  auto id = thread_->next_id();
  capabilities_.emplace(id, kj::mv(cap));
  return id;
}

capnp::Capability::Client* kj_context::capability(uint64_t id) noexcept {
  auto i = capabilities_.find(id);
  return i != capabilities_.end() ? &i->second : nullptr;
}

void kj_context::release(uint64_t id) {
  capabilities_.erase(id);
}

void kj_context::on_request(request_handler handler) {
  request_handlers_.push_back(std::move(handler));
}

void kj_context::dispatch(caf::message msg, reply_handle reply) {
  for (auto& handler : request_handlers_)
    if (handler(*this, msg, reply))
      return;
  reply.deliver(make_error(errc::unimplemented,
                           "the kj gateway does not serve this request"));
}

void kj_context::on_stop(std::function<void()> fn) {
  stop_hooks_.push_back(std::move(fn));
}

kj::Promise<caf::message> kj_context::request_impl(caf::strong_actor_ptr dest,
                                                   kj::Duration timeout,
                                                   caf::message msg) {
  if (!dest)
    return caf::make_message(
      make_error(errc::disconnected, "the actor is gone"));
  auto id = ++last_request_;
  auto paf = kj::newPromiseAndFulfiller<caf::message>();
  pending_.emplace(id, kj::mv(paf.fulfiller));
  outbox::send(dest,
               caf::make_mailbox_element(companion_, caf::make_message_id(id),
                                         {}, std::move(msg)));
  auto expired = timer_->afterDelay(timeout).then([] {
    return caf::make_message(
      make_error(errc::timeout, "no answer from the actor in time"));
  });
  // Whatever happens to the returned promise, forget the request.
  return paf.promise.exclusiveJoin(kj::mv(expired))
    .attach(kj::defer([this, id] { pending_.erase(id); }));
}

void kj_context::fulfill(uint64_t request_id, caf::message msg) {
  auto i = pending_.find(request_id);
  if (i == pending_.end())
    return; // timed out or abandoned
  auto fulfiller = kj::mv(i->second);
  pending_.erase(i);
  fulfiller->fulfill(kj::mv(msg));
}

void kj_context::shutdown() {
  for (auto i = stop_hooks_.rbegin(); i != stop_hooks_.rend(); ++i) {
    try {
      (*i)();
    } catch (const kj::Exception& ex) {
      log(log_level::warning, "kj",
          "stop hook failed: ", ex.getDescription().cStr());
    } catch (const std::exception& ex) {
      log(log_level::warning, "kj", "stop hook failed: ", ex.what());
    }
  }
  stop_hooks_.clear();
  // Newest first: later resources may depend on earlier ones.
  while (!resources_.empty()) {
    auto last = std::prev(resources_.end());
    auto obj = kj::mv(last->second);
    resources_.erase(last);
    obj = nullptr;
  }
  pending_.clear();
  capabilities_.clear();
  request_handlers_.clear();
}

// -- kj_thread ----------------------------------------------------------------

namespace {

class log_errors final : public kj::TaskSet::ErrorHandler {
public:
  void taskFailed(kj::Exception&& ex) override {
    // DISCONNECTED is the normal end of a link; anything else is worth a line.
    if (ex.getType() == kj::Exception::Type::DISCONNECTED)
      log(log_level::debug, "kj", "task ended: ", ex.getDescription().cStr());
    else
      log(log_level::warning, "kj",
          "background task failed: ", ex.getDescription().cStr());
  }
};

} // namespace

kj_thread::kj_thread(caf::actor_system& sys) : kj_thread(sys, options{}) {
  // nop
}

kj_thread::kj_thread(caf::actor_system& sys, options opts)
  : sys_(sys), opts_(std::move(opts)) {
  event_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_fd_ < 0)
    throw std::runtime_error(std::string{"eventfd: "} + std::strerror(errno));
  std::promise<void> started;
  auto ready = started.get_future();
  thread_ = std::thread([this, &started] {
    pthread_setname_np(pthread_self(), opts_.name.substr(0, 15).c_str());
    run_started_ = &started;
    run();
  });
  ready.get();
}

kj_thread::~kj_thread() {
  stop();
  if (event_fd_ >= 0)
    ::close(event_fd_);
}

kj_thread::task_base* kj_thread::closed_marker() noexcept {
  static task_base* marker = reinterpret_cast<task_base*>(uintptr_t{1});
  return marker;
}

void kj_thread::push(task_base* task) {
  auto head = head_.load(std::memory_order_acquire);
  for (;;) {
    if (head == closed_marker()) {
      // Stopped: drop the task here; its destructor fails pending replies.
      delete task;
      return;
    }
    task->next = head;
    if (head_.compare_exchange_weak(head, task, std::memory_order_acq_rel,
                                    std::memory_order_acquire))
      break;
  }
  if (head == nullptr) {
    // Empty -> non-empty: wake the loop. Later pushes ride on this wake-up
    // until the loop takes the batch.
    uint64_t one = 1;
    while (::write(event_fd_, &one, sizeof(one)) < 0 && errno == EINTR) {
      // retry
    }
  }
}

void kj_thread::drain(kj_context& ctx) {
  auto* list = head_.exchange(nullptr, std::memory_order_acq_rel);
  if (list == nullptr || list == closed_marker())
    return;
  // The stack is LIFO; reverse it so tasks run in posting order.
  task_base* fifo = nullptr;
  while (list != nullptr) {
    auto* next = list->next;
    list->next = fifo;
    fifo = list;
    list = next;
  }
  uint64_t n = 0;
  while (fifo != nullptr) {
    auto* next = fifo->next;
    try {
      fifo->run(ctx);
    } catch (const kj::Exception& ex) {
      log(log_level::warning, "kj",
          "task failed: ", ex.getDescription().cStr());
    } catch (const std::exception& ex) {
      log(log_level::warning, "kj", "task failed: ", ex.what());
    }
    delete fifo;
    fifo = next;
    ++n;
  }
  tasks_run_.fetch_add(n, std::memory_order_relaxed);
}

kj::Promise<void> kj_thread::pump(kj::UnixEventPort::FdObserver& observer,
                                  kj_context& ctx) {
  return observer.whenBecomesReadable().then([this, &observer, &ctx] {
    // Reset the counter first, then take the batch: a push that lands in
    // between is in the batch, and any later one writes the eventfd again.
    uint64_t count;
    while (::read(event_fd_, &count, sizeof(count)) < 0 && errno == EINTR) {
      // retry
    }
    wakeups_.fetch_add(1, std::memory_order_relaxed);
    drain(ctx);
    return pump(observer, ctx);
  });
}

void kj_thread::run() {
  auto io = kj::setupAsyncIo();
  kj::TimerImpl manual{kj::origin<kj::TimePoint>()};
  kj::Timer& timer = opts_.manual_clock ? static_cast<kj::Timer&>(manual)
                                        : io.provider->getTimer();
  manual_timer_ = opts_.manual_clock ? &manual : nullptr;
  log_errors errors;
  // The companion receives the responses to kj → CAF requests on whatever
  // thread sends them, and forwards them into the queue.
  auto companion = sys_.spawn<caf::actor_companion, caf::hidden>();
  auto* comp = caf::actor_cast<caf::actor_companion*>(companion);
  auto comp_ptr = caf::actor_cast<caf::strong_actor_ptr>(companion);
  comp->on_enqueue([this, comp_ptr](caf::mailbox_element_ptr ptr) {
    if (!ptr)
      return;
    if (ptr->mid.is_response()) {
      // The answer to a kj -> CAF request.
      auto id = ptr->mid.request_id().integer_value()
                & caf::message_id::request_id_mask;
      auto msg = ptr->move_content_to_message();
      post([id, msg = std::move(msg)](kj_context& ctx) mutable {
        ctx.fulfill(id, std::move(msg));
      });
    } else {
      // A CAF -> kj request to the gateway, or a message without a
      // requester (its reply handle is never pending).
      reply_handle reply;
      if (ptr->mid.is_request())
        reply = reply_handle{comp_ptr, *ptr};
      auto msg = ptr->move_content_to_message();
      post([msg = std::move(msg),
            reply = std::move(reply)](kj_context& ctx) mutable {
        ctx.dispatch(std::move(msg), std::move(reply));
      });
    }
  });
  gateway_ = caf::actor_cast<caf::actor>(companion);
  {
    kj_context ctx{*this,  sys_,
                   io,     timer,
                   errors, caf::actor_cast<caf::strong_actor_ptr>(companion)};
    // What this thread sends to actors goes out when the loop would wait.
    outbox box{
      [&ctx, &box] { ctx.tasks().add(kj::evalLast([&box] { box.flush(); })); }};
    outbox::install(&box);
    kj::UnixEventPort::FdObserver observer{
      io.unixEventPort, event_fd_, kj::UnixEventPort::FdObserver::OBSERVE_READ};
    auto stop = kj::newPromiseAndFulfiller<void>();
    stop_fulfiller_ = kj::mv(stop.fulfiller);
    run_started_->set_value();
    drain(ctx);
    pump(observer, ctx).exclusiveJoin(kj::mv(stop.promise)).wait(io.waitScope);
    // -- shutdown, on this thread ---------------------------------------------
    ctx.shutdown();
    // Let the goodbyes started by stop hooks and the cancellations flush.
    for (int i = 0; i < 3; ++i)
      kj::evalLater([] {}).wait(io.waitScope);
    // Close the queue and drop what is left without running it.
    auto* rest = head_.exchange(closed_marker(), std::memory_order_acq_rel);
    while (rest != nullptr && rest != closed_marker()) {
      auto* next = rest->next;
      delete rest;
      rest = next;
    }
    // Before the task set goes: the outbox arms its flush there.
    outbox::install(nullptr);
    box.flush();
  }
  // From now on the gateway answers every request at once: the reply
  // handle, dropped undelivered, says `disconnected`.
  comp->on_enqueue([](caf::mailbox_element_ptr ptr) {
    if (ptr && ptr->mid.is_request())
      reply_handle dropped{nullptr, *ptr};
  });
  comp->cleanup(caf::make_error(caf::exit_reason::user_shutdown), nullptr);
  manual_timer_ = nullptr;
}

void kj_thread::advance_clock(kj::Duration d) {
  post([this, d](kj_context&) {
    if (manual_timer_ != nullptr)
      manual_timer_->advanceTo(manual_timer_->now() + d);
  });
}

void kj_thread::stop() {
  if (stopping_.exchange(true))
    return;
  if (!thread_.joinable())
    return;
  KJ_REQUIRE(!on_kj_thread(), "kj_thread::stop() called on the kj thread");
  post([this](kj_context&) { stop_fulfiller_->fulfill(); });
  thread_.join();
}

kept_capability::~kept_capability() {
  kj_->post([id = id_](kj_context& ctx) { ctx.release(id); });
}

} // namespace joy
