// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The Python host's way into its Python thread: the mirror image of
/// `kj_thread::post`. Any thread (in practice the kj thread) posts a task;
/// the asyncio loop reads the inbox's eventfd (`loop.add_reader`) and runs
/// the tasks with the GIL held. The poster never takes the GIL, so the kj
/// thread never waits for Python code to let go of it.
///
/// `py_ref` is a Python reference any thread may drop: without the GIL it
/// hands the decrement to the inbox instead of touching the object.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include <Python.h>

#include "runtime/unique_fd.hpp"

namespace joy::python {

class py_inbox {
public:
  py_inbox();

  py_inbox(const py_inbox&) = delete;
  py_inbox& operator=(const py_inbox&) = delete;

  /// Readable while tasks wait.
  int fd() const noexcept {
    return efd_.get();
  }

  /// Queues `task`; it runs on the Python thread with the GIL held. Thread
  /// safe; after `close()` the task is destroyed without running.
  void post(std::function<void()> task);

  /// Runs every queued task. Python thread, GIL held.
  void drain();

  /// Drops later posts (the interpreter is going away).
  void close();

private:
  std::mutex mtx_;
  std::vector<std::function<void()>> queue_;
  bool closed_ = false;
  unique_fd efd_;
};

/// A strong reference to a Python object, safe to copy and drop on any
/// thread (see the file comment).
class py_ref {
public:
  py_ref() noexcept = default;

  /// Takes a new reference to `obj` (GIL held).
  py_ref(py_inbox& inbox, PyObject* obj);

  PyObject* get() const noexcept {
    return state_ ? state_->obj : nullptr;
  }

  explicit operator bool() const noexcept {
    return get() != nullptr;
  }

private:
  struct state {
    ~state();
    py_inbox* inbox;
    PyObject* obj;
  };

  std::shared_ptr<state> state_;
};

} // namespace joy::python
