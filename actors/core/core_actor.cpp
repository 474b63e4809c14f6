// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/core/core_actor.hpp"

#include <map>

#include <caf/typed_event_based_actor.hpp>

#include "runtime/errc.hpp"

namespace joy {

namespace {

/// Native plugins live in the cluster workspace.
constexpr const char* cluster_workspace = "public";

struct core_state {
  static inline const char* name = "core";
  std::map<std::string, service_info> services;
};

std::string full_id(const service_id& id) {
  return (id.workspace.empty() ? std::string{cluster_workspace} : id.workspace)
         + "/" + id.client + ":"
         + (id.service.empty() ? "default" : id.service);
}

} // namespace

core_actor spawn_core(caf::actor_system& sys) {
  return sys.spawn([](core_actor::stateful_pointer<core_state> self)
                     -> core_actor::behavior_type {
    return {
      [self](register_atom, service_info& info) -> caf::result<service_info> {
        auto id = parse_service_id(info.id);
        if (!id)
          return std::move(id.error());
        info.id = full_id(*id);
        info.workspace
          = id->workspace.empty() ? cluster_workspace : id->workspace;
        info.client = id->client;
        info.service = id->service.empty() ? "default" : id->service;
        self->state.services[info.id] = info;
        return info;
      },
      [self](unregister_atom, const std::string& text) -> caf::result<bool> {
        auto id = parse_service_id(text);
        if (!id)
          return std::move(id.error());
        if (self->state.services.erase(full_id(*id)) == 0)
          return make_error(errc::not_found, "no service '" + text + "'");
        return true;
      },
      [self](get_atom, const std::string& text) -> caf::result<service_info> {
        auto id = parse_service_id(text);
        if (!id)
          return std::move(id.error());
        auto i = self->state.services.find(full_id(*id));
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
    };
  });
}

} // namespace joy
