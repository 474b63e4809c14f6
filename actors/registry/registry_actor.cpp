// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/registry/registry_actor.hpp"

#include <memory>
#include <utility>

#include <caf/result.hpp>
#include <caf/spawn_options.hpp>
#include <caf/typed_event_based_actor.hpp>

namespace joy {

namespace {

template <class T>
caf::result<T> to_result(caf::expected<T>&& x) {
  if (!x)
    return std::move(x.error());
  return std::move(*x);
}

registry_actor::behavior_type
registry_behavior(std::shared_ptr<plugin_store> store) {
  return {
    [store](put_atom, const plugin_record& rec) -> caf::result<plugin_record> {
      if (auto err = store->put(rec))
        return err;
      return rec;
    },
    [store](get_atom, const std::string& name) -> caf::result<plugin_record> {
      return to_result(store->get(name));
    },
    [store](list_atom) -> caf::result<std::vector<plugin_record>> {
      return to_result(store->list());
    },
    [store](remove_atom, const std::string& name) -> caf::result<bool> {
      if (auto err = store->remove(name))
        return err;
      return true;
    },
    [store](meta_atom, const std::string& key) -> caf::result<std::string> {
      return to_result(store->meta(key));
    },
    [store](meta_atom, const std::string& key,
            const std::string& value) -> caf::result<bool> {
      if (auto err = store->set_meta(key, value))
        return err;
      return true;
    },
    [store](list_atom, const std::string& name)
      -> caf::result<std::vector<plugin_record>> {
      return to_result(store->versions(name));
    },
    [store](rollback_atom,
            const std::string& name) -> caf::result<plugin_record> {
      return to_result(store->rollback(name));
    },
    [store](config_atom, const std::string& plugin,
            const std::string& key) -> caf::result<std::string> {
      return to_result(store->config(plugin, key));
    },
    [store](config_atom, const std::string& plugin, const std::string& key,
            const std::string& json, bool erase) -> caf::result<bool> {
      auto value = erase ? std::nullopt : std::optional<std::string>{json};
      if (auto err = store->set_config(plugin, key, value))
        return err;
      return true;
    },
  };
}

} // namespace

registry_actor spawn_registry(caf::actor_system& sys, plugin_store store) {
  // A shared_ptr because behaviors must be copyable; the store itself is not.
  auto shared = std::make_shared<plugin_store>(std::move(store));
  return sys.spawn<caf::detached>(registry_behavior, std::move(shared));
}

} // namespace joy
