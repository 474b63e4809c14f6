// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/core/service_snapshot.hpp"

namespace joy {

void service_snapshot::apply(const directory_change& change) {
  auto& svc = change.service;
  switch (change.what) {
    case directory_change::kind::registered:
      services_[svc.id] = entry{svc.client, svc.object};
      break;
    case directory_change::kind::unregistered:
      services_.erase(svc.id);
      break;
    case directory_change::kind::forgotten:
      for (auto i = services_.begin(); i != services_.end();)
        if (i->second.client == svc.client)
          i = services_.erase(i);
        else
          ++i;
      break;
  }
}

const value* service_snapshot::find(std::string_view id) const {
  auto parsed = parse_service_id(id);
  if (!parsed || parsed->service.empty() || parsed->service == "default")
    return nullptr;
  auto i = services_.find(full_service_id(*parsed));
  return i != services_.end() ? &i->second.object : nullptr;
}

directory_listener mirror_on(kj_thread& kj,
                             std::shared_ptr<service_snapshot> snapshot) {
  return [&kj, snapshot](const directory_change& change) {
    kj.post([snapshot, change](kj_context&) { snapshot->apply(change); });
  };
}

} // namespace joy
