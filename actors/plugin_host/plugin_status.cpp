// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/plugin_host/plugin_status.hpp"

namespace joy {

std::string_view to_string(plugin_state x) noexcept {
  switch (x) {
    case plugin_state::stopped:
      return "stopped";
    case plugin_state::starting:
      return "starting";
    case plugin_state::running:
      return "running";
    case plugin_state::stopping:
      return "stopping";
    case plugin_state::failed:
      return "failed";
    case plugin_state::backoff:
      return "backoff";
  }
  return "unknown";
}

plugin_state plugin_state_from(std::string_view x) noexcept {
  for (auto s :
       {plugin_state::stopped, plugin_state::starting, plugin_state::running,
        plugin_state::stopping, plugin_state::backoff})
    if (to_string(s) == x)
      return s;
  return plugin_state::failed;
}

} // namespace joy
