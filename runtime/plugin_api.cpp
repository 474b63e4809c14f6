// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "runtime/plugin_api.hpp"

#include "runtime/log.hpp"

namespace joy {

namespace detail {

api_backend::~api_backend() {
  // nop
}

caf::expected<writable_buffer> api_backend::allocate(std::size_t bytes) {
  return writable_buffer::on_heap(bytes);
}

} // namespace detail

caf::expected<writable_buffer> api::allocate(std::size_t bytes) {
  return backend_->allocate(bytes);
}

caf::expected<writable_buffer> context::allocate(std::size_t bytes) {
  return api_->allocate(bytes);
}

namespace {

/// Prompts wait for a person.
constexpr caf::timespan human_time = std::chrono::minutes{60};

template <class T>
future<T> typed(future<value> x, const char* what) {
  return x.then([what](value v) -> caf::expected<T> {
    T out{};
    if (auto err = from_value(v, out))
      return make_error(errc::protocol_error, std::string{what} + ": expected "
                                                + err->expected + ", got "
                                                + err->got);
    return out;
  });
}

/// The service object an api call answered with.
future<service> as_service(future<value> x,
                           std::shared_ptr<detail::api_backend> backend,
                           const char* what) {
  return x.then([backend, what](value v) -> caf::expected<service> {
    auto* m = v.as_map();
    if (m == nullptr)
      return make_error(errc::protocol_error,
                        std::string{what} + ": expected a service object");
    return service{std::move(*m), backend};
  });
}

} // namespace

// -- service
// ------------------------------------------------------------------------

future<value> service::call(const std::string& method, value_list args,
                            value_map kwargs) const {
  auto f = method_of(object_, method);
  if (!f)
    return std::move(f.error());
  if (!backend_)
    return make_error(errc::unavailable, "the service is not connected");
  return backend_->invoke(*f, std::move(args), std::move(kwargs),
                          backend_->owner_api().timeout);
}

future<value> service_future::call(std::string method, value_list args,
                                   value_map kwargs) const {
  // The method's arguments as one list: the node hands them on unread. A
  // node older than this op answers unimplemented; fetching the object and
  // calling again instead could run the method twice.
  value_list all{value{id_}, value{std::move(method)}, value{std::move(args)}};
  return backend_->request(api_op::call_service, std::move(all),
                           std::move(kwargs), backend_->owner_api().timeout);
}

std::vector<std::string> service::methods() const {
  std::vector<std::string> out;
  for (auto& [k, v] : object_)
    if (v.as_function() != nullptr)
      out.push_back(k);
  return out;
}

// -- api
// ----------------------------------------------------------------------------

future<value> api::request(api_op op, value_list args, value_map kwargs) {
  auto deadline
    = op == api_op::prompt || op == api_op::confirm || op == api_op::alert
        ? human_time
        : timeout;
  return backend_->request(op, std::move(args), std::move(kwargs), deadline);
}

future<value> api::alert(std::string message) {
  return request(api_op::alert, {value{std::move(message)}});
}

future<std::string> api::prompt(std::string question,
                                std::string default_answer) {
  return typed<std::string>(
    request(api_op::prompt,
            {value{std::move(question)}, value{std::move(default_answer)}}),
    "prompt");
}

future<bool> api::confirm(std::string question) {
  return typed<bool>(request(api_op::confirm, {value{std::move(question)}}),
                     "confirm");
}

future<value> api::show_message(std::string message, double seconds) {
  return request(api_op::show_message,
                 {value{std::move(message)}, value{seconds}});
}

future<value> api::show_progress(double progress) {
  return request(api_op::show_progress, {value{progress}});
}

future<value> api::show_status(std::string status) {
  return request(api_op::show_status, {value{std::move(status)}});
}

future<service> api::create_window(value_map config) {
  return as_service(request(api_op::create_window, {value{std::move(config)}}),
                    backend_, "create_window");
}

future<std::string> api::register_service(value_map service) {
  return typed<std::string>(
    request(api_op::register_service, {value{std::move(service)}}),
    "register_service");
}

future<value> api::unregister_service(std::string id) {
  return request(api_op::unregister_service, {value{std::move(id)}});
}

service_future api::get_service(std::string id) {
  auto backend = backend_;
  auto fetch = future<service>::deferred([backend, id] {
    return as_service(backend->request(api_op::get_service, {value{id}}, {},
                                       backend->owner_api().timeout),
                      backend, "get_service");
  });
  return service_future{std::move(fetch), std::move(id), backend_};
}

future<value> api::list_services(value query) {
  return request(api_op::list_services, {std::move(query)});
}

future<service> api::get_plugin(std::string name) {
  return as_service(request(api_op::get_plugin, {value{std::move(name)}}),
                    backend_, "get_plugin");
}

future<value> api::call(std::string plugin, std::string method, value_list args,
                        value_map kwargs) {
  value_list all;
  all.reserve(args.size() + 2);
  all.emplace_back(std::move(plugin));
  all.emplace_back(std::move(method));
  for (auto& x : args)
    all.push_back(std::move(x));
  return request(api_op::call, std::move(all), std::move(kwargs));
}

future<value> api::emit(std::string event, value data) {
  return request(api_op::emit, {value{std::move(event)}, std::move(data)});
}

future<value> api::on(std::string event, function_ref handler) {
  return request(api_op::on,
                 {value{std::move(event)}, value{std::move(handler)}});
}

future<value> api::off(std::string event) {
  return request(api_op::off, {value{std::move(event)}});
}

future<value> api::get_config(std::string key) {
  return request(api_op::get_config, {value{std::move(key)}});
}

future<value> api::set_config(std::string key, value x) {
  return request(api_op::set_config, {value{std::move(key)}, std::move(x)});
}

void api::log(std::string text) {
  backend_->log(static_cast<int>(log_level::info), std::move(text));
}

void api::error(std::string text) {
  backend_->log(static_cast<int>(log_level::error), std::move(text));
}

future<value> api::progress(double progress) {
  return request(api_op::progress, {value{progress}});
}

future<value> api::call_function(const function_ref& f, value_list args,
                                 value_map kwargs) {
  return backend_->invoke(f, std::move(args), std::move(kwargs), timeout);
}

} // namespace joy
