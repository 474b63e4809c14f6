// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// demo: the ImJoy api from a C++ plugin — UI calls, settings, services,
// callbacks both ways, calls to other plugins, parallel calls. Every
// function that uses the api takes a `joy::context&` first and returns a
// `joy::future`, so the plugin's actor is free while it waits.
//
//   joy ui &                                   # answers prompts
//   joy call demo greet '"Ada"'                # asks for a greeting word
//   joy call demo remember '"color"' '"teal"'  # settings survive restarts
//   joy call demo recall '"color"'
//   joy call demo loop_through '"demo-2"' 1000 # callbacks, plugin to plugin
//   joy call demo both                         # two calls in parallel
//   joy call demo open_viewer '"hi"'           # a window in the browser core

// --(doc-demo-begin)--
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>

#include "runtime/plugin.hpp"

namespace {

/// Counts the callbacks this plugin made that someone still holds.
auto live = std::make_shared<std::atomic<int64_t>>(0);

struct live_token {
  live_token() {
    ++*live;
  }
  ~live_token() {
    --*live;
  }
};

/// Calls `callback(i)` for every i in [from, n) and adds up the results,
/// a window of calls at a time: `Promise.all` over a million calls at once
/// would hold a million calls' worth of memory in both plugins.
joy::future<int64_t> sum_calls(joy::api api, joy::function_ref callback,
                               int64_t from, int64_t n, int64_t sum) {
  constexpr int64_t window = 1024;
  if (from >= n)
    return joy::future<int64_t>{sum};
  auto to = std::min(n, from + window);
  std::vector<joy::future<joy::value>> calls;
  for (auto i = from; i < to; ++i)
    calls.push_back(api.call_function(callback, {joy::value{i}}));
  return joy::when_all(std::move(calls))
    .then([api, callback, to, n,
           sum](std::vector<joy::value> xs) mutable -> joy::future<int64_t> {
      for (auto& x : xs) {
        if (x.as_int64() == nullptr)
          return joy::future<int64_t>{joy::make_error(
            joy::errc::invalid_argument, "the callback must return integers")};
        sum += *x.as_int64();
      }
      return sum_calls(api, callback, to, n, sum);
    });
}

/// Reports steps i..n of n as the plugin's progress bar in the UI, one
/// after the other.
joy::future<int64_t> report_steps(joy::api api, int64_t i, int64_t n) {
  if (i > n)
    return joy::future<int64_t>{n};
  return api.show_progress(static_cast<double>(i) / static_cast<double>(n))
    .then(
      [api, i, n](joy::value) mutable { return report_steps(api, i + 1, n); });
}

} // namespace

