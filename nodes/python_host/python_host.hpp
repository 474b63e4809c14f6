// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// `python_host`: what joy-python-host runs between the node and a Python
/// plugin. Two threads and no actors:
///
/// * the **kj thread** (`kj_thread`) holds the node link and serves the
///   plugin's `Plugin` capability and its function values; it never takes
///   the GIL;
/// * the **Python thread** (the process's main thread) runs the asyncio
///   loop, which reads the host's `py_inbox`.
///
/// A call from the node is read on the kj thread, posted to the inbox,
/// converted to Python and run by `imjoy._invoke` (a coroutine on the loop,
/// a plain function on a worker thread); its result is converted back on
/// the Python thread and posted to the kj thread, which answers the call.
/// The plugin's api calls and its calls of remote functions go the other
/// way round. Dropping a call on the wire cancels its asyncio task.
///
/// (`kj_thread` needs a `caf::actor_system` for its gateway; the host makes
/// one with a single worker and runs no actor in it.)
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include <pybind11/pybind11.h>

#include "nodes/python_host/py_inbox.hpp"
#include "runtime/kj_thread.hpp"
#include "runtime/shared_memory.hpp"
#include "runtime/value.hpp"
#include "schema/plugin.capnp.h"

namespace joy::python {

/// One exported function: the callable and its parameter names.
struct exported {
  py_ref fn;
  std::vector<std::string> params;
  bool params_known = false;
};

class python_host {
public:
  /// `name`: the plugin's name; `kj`: the process's kj thread; `link`: the
  /// resource id connect_to_node keeps the node link under.
  python_host(std::string name, kj_thread& kj, uint64_t link);

  python_host(const python_host&) = delete;
  python_host& operator=(const python_host&) = delete;

  py_inbox& inbox() noexcept {
    return inbox_;
  }

  kj_thread& kj() noexcept {
    return kj_;
  }

  const std::string& name() const noexcept {
    return name_;
  }

  /// Where `imjoy.shared_array` takes memory from; null: the heap (the
  /// node streams large data).
  void set_pool(std::shared_ptr<shm_pool> pool) {
    pool_ = std::move(pool);
  }

  /// `bytes` of memory that go to other plugins without a copy.
  caf::expected<writable_buffer> allocate(std::size_t bytes) {
    return pool_ ? pool_->allocate(bytes) : writable_buffer::on_heap(bytes);
  }

  // -- Python thread (GIL held) -----------------------------------------------

  /// The `imjoy` module, once loaded.
  void set_module(pybind11::module_ mod) {
    module_ = std::move(mod);
  }

  pybind11::module_& module() {
    return module_;
  }

  /// What `api.export` published.
  void set_exports(std::map<std::string, exported> exports) {
    exports_ = std::move(exports);
    exported_ = true;
  }

  bool has_exports() const noexcept {
    return exported_;
  }

  /// Lets go of every Python object the host holds; call before the
  /// interpreter finalizes (GIL held, kj thread stopped). Tasks still in
  /// the inbox then run without touching Python.
  void drop_python();

  /// True once the host shuts down: tasks leave Python alone.
  bool closing() const noexcept {
    return closing_;
  }

  /// Sends api op `op` to the node; `done(ok, value)` runs on this thread.
  void request(uint16_t op, value_list args, value_map kwargs,
               pybind11::object done);

  /// Calls the remote function `f`; `done(ok, value)` as for request.
  void call_remote(const function_ref& f, value_list args, value_map kwargs,
                   pybind11::object done);

  /// Writes a line to the node's log for this plugin.
  void log(int level, std::string text);

  // -- kj thread --------------------------------------------------------------

  /// The plugin's `Plugin` capability.
  kj::Own<wire::Plugin::Server> make_server(kj_context& ctx);

  /// Runs `fn(*args, **kwargs)` in Python; resolves with its result, or
  /// the Python error. Dropping the promise cancels the call.
  kj::Promise<caf::expected<value>> invoke(py_ref fn, value_list args,
                                           value_map kwargs);

  /// The exported function `method` (nullptr when none); the map is fixed
  /// before the node link opens, so the kj thread may read it.
  const exported* find_export(const std::string& method) const;

  /// The plugin's methods as `describe` answers.
  value describe() const;

  std::string known_methods() const;

private:
  /// Python thread: starts call `id` (see invoke).
  void start_call(uint64_t id, py_ref fn, value_list args, value_map kwargs);

  /// kj thread: settles call `id`.
  void finish_call(uint64_t id, caf::expected<value> result);

  /// Python thread: hands `result` to a Python `done(ok, value)`.
  void deliver(const py_ref& done, caf::expected<value> result);

  /// kj thread: posts the outcome of `p` to `done` on the Python thread.
  void answer_later(kj_context& ctx, kj::Promise<caf::expected<value>> p,
                    py_ref done);

  std::string name_;
  kj_thread& kj_;
  uint64_t link_;
  py_inbox inbox_;
  std::shared_ptr<shm_pool> pool_;
  pybind11::module_ module_;
  std::map<std::string, exported> exports_;
  bool exported_ = false;
  bool closing_ = false;
  // kj thread only.
  uint64_t next_call_ = 0;
  std::unordered_map<uint64_t,
                     kj::Own<kj::PromiseFulfiller<caf::expected<value>>>>
    calls_;
};

/// Registers the embedded module `_joy` (the host's half of `imjoy`).
/// `host` must outlive the interpreter's use of it.
void bind_host(python_host& host);

/// Loads imjoy.py (built into the executable) as the modules `imjoy` and
/// `imjoy_rpc`. GIL held.
pybind11::module_ load_imjoy_module();

// -- values (python_values.cpp) -----------------------------------------------

/// Converts a value to Python. Maps become `imjoy.dotdict`, ndarrays
/// read-only numpy arrays over the same memory, functions awaitable
/// callables. GIL held.
pybind11::object to_python(python_host& host, const value& x);

/// Converts a Python object to a value: None, bool, int, float, str,
/// bytes/bytearray/memoryview, list/tuple, dict with str keys, datetime,
/// numpy arrays and scalars (without copying a contiguous little-endian
/// array), and callables (as function values). Errors: invalid_argument
/// naming the unsupported type, too_large past max_value_depth. GIL held.
caf::expected<value> from_python(python_host& host, pybind11::handle x);

/// Converts a whole argument list / keyword map.
caf::expected<value_list> list_from_python(python_host& host,
                                           pybind11::handle xs);
caf::expected<value_map> map_from_python(python_host& host,
                                         pybind11::handle xs);

/// A writable numpy array of `dtype` and `shape` in memory that is sent
/// without a copy (imjoy.shared_array). GIL held.
pybind11::object shared_array(python_host& host, const std::string& dtype,
                              const std::vector<uint64_t>& shape);

} // namespace joy::python
