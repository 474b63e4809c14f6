// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The ImJoy `api` inside a C++ plugin, and the per-call `context` that
/// gives exported functions access to it. Every call is asynchronous and
/// returns a `joy::future` (future.hpp); all of it runs in the plugin's
/// actor.
///
/// ```
/// hello.exports.add("greet", [](joy::context& ctx, std::string who) {
///   return ctx.api().prompt("Greeting for " + who + "?", "hello")
///     .then([who](std::string word) { return word + ", " + who; });
/// });
/// ```
///
/// docs/plugins.md lists every call with its arguments and results.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/timespan.hpp>

#include "runtime/api_op.hpp"
#include "runtime/call_control.hpp"
#include "runtime/future.hpp"
#include "runtime/plugin_actor.hpp"
#include "runtime/shared_memory.hpp"
#include "runtime/value.hpp"

namespace joy {

class api;
class plugin_exports;
struct exported_function;

namespace detail {

/// What the api needs from the plugin's runtime; implemented in plugin.cpp
/// (and by tests).
class api_backend {
public:
  virtual ~api_backend();

  /// Sends one api call to the node.
  virtual future<value> request(api_op op, value_list args, value_map kwargs,
                                caf::timespan timeout)
    = 0;

  /// Calls any function value.
  virtual future<value> invoke(const function_ref& f, value_list args,
                               value_map kwargs, caf::timespan timeout)
    = 0;

  /// Makes a function value whose body runs in the plugin's actor.
  virtual function_ref
  make_callback(std::string name, std::shared_ptr<const exported_function> fn)
    = 0;

  /// Writes a line to the plugin's log on its node.
  virtual void log(int level, std::string text) = 0;

  /// Memory for large data; heap memory unless overridden.
  virtual caf::expected<writable_buffer> allocate(std::size_t bytes);

  /// The plugin's actor, for requests to actors of the plugin's own (typed
  /// actor plugins, actor_exports.hpp); null outside a plugin process.
  virtual sdk_actor::pointer self() {
    return nullptr;
  }

  virtual api& owner_api() = 0;
};

} // namespace detail

/// A service object (from `get_service`, `get_plugin`): named members,
/// its methods are function values.
class service {
public:
  service() = default;

  service(value_map object, std::shared_ptr<detail::api_backend> backend)
    : object_(std::move(object)), backend_(std::move(backend)) {
    // nop
  }

  /// Calls a method. Errors: not_found (no such method), and the method's.
  future<value> call(const std::string& method, value_list args = {},
                     value_map kwargs = {}) const;

  /// The names of its methods.
  std::vector<std::string> methods() const;

  /// Every member, methods included.
  const value_map& object() const noexcept {
    return object_;
  }

private:
  value_map object_;
  std::shared_ptr<detail::api_backend> backend_;
};

/// What `get_service` returns: the service object, fetched from the node
/// only when someone waits for it (`then`, `when_all`, ...), and `call`,
/// which calls one of its methods without waiting for the object: the node
/// finds the service and calls the method, one round trip in all (ImJoy's
/// `get_service(id).f(x)`; DESIGN §3).
///
/// ```
/// return ctx.api().get_service("public/tools:math").call("add", {x, y});
/// ```
class service_future : public future<service> {
public:
  service_future(future<service> fetch, std::string id,
                 std::shared_ptr<detail::api_backend> backend)
    : future<service>(std::move(fetch)),
      id_(std::move(id)),
      backend_(std::move(backend)) {
    // nop
  }

  /// Calls `method` of the service. Errors: those of `get_service` and of
  /// `service::call`.
  future<value> call(std::string method, value_list args = {},
                     value_map kwargs = {}) const;

private:
  std::string id_;
  std::shared_ptr<detail::api_backend> backend_;
};

/// ImJoy's `api`, as a C++ plugin sees it.
class api {
public:
  explicit api(std::shared_ptr<detail::api_backend> backend)
    : backend_(std::move(backend)) {
    // nop
  }

  /// Memory for large data (see `context::allocate`).
  caf::expected<writable_buffer> allocate(std::size_t bytes);

  /// The plugin's actor (see `detail::api_backend::self`).
  sdk_actor::pointer self() {
    return backend_->self();
  }

  // -- UI (routed by the core to the UI provider) --------------------------

