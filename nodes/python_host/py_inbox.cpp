// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "nodes/python_host/py_inbox.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <utility>

namespace joy::python {

py_inbox::py_inbox() : efd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (!efd_)
    throw std::runtime_error("eventfd failed");
}

void py_inbox::post(std::function<void()> task) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (closed_)
      return;
    wake = queue_.empty();
    queue_.push_back(std::move(task));
  }
  // Only the first task of a batch wakes the loop.
  if (wake) {
    uint64_t one = 1;
    while (::write(efd_.get(), &one, sizeof(one)) < 0 && errno == EINTR) {
      // retry
    }
  }
}

void py_inbox::drain() {
  uint64_t n = 0;
  while (::read(efd_.get(), &n, sizeof(n)) < 0 && errno == EINTR) {
    // retry
  }
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    batch.swap(queue_);
  }
  // One failing task must not lose the rest of the batch (each may be a
  // call's only way to be answered).
  for (auto& task : batch) {
    try {
      task();
    } catch (std::exception& e) {
      std::fprintf(stderr, "joy-python-host: a task failed: %s\n", e.what());
    } catch (...) {
      std::fprintf(stderr, "joy-python-host: a task failed\n");
    }
  }
}

void py_inbox::close() {
  std::vector<std::function<void()>> dropped;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    closed_ = true;
    dropped.swap(queue_);
  }
}

py_ref::py_ref(py_inbox& inbox, PyObject* obj) {
  if (obj == nullptr)
    return;
  Py_INCREF(obj);
  state_ = std::shared_ptr<state>(new state{&inbox, obj});
}

py_ref::state::~state() {
  if (PyGILState_Check() != 0) {
    Py_DECREF(obj);
    return;
  }
  inbox->post([obj = obj] { Py_DECREF(obj); });
}

} // namespace joy::python
