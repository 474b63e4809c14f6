// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/node/node_actor.hpp"

#include <unistd.h>

#include <chrono>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <thread>
#include <type_traits>

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/node/installer.hpp"
#include "runtime/log.hpp"
#include "runtime/manifest.hpp"
#include "runtime/protocol.hpp"

namespace fs = std::filesystem;

namespace joy {

namespace {

/// Does the blocking part of an install (file I/O) on its own thread, once.
using install_worker = caf::typed_actor<
  caf::replies_to<install_atom, std::string, std::string>::with<plugin_record>>;

install_worker spawn_install_worker(caf::actor_system& sys) {
  return sys.spawn<caf::detached>(
    [](install_worker::pointer self) -> install_worker::behavior_type {
      return {
        [self](install_atom, const std::string& source,
               const std::string& plugins_dir) -> caf::result<plugin_record> {
          self->quit();
          auto manifest = load_plugin_folder(source);
          if (!manifest)
            return std::move(manifest.error());
          if (manifest->type != "native")
            return make_error(errc::unimplemented,
                              "plugin '" + manifest->name + "' is of type '"
                                + manifest->type
                                + "', which this node cannot run yet (it "
                                  "runs native plugins)");
          auto rec = install_plugin_folder(source, plugins_dir);
          if (!rec)
            return std::move(rec.error());
          return std::move(*rec);
        },
      };
    });
}

struct hosted {
  plugin_record record;
  plugin_host_actor host;
  plugin_status status;
};

struct pending_install {
  std::string source;
  caf::typed_response_promise<plugin_info> promise;
};

struct node_state {
  static inline const char* name = "node";

  kj_thread* kj = nullptr;
  registry_actor registry;
  spawner_actor spawner;
  core_actor core;
  node_config cfg;
  std::map<std::string, hosted> plugins;
  int64_t started_at = 0;
  std::chrono::steady_clock::time_point started;
  bool shutting_down = false;
  std::deque<pending_install> installs;
  bool installing = false;
};

using self_ptr = node_actor::stateful_pointer<node_state>;

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

caf::expected<launch_spec> make_launch_spec(const node_config& cfg,
                                            const plugin_record& rec) {
  auto manifest = parse_manifest(rec.manifest);
  if (!manifest)
    return manifest.error();
  launch_spec spec;
  spec.name = rec.name;
  spec.executable = (fs::path{rec.path} / manifest->entry).string();
  spec.work_dir = rec.path;
  spec.log_file = (fs::path{cfg.logs_dir} / (rec.name + ".log")).string();
  // Deny by default: the plugin sees none of the daemon's environment.
  spec.env = {{"PATH", "/usr/local/bin:/usr/bin:/bin"},
              {"HOME", rec.path},
              {"LANG", "C.UTF-8"},
              {std::string{plugin_name_env}, rec.name}};
  if (const char* level = std::getenv("JOY_LOG"))
    spec.env.emplace_back("JOY_LOG", level);
  return spec;
}

/// Spawns (or replaces) the host of `rec` and starts it.
void host_plugin(self_ptr self, const plugin_record& rec) {
  auto& st = self->state;
  auto spec = make_launch_spec(st.cfg, rec);
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
  auto observer = caf::actor_cast<plugin_observer>(self);
  h.host = spawn_plugin_host(self->system(), *st.kj, st.spawner, std::move(hc),
                             observer);
  // Hosts die with the node, and their processes with them.
  self->link_to(h.host);
  auto host = h.host;
  auto name = rec.name;
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
  self
    ->request(host, self->state.cfg.stop_grace + std::chrono::seconds{5},
              stop_atom_v)
    .then(
      [self, host](plugin_status&) {
        self->send_exit(host, caf::exit_reason::user_shutdown);
      },
      [self, host](caf::error&) {
        self->send_exit(host, caf::exit_reason::user_shutdown);
      });
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
            job.promise.deliver(plugin_info{cur.record, cur.status});
            next_install(self);
            return;
          }
          if (cur.host)
            retire_host(self, cur.host);
          if (i->second.status.state == plugin_state::running)
            caf::anon_send(st.core, unregister_atom_v, service_of(stored.name));
        }
        host_plugin(self, stored);
        auto& h = st.plugins[stored.name];
        job.promise.deliver(plugin_info{h.record, h.status});
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
  auto worker = spawn_install_worker(self->system());
  self
    ->request(worker, install_timeout, install_atom_v, job.source,
              st.cfg.plugins_dir)
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
    if (std::is_same_v<Atom, stop_atom>)
      return plugin_info{(*h)->record, (*h)->status};
    return make_error(errc::unavailable, "plugin '" + name + "' cannot run: "
                                           + (*h)->status.last_error);
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

} // namespace

