// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/plugin_host/kj_routes.hpp"

namespace joy {

void running_plugins::add(const std::string& name, plugin_link* link) {
  links_[name] = link;
}

void running_plugins::remove(const std::string& name, const plugin_link* link) {
  auto i = links_.find(name);
  if (i != links_.end() && i->second == link)
    links_.erase(i);
}

plugin_link* running_plugins::find(const std::string& name) const {
  auto i = links_.find(name);
  return i != links_.end() ? i->second : nullptr;
}

} // namespace joy
