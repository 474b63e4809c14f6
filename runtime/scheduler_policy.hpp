// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The scheduling policy of every Joy process: CAF's work sharing (one
/// queue, idle workers sleep until woken) without its costs per scheduled
/// actor.
///
/// CAF 0.17's `work_sharing` allocates a list node for every actor it
/// queues (freed by the worker that takes it: a free across threads) and
/// signals its condition variable while it still holds the queue's lock, so
/// a woken worker at once blocks again on that lock; and glibc's condition
/// variable hands the woken worker that lock marked contended, so its next
/// unlock is a futex call too. On these VMs every futex is a trip to the
/// hypervisor: with 100 calls in flight into a plugin (B4), its kj thread
/// and its worker made about one futex call per call, a third of them on
/// that lock. Here the queue reuses its storage, and sleeping workers wait
/// on a semaphore, posted after the lock is released and only when a worker
/// sleeps that no post is on its way to yet.
#pragma once

#include <cerrno>
#include <cstddef>
#include <deque>
#include <mutex>

#include <semaphore.h>

#include <caf/policy/unprofiled.hpp>
#include <caf/resumable.hpp>

namespace caf::scheduler {
class abstract_coordinator;
} // namespace caf::scheduler

namespace joy {

class scheduler_policy : public caf::policy::unprofiled {
public:
  struct coordinator_data {
    explicit coordinator_data(caf::scheduler::abstract_coordinator*) {
      sem_init(&wake, 0, 0);
    }

    ~coordinator_data() {
      sem_destroy(&wake);
    }

    coordinator_data(const coordinator_data&) = delete;
    coordinator_data& operator=(const coordinator_data&) = delete;

    std::mutex lock;
    std::deque<caf::resumable*> queue;
    /// Workers waiting on `wake`, and posts to it not yet taken: a worker
    /// needs a post only while `sleeping > posted`.
    std::size_t sleeping = 0;
    std::size_t posted = 0;
    sem_t wake;
  };

  struct worker_data {
    explicit worker_data(caf::scheduler::abstract_coordinator*) {
      // nop
    }
  };

  template <class Coordinator>
  void enqueue(Coordinator* self, caf::resumable* job) {
    auto& data = d(self);
    bool wake = false;
    {
      std::lock_guard<std::mutex> guard{data.lock};
      data.queue.push_back(job);
      if (data.sleeping > data.posted) {
        ++data.posted;
        wake = true;
      }
    }
    if (wake)
      sem_post(&data.wake);
  }

  template <class Coordinator>
  void central_enqueue(Coordinator* self, caf::resumable* job) {
    enqueue(self, job);
  }

  template <class Worker>
  void external_enqueue(Worker* self, caf::resumable* job) {
    enqueue(self->parent(), job);
  }

  template <class Worker>
  void internal_enqueue(Worker* self, caf::resumable* job) {
    enqueue(self->parent(), job);
  }

  template <class Worker>
  void resume_job_later(Worker* self, caf::resumable* job) {
    enqueue(self->parent(), job);
  }

  template <class Worker>
  caf::resumable* dequeue(Worker* self) {
    auto& data = d(self->parent());
    std::unique_lock<std::mutex> guard{data.lock};
    while (data.queue.empty()) {
      ++data.sleeping;
      guard.unlock();
      // A post made before this wait is kept by the semaphore: no wake-up
      // is lost between the unlock and the wait.
      while (sem_wait(&data.wake) != 0 && errno == EINTR) {
        // retry
      }
      guard.lock();
      --data.sleeping;
      --data.posted;
    }
    auto* job = data.queue.front();
    data.queue.pop_front();
    return job;
  }

  template <class Worker, class UnaryFunction>
  void foreach_resumable(Worker*, UnaryFunction) {
    // Workers hold no jobs of their own.
  }

  template <class Coordinator, class UnaryFunction>
  void foreach_central_resumable(Coordinator* self, UnaryFunction f) {
    // At shutdown: the jobs left over are cleaned up outside the lock, since
    // cleaning up an actor may send messages, which would enqueue again.
    auto& data = d(self);
    for (;;) {
      std::deque<caf::resumable*> jobs;
      {
        std::lock_guard<std::mutex> guard{data.lock};
        jobs.swap(data.queue);
      }
      if (jobs.empty())
        return;
      for (auto* job : jobs)
        f(job);
    }
  }
};

} // namespace joy
