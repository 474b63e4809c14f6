// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The node actor: on every node, installs, lists, starts, stops and calls
/// the local plugins; owns registry access; reports the node's status
/// (DESIGN §2). Plugins start with the node and when installed; a plugin
/// that died starts again on its next call.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/replies_to.hpp>
#include <caf/timespan.hpp>
#include <caf/typed_actor.hpp>

#include "actors/cluster/cluster_actor.hpp"
#include "actors/core/core_actor.hpp"
#include "actors/node/node_status.hpp"
#include "actors/node/plugin_info.hpp"
#include "actors/plugin_host/plugin_host_actor.hpp"
#include "actors/plugin_host/spawner_actor.hpp"
#include "actors/registry/registry_actor.hpp"
#include "actors/sandbox/sandbox_policy.hpp"
#include "runtime/function.hpp"
#include "runtime/kj_thread.hpp"
#include "runtime/plugin_actor.hpp"

namespace joy {

using node_actor = caf::typed_actor<
  /// The node's identity, resources, plugins and services.
  caf::replies_to<status_atom>::with<node_status>,
  /// Installs the plugin folder at a path on this machine: validated,
  /// copied, registered (durably), then started. Errors: invalid_argument,
  /// not_found, unimplemented (a plugin type this node cannot run yet),
  /// io_error.
  caf::replies_to<install_atom, std::string>::with<plugin_info>,
  /// Every installed plugin.
  caf::replies_to<list_atom>::with<std::vector<plugin_info>>,
  /// Calls a method of a plugin by name (starting it if needed); a plugin
  /// this node lacks is called on the node the directory names, directly.
  /// Errors: not_found, disconnected (its node went down), and those of
  /// the plugin interface.
  caf::replies_to<call_atom, std::string, call_request>::with<value>,
  /// The same for calls from other nodes: `true` keeps it to this node's
  /// plugins (a call is never passed on twice). Errors: not_found.
  caf::replies_to<call_atom, std::string, call_request, bool>::with<value>,
  /// The object of a service of this node (never another's): what peers
  /// get from `Node.getService`. Errors: not_found.
  caf::replies_to<get_atom, std::string>::with<value>,
  /// Installs on a node of the cluster by id; "" places it by the
  /// manifest's `resources` (a folder is read here first). Errors: those
  /// of install, not_found (no such node), unavailable (no node fits).
  caf::replies_to<install_atom, std::string, std::string>::with<plugin_info>,
  /// Installs from a gzipped tarball at a path on this machine (sent by
  /// another node), recording `source`; the tarball is deleted after.
  caf::replies_to<archive_atom, std::string, std::string>::with<plugin_info>,
  /// Time to tell the directory what this node runs; sent to itself.
  caf::reacts_to<publish_atom>,
  /// The link to another node was cut: what was located there is
  /// forgotten.
  caf::reacts_to<down_atom, std::string>,
  /// Starts a plugin and replies once it runs.
  caf::replies_to<start_atom, std::string>::with<plugin_info>,
  /// Stops a plugin and replies once its process is gone.
  caf::replies_to<stop_atom, std::string>::with<plugin_info>,
  /// Uninstalls a plugin: stops it, forgets every version and setting of it
  /// and deletes its files. Errors: not_found.
  caf::replies_to<uninstall_atom, std::string>::with<plugin_info>,
  /// Goes back to the version installed before the active one and runs
  /// it. Errors: not_found, failed_precondition (no earlier version).
  caf::replies_to<rollback_atom, std::string>::with<plugin_info>,
  /// Stops every plugin; replies once all are gone.
  caf::replies_to<shutdown_atom>::with<bool>,
  /// From plugin hosts: a state change.
  caf::reacts_to<state_atom, plugin_status>,
  /// Time to look after the logs (rotation); sent to itself.
  caf::reacts_to<tick_atom>,
  /// One ImJoy api call of a plugin (see api_handler; ops in
  /// docs/plugins.md): UI calls, services and events go to the core,
  /// settings to the registry, calls to plugins.
  caf::replies_to<api_atom, std::string, uint16_t, value_list,
                  value_map>::with<value>,
  /// Runs a function made by the node: the methods of plugins' default
  /// services, which forward to the plugin (see function_owner).
  caf::replies_to<invoke_atom, function_ref, value_list,
                  value_map>::with<value>>;

struct node_config {
  std::string node_id;
  /// `$JOY_HOME`.
  std::string home;
  /// How clients reach the node (shown in status).
  std::string address;
  /// Where installed plugins live: `<home>/plugins`.
  std::string plugins_dir;
  /// Where plugin logs go: `<home>/logs`.
  std::string logs_dir;
  /// Scratch space for plugins being downloaded: `<home>/downloads`.
  std::string downloads_dir;
  /// Plugins' writable folders (their HOME): `<home>/work/<name>`.
  std::string work_dir;
  /// How plugins are isolated, and that in words for `joy status`.
  sandbox_settings sandbox;
  std::string sandbox_description = "NONE: plugins run unsandboxed";
  /// Manifest references `user/repo:Name` are read under it.
  std::string manifest_base = "https://raw.githubusercontent.com";
  /// How plugins send large data to each other: "shm" or "stream"
  /// (passed to them as JOY_LARGE_DATA; see runtime/large_data.hpp).
  std::string large_data = "shm";
  /// The program that runs native-python plugins (joy-python-host); empty:
  /// this node cannot run them.
  std::string python_host;
  /// The GPUs this node offers, numbered from 0 (found by joy-gpu-host
  /// --probe at start, or made up for a count given with --gpus). A plugin
  /// whose manifest asks `resources.gpus` gets that many of them for
  /// itself: `CUDA_VISIBLE_DEVICES` and their device nodes.
  std::vector<gpu_device> gpu_devices;
  /// Plugins the node itself provides (the `gpu` service, laid out by
  /// joyd): hosted at start but started on first use, not in the
  /// registry, and never uninstalled or replaced by an install. They are
  /// given every GPU the node offers.
  std::vector<plugin_record> builtins;
  bool head = true;
  /// host:port of the cluster listener ("" without one), and whether it
  /// speaks TLS (shown in status).
  std::string listen;
  bool tls = false;
  /// The bridge's URL ("" when the node serves no browsers).
  std::string bridge;
  /// Defaults handed to every plugin host.
  caf::timespan start_timeout = std::chrono::seconds{10};
  caf::timespan stop_grace = std::chrono::seconds{5};
  caf::timespan call_timeout = std::chrono::seconds{120};
  restart_policy restart;
  /// Logs (plugins', joyd's) larger than this are rotated, keeping
  /// `log_keep` old copies; checked every `log_check`.
  uint64_t log_max_bytes = uint64_t{10} << 20;
  int log_keep = 3;
  caf::timespan log_check = std::chrono::seconds{10};
  /// The shortcuts on the kj thread for the plugin links (kj_routes.hpp;
  /// empty: the node actor answers every lookup and call).
  kj_routes routes;
};

/// Spawns the node actor with the `installed` plugins (the registry's
/// active versions, read before the node serves anyone) and starts them.
/// `cluster` is the directory (cluster_actor.hpp); calls to other nodes go
/// through `kj`'s gateway (nodes/joyd/cluster_links.hpp). `kj` must
/// outlive every actor of the system.
node_actor spawn_node(caf::actor_system& sys, kj_thread& kj,
                      registry_actor registry, spawner_actor spawner,
                      core_actor core, cluster_actor cluster, node_config cfg,
                      std::vector<plugin_record> installed);

} // namespace joy