node_actor spawn_node(caf::actor_system& sys, kj_thread& kj,
                      registry_actor registry, spawner_actor spawner,
                      core_actor core, node_config cfg) {
  auto init = [&kj, registry, spawner, core,
               cfg](self_ptr self) -> node_actor::behavior_type {
    auto& st = self->state;
    st.kj = &kj;
    st.registry = registry;
    st.spawner = spawner;
    st.core = core;
    st.cfg = cfg;
    st.started_at = now_ns();
    st.started = std::chrono::steady_clock::now();
    // Installed plugins start with the node.
    self->request(registry, registry_timeout, list_atom_v)
      .then(
        [self](std::vector<plugin_record>& records) {
          for (auto& rec : records)
            if (self->state.plugins.count(rec.name) == 0)
              host_plugin(self, rec);
        },
        [](caf::error& err) {
          log(log_level::error, "node",
              "cannot read the registry: ", message_of(err));
        });
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
          s.gpus = 0;
          s.sandbox = "none";
          s.pid = static_cast<int32_t>(::getpid());
          s.head = st.cfg.head;
          for (auto& [name, h] : st.plugins)
            s.plugins.push_back(plugin_info{h.record, h.status});
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
        auto& st = self->state;
        if (st.shutting_down)
          return make_error(errc::unavailable, "the node is shutting down");
        auto rp = self->make_response_promise<plugin_info>();
        st.installs.push_back(pending_install{std::move(source), rp});
        if (!st.installing)
          next_install(self);
        return rp;
      },
      [self](list_atom) -> std::vector<plugin_info> {
        std::vector<plugin_info> out;
        for (auto& [name, h] : self->state.plugins)
          out.push_back(plugin_info{h.record, h.status});
        return out;
      },
      [self](call_atom, const std::string& name,
             call_request& req) -> caf::result<value> {
        auto h = find_plugin(self, name);
        if (!h)
          return std::move(h.error());
        if (!(*h)->host)
          return make_error(errc::unavailable,
                            "plugin '" + name
                              + "' cannot run: " + (*h)->status.last_error);
        if (self->state.shutting_down)
          return make_error(errc::unavailable, "the node is shutting down");
        return self->delegate((*h)->host, call_atom_v, std::move(req));
      },
      [self](start_atom, const std::string& name) -> caf::result<plugin_info> {
        return ask_host(self, name, start_atom_v,
                        self->state.cfg.start_timeout);
      },
      [self](stop_atom, const std::string& name) -> caf::result<plugin_info> {
        return ask_host(self, name, stop_atom_v, self->state.cfg.stop_grace);
      },
      [self](shutdown_atom) -> caf::result<bool> {
        auto& st = self->state;
        st.shutting_down = true;
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
        auto running = status.state == plugin_state::running;
        if (running && !was_running) {
          service_info svc;
          svc.id = service_of(status.name);
          svc.node = st.cfg.node_id;
          self->request(st.core, std::chrono::seconds{5}, register_atom_v, svc)
            .then([](service_info&) {},
                  [](caf::error& err) {
                    log(log_level::warning, "node",
                        "cannot register service: ", message_of(err));
                  });
        } else if (!running && was_running) {
          caf::anon_send(st.core, unregister_atom_v, service_of(status.name));
        }
      },
    };
  };
  return sys.spawn(init);
}

} // namespace joy
