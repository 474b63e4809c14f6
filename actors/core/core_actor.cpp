// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/core/core_actor.hpp"

#include <map>
#include <memory>

#include <caf/typed_event_based_actor.hpp>

#include "runtime/errc.hpp"
#include "runtime/log.hpp"

namespace joy {

namespace {

/// A person answers prompts; other UI calls and event handlers are quick.
constexpr auto human_time = std::chrono::minutes{60};
constexpr auto handler_time = std::chrono::minutes{5};

struct subscription {
  std::string plugin;
  function_ref handler;
};

struct core_state {
  static inline const char* name = "core";
  std::map<std::string, service_info> services;
  std::map<std::string, std::vector<subscription>> events;
  std::optional<function_ref> ui;
  directory_listener listener;

  void tell(directory_change::kind what, service_info info) {
    if (listener)
      listener(directory_change{what, std::move(info)});
  }
};

using self_ptr = core_actor::stateful_pointer<core_state>;

bool needs_answer(const std::string& op) {
  return op == "prompt" || op == "confirm" || op == "create_window";
}

/// A UI op's first argument for the log: a text (its start), or what kind
/// of value it is, never a copy of an image.
std::string summary_of(const value& x) {
  constexpr std::size_t most = 200;
  if (auto* s = x.as_string())
    return s->size() <= most ? to_string(x)
                             : to_string(value{s->substr(0, most) + "..."});
  if (x.is(value::kind::map) || x.is(value::kind::list)
      || x.is(value::kind::ndarray) || x.is(value::kind::bytes))
    return "(a " + std::string{to_string(x.type())} + ")";
  auto text = to_string(x);
  return text.size() <= most ? text : text.substr(0, most) + "...";
}

/// What a UI op gets from no UI: a question fails, a notice is logged.
caf::expected<value> without_ui(const std::string& op,
                                const std::string& plugin,
                                const std::string& summary) {
  if (needs_answer(op))
    return make_error(errc::unavailable,
                      "plugin '" + plugin + "' asks (" + op
                        + "), but no UI is attached: open the browser core "
                          "(a node started with --bridge) or run `joy ui`");
  log(log_level::info, "ui", plugin, " ", op, ": ", summary);
  return value{};
}

} // namespace

core_actor spawn_core(caf::actor_system& sys, directory_listener listener) {
  auto init = [listener = std::move(listener)](
                self_ptr self) mutable -> core_actor::behavior_type {
    self->state.listener = std::move(listener);
    return {
      [self](register_atom, service_info& info) -> caf::result<service_info> {
        auto id = parse_service_id(info.id);
        if (!id)
          return std::move(id.error());
        info.id = full_service_id(*id);
        info.workspace
          = id->workspace.empty() ? cluster_workspace : id->workspace;
        info.client = id->client;
        info.service = id->service.empty() ? "default" : id->service;
        if (info.name.empty())
          info.name = info.service;
        self->state.services[info.id] = info;
        self->state.tell(directory_change::kind::registered, info);
        return info;
      },
      [self](unregister_atom, const std::string& text) -> caf::result<bool> {
        auto id = parse_service_id(text);
        if (!id)
          return std::move(id.error());
        service_info gone;
        gone.id = full_service_id(*id);
        if (self->state.services.erase(gone.id) == 0)
          return make_error(errc::not_found, "no service '" + text + "'");
        self->state.tell(directory_change::kind::unregistered, std::move(gone));
        return true;
      },
      [self](get_atom, const std::string& text) -> caf::result<service_info> {
        auto id = parse_service_id(text);
        if (!id)
          return std::move(id.error());
        auto i = self->state.services.find(full_service_id(*id));
        if (i == self->state.services.end())
          return make_error(errc::not_found, "no service '" + text + "'");
        return i->second;
      },
      [self](list_atom) -> std::vector<service_info> {
        std::vector<service_info> out;
        out.reserve(self->state.services.size());
        for (auto& [id, info] : self->state.services)
          out.push_back(info);
        return out;
      },
      [self](list_atom, const value& query) -> caf::result<value> {
        if (!query.is_null() && !query.is(value::kind::string)
            && !query.is(value::kind::map))
          return make_error(errc::invalid_argument,
                            "list_services takes a name, a map or nothing");
        value_list out;
        for (auto& [id, info] : self->state.services)
          if (descriptor_matches(describe_service(info), query))
            out.push_back(describe_service(info));
        return value{std::move(out)};
      },
      [self](ui_atom, std::string& op, std::string& plugin,
             value_list& args) -> caf::result<value> {
        auto& st = self->state;
        auto summary = args.empty() ? std::string{} : summary_of(args.front());
        if (!st.ui)
          return without_ui(op, plugin, summary);
        value_list call_args;
        call_args.emplace_back(op);
        call_args.emplace_back(plugin);
        for (auto& x : args)
          call_args.push_back(std::move(x));
        auto rp = self->make_response_promise<value>();
        auto ui = *st.ui;
        self
          ->request(ui.impl->target(), human_time, invoke_atom_v, ui,
                    std::move(call_args), value_map{})
          .then([rp](value& x) mutable { rp.deliver(std::move(x)); },
                [self, rp, ui, op, plugin, summary](caf::error& err) mutable {
                  // A provider that went away (`joy ui` ended, the browser
                  // closed) is detached, and the op goes as without one.
                  bool gone = code_of(err) == errc::disconnected;
                  if (gone && self->state.ui && *self->state.ui == ui) {
                    self->state.ui.reset();
                    log(log_level::info, "ui",
                        "the UI provider went away: detached");
                  }
                  if (gone) {
                    auto res = without_ui(op, plugin, summary);
                    if (res)
                      rp.deliver(std::move(*res));
                    else
                      rp.deliver(std::move(res.error()));
                    return;
                  }
                  // A notice that could not be shown is not the plugin's
                  // failure: its computation goes on.
                  if (!needs_answer(op)) {
                    log(log_level::warning, "ui", plugin, " ", op,
                        " was not shown: ", message_of(err));
                    rp.deliver(value{});
                    return;
                  }
                  rp.deliver(std::move(err));
                });
        return rp;
      },
      [self](attach_atom, function_ref& handler) -> bool {
        self->state.ui = std::move(handler);
        log(log_level::info, "ui", "a UI provider is attached");
        return true;
      },
      [self](attach_atom) -> bool { return self->state.ui.has_value(); },
      [self](emit_atom, std::string& event, value& data,
             std::string& from) -> caf::result<value> {
        auto i = self->state.events.find(event);
        if (i == self->state.events.end() || i->second.empty())
          return value{};
        auto rp = self->make_response_promise<value>();
        auto subs = i->second;
        struct gather {
          std::size_t left;
          value_list errors;
        };
        auto g = std::make_shared<gather>(gather{subs.size(), {}});
        auto done = [rp, g, event]() mutable {
          if (--g->left > 0)
            return;
          if (g->errors.empty())
            rp.deliver(value{});
          else
            rp.deliver(make_error(
              errc::plugin_error,
              std::to_string(g->errors.size()) + " handler(s) of event '"
                + event + "' failed: " + to_string(value{g->errors})));
        };
        for (auto& sub : subs) {
          value_list args{data, value{from}};
          self
            ->request(sub.handler.impl->target(), handler_time, invoke_atom_v,
                      sub.handler, std::move(args), value_map{})
            .then([done](value&) mutable { done(); },
                  [self, done, g, sub, event](caf::error& err) mutable {
                    g->errors.emplace_back(message_of(err));
                    // A handler whose plugin is gone is unsubscribed.
                    if (code_of(err) == errc::disconnected) {
                      auto& v = self->state.events[event];
                      v.erase(std::remove_if(v.begin(), v.end(),
                                             [&](const subscription& s) {
                                               return s.handler == sub.handler;
                                             }),
                              v.end());
                    }
                    done();
                  });
        }
        return rp;
      },
      [self](on_atom, std::string& event, function_ref& handler,
             std::string& plugin) -> bool {
        self->state.events[event].push_back(
          subscription{std::move(plugin), std::move(handler)});
        return true;
      },
      [self](off_atom, const std::string& event, const std::string& plugin) {
        auto i = self->state.events.find(event);
        if (i == self->state.events.end())
          return false;
        auto& v = i->second;
        auto before = v.size();
        v.erase(std::remove_if(
                  v.begin(), v.end(),
                  [&](const subscription& s) { return s.plugin == plugin; }),
                v.end());
        return v.size() != before;
      },
      [self](forget_atom, const std::string& plugin) {
        auto& st = self->state;
        for (auto i = st.services.begin(); i != st.services.end();)
          if (i->second.client == plugin)
            i = st.services.erase(i);
          else
            ++i;
        service_info gone;
        gone.client = plugin;
        st.tell(directory_change::kind::forgotten, std::move(gone));
        for (auto& [event, subs] : st.events)
          subs.erase(std::remove_if(subs.begin(), subs.end(),
                                    [&](const subscription& s) {
                                      return s.plugin == plugin;
                                    }),
                     subs.end());
        return true;
      },
    };
  };
  return sys.spawn(std::move(init));
}

} // namespace joy
