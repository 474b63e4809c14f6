// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/plugin_host/remote_plugins.hpp"

#include <string>

#include <kj/timer.h>

#include "runtime/errc.hpp"

namespace joy {

void remote_plugins::serve(caller fn) {
  call_ = std::move(fn);
  if (!call_)
    plugins_.clear();
}

bool remote_plugins::remember(const std::string& plugin, const location& where,
                              kj::TimePoint now) {
  if (!call_ || hosted_.count(plugin) > 0)
    return false;
  auto until = now + ttl;
  auto i = plugins_.find(plugin);
  if (i == plugins_.end()) {
    plugins_.emplace(plugin, entry{where, until});
    return true;
  }
  auto moved = i->second.where.node_id != where.node_id;
  i->second = entry{where, until};
  return moved;
}

void remote_plugins::hosted(const std::string& plugin) {
  hosted_.insert(plugin);
  plugins_.erase(plugin);
}

void remote_plugins::not_hosted(const std::string& plugin) {
  hosted_.erase(plugin);
}

void remote_plugins::forget_node(const std::string& node_id) {
  for (auto i = plugins_.begin(); i != plugins_.end();)
    if (i->second.where.node_id == node_id)
      i = plugins_.erase(i);
    else
      ++i;
}

std::optional<location> remote_plugins::find(const std::string& plugin,
                                             kj::TimePoint now) {
  auto i = plugins_.find(plugin);
  if (i == plugins_.end())
    return std::nullopt;
  if (now >= i->second.until) {
    plugins_.erase(i);
    return std::nullopt;
  }
  return i->second.where;
}

kj::Promise<caf::expected<value>>
remote_plugins::call(const location& where, std::string plugin,
                     call_request req, kj::Timer& timer, kj::Duration bound) {
  if (!call_)
    return caf::expected<value>{
      make_error(errc::unavailable, "this node has no links to other nodes")};
  auto what = "plugin '" + plugin + "' on node " + where.node_id;
  return timer
    .timeoutAfter(bound, call_(where, std::move(plugin), std::move(req)))
    .catch_([what, bound](kj::Exception&&) -> caf::expected<value> {
      return make_error(errc::timeout, what + " did not answer within "
                                         + std::to_string(bound / kj::SECONDS)
                                         + " s");
    });
}

} // namespace joy
