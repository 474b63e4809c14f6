// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/node/node_actor.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <thread>
#include <type_traits>

#include <caf/actor_cast.hpp>
#include <caf/detail/scope_guard.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/node/installer.hpp"
#include "actors/node/log_rotation.hpp"
#include "actors/node/log_tail.hpp"
#include "actors/node/plugin_source.hpp"
#include "actors/plugin_host/plugin_method.hpp"
#include "runtime/api_op.hpp"
#include "runtime/imjoy_file.hpp"
#include "runtime/log.hpp"
#include "runtime/manifest.hpp"
#include "runtime/protocol.hpp"
#include "runtime/value_json.hpp"

namespace fs = std::filesystem;

namespace joy {

namespace {

/// Does the blocking part of an install (downloads, file I/O) on its own
/// thread, once.
using install_worker = caf::typed_actor<
  caf::replies_to<install_atom, std::string, std::string>::with<plugin_record>>;

bool is_builtin(const node_config& cfg, const std::string& name) {
  return std::any_of(cfg.builtins.begin(), cfg.builtins.end(),
                     [&](const plugin_record& b) { return b.name == name; });
}

/// Why a built-in plugin cannot be changed by `what`.
caf::error builtin_refusal(const std::string& name, const std::string& what) {
  return make_error(errc::invalid_argument,
                    "'" + name + "' is built into the node and cannot be "
                      + what
                      + " (joy start --gpu-service off runs a node "
                        "without it)");
}

/// Installs `text`, or, when `archive` names a tarball another node sent,
/// the plugin inside it (recording `text` as its source).
caf::expected<plugin_record> install_from(const std::string& text,
                                          const node_config& cfg,
                                          const std::string& archive) {
  auto src = parse_plugin_source(text);
  // A tarball sent by another node is ours to delete, whatever happens.
  auto drop_archive = caf::detail::make_scope_guard([&] {
    std::error_code ignored;
    if (!archive.empty())
      fs::remove(archive, ignored);
  });
  if (!archive.empty()) {
    if (!src)
      src = plugin_source{};
    src->kind = plugin_source::archive_url;
  }
  if (!src)
    return std::move(src.error());
  // Downloads go to a scratch folder swept before each remote install
  // (installs run one at a time), so a crash leaves nothing for long.
  fs::path scratch;
  if (src->kind != plugin_source::folder || is_imjoy_file_name(src->where)) {
    std::error_code ec;
    fs::remove_all(cfg.downloads_dir, ec);
    scratch = fs::path{cfg.downloads_dir} / "install";
    fs::create_directories(scratch, ec);
    if (ec)
      return make_error(errc::io_error, "cannot create " + scratch.string()
                                          + ": " + ec.message());
  }
  auto cleanup = caf::detail::make_scope_guard([&] {
    std::error_code ignored;
    if (!scratch.empty())
      fs::remove_all(scratch, ignored);
  });
  auto folder
    = archive.empty()
        ? materialize(*src, scratch, remote_config{cfg.manifest_base, {}})
        : unpack_plugin_archive(archive, scratch);
  if (!folder)
    return std::move(folder.error());
  auto manifest = load_plugin_folder(*folder);
  if (!manifest)
    return std::move(manifest.error());
  if (manifest->type == "native-python" && cfg.python_host.empty())
    return make_error(errc::unimplemented,
                      "plugin '" + manifest->name
                        + "' is a native-python plugin, and this node has no "
                          "joy-python-host (it was built without pybind11)");
  if (manifest->type != "native" && manifest->type != "window"
      && manifest->type != "native-python")
    return make_error(errc::unimplemented,
                      "plugin '" + manifest->name + "' is of type '"
                        + manifest->type
                        + "', which runs in a browser's worker: this node "
                          "runs native and native-python plugins, and keeps "
                          "window plugins for the browser core");
  if (src->kind == plugin_source::manifest_ref && manifest->name != src->name)
    return make_error(errc::invalid_argument, "the manifest entry '" + src->name
                                                + "' points at a plugin named '"
                                                + manifest->name + "'");
  // Refused before anything is copied, so a refusal leaves no folder.
  if (is_builtin(cfg, manifest->name))
    return builtin_refusal(manifest->name, "replaced by an install");
  auto rec = install_plugin_folder(*folder, cfg.plugins_dir);
  if (!rec)
    return std::move(rec.error());
  rec->source = text;
  return std::move(*rec);
}

install_worker spawn_install_worker(caf::actor_system& sys,
                                    const node_config& cfg) {
  return sys.spawn<caf::detached>(
    [cfg](install_worker::pointer self) -> install_worker::behavior_type {
      return {
        [self, cfg](install_atom, const std::string& source,
                    const std::string& archive) -> caf::result<plugin_record> {
          self->quit();
          auto rec = install_from(source, cfg, archive);
          if (!rec)
            return std::move(rec.error());
          return std::move(*rec);
        },
      };
    });
}

/// Packs a plugin folder for another node, on its own thread, once: a map
/// of the tarball's bytes (`archive`, which travels by the stream arm) and
/// the manifest's `cpus`, `memory` and `gpus`.
using pack_worker
  = caf::typed_actor<caf::replies_to<archive_atom, std::string>::with<value>>;

pack_worker spawn_pack_worker(caf::actor_system& sys, const node_config& cfg) {
  return sys.spawn<caf::detached>(
    [cfg](pack_worker::pointer self) -> pack_worker::behavior_type {
      return {
        [self, cfg](archive_atom,
                    const std::string& folder) -> caf::result<value> {
          self->quit();
          std::error_code ec;
          auto dir = fs::path{cfg.home} / "outgoing";
          fs::create_directories(dir, ec);
          auto unique
            = std::to_string(::getpid()) + "-"
              + std::to_string(
                std::chrono::steady_clock::now().time_since_epoch().count());
          auto archive = dir / ("pack-" + unique + ".tar.gz");
          // A local ImJoy file is laid out as the folder it installs as.
          auto scratch = dir / ("file-" + unique);
          auto drop = caf::detail::make_scope_guard([&] {
            std::error_code ignored;
            fs::remove(archive, ignored);
            fs::remove_all(scratch, ignored);
          });
          auto src = parse_plugin_source(folder);
          if (!src)
            return std::move(src.error());
          fs::path plugin_folder = folder;
          if (is_imjoy_file_name(src->where) || !src->tag.empty()) {
            fs::create_directories(scratch, ec);
            auto laid = materialize(*src, scratch,
                                    remote_config{cfg.manifest_base, {}});
            if (!laid)
              return std::move(laid.error());
            plugin_folder = *laid;
          }
          // Refuse here what the target would refuse, before shipping it.
          auto manifest = load_plugin_folder(plugin_folder);
          if (!manifest)
            return std::move(manifest.error());
          if (auto err = pack_plugin_folder(plugin_folder, archive))
            return err;
          std::ifstream in{archive, std::ios::binary};
          std::string bytes{std::istreambuf_iterator<char>{in},
                            std::istreambuf_iterator<char>{}};
          if (!in.good() && !in.eof())
            return make_error(errc::io_error,
                              "cannot read " + archive.string());
          // What it asks for steers automatic placement.
          auto& r = manifest->resources;
          return value{
            value_map{{"archive", value{buffer::take(std::move(bytes))}},
                      {"cpus", value{static_cast<uint64_t>(std::ceil(r.cpus))}},
                      {"memory", value{r.memory_bytes}},
                      {"gpus", value{static_cast<uint64_t>(r.gpus)}}}};
        },
      };
    });
}

/// Rotates logs on its own thread, once.
using rotate_worker
  = caf::typed_actor<caf::replies_to<tick_atom, std::vector<std::string>,
                                     uint64_t, int>::with<bool>>;

rotate_worker spawn_rotate_worker(caf::actor_system& sys) {
  return sys.spawn<caf::detached>(
    [](rotate_worker::pointer self) -> rotate_worker::behavior_type {
      return {
        [self](tick_atom, const std::vector<std::string>& logs, uint64_t max,
               int keep) -> bool {
          self->quit();
          for (auto& log : logs)
            if (auto err = rotate_if_large(log, max, keep); !err)
              joy::log(log_level::warning, "node", message_of(err.error()));
          return true;
        },
      };
    });
}

/// Deletes a plugin's files (folders or single files) on its own thread,
/// once.
using remove_worker = caf::typed_actor<
  caf::replies_to<remove_atom, std::vector<std::string>>::with<bool>>;

remove_worker spawn_remove_worker(caf::actor_system& sys) {
  return sys.spawn<caf::detached>(
    [](remove_worker::pointer self) -> remove_worker::behavior_type {
      return {
        [self](remove_atom,
               const std::vector<std::string>& paths) -> caf::result<bool> {
          self->quit();
          for (auto& path : paths) {
            std::error_code ec;
            fs::remove_all(path, ec);
            if (ec)
              return make_error(errc::io_error,
                                "cannot delete " + path + ": " + ec.message());
          }
          return true;
        },
      };
    });
}

struct hosted {
  plugin_record record;
  plugin_host_actor host;
  plugin_status status;
  std::shared_ptr<plugin_stats> stats = std::make_shared<plugin_stats>();