int main(int argc, char** argv) {
  joy::plugin demo{"demo"};

  // A prompt through the UI provider (`joy ui`, later the browser).
  demo.exports.add(
    "greet",
    [](joy::context& ctx, std::string who) {
      return ctx.api()
        .prompt("Greeting for " + who + "?", "Hello")
        .then([who](std::string word) { return word + ", " + who + "!"; });
    },
    {"who"});

  // Opens the `viewer` window plugin in the browser core with a text, then
  // asks the window what it shows: a call into the browser and back.
  demo.exports.add(
    "open_viewer",
    [](joy::context& ctx, std::string text) {
      joy::value_map config{
        {"type", joy::value{"viewer"}},
        {"name", joy::value{"demo's viewer"}},
        {"data", joy::value{joy::value_map{{"text", joy::value{text}}}}}};
      return ctx.api()
        .create_window(std::move(config))
        .then([](joy::service window) { return window.call("shown"); });
    },
    {"text"});

  // Settings the node keeps for this plugin, across restarts.
  demo.exports.add("remember",
                   [](joy::context& ctx, std::string key, joy::value x) {
                     return ctx.api().set_config(key, std::move(x));
                   },
                   {"key", "value"});
  demo.exports.add("recall",
                   [](joy::context& ctx, std::string key) {
                     return ctx.api().get_config(key);
                   },
                   {"key"});

  // Calls `callback(i)` for i in [0, n) and sums the results.
  demo.exports.add(
    "count_with",
    [](joy::context& ctx, joy::function_ref callback, int64_t n) {
      return sum_calls(ctx.api(), callback, 0, n, 0);
    },
    {"callback", "n"});

  // Hands a callback of its own to `other.count_with`: the other plugin
  // calls back here n times.
  demo.exports.add(
    "loop_through",
    [](joy::context& ctx, std::string other, int64_t n) {
      auto token = std::make_shared<live_token>();
      auto twice = ctx.api().callback(
        "twice", [token](int64_t i) { return 2 * i; }, {"i"});
      return ctx.api().get_plugin(other).then([twice, n](joy::service s) {
        return s.call("count_with", {joy::value{twice}, joy::value{n}});
      });
    },
    {"other", "n"});

  // Returns a function value: a counter the caller can call again.
  demo.exports.add("make_counter", [](joy::context& ctx) {
    auto token = std::make_shared<live_token>();
    auto count = std::make_shared<int64_t>(0);
    return ctx.api().callback("next", [token, count]() { return ++*count; });
  });

  // Keeps a function someone passed, to call later (and to test release).
  auto kept = std::make_shared<std::vector<joy::function_ref>>();
  demo.exports.add(
    "keep", [kept](joy::function_ref f) { kept->push_back(std::move(f)); },
    {"function"});
  demo.exports.add("drop_kept", [kept]() { kept->clear(); });
  demo.exports.add("call_kept", [kept](joy::context& ctx) {
    std::vector<joy::future<joy::value>> calls;
    for (auto& f : *kept)
      calls.push_back(ctx.api().call_function(f));
    return joy::when_all(std::move(calls)).then([](std::vector<joy::value> xs) {
      return joy::value{std::move(xs)};
    });
  });
  // Gives one of its counters to another plugin to keep.
  demo.exports.add(
    "give_counter_to",
    [](joy::context& ctx, std::string other) {
      auto token = std::make_shared<live_token>();
      auto count = std::make_shared<int64_t>(0);
      auto counter
        = ctx.api().callback("next", [token, count]() { return ++*count; });
      return ctx.api().call(other, "keep", {joy::value{counter}});
    },
    {"other"});
  demo.exports.add("live_callbacks", []() { return live->load(); });

  // Registers a service other plugins find by name.
  demo.exports.add("offer", [](joy::context& ctx, std::string name) {
    auto token = std::make_shared<live_token>();
    joy::value_map service;
    service.insert("name", joy::value{name});
    service.insert("double",
                   joy::value{ctx.api().callback(
                     "double", [token](double x) { return 2 * x; }, {"x"})});
    return ctx.api().register_service(std::move(service));
  });
  demo.exports.add("use",
                   [](joy::context& ctx, std::string id, double x) {
                     return ctx.api().get_service(id).then([x](joy::service s) {
                       return s.call("double", {joy::value{x}});
                     });
                   },
                   {"id", "x"});

  // The same without waiting for the service object: one round trip.
  demo.exports.add(
    "use_at_once",
    [](joy::context& ctx, std::string id, std::string method, double x) {
      return ctx.api().get_service(id).call(method, {joy::value{x}});
    },
    {"id", "method", "x"});
  demo.exports.add("withdraw", [](joy::context& ctx, std::string id) {
    return ctx.api().unregister_service(id);
  });
  // Api calls keep their order: the service is gone for the call that
  // follows its withdrawal, even unawaited.
  demo.exports.add("withdraw_then_use",
                   [](joy::context& ctx, std::string id) {
                     ctx.api().unregister_service(id);
                     return ctx.api().get_service(id).call("double",
                                                           {joy::value{1.0}});
                   },
                   {"id"});

  // Two calls to another plugin in parallel (ImJoy's Promise.all).
  demo.exports.add("both", [](joy::context& ctx) {
    std::vector<joy::future<joy::value>> calls{
      ctx.api().call("hello", "add", {joy::value{2}, joy::value{3}}),
      ctx.api().call("hello", "echo", {joy::value{"hi"}})};
    return joy::when_all(std::move(calls)).then([](std::vector<joy::value> xs) {
      return joy::value{std::move(xs)};
    });
  });

  // Events: subscribe a handler, emit, and read what it saw.
  auto seen = std::make_shared<joy::value_list>();
  demo.exports.add(
    "listen",
    [seen](joy::context& ctx, std::string event) {
      return ctx.api().on(
        event, ctx.api().callback(
                 "on_event",
                 [seen](joy::value data, std::string from) {
                   seen->push_back(joy::value{joy::value_map{
                     {"data", std::move(data)}, {"from", joy::value{from}}}});
                 },
                 {"data", "from"}));
    },
    {"event"});
  demo.exports.add("emit",
                   [](joy::context& ctx, std::string event, joy::value data) {
                     return ctx.api().emit(event, std::move(data));
                   },
                   {"event", "data"});
  demo.exports.add("seen", [seen]() { return joy::value{*seen}; });

  // Sends n calls at once and counts how they ended, by error code.
  demo.exports.add(
    "flood",
    [](joy::context& ctx, std::string plugin, std::string method,
       joy::value_list args, int64_t n) {
      auto outcomes = std::make_shared<joy::value_map>();
      std::vector<joy::future<joy::value>> calls;
      for (int64_t i = 0; i < n; ++i)
        calls.push_back(
          ctx.api()
            .call(plugin, method, args)
            .then([outcomes](joy::value) { return joy::value{"ok"}; })
            .recover([](caf::error err) {
              return joy::value{std::string{joy::to_string(joy::code_of(err))}};
            }));
      return joy::when_all(std::move(calls))
        .then([](std::vector<joy::value> xs) {
          joy::value_map counts;
          for (auto& x : xs) {
            auto& key = *x.as_string();
            auto* have = counts.find(key);
            counts.insert(key, joy::value{(have ? *have->as_int64() : 0) + 1});
          }
          return joy::value{std::move(counts)};
        });
    },
    {"plugin", "method", "args", "n"});

  // Writes n lines to stderr (the plugin's log).
  demo.exports.add("chatter",
                   [](int64_t n) {
                     for (int64_t i = 0; i < n; ++i)
                       std::fprintf(stderr, "chatter line %lld of %lld\n",
                                    static_cast<long long>(i + 1),
                                    static_cast<long long>(n));
                     std::fflush(stderr);
                     return n;
                   },
                   {"n"});

  // Works in n steps and shows how far it is in the UI's progress bar.
  demo.exports.add(
    "steps",
    [](joy::context& ctx, int64_t n) { return report_steps(ctx.api(), 1, n); },
    {"n"});

  demo.exports.add("notify", [](joy::context& ctx, std::string text) {
    ctx.api().log("notifying: " + text);
    return ctx.api().alert(text);
  });

  demo.on_setup([](joy::context& ctx) { ctx.api().log("demo is set up"); });
  return joy::run_plugin(argc, argv, std::move(demo));
}
// --(doc-demo-end)--