  future<value> alert(std::string message);
  /// Resolves to the answer; fails with `cancelled` when the user cancels.
  future<std::string> prompt(std::string question,
                             std::string default_answer = {});
  future<bool> confirm(std::string question);
  future<value> show_message(std::string message, double seconds = 0);
  future<value> show_progress(double progress);
  future<value> show_status(std::string status);
  /// Opens a window in the browser core (ImJoy's `createWindow`):
  /// `config` has `type` (a window plugin's name), and optionally `name`,
  /// `data` and `config` for its `run`. Resolves to the window: its
  /// plugin's exported functions plus `run`, `close` and `id`. Fails with
  /// unimplemented where the UI is a terminal.
  future<service> create_window(value_map config);

  // -- services and plugins ------------------------------------------------

  /// Registers a service object (a map with "name", optionally "id" and
  /// "type", and function members); resolves to its full id.
  future<std::string> register_service(value_map service);
  future<value> unregister_service(std::string id);
  /// The service `id` names (any id form: `workspace/client:service`,
  /// `client:service`, ...); its `call` calls a method in one round trip.
  /// Nothing is sent until the future is used: the lookup happens then.
  service_future get_service(std::string id);
  /// Descriptors (id, name, type, client, node, methods) of the services
  /// matching `query` (null, a name, or a map of exact matches).
  future<value> list_services(value query = {});
  /// A plugin's default service: its exported functions.
  future<service> get_plugin(std::string name);
  /// `get_plugin(plugin)` then `method(args...)`, in one round trip.
  future<value> call(std::string plugin, std::string method,
                     value_list args = {}, value_map kwargs = {});

  // -- events --------------------------------------------------------------

  /// Runs every handler subscribed to `event` with (data, emitter); resolves
  /// when all returned.
  future<value> emit(std::string event, value data = {});
  /// Subscribes `handler(data, emitter)`.
  future<value> on(std::string event, function_ref handler);
  future<value> off(std::string event);

  // -- settings (persisted per plugin by the node)
  // -----------------------------

  /// The setting, or null; "_<field>" reads the plugin's manifest.
  future<value> get_config(std::string key);
  /// Stores a setting; null deletes it.
  future<value> set_config(std::string key, value x);

  // -- log -------------------------------------------------------------------

  void log(std::string text);
  void error(std::string text);
  /// The plugin's own progress, 0..1.
  future<value> progress(double progress);

  // -- functions
  // ---------------------------------------------------------------

  /// Makes a function value from `fn` (typed like an export: it may take a
  /// leading `joy::context&` and return a future); other plugins can call
  /// it for as long as someone holds it.
  template <class F>
  function_ref callback(std::string name, F fn,
                        std::vector<std::string> params = {});

  /// Calls any function value.
  future<value> call_function(const function_ref& f, value_list args = {},
                              value_map kwargs = {});

  /// Deadline of calls that take no person's answer (default 5 minutes).
  caf::timespan timeout = std::chrono::minutes{5};

private:
  future<value> request(api_op op, value_list args, value_map kwargs = {});

  std::shared_ptr<detail::api_backend> backend_;
};

/// What an exported function may take as its first parameter: its call's
/// view of the plugin — the api, and the call's cancellation and progress.
class context {
public:
  explicit context(joy::api& a, std::shared_ptr<call_control> control = nullptr)
    : api_(&a), control_(std::move(control)) {
    // nop
  }

  joy::api& api() noexcept {
    return *api_;
  }

  /// Memory for a large argument or result: a block of the plugin's
  /// shared-memory pool where its node allows it (else the heap), so that
  /// sending it to a plugin on this host copies nothing. Fill it, then
  /// `freeze()` it into the value's buffer.
  caf::expected<writable_buffer> allocate(std::size_t bytes);

  /// True once the caller gave up (deadline, Ctrl-C, its process gone). A
  /// long function should check it and return early; safe to call while
  /// the function blocks the actor.
  bool cancelled() const noexcept {
    return control_ && control_->cancelled();
  }

  /// Tells the caller how far the call is (0..1) and renews the caller's
  /// deadline: a long call that reports progress does not time out.
  void progress(double fraction, std::string message = {}) const {
    if (control_)
      control_->progress(fraction, std::move(message));
  }

private:
  joy::api* api_;
  std::shared_ptr<call_control> control_;
};

} // namespace joy

#include "runtime/plugin_exports.hpp"

template <class F>
joy::function_ref joy::api::callback(std::string name, F fn,
                                     std::vector<std::string> params) {
  plugin_exports tmp;
  tmp.add(name, std::move(fn), std::move(params));
  return backend_->make_callback(
    name, std::make_shared<const exported_function>(*tmp.find(name)));
}
