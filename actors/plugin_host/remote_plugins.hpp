// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// `remote_plugins`: the plugins of other nodes that calls from this node
/// reached, by name, kept on the kj thread. A plugin's `api.call` of one
/// (or `joy call` on this node) goes from the kj thread straight to the
/// link to its node, without the node actor: the hop docs/benchmarks.md
/// named for B6. The node actor still locates a plugin the first time,
/// with the directory; the links to other nodes list it once a call has
/// reached it there (`remember`).
///
/// An entry goes when `ttl` has passed since that call, when a call finds
/// the plugin gone or its node unreachable, or when the link to the node
/// is cut. A plugin this node hosts is always the one called: the node
/// actor names its plugins here (`hosted`), and such a name is never
/// listed, even by a call to another node that was on its way meanwhile.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include <caf/expected.hpp>
#include <kj/async.h>
#include <kj/time.h>

#include "actors/cluster/node_entry.hpp"
#include "runtime/plugin_actor.hpp"

namespace joy {

/// Lives on the kj thread: create it anywhere, then touch it only there.
class remote_plugins {
public:
  /// Calls `plugin` on the node at `where`; the links to other nodes.
  using caller = std::function<kj::Promise<caf::expected<value>>(
    const location& where, std::string plugin, call_request req)>;

  /// How long a plugin is taken to stay where a call reached it: the node
  /// actor's own `location_ttl`.
  static constexpr kj::Duration ttl = 10 * kj::SECONDS;

  /// Served by `fn` from now on; an empty `fn` (the links are gone)
  /// forgets every entry and takes no more.
  void serve(caller fn);

  /// A call reached `plugin` on `where` at `now`; ignored for a plugin
  /// this node hosts. True if that listed it anew (or on another node).
  bool remember(const std::string& plugin, const location& where,
                kj::TimePoint now);

  /// This node hosts a plugin called `plugin` from now on.
  void hosted(const std::string& plugin);

  /// This node no longer hosts `plugin` (uninstalled).
  void not_hosted(const std::string& plugin);

  /// Everything on `node_id`: a call found something gone there, or the
  /// link to it was cut.
  void forget_node(const std::string& node_id);

  /// Where `plugin` is, if a call reached it there less than `ttl` before
  /// `now` and nothing has said otherwise since.
  std::optional<location> find(const std::string& plugin, kj::TimePoint now);

  /// Calls `plugin` at `where` through the links (see `serve`); fails
  /// with `timeout` when no answer comes within `bound` on `timer` (a node
  /// that is connected but stuck; the callee's own deadline is the node's
  /// over there).
  kj::Promise<caf::expected<value>> call(const location& where,
                                         std::string plugin, call_request req,
                                         kj::Timer& timer, kj::Duration bound);

  std::size_t size() const {
    return plugins_.size();
  }

private:
  struct entry {
    location where;
    kj::TimePoint until;
  };

  std::unordered_map<std::string, entry> plugins_;
  std::unordered_set<std::string> hosted_;
  caller call_;
};

} // namespace joy