  /// The plugin as status and listings show it, counters included.
  plugin_info info() const {
    plugin_info out{record, status};
    out.status.calls = stats->calls();
    out.status.errors = stats->errors();
    out.status.p50_us = stats->p50_us();
    out.status.memory_bytes = resident_bytes(status.pid);
    return out;
  }
};

struct pending_install {
  std::string source;
  caf::typed_response_promise<plugin_info> promise;
  /// A tarball another node sent, or empty.
  std::string archive;
};

struct cached_location {
  location where;
  std::chrono::steady_clock::time_point until;
};

struct node_state {
  /// One-shot readers (window sources, log tails) running now; each is a
  /// thread, so they are bounded (run_reader).
  std::size_t readers = 0;
  static inline const char* name = "node";

  kj_thread* kj = nullptr;
  registry_actor registry;
  spawner_actor spawner;
  core_actor core;
  cluster_actor cluster;
  node_config cfg;
  std::map<std::string, hosted> plugins;
  /// Hosts being replaced (a new version, a rollback), stopping. They are
  /// not linked to the node, so its end must end them: one whose stop
  /// outlived the node would keep the actor system, and joyd, waiting.
  std::vector<plugin_host_actor> retired;
  /// A publish to the directory is scheduled.
  bool publish_pending = false;
  /// Where plugins and services of other nodes were found lately.
  std::map<std::string, cached_location> locations;
  int64_t started_at = 0;
  std::chrono::steady_clock::time_point started;
  bool shutting_down = false;
  std::deque<pending_install> installs;
  bool installing = false;
  /// Names services registered without one.
  uint64_t next_service = 1;
  /// Which plugin holds each GPU of this node ("" for a free one).
  std::vector<std::string> gpu_holders;
};

using self_ptr = node_actor::stateful_pointer<node_state>;

void schedule_publish(self_ptr self);

constexpr auto registry_timeout = std::chrono::seconds{30};
constexpr auto install_timeout = std::chrono::minutes{5};

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

std::string service_of(const std::string& plugin) {
  return "public/" + plugin + ":default";
}

/// A root node's ext4 image of a plugin's work dir: in a folder of its own,
/// so that no plugin name can collide with it.
std::string image_of(const node_config& cfg, const std::string& name) {
  return (fs::path{cfg.home} / "images" / (name + ".img")).string();
}

/// The GPUs plugin `name` holds after asking for `count`: those it held,
/// then free ones. Errors: unavailable, when too few are free.
caf::expected<std::vector<uint32_t>>
take_gpus(std::vector<std::string>& holders, const std::string& name,
          uint32_t count) {
  std::vector<uint32_t> out;
  for (uint32_t i = 0; i < holders.size(); ++i)
    if (holders[i] == name) {
      if (out.size() < count)
        out.push_back(i);
      else
        holders[i].clear(); // a new version asks fewer
    }
  for (uint32_t i = 0; i < holders.size() && out.size() < count; ++i)
    if (holders[i].empty()) {
      holders[i] = name;
      out.push_back(i);
    }
  if (out.size() < count) {
    for (auto i : out)
      holders[i].clear();
    auto free = std::count(holders.begin(), holders.end(), std::string{});
    return make_error(errc::unavailable,
                      "'" + name + "' asks for " + std::to_string(count)
                        + " GPU(s); this node has "
                        + std::to_string(holders.size()) + ", "
                        + std::to_string(free) + " free");
  }
  std::sort(out.begin(), out.end());
  return out;
}

void release_gpus(std::vector<std::string>& holders, const std::string& name) {
  for (auto& h : holders)
    if (h == name)
      h.clear();
}

/// How to run `rec` (its manifest parsed). `gpus`: the GPUs it was given;
/// `all_gpus`: it may use every GPU of the node (the built-in gpu service).
caf::expected<launch_spec> make_launch_spec(const node_config& cfg,
                                            const plugin_record& rec,
                                            const plugin_manifest& manifest,
                                            const std::vector<uint32_t>& gpus,
                                            bool all_gpus) {
  launch_spec spec;
  spec.name = rec.name;
  spec.executable = (fs::path{rec.path} / manifest.entry).string();
  // A Python plugin's entry is its script; the host runs it.
  if (manifest.type == "native-python") {
    if (cfg.python_host.empty())
      return make_error(errc::unimplemented,
                        "this node has no joy-python-host to run '" + rec.name
                          + "'");
    spec.runtime = cfg.python_host;
  }
  spec.work_dir = rec.path;
  spec.log_file = (fs::path{cfg.logs_dir} / (rec.name + ".log")).string();
  // Room for rotation (every log_check) to catch up before output drops.
  spec.log_cap = std::max<uint64_t>(2 * cfg.log_max_bytes, uint64_t{1} << 20);
  auto work = cfg.work_dir.empty()
                ? rec.path
                : (fs::path{cfg.work_dir} / rec.name).string();
  spec.sandbox = make_sandbox_policy(cfg.sandbox, manifest, rec.path, work,
                                     ::geteuid() == 0);
  if (!cfg.work_dir.empty())
    spec.sandbox.work_image = image_of(cfg, rec.name);
  // Deny by default: the plugin sees none of the daemon's environment.
  spec.env = {{"PATH", "/usr/local/bin:/usr/bin:/bin"},
              {"HOME", work},
              {"LANG", "C.UTF-8"},
              {std::string{plugin_name_env}, rec.name},
              {std::string{large_data_env}, cfg.large_data}};
  if (const char* level = std::getenv("JOY_LOG"))
    spec.env.emplace_back("JOY_LOG", level);
  // The gpu service uses every GPU the node offers: none when it offers
  // none (`--gpus 0`), whatever the machine has.
  all_gpus = all_gpus && !cfg.gpu_devices.empty();
  spec.sandbox.devices = gpu_device_nodes(gpus, all_gpus);
  // A plugin sees the GPUs it was given and no others (CUDA numbers them
  // from 0 again); one that asked for none sees none.
  if (!all_gpus) {
    std::string visible;
    for (auto i : gpus)
      visible += (visible.empty() ? "" : ",") + std::to_string(i);
    spec.env.emplace_back("CUDA_VISIBLE_DEVICES", visible);
  }
  return spec;
}

/// Readers a node runs at once for callers.
constexpr std::size_t max_readers = 8;

/// Answers `reply` with what a one-shot reader made by `spawn` (a detached
/// actor: a thread) answers to `xs...`; at most max_readers at once, more
/// callers get `overloaded`.
template <class Spawn, class... Ts>
void run_reader(self_ptr self, reply_handle reply, Spawn spawn, Ts... xs) {
  auto& st = self->state;
  if (st.readers >= max_readers) {
    reply.deliver(
      make_error(errc::overloaded, "the node is reading files for "
                                     + std::to_string(max_readers)
                                     + " callers already; try again"));
    return;
  }
  ++st.readers;
  auto worker = spawn(self->system());
  auto rh = std::make_shared<reply_handle>(std::move(reply));
  self->request(worker, std::chrono::seconds{30}, xs...)
    .then(
      [self, rh](value& x) {
        --self->state.readers;
        rh->deliver_value(std::move(x));
      },
      [self, rh](caf::error& err) {
        --self->state.readers;
        rh->deliver(std::move(err));
      });
}

/// A service of this node.
service_info service_here(self_ptr self, std::string id, std::string name,
                          std::string type, value_map object) {
  service_info svc;
  svc.id = std::move(id);
  svc.node = self->state.cfg.node_id;
  svc.name = std::move(name);
  svc.type = std::move(type);
  svc.object = value{std::move(object)};
  return svc;
}

/// The default service of plugin `name` on this node.
service_info service_of_plugin(self_ptr self, const std::string& name,
                               std::string type, value_map object) {
  return service_here(self, service_of(name), name, std::move(type),
                      std::move(object));
}

/// Registers `svc` with the core; a failure is logged (nothing waits).
void register_here(self_ptr self, service_info svc) {
  self
    ->request(self->state.core, std::chrono::seconds{5}, register_atom_v,
              std::move(svc))
    .then([](service_info&) {},
          [](caf::error& err) {
            log(log_level::warning, "node",
                "cannot register service: ", message_of(err));
          });
}

/// Reads a window plugin's file on its own thread, once: the parts the
/// browser core runs (see window_service).
using source_worker = caf::typed_actor<
  caf::replies_to<get_atom, std::string, std::string>::with<value>>;

source_worker spawn_source_worker(caf::actor_system& sys) {
  return sys.spawn<caf::detached>(
    [](source_worker::pointer self) -> source_worker::behavior_type {
      return {
        [self](get_atom, const std::string& path,
               const std::string& tag) -> caf::result<value> {
          self->quit();
          std::ifstream in{path, std::ios::binary};
          std::string text{std::istreambuf_iterator<char>{in},
                           std::istreambuf_iterator<char>{}};
          if (!in.good() && !in.eof())
            return make_error(errc::io_error, "cannot read " + path);
          auto file = parse_imjoy_file(text, tag);
          if (!file)
            return std::move(file.error());
          auto config = from_json_tree(file->config);
          if (!config)
            return std::move(config.error());
          value_map attachments;
          for (auto& [name, content] : file->attachments)
            attachments.insert(name, value{content});
          return value{value_map{
            {"config", std::move(*config)},
            {"tag", value{file->tag}},
            {"script", value{file->script}},
            {"lang", value{file->script_lang}},
            {"window", value{file->window}},
            {"style", value{file->style}},
            {"docs", value{file->docs}},
            {"attachments", value{std::move(attachments)}},
          }};
        },
      };
    });
}

/// A window plugin's service: what the browser core needs to open it. It
/// runs in the browser, so the node keeps its file and hands out the
/// parts: `source()` answers the config, script, window, style and docs.
service_info window_service(self_ptr self, const plugin_record& rec) {
  auto node = caf::actor_cast<caf::actor>(self);
  std::string tag;
  auto entry = std::string{imjoy_entry_name};
  if (auto m = parse_manifest(rec.manifest)) {
    if (auto i = m->document.find("tag");
        i != m->document.end() && i->is_string())
      tag = i->get<std::string>();
    if (!m->entry.empty())
      entry = m->entry;
  }
  auto path = (fs::path{rec.path} / entry).string();
  value_map object;
  object.insert("name", value{rec.name});
  object.insert("type", value{std::string{"window"}});
  object.insert("source",
                value{make_function(
                  node, "source",
                  [self, path, tag](value_list, value_map, reply_handle reply) {
                    run_reader(self, std::move(reply), spawn_source_worker,
                               get_atom_v, path, tag);
                  })});
  return service_of_plugin(self, rec.name, "window", std::move(object));
}

caf::expected<hosted*> find_plugin(self_ptr self, const std::string& name);

/// The last lines of a log file, read on its own thread, once.
using tail_worker = caf::typed_actor<
  caf::replies_to<get_atom, std::string, uint64_t>::with<value>>;

tail_worker spawn_tail_worker(caf::actor_system& sys) {
  return sys.spawn<caf::detached>(
    [](tail_worker::pointer self) -> tail_worker::behavior_type {
      return {
        [self](get_atom, const std::string& path,
               uint64_t lines) -> caf::result<value> {
          self->quit();
          auto text = tail_lines(path, lines);
          if (!text)
            return std::move(text.error());
          return value{std::move(*text)};
        },
      };
    });
}

/// The node's own service, `public/node-<id>:logs`: `tail(plugin, lines)`
/// answers the last lines of a plugin's log on this node (what `joy logs`
/// shows), so the browser core can show logs of plugins on any node.
service_info logs_service(self_ptr self) {
  auto node = caf::actor_cast<caf::actor>(self);
  auto f = make_function(
    node, "tail",
    [self](value_list args, value_map kwargs, reply_handle reply) {
      auto arg = [&](std::size_t i, const char* key) -> const value* {
        if (i < args.size())
          return &args[i];
        return kwargs.find(key);
      };
      auto* name = arg(0, "plugin");
      if (name == nullptr || name->as_string() == nullptr) {
        reply.deliver(make_error(errc::invalid_argument,
                                 "tail(plugin, lines): plugin "
                                 "must be a plugin's name"));
        return;
      }
      uint64_t lines = 100;
      if (auto* n = arg(1, "lines"); n != nullptr && !n->is_null()) {
        auto* i = n->as_int64();
        if (i == nullptr || *i < 1 || *i > 10000) {
          reply.deliver(make_error(errc::invalid_argument,
                                   "tail(plugin, lines): lines must be an "
                                   "integer from 1 to 10000"));
          return;
        }
        lines = static_cast<uint64_t>(*i);
      }
      auto h = find_plugin(self, *name->as_string());
      if (!h) {
        reply.deliver(std::move(h.error()));
        return;
      }
      auto path
        = (fs::path{self->state.cfg.logs_dir} / ((*h)->record.name + ".log"))
            .string();
      run_reader(self, std::move(reply), spawn_tail_worker, get_atom_v, path,
                 lines);
    });
  f.params = {"plugin", "lines"};
  value_map object;
  object.insert("name", value{"logs of node " + self->state.cfg.node_id});
  object.insert("tail", value{std::move(f)});
  return service_here(self, "public/node-" + self->state.cfg.node_id + ":logs",
                      "logs", "joy-node", std::move(object));
}

/// Why a plugin without a host cannot be called or started.
std::string why_not_running(const std::string& name, const hosted& h) {
  if (h.record.type == "window")
    return "plugin '" + name
           + "' is a window plugin: it runs in the browser core (open it "
             "there, or from a plugin with api.create_window)";
  return "plugin '" + name + "' cannot run: " + h.status.last_error;
}

/// Spawns (or replaces) the host of `rec` and starts it. A window plugin
/// has no process: its service is registered at once.
void host_plugin(self_ptr self, const plugin_record& rec, bool start = true) {
  auto& st = self->state;
  // A plugin here is the one called: the kj thread stops calling any other
  // node's plugin of this name (remote_plugins.hpp).
  if (auto remote = st.cfg.routes.remote)
    st.kj->post(
      [remote, name = rec.name](kj_context&) { remote->hosted(name); });
  if (rec.type == "window") {
    hosted h;
    h.record = rec;
    h.status.name = rec.name;
    h.status.state = plugin_state::running;
    h.status.methods = {"source"};
    st.plugins[rec.name] = std::move(h);
    register_here(self, window_service(self, rec));
    return;
  }
  auto builtin = is_builtin(st.cfg, rec.name);
  auto spec = [&]() -> caf::expected<launch_spec> {
    auto manifest = parse_manifest(rec.manifest);
    if (!manifest)
      return manifest.error();
    std::vector<uint32_t> gpus;
    if (!builtin) {
      auto taken
        = take_gpus(st.gpu_holders, rec.name, manifest->resources.gpus);
      if (!taken)
        return taken.error();
      gpus = std::move(*taken);
    }
    auto out = make_launch_spec(st.cfg, rec, *manifest, gpus, builtin);
    // A plugin that cannot run holds no GPU.
    if (!out)
      release_gpus(st.gpu_holders, rec.name);
    return out;
  }();
  hosted h;
  h.record = rec;
  h.status.name = rec.name;
  if (!spec) {
    // Keep it listed, with the reason, rather than hiding it.
    h.status.state = plugin_state::failed;
    h.status.last_error = message_of(spec.error());
    st.plugins[rec.name] = std::move(h);
    return;
  }
  plugin_host_config hc;
  hc.launch = std::move(*spec);
  hc.node_id = st.cfg.node_id;
  hc.start_timeout = st.cfg.start_timeout;
  hc.stop_grace = st.cfg.stop_grace;
  hc.call_timeout = st.cfg.call_timeout;
  hc.restart = st.cfg.restart;
  hc.api = caf::actor_cast<api_handler>(self);
  hc.routes = st.cfg.routes;
  if (auto old = st.plugins.find(rec.name); old != st.plugins.end())
    h.stats = old->second.stats; // counters outlive a new version
  hc.stats = h.stats;
  auto observer = caf::actor_cast<plugin_observer>(self);
  h.host = spawn_plugin_host(self->system(), *st.kj, st.spawner, std::move(hc),
                             observer);
  // Hosts die with the node, and their processes with them.
  self->link_to(h.host);
  auto host = h.host;
  auto name = rec.name;
  if (!start) {
    // Started by its first call.
    h.status.state = plugin_state::stopped;
    st.plugins[rec.name] = std::move(h);
    return;
  }
  h.status.state = plugin_state::starting;
  st.plugins[rec.name] = std::move(h);
  self
    ->request(host, st.cfg.start_timeout + std::chrono::seconds{5},
              start_atom_v)
    .then([](plugin_status&) {},
          [name](caf::error& err) {
            log(log_level::warning, "node", "plugin ", name,
                " did not start: ", message_of(err));
          });
}

/// Stops and retires a host that is being replaced.
void retire_host(self_ptr self, plugin_host_actor host) {
  self->unlink_from(host);
  self->state.retired.push_back(host);
  auto end = [self, host] {
    auto& retired = self->state.retired;
    retired.erase(std::remove(retired.begin(), retired.end(), host),
                  retired.end());
    self->send_exit(host, caf::exit_reason::user_shutdown);
  };
  self
    ->request(host, self->state.cfg.stop_grace + std::chrono::seconds{5},
              stop_atom_v)
    .then([end](plugin_status&) { end(); }, [end](caf::error&) { end(); });
}

void next_install(self_ptr self);

void finish_install(self_ptr self, pending_install job, plugin_record rec) {
  auto& st = self->state;
  self->request(st.registry, registry_timeout, put_atom_v, rec)
    .then(
      [self, job](plugin_record& stored) mutable {
        auto& st = self->state;
        log(log_level::info, "node", "installed ", stored.name, " ",
            stored.version, " from ", stored.source);
        if (auto i = st.plugins.find(stored.name); i != st.plugins.end()) {
          auto& cur = i->second;
          if (cur.host && cur.record.version == stored.version
              && cur.record.sha256 == stored.sha256) {
            // The same code again: keep the running instance.
            cur.record = stored;
            job.promise.deliver(cur.info());
            next_install(self);
            return;
          }
          if (cur.host)
            retire_host(self, cur.host);
          if (i->second.status.state == plugin_state::running)
            caf::anon_send(st.core, unregister_atom_v, service_of(stored.name));
        }
        host_plugin(self, stored);
        schedule_publish(self);
        auto& h = st.plugins[stored.name];
        job.promise.deliver(h.info());
        next_install(self);
      },
      [self, job](caf::error& err) mutable {
        job.promise.deliver(std::move(err));
        next_install(self);
      });
}

void next_install(self_ptr self) {
  auto& st = self->state;
  if (st.installs.empty()) {
    st.installing = false;
    return;
  }
  st.installing = true;
  auto job = std::move(st.installs.front());
  st.installs.pop_front();
  auto worker = spawn_install_worker(self->system(), st.cfg);
  self
    ->request(worker, install_timeout, install_atom_v, job.source, job.archive)
    .then(
      [self, job](plugin_record& rec) mutable {
        finish_install(self, std::move(job), std::move(rec));
      },
      [self, job](caf::error& err) mutable {
        job.promise.deliver(std::move(err));
        next_install(self);
      });
}

caf::expected<hosted*> find_plugin(self_ptr self, const std::string& name) {
  auto& plugins = self->state.plugins;
  auto i = plugins.find(name);
  if (i != plugins.end())
    return &i->second;
  std::string known;
  for (auto& [n, h] : plugins)
    known += (known.empty() ? "" : ", ") + n;
  return make_error(
    errc::not_found,
    "no plugin named '" + name + "' is installed"
      + (known.empty() ? std::string{} : " (installed: " + known + ")"));
}

/// Forwards `start` or `stop` to the plugin's host and answers with the
/// plugin's info once the host did (its own deadline plus a margin).
template <class Atom>
caf::result<plugin_info> ask_host(self_ptr self, const std::string& name,
                                  Atom atom, caf::timespan deadline) {
  auto h = find_plugin(self, name);
  if (!h)
    return std::move(h.error());
  if (!(*h)->host) {
    // Nothing runs it; stopping it is done already, starting it cannot be.
    if (std::is_same_v<Atom, stop_atom> || (*h)->record.type == "window")
      return (*h)->info();
    return make_error(errc::unavailable, why_not_running(name, **h));
  }
  auto rp = self->make_response_promise<plugin_info>();
  auto record = (*h)->record;
  self->request((*h)->host, deadline + std::chrono::seconds{5}, atom)
    .then(
      [rp, record](plugin_status& s) mutable {
        rp.deliver(plugin_info{record, s});
      },
      [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

/// A plugin's default service: its exported methods as function values
/// made by the node; calling one is a call of the plugin's method.
service_info default_service(self_ptr self, const plugin_status& status) {
  auto node = caf::actor_cast<caf::actor>(self);
  value_map object;
  object.insert("name", value{status.name});
  // What ImJoy's UIs read from the config: the description, the `ui` of
  // run's form (its fields become ctx.config) and the data it takes.
  if (auto h = find_plugin(self, status.name))
    if (auto m = parse_manifest((*h)->record.manifest)) {
      if (!m->description.empty())
        object.insert("description", value{m->description});
      for (auto key : {"ui", "inputs", "outputs"})
        if (auto i = m->document.find(key);
            i != m->document.end() && !i->is_null())
          if (auto x = from_json_tree(*i))
            object.insert(key, std::move(*x));
    }
  for (std::size_t k = 0; k < status.methods.size(); ++k) {
    auto& method = status.methods[k];
    auto plugin = status.name;
    if (auto& running = self->state.cfg.routes.running) {
      // Served on the kj thread: straight to the plugin while it runs.
      object.insert(method,
                    value{make_plugin_method(
                      *self->state.kj, running, node, plugin, method,
                      k < status.params.size() ? status.params[k]
                                               : std::vector<std::string>{})});
      continue;
    }
    auto f = make_function(
      node, method,
      [self, plugin, method](value_list args, value_map kwargs,
                             reply_handle reply) {
        auto h = find_plugin(self, plugin);
        if (!h || !(*h)->host) {
          reply.deliver(make_error(errc::unavailable,
                                   "plugin '" + plugin + "' is not available"));
          return;
        }
        call_request req;
        req.method = method;
        req.args = std::move(args);
        req.kwargs = std::move(kwargs);
        reply.delegate(caf::actor_cast<caf::strong_actor_ptr>((*h)->host),
                       caf::make_message(call_atom_v, std::move(req)));
      });
    if (k < status.params.size())
      f.params = status.params[k];
    object.insert(method, value{std::move(f)});
  }
  return service_of_plugin(self, status.name, "native", std::move(object));
}

/// The text at position `i`, or why not.
caf::expected<std::string> text_arg(const value_list& args, std::size_t i,
                                    const char* what) {
  if (i < args.size())
    if (auto* s = args[i].as_string())
      return *s;
  return make_error(errc::invalid_argument,
                    std::string{what} + " must be a string");
}

/// Asks the directory which node has `what` (a plugin name, or a service
/// id), then runs `found(location)`, or `failed(error)`.
/// How long a located plugin or service is taken to stay where it is
/// without asking the head again. A call that finds it gone (not_found,
/// disconnected) forgets it at once.
constexpr auto location_ttl = std::chrono::seconds{10};

std::string location_key(const std::string& what, bool plugin) {
  return (plugin ? "plugin:" : "service:") + what;
}

/// Asks the directory which node has `what` (a plugin name, or a service
/// id), then runs `found(location)`, or `failed(error)`. Answers are kept
/// for `location_ttl`, so that a call costs no trip to the head.
template <class Found, class Failed>
void on_node_of(self_ptr self, const std::string& what, bool plugin,
                Found found, Failed failed) {
  auto& st = self->state;
  auto key = location_key(what, plugin);
  if (auto i = st.locations.find(key); i != st.locations.end()) {
    if (std::chrono::steady_clock::now() < i->second.until) {
      auto where = i->second.where;
      found(where);
      return;
    }
    st.locations.erase(i);
  }
  self
    ->request(st.cluster, std::chrono::seconds{30}, locate_atom_v, what, plugin,
              st.cfg.node_id)
    .then(
      [self, what, plugin, key, found, failed](location& where) mutable {
        if (where.node_id == self->state.cfg.node_id) {
          // The directory is a beat behind this node.
          failed(make_error(errc::not_found,
                            std::string{plugin ? "plugin '" : "service '"}
                              + what + "' is no longer on this node"));
          return;
        }
        self->state.locations[key] = cached_location{
          where, std::chrono::steady_clock::now() + location_ttl};
        found(where);
      },
      [failed](caf::error& err) mutable { failed(std::move(err)); });
}

/// Hands the request on to the node at `where` through the kj gateway,
/// which answers the requester directly (one hop less on the way back).
/// An answer saying the thing is not there any more makes the links tell
/// this actor to forget what it located on that node (`down_atom`).
template <class T, class... Ts>
void on_peer(self_ptr self, caf::typed_response_promise<T> rp, Ts&&... xs) {
  rp.delegate(caf::actor_cast<caf::actor>(self->state.kj->gateway()),
              std::forward<Ts>(xs)...);
}

/// Tells the directory what this node runs, soon: once per burst of
/// changes.
void schedule_publish(self_ptr self) {
  auto& st = self->state;
  if (st.publish_pending || !st.cluster)
    return;
  st.publish_pending = true;
  self->delayed_send(self, std::chrono::milliseconds{50}, publish_atom_v);
}

void publish(self_ptr self) {
  self->state.publish_pending = false;
  self->request(self->state.core, std::chrono::seconds{5}, list_atom_v)
    .then(
      [self](std::vector<service_info>& services) {
        auto& st = self->state;
        std::vector<std::string> plugins;
        resources committed;
        for (auto& [name, h] : st.plugins) {
          plugins.push_back(name);
          // What the node provides itself commits nothing.
          if (is_builtin(st.cfg, name))
            continue;
          if (auto m = parse_manifest(h.record.manifest)) {
            committed.cpus
              += static_cast<uint32_t>(std::ceil(m->resources.cpus));
            committed.memory_bytes += m->resources.memory_bytes;
            committed.gpus += m->resources.gpus;
          }
        }
        std::vector<service_entry> entries;
        for (auto& svc : services) {
          service_entry e{svc.id, svc.name, svc.type, {}};
          if (auto* m = svc.object.as_map())
            for (auto& [k, v] : *m)
              if (v.as_function() != nullptr)
                e.methods.push_back(k);
          entries.push_back(std::move(e));
        }
        self
          ->request(st.cluster, std::chrono::seconds{30}, publish_atom_v,
                    st.cfg.node_id, std::move(plugins), committed,
                    std::move(entries))
          .then([](bool) {},
                [](caf::error& err) {
                  log(log_level::warning, "node",
                      "cannot tell the directory what this node runs: ",
                      message_of(err));
                });
      },
      [](caf::error& err) {
        log(log_level::warning, "node",
            "cannot list services: ", message_of(err));
      });
}

/// A plugin's default service object, once the plugin runs (starting it if
/// needed: its methods are known only then).
caf::result<value> plugin_service(self_ptr self, const std::string& name) {
  auto h = find_plugin(self, name);
  if (!h)
    return std::move(h.error());
  if ((*h)->record.type == "window")
    return window_service(self, (*h)->record).object;
  if (!(*h)->host)
    return make_error(errc::unavailable, why_not_running(name, **h));
  auto rp = self->make_response_promise<value>();
  self
    ->request((*h)->host,
              self->state.cfg.start_timeout + std::chrono::seconds{5},
              start_atom_v)
    .then(
      [self, rp](plugin_status& status) mutable {
        rp.deliver(default_service(self, status).object);
      },
      [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

/// A service's object: a plugin's default service from the plugin itself,
/// others from the core; with `anywhere`, one this node lacks from the node
/// that has it (peers ask with `anywhere` false, so a lookup never loops).
caf::result<value> service_object(self_ptr self, const std::string& id,
                                  bool anywhere = true) {
  if (auto parsed = parse_service_id(id);
      parsed && (parsed->workspace.empty() || parsed->workspace == "public")
      && (parsed->service.empty() || parsed->service == "default")
      && self->state.plugins.count(parsed->client) > 0)
    return plugin_service(self, parsed->client);
  auto rp = self->make_response_promise<value>();
  self->request(self->state.core, std::chrono::seconds{30}, get_atom_v, id)
    .then([rp](service_info& info) mutable { rp.deliver(info.object); },
          [self, rp, id, anywhere](caf::error& err) mutable {
            if (!anywhere || code_of(err) != errc::not_found) {
              rp.deliver(std::move(err));
              return;
            }
            // Not here: from the node that has it, straight from there.
            on_node_of(
              self, id, false,
              [self, rp, id](location& where) mutable {
                on_peer(self, rp, peer_atom_v, get_atom_v, std::move(where),
                        id);
              },
              [rp](caf::error err) mutable { rp.deliver(std::move(err)); });
          });
  return rp;
}

/// Runs `req` then answers null (for core calls replying bool).
template <class Handle, class... Ts>
caf::result<value> null_after(self_ptr self, const Handle& dest, Ts&&... xs) {
  auto rp = self->make_response_promise<value>();
  self->request(dest, std::chrono::seconds{30}, std::forward<Ts>(xs)...)
    .then([rp](bool) mutable { rp.deliver(value{}); },
          [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

/// Calls a plugin of this node, or of the node the directory names.
caf::result<value> call_plugin(self_ptr self, const std::string& name,
                               call_request req) {
  auto& st = self->state;
  if (st.shutting_down)
    return make_error(errc::unavailable, "the node is shutting down");
  if (st.plugins.count(name) == 0) {
    auto rp = self->make_response_promise<value>();
    auto local = find_plugin(self, name).error();
    on_node_of(
      self, name, true,
      [self, rp, name, req = std::move(req)](location& where) mutable {
        on_peer(self, rp, peer_atom_v, call_atom_v, std::move(where), name,
                std::move(req));
      },
      [rp, local](caf::error err) mutable {
        // Not in the cluster at all: say what this node has.
        rp.deliver(code_of(err) == errc::not_found && local ? local
                                                            : std::move(err));
      });
    return rp;
  }
  auto h = find_plugin(self, name);
  if (!(*h)->host)
    return make_error(errc::unavailable, why_not_running(name, **h));
  return self->delegate((*h)->host, call_atom_v, std::move(req));
}

caf::result<value> handle_api(self_ptr self, const std::string& plugin,
                              api_op op, value_list args, value_map kwargs) {
  auto& st = self->state;
  if (is_ui_op(op)) {
    if (st.cfg.head)
      return self->delegate(st.core, ui_atom_v, std::string{to_string(op)},
                            plugin, std::move(args));
    // A worker's own UI (`joy ui` here) first, else the head's: the
    // browser core of a bridge, wherever the plugin runs.
    auto rp = self->make_response_promise<value>();
    auto name = std::string{to_string(op)};
    self->request(st.core, std::chrono::seconds{5}, attach_atom_v)
      .then(
        [self, rp, name, plugin, args](bool local) mutable {
          auto& st = self->state;
          if (local) {
            rp.delegate(st.core, ui_atom_v, name, plugin, std::move(args));
            return;
          }
          self
            ->request(caf::actor_cast<caf::actor>(st.cluster),
                      std::chrono::minutes{60}, ui_atom_v, name, plugin, args)
            .then([rp](value& x) mutable { rp.deliver(std::move(x)); },
                  [self, rp, name, plugin, args](caf::error& err) mutable {
                    // The head is away: this node's core logs what only
                    // shows and refuses what needs an answer.
                    if (code_of(err) == errc::unavailable
                        || code_of(err) == errc::disconnected)
                      rp.delegate(self->state.core, ui_atom_v, name, plugin,
                                  std::move(args));
                    else
                      rp.deliver(std::move(err));
                  });
        },
        [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
    return rp;
  }
  switch (op) {
    case api_op::register_service: {
      auto* object = args.empty() ? nullptr : args[0].as_map();
      if (object == nullptr)
        return make_error(errc::invalid_argument,
                          "register_service takes a service object (a map)");
      auto field = [&](const char* key) -> std::string {
        auto* v = object->find(key);
        return v != nullptr && v->as_string() != nullptr ? *v->as_string()
                                                         : std::string{};
      };
      auto name = field("id").empty() ? field("name") : field("id");
      if (name.empty())
        name = "service-" + std::to_string(st.next_service++);
      service_info svc;
      svc.id = "public/" + plugin + ":" + name;
      svc.node = st.cfg.node_id;
      svc.name = field("name").empty() ? name : field("name");
      svc.type = field("type");
      svc.object = std::move(args[0]);
      auto rp = self->make_response_promise<value>();
      self->request(st.core, std::chrono::seconds{30}, register_atom_v, svc)
        .then(
          [self, rp](service_info& info) mutable {
            schedule_publish(self);
            rp.deliver(value{info.id});
          },
          [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    }
    case api_op::unregister_service: {
      auto id = text_arg(args, 0, "the service id");
      if (!id)
        return std::move(id.error());
      auto parsed = parse_service_id(*id);
      if (!parsed)
        return std::move(parsed.error());
      if (parsed->client != plugin || parsed->service.empty()
          || parsed->service == "default")
        return make_error(errc::permission_denied,
                          "plugin '" + plugin
                            + "' may only unregister services it registered");
      schedule_publish(self);
      return null_after(self, st.core, unregister_atom_v, *id);
    }
    case api_op::get_service: {
      auto id = text_arg(args, 0, "the service id");
      if (!id)
        return std::move(id.error());
      return service_object(self, *id);
    }
    case api_op::call_service: {
      // Where the plugin link's snapshot had no answer: a service of
      // another node, a plugin's default service, or bad arguments.
      auto id = text_arg(args, 0, "the service id");
      auto method = text_arg(args, 1, "the method name");
      if (!id || !method)
        return std::move(!id ? id.error() : method.error());
      auto* call_args = args.size() == 3 ? args[2].as_list() : nullptr;
      if (call_args == nullptr)
        return make_error(errc::invalid_argument,
                          "call_service takes a service id, a method name "
                          "and a list of arguments");
      auto rp = self->make_response_promise<value>();
      self
        ->request(caf::actor_cast<api_handler>(self), std::chrono::seconds{30},
                  api_atom_v, plugin,
                  static_cast<uint16_t>(api_op::get_service),
                  value_list{value{*id}}, value_map{})
        .then(
          [rp, method = *method, call_args = std::move(*call_args),
           kwargs = std::move(kwargs)](value& object) mutable {
            auto f = method_of(object, method);
            if (!f) {
              rp.deliver(std::move(f.error()));
              return;
            }
            rp.delegate(f->impl->target(), invoke_atom_v, *f,
                        std::move(call_args), std::move(kwargs));
          },
          [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    }
    case api_op::list_services: {
      // Every node's services; this node's alone when the head is away.
      auto query = args.empty() ? value{} : std::move(args[0]);
      auto rp = self->make_response_promise<value>();
      self->request(st.cluster, std::chrono::seconds{30}, list_atom_v, query)
        .then([rp](value& x) mutable { rp.deliver(std::move(x)); },
              [self, rp, query](caf::error&) mutable {
                rp.delegate(self->state.core, list_atom_v, std::move(query));
              });
      return rp;
    }
    case api_op::get_plugin: {
      auto name = text_arg(args, 0, "the plugin name");
      if (!name)
        return std::move(name.error());
      if (st.plugins.count(*name) > 0)
        return plugin_service(self, *name);
      return service_object(self, "public/" + *name + ":default");
    }
    case api_op::call: {
      auto target = text_arg(args, 0, "the plugin name");
      auto method = text_arg(args, 1, "the method name");
      if (!target || !method)
        return std::move(!target ? target.error() : method.error());
      call_request req;
      req.method = *method;
      req.args.assign(std::make_move_iterator(args.begin() + 2),
                      std::make_move_iterator(args.end()));
      req.kwargs = std::move(kwargs);
      return call_plugin(self, *target, std::move(req));
    }
    case api_op::emit: {
      auto event = text_arg(args, 0, "the event name");
      if (!event)
        return std::move(event.error());
      return self->delegate(st.core, emit_atom_v, *event,
                            args.size() > 1 ? std::move(args[1]) : value{},
                            plugin);
    }
    case api_op::on: {
      auto event = text_arg(args, 0, "the event name");
      if (!event)
        return std::move(event.error());
      auto* handler = args.size() > 1 ? args[1].as_function() : nullptr;
      if (handler == nullptr)
        return make_error(errc::invalid_argument,
                          "on takes an event name and a function");
      return null_after(self, st.core, on_atom_v, *event, *handler, plugin);
    }
    case api_op::off: {
      auto event = text_arg(args, 0, "the event name");
      if (!event)
        return std::move(event.error());
      auto rp = self->make_response_promise<value>();
      self
        ->request(st.core, std::chrono::seconds{30}, off_atom_v, *event, plugin)
        .then([rp](bool) mutable { rp.deliver(value{}); },
              [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    }
    case api_op::get_config: {
      auto key = text_arg(args, 0, "the setting's name");
      if (!key)
        return std::move(key.error());
      if (!key->empty() && (*key)[0] == '_') {
        // ImJoy: "_<field>" reads the plugin's own manifest.
        auto h = find_plugin(self, plugin);
        if (!h)
          return std::move(h.error());
        auto doc = parse_json((*h)->record.manifest);
        if (!doc || !doc->contains(key->substr(1)))
          return value{};
        auto x = from_json_tree((*doc)[key->substr(1)]);
        if (!x)
          return std::move(x.error());
        return std::move(*x);
      }
      auto rp = self->make_response_promise<value>();
      self->request(st.registry, registry_timeout, config_atom_v, plugin, *key)
        .then(
          [rp](std::string& text) mutable {
            auto x = from_json(text);
            if (x)
              rp.deliver(std::move(*x));
            else
              rp.deliver(std::move(x.error()));
          },
          [rp](caf::error& err) mutable {
            if (code_of(err) == errc::not_found)
              rp.deliver(value{});
            else
              rp.deliver(std::move(err));
          });
      return rp;
    }
    case api_op::set_config: {
      auto key = text_arg(args, 0, "the setting's name");
      if (!key)
        return std::move(key.error());
      if (!key->empty() && (*key)[0] == '_')
        return make_error(errc::permission_denied,
                          "settings starting with '_' are the manifest's, "
                          "read-only");
      auto x = args.size() > 1 ? args[1] : value{};
      std::string text;
      if (!x.is_null()) {
        auto json = to_json(x);
        if (!json)
          return make_error(code_of(json.error()),
                            "set_config: " + message_of(json.error()));
        text = std::move(*json);
      }
      return null_after(self, st.registry, config_atom_v, plugin, *key, text,
                        x.is_null());
    }
    default:
      return make_error(errc::unimplemented, "api call '"
                                               + std::string{to_string(op)}
                                               + "' is not served here");
  }
}

/// Queues an install on this node (one at a time); `archive`: a tarball
/// another node sent, or empty.
caf::result<plugin_info> enqueue_install(self_ptr self, std::string source,
                                         std::string archive) {
  auto& st = self->state;
  if (st.shutting_down)
    return make_error(errc::unavailable, "the node is shutting down");
  auto rp = self->make_response_promise<plugin_info>();
  st.installs.push_back(
    pending_install{std::move(source), rp, std::move(archive)});
  if (!st.installing)
    next_install(self);
  return rp;
}

/// Installs `source` on the node `node` (an id or its unique prefix; ""
/// lets the directory place it).
caf::result<plugin_info> install_on(self_ptr self, std::string source,
                                    std::string node) {
  auto& st = self->state;
  if (node == st.cfg.node_id) {
    return enqueue_install(self, std::move(source), {});
  }
  auto src = parse_plugin_source(source);
  if (!src)
    return std::move(src.error());
  auto rp = self->make_response_promise<plugin_info>();
  auto is_folder = src->kind == plugin_source::folder;
  // 1. The bytes, for a folder on this machine; 2. where; 3. there.
  auto ship
    = [self, rp, source, is_folder](location where, value archive) mutable {
        if (where.node_id == self->state.cfg.node_id) {
          rp.delegate(caf::actor_cast<node_actor>(self), install_atom_v, source,
                      where.node_id);
          return;
        }
        log(log_level::info, "node", "installing ", source, " on node ",
            where.node_id, is_folder ? " (sending the folder)" : "");
        self
          ->request(self->state.kj->gateway(), install_timeout, peer_atom_v,
                    install_atom_v, where, source, std::move(archive))
          .then(
            [self, rp, where](plugin_info& info) mutable {
              // The directory hears of it with that node's next publish;
              // this node knows now, so that a call right after the
              // install finds it.
              self->state.locations[location_key(info.record.name, true)]
                = cached_location{where, std::chrono::steady_clock::now()
                                           + location_ttl};
              rp.deliver(std::move(info));
            },
            [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
      };
  auto locate = [self, rp, node, ship](value archive, resources need) mutable {
    auto& st = self->state;
    if (node.empty()) {
      self->request(st.cluster, std::chrono::seconds{30}, place_atom_v, need)
        .then(
          [ship, archive](location& where) mutable {
            ship(std::move(where), std::move(archive));
          },
          [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return;
    }
    self->request(st.cluster, std::chrono::seconds{30}, nodes_atom_v)
      .then(
        [node, ship, archive, rp](std::vector<node_entry>& nodes) mutable {
          const node_entry* found = nullptr;
          int matches = 0;
          for (auto& n : nodes)
            if (n.node_id == node
                || (n.node_id.compare(0, node.size(), node) == 0)) {
              ++matches;
              found = &n;
              if (n.node_id == node) {
                matches = 1;
                break;
              }
            }
          if (matches != 1) {
            rp.deliver(make_error(
              matches == 0 ? errc::not_found : errc::invalid_argument,
              matches == 0 ? "no node '" + node + "' in the cluster"
                           : "'" + node + "' names more than one node"));
            return;
          }
          if (!found->up) {
            rp.deliver(make_error(errc::unavailable,
                                  "node " + found->node_id + " is down"));
            return;
          }
          ship(location{found->node_id, found->address}, std::move(archive));
        },
        [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
  };
  if (!is_folder) {
    // Fetched by the target itself; what it asks for is unknown here.
    locate(value{}, resources{});
    return rp;
  }
  self
    ->request(spawn_pack_worker(self->system(), st.cfg), install_timeout,
              archive_atom_v, source)
    .then(
      [locate](value& packed) mutable {
        auto* m = packed.as_map();
        auto number = [&](const char* key) -> uint64_t {
          auto* v = m != nullptr ? m->find(key) : nullptr;
          auto* n = v != nullptr ? v->as_uint64() : nullptr;
          return n != nullptr ? *n : 0;
        };
        resources need{static_cast<uint32_t>(number("cpus")), number("memory"),
                       static_cast<uint32_t>(number("gpus"))};
        auto* archive = m != nullptr ? m->find("archive") : nullptr;
        locate(archive != nullptr ? std::move(*archive) : value{}, need);
      },
      [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

} // namespace

node_actor spawn_node(caf::actor_system& sys, kj_thread& kj,
                      registry_actor registry, spawner_actor spawner,
                      core_actor core, cluster_actor cluster, node_config cfg,
                      std::vector<plugin_record> installed) {
  auto init = [&kj, registry, spawner, core, cluster, cfg,
               installed](self_ptr self) -> node_actor::behavior_type {
    auto& st = self->state;
    st.kj = &kj;
    st.registry = registry;
    st.spawner = spawner;
    st.core = core;
    st.cluster = cluster;
    st.cfg = cfg;
    st.started_at = now_ns();
    st.started = std::chrono::steady_clock::now();
    st.gpu_holders.resize(cfg.gpu_devices.size());
    // Installed plugins start with the node; they are known before the
    // first request arrives. Built-in ones start on first use.
    for (auto& rec : cfg.builtins)
      host_plugin(self, rec, false);
    for (auto& rec : installed) {
      if (is_builtin(cfg, rec.name)) {
        log(log_level::warning, "node", "the installed plugin '", rec.name,
            "' is hidden by the built-in one of that name");
        continue;
      }
      host_plugin(self, rec);
    }
    register_here(self, logs_service(self));
    self->delayed_send(self, cfg.log_check, tick_atom_v);
    schedule_publish(self);
    return {
      [self](status_atom) -> caf::result<node_status> {
        auto rp = self->make_response_promise<node_status>();
        auto build = [self](std::vector<service_info> services) {
          auto& st = self->state;
          node_status s;
          s.node_id = st.cfg.node_id;
          s.version = std::string{version()};
          s.address = st.cfg.address;
          s.home = st.cfg.home;
          s.started_at = st.started_at;
          s.uptime_ms = static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::milliseconds>(
              std::chrono::steady_clock::now() - st.started)
              .count());
          s.cpus = std::max(1u, std::thread::hardware_concurrency());
          s.memory_bytes = static_cast<uint64_t>(::sysconf(_SC_PHYS_PAGES))
                           * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
          s.gpus = static_cast<uint32_t>(st.cfg.gpu_devices.size());
          s.gpu_devices = st.cfg.gpu_devices;
          for (auto& d : s.gpu_devices)
            if (d.index < st.gpu_holders.size())
              d.holder = st.gpu_holders[d.index];
          s.sandbox = st.cfg.sandbox_description;
          s.pid = static_cast<int32_t>(::getpid());
          s.head = st.cfg.head;
          s.listen = st.cfg.listen;
          s.bridge = st.cfg.bridge;
          s.tls = st.cfg.tls;
          for (auto& [name, h] : st.plugins)
            s.plugins.push_back(h.info());
          for (auto& svc : services)
            s.services.push_back(svc.id);
          return s;
        };
        self->request(self->state.core, std::chrono::seconds{5}, list_atom_v)
          .then(
            [rp, build](std::vector<service_info>& services) mutable {
              rp.deliver(build(std::move(services)));
            },
            [rp, build](caf::error&) mutable { rp.deliver(build({})); });
        return rp;
      },
      [self](install_atom, std::string& source) -> caf::result<plugin_info> {
        return enqueue_install(self, std::move(source), {});
      },
      [self](list_atom) -> std::vector<plugin_info> {
        std::vector<plugin_info> out;
        for (auto& [name, h] : self->state.plugins)
          out.push_back(h.info());
        return out;
      },
      [self](call_atom, const std::string& name,
             call_request& req) -> caf::result<value> {
        return call_plugin(self, name, std::move(req));
      },
      [self](call_atom, const std::string& name, call_request& req,
             bool here_only) -> caf::result<value> {
        if (here_only && self->state.plugins.count(name) == 0)
          return find_plugin(self, name).error();
        return call_plugin(self, name, std::move(req));
      },
      [self](get_atom, const std::string& id) -> caf::result<value> {
        return service_object(self, id, false);
      },
      [self](install_atom, std::string& source,
             std::string& node) -> caf::result<plugin_info> {
        return install_on(self, std::move(source), std::move(node));
      },
      [self](archive_atom, std::string& source,
             std::string& archive) -> caf::result<plugin_info> {
        return enqueue_install(self, std::move(source), std::move(archive));
      },
      [self](publish_atom) { publish(self); },
      [self](down_atom, const std::string& node) {
        auto& locations = self->state.locations;
        for (auto i = locations.begin(); i != locations.end();)
          if (i->second.where.node_id == node)
            i = locations.erase(i);
          else
            ++i;
      },
      [self](start_atom, const std::string& name) -> caf::result<plugin_info> {
        return ask_host(self, name, start_atom_v,
                        self->state.cfg.start_timeout);
      },
      [self](stop_atom, const std::string& name) -> caf::result<plugin_info> {
        return ask_host(self, name, stop_atom_v, self->state.cfg.stop_grace);
      },
      [self](uninstall_atom,
             const std::string& name) -> caf::result<plugin_info> {
        auto h = find_plugin(self, name);
        if (!h)
          return std::move(h.error());
        auto& st = self->state;
        if (is_builtin(st.cfg, name))
          return builtin_refusal(name, "uninstalled");
        release_gpus(st.gpu_holders, name);
        auto info = (*h)->info();
        info.status.state = plugin_state::stopped;
        info.status.pid = 0;
        if ((*h)->host)
          retire_host(self, (*h)->host);
        st.plugins.erase(name);
        if (auto remote = st.cfg.routes.remote)
          st.kj->post(
            [remote, name](kj_context&) { remote->not_hosted(name); });
        caf::anon_send(st.core, forget_atom_v, name);
        schedule_publish(self);
        auto rp = self->make_response_promise<plugin_info>();
        // Its folder, and its work dir and that's image: uninstall forgets
        // everything of it.
        std::vector<std::string> paths{
          (fs::path{st.cfg.plugins_dir} / name).string()};
        if (!st.cfg.work_dir.empty())
          paths.insert(paths.end(),
                       {(fs::path{st.cfg.work_dir} / name).string(),
                        image_of(st.cfg, name)});
        self->request(st.registry, registry_timeout, remove_atom_v, name)
          .then(
            [self, rp, info, paths](bool) mutable {
              log(log_level::info, "node", "uninstalled ", info.record.name);
              self
                ->request(spawn_remove_worker(self->system()), install_timeout,
                          remove_atom_v, paths)
                .then([rp, info](bool) mutable { rp.deliver(info); },
                      [rp](caf::error& err) mutable {
                        rp.deliver(std::move(err));
                      });
            },
            [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      },
      [self](rollback_atom,
             const std::string& name) -> caf::result<plugin_info> {
        auto h = find_plugin(self, name);
        if (!h)
          return std::move(h.error());
        if (is_builtin(self->state.cfg, name))
          return builtin_refusal(name, "rolled back");
        auto rp = self->make_response_promise<plugin_info>();
        self
          ->request(self->state.registry, registry_timeout, rollback_atom_v,
                    name)
          .then(
            [self, rp](plugin_record& rec) mutable {
              auto& st = self->state;
              log(log_level::info, "node", "rolled ", rec.name, " back to ",
                  rec.version);
              if (auto i = st.plugins.find(rec.name); i != st.plugins.end()) {
                if (i->second.host)
                  retire_host(self, i->second.host);
                caf::anon_send(st.core, forget_atom_v, rec.name);
              }
              host_plugin(self, rec);
              auto& now = st.plugins[rec.name];
              rp.deliver(now.info());
            },
            [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      },
      [self](tick_atom) {
        auto& st = self->state;
        std::vector<std::string> logs{st.cfg.logs_dir + "/joyd.log"};
        for (auto& [name, h] : st.plugins)
          logs.push_back(st.cfg.logs_dir + "/" + name + ".log");
        self
          ->request(spawn_rotate_worker(self->system()),
                    std::chrono::seconds{60}, tick_atom_v, std::move(logs),
                    st.cfg.log_max_bytes, st.cfg.log_keep)
          .then(
            [self](bool) {
              self->delayed_send(self, self->state.cfg.log_check, tick_atom_v);
            },
            [self](caf::error&) {
              self->delayed_send(self, self->state.cfg.log_check, tick_atom_v);
            });
      },
      [self](shutdown_atom) -> caf::result<bool> {
        auto& st = self->state;
        st.shutting_down = true;
        // Hosts still stopping after a replacement end with the node.
        for (auto& host : st.retired)
          self->send_exit(host, caf::exit_reason::user_shutdown);
        st.retired.clear();
        auto rp = self->make_response_promise<bool>();
        auto pending = std::make_shared<size_t>(0);
        for (auto& [name, h] : st.plugins)
          if (h.host)
            ++*pending;
        if (*pending == 0) {
          rp.deliver(true);
          return rp;
        }
        for (auto& [name, h] : st.plugins) {
          if (!h.host)
            continue;
          auto done = [rp, pending]() mutable {
            if (--*pending == 0)
              rp.deliver(true);
          };
          self
            ->request(h.host, st.cfg.stop_grace + std::chrono::seconds{5},
                      stop_atom_v)
            .then([done](plugin_status&) mutable { done(); },
                  [done](caf::error&) mutable { done(); });
        }
        return rp;
      },
      [self](state_atom, plugin_status& status) {
        auto& st = self->state;
        auto i = st.plugins.find(status.name);
        if (i == st.plugins.end())
          return;
        auto host = caf::actor_cast<caf::actor_addr>(self->current_sender());
        if (host && host != caf::actor_cast<caf::actor_addr>(i->second.host))
          return; // a retired host
        auto was_running = i->second.status.state == plugin_state::running;
        i->second.status = status;
        schedule_publish(self);
        auto running = status.state == plugin_state::running;
        if (running && !was_running) {
          register_here(self, default_service(self, status));
        } else if (!running && was_running) {
          // Its services and event handlers go with it.
          caf::anon_send(st.core, forget_atom_v, status.name);
        }
      },
      [self](api_atom, std::string& plugin, uint16_t op, value_list& args,
             value_map& kwargs) -> caf::result<value> {
        auto known = api_op_from_wire(op);
        if (!known)
          return make_error(errc::unimplemented,
                            "this node does not know api call #"
                              + std::to_string(op));
        return handle_api(self, plugin, *known, std::move(args),
                          std::move(kwargs));
      },
      [self](invoke_atom, function_ref& f, value_list& args,
             value_map& kwargs) -> caf::result<value> {
        return run_local_function(self, f, std::move(args), std::move(kwargs));
      },
    };
  };
  return sys.spawn(init);
}

} // namespace joy
