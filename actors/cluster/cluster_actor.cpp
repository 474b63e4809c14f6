// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/cluster/cluster_actor.hpp"

#include <map>

#include <caf/typed_event_based_actor.hpp>

#include "actors/core/service_info.hpp"
#include "runtime/errc.hpp"
#include "runtime/log.hpp"
#include "runtime/value_json.hpp"

namespace joy {

namespace {

struct member {
  node_entry entry;
  phi_accrual detector;
  std::vector<service_entry> services;
};

struct cluster_state {
  static inline const char* name = "cluster";
  cluster_config cfg;
  /// By node id; the head is one of them.
  std::map<std::string, member> nodes;
  /// Bumped whenever a node comes or goes.
  uint64_t epoch = 1;
};

using self_ptr = cluster_actor::stateful_pointer<cluster_state>;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

/// The detector's clock is the actor's, so tests drive it.
phi_accrual::clock::time_point now(self_ptr self) {
  return self->clock().now();
}

void persist(self_ptr self) {
  auto& st = self->state;
  if (!st.cfg.registry)
    return;
  std::vector<node_entry> known;
  for (auto& [id, m] : st.nodes)
    if (!m.entry.head)
      known.push_back(m.entry);
  self
    ->request(st.cfg.registry, std::chrono::seconds{30}, meta_atom_v,
              std::string{"cluster_nodes"}, nodes_to_json(known))
    .then([](bool) {},
          [](caf::error& err) {
            log(log_level::warning, "cluster",
                "cannot record the known nodes: ", message_of(err));
          });
}

void mark_down(self_ptr self, member& m, const char* why) {
  if (!m.entry.up || m.entry.head)
    return;
  auto& st = self->state;
  // Its plugins and services stay remembered, so that callers hear that
  // their node is down, but nothing is located there until it returns.
  m.entry.up = false;
  ++st.epoch;
  log(log_level::warning, "cluster", "node ", m.entry.node_id, " at ",
      m.entry.address, " is down: ", why);
  if (st.cfg.on_down)
    caf::anon_send(st.cfg.on_down, peer_atom_v, down_atom_v, m.entry.node_id);
}

value descriptor(const node_entry& node, const service_entry& svc) {
  value_list methods;
  for (auto& m : svc.methods)
    methods.emplace_back(m);
  auto parsed = parse_service_id(svc.id);
  return value{
    value_map{{"id", value{svc.id}},
              {"name", value{svc.name}},
              {"type", value{svc.type}},
              {"client", value{parsed ? parsed->client : std::string{}}},
              {"node", value{node.node_id}},
              {"methods", value{std::move(methods)}}}};
}

/// A full service id as the core stores it.
std::string canonical(const service_id& id) {
  return (id.workspace.empty() ? std::string{"public"} : id.workspace) + "/"
         + id.client + ":" + (id.service.empty() ? "default" : id.service);
}

location where(const node_entry& x) {
  return location{x.node_id, x.address};
}

} // namespace

cluster_actor spawn_cluster(caf::actor_system& sys, cluster_config cfg) {
  return sys.spawn([cfg = std::move(cfg)](
                     self_ptr self) mutable -> cluster_actor::behavior_type {
    auto& st = self->state;
    st.cfg = std::move(cfg);
    for (auto& k : st.cfg.known) {
      member m{k, phi_accrual{st.cfg.detector}, {}};
      m.entry.up = false;
      m.entry.head = false;
      m.entry.plugins.clear();
      st.nodes.emplace(k.node_id, std::move(m));
    }
    {
      member head{st.cfg.self, phi_accrual{st.cfg.detector}, {}};
      head.entry.up = true;
      head.entry.head = true;
      head.entry.last_seen = now_ns();
      st.nodes[head.entry.node_id] = std::move(head);
    }
    self->delayed_send(self, st.cfg.check_interval, tick_atom_v);
    return {
      [self](join_atom, node_entry& entry) -> caf::result<uint64_t> {
        auto& st = self->state;
        if (entry.node_id.empty() || entry.address.empty())
          return make_error(errc::invalid_argument,
                            "a joining node needs an id and an address");
        auto i = st.nodes.find(entry.node_id);
        if (i != st.nodes.end() && i->second.entry.head)
          return make_error(errc::already_exists,
                            "node id " + entry.node_id
                              + " is the head's own: two nodes share a home?");
        if (i == st.nodes.end())
          i = st.nodes
                .emplace(entry.node_id,
                         member{{}, phi_accrual{st.cfg.detector}, {}})
                .first;
        auto& m = i->second;
        bool changed = !m.entry.up || m.entry.address != entry.address
                       || m.entry.version != entry.version;
        entry.up = true;
        entry.head = false;
        entry.last_seen = now_ns();
        // What it runs arrives with `publish`; until then, what it had.
        entry.plugins = std::move(m.entry.plugins);
        entry.committed = m.entry.committed;
        m.entry = std::move(entry);
        m.detector.reset();
        m.detector.heartbeat(now(self));
        if (changed) {
          ++st.epoch;
          log(log_level::info, "cluster", "node ", m.entry.node_id, " at ",
              m.entry.address, " joined (Joy ", m.entry.version, ")");
          persist(self);
        }
        return st.epoch;
      },
      [self](heartbeat_atom, const std::string& id,
             uint64_t) -> caf::result<uint64_t> {
        auto& st = self->state;
        auto i = st.nodes.find(id);
        if (i == st.nodes.end() || !i->second.entry.up)
          return make_error(errc::not_found,
                            "node " + id + " is not a member: join first");
        i->second.detector.heartbeat(now(self));
        i->second.entry.last_seen = now_ns();
        return st.epoch;
      },
      [self](publish_atom, const std::string& id,
             std::vector<std::string>& plugins, resources committed,
             std::vector<service_entry>& services) -> caf::result<bool> {
        auto& st = self->state;
        auto i = st.nodes.find(id);
        if (i == st.nodes.end() || !i->second.entry.up)
          return make_error(errc::not_found,
                            "node " + id + " is not a member: join first");
        i->second.entry.plugins = std::move(plugins);
        i->second.entry.committed = committed;
        for (auto& svc : services)
          if (auto parsed = parse_service_id(svc.id))
            svc.id = canonical(*parsed);
        i->second.services = std::move(services);
        return true;
      },
      [self](locate_atom, const std::string& what, bool plugin,
             const std::string& asking) -> caf::result<location> {
        auto& st = self->state;
        std::string key = what;
        if (!plugin) {
          auto parsed = parse_service_id(what);
          if (!parsed)
            return std::move(parsed.error());
          key = canonical(*parsed);
        }
        auto has = [&](const member& m) {
          if (plugin)
            return std::find(m.entry.plugins.begin(), m.entry.plugins.end(),
                             key)
                   != m.entry.plugins.end();
          return std::any_of(m.services.begin(), m.services.end(),
                             [&](auto& s) { return s.id == key; });
        };
        const member* found = nullptr;
        if (auto i = st.nodes.find(asking);
            i != st.nodes.end() && i->second.entry.up && has(i->second))
          found = &i->second;
        for (auto& [id, m] : st.nodes)
          if (found == nullptr && m.entry.up && has(m))
            found = &m;
        if (found != nullptr)
          return where(found->entry);
        auto kind = plugin ? "plugin '" : "service '";
        for (auto& [id, m] : st.nodes)
          if (!m.entry.up && has(m))
            return make_error(errc::disconnected,
                              kind + what + "' is on node " + id + " at "
                                + m.entry.address + ", which is down");
        return make_error(errc::not_found, std::string{"no "} + kind + what
                                             + "' on any node of the cluster");
      },
      [self](nodes_atom) {
        auto& st = self->state;
        std::vector<node_entry> out;
        out.push_back(st.nodes.at(st.cfg.self.node_id).entry);
        for (auto& [id, m] : st.nodes)
          if (!m.entry.head)
            out.push_back(m.entry);
        return out;
      },
      [self](list_atom, const value& query) -> caf::result<value> {
        if (!query.is_null() && !query.is(value::kind::string)
            && !query.is(value::kind::map))
          return make_error(errc::invalid_argument,
                            "list_services takes a name, a map or nothing");
        value_list out;
        for (auto& [id, m] : self->state.nodes)
          if (m.entry.up)
            for (auto& svc : m.services) {
              auto desc = descriptor(m.entry, svc);
              if (descriptor_matches(desc, query))
                out.push_back(std::move(desc));
            }
        return value{std::move(out)};
      },
      [self](place_atom, resources need) -> caf::result<location> {
        // Most room left after the plugin, by memory then CPUs; GPUs are
        // a hard constraint.
        const member* best = nullptr;
        int64_t best_memory = 0;
        int64_t best_cpus = 0;
        for (auto& [id, m] : self->state.nodes) {
          auto& e = m.entry;
          if (!e.up)
            continue;
          auto memory = static_cast<int64_t>(e.total.memory_bytes)
                        - static_cast<int64_t>(e.committed.memory_bytes)
                        - static_cast<int64_t>(need.memory_bytes);
          auto cpus = static_cast<int64_t>(e.total.cpus)
                      - static_cast<int64_t>(e.committed.cpus)
                      - static_cast<int64_t>(need.cpus);
          auto gpus = static_cast<int64_t>(e.total.gpus)
                      - static_cast<int64_t>(e.committed.gpus)
                      - static_cast<int64_t>(need.gpus);
          if (memory < 0 || cpus < 0 || gpus < 0)
            continue;
          if (best == nullptr || memory > best_memory
              || (memory == best_memory && cpus > best_cpus)) {
            best = &m;
            best_memory = memory;
            best_cpus = cpus;
          }
        }
        if (best == nullptr)
          return make_error(
            errc::unavailable,
            "no node that is up has room for " + std::to_string(need.cpus)
              + " CPUs, " + std::to_string(need.memory_bytes >> 20)
              + " MiB and " + std::to_string(need.gpus) + " GPUs");
        return where(best->entry);
      },
      [self](down_atom, const std::string& id) {
        auto i = self->state.nodes.find(id);
        if (i != self->state.nodes.end())
          mark_down(self, i->second, "its connection closed");
      },
      [self](leave_atom, const std::string& id) -> caf::result<bool> {
        auto& st = self->state;
        auto i = st.nodes.find(id);
        if (i == st.nodes.end())
          return make_error(errc::not_found, "no node " + id);
        if (i->second.entry.head)
          return make_error(errc::invalid_argument, "the head cannot leave");
        log(log_level::info, "cluster", "node ", id, " at ",
            i->second.entry.address, " left");
        st.nodes.erase(i);
        ++st.epoch;
        if (st.cfg.on_down)
          caf::anon_send(st.cfg.on_down, peer_atom_v, down_atom_v, id);
        persist(self);
        return true;
      },
      [self](tick_atom) {
        auto t = now(self);
        for (auto& [id, m] : self->state.nodes)
          if (m.entry.up && !m.entry.head && m.detector.suspects(t))
            mark_down(self, m, "its heartbeats stopped");
        self->delayed_send(self, self->state.cfg.check_interval, tick_atom_v);
      },
    };
  });
}

std::string nodes_to_json(const std::vector<node_entry>& nodes) {
  json out = json::array();
  for (auto& n : nodes)
    out.push_back({{"id", n.node_id},
                   {"address", n.address},
                   {"version", n.version},
                   {"last_seen", n.last_seen}});
  return out.dump();
}

std::vector<node_entry> nodes_from_json(const std::string& text) {
  std::vector<node_entry> out;
  auto doc = parse_json(text);
  if (!doc || !doc->is_array())
    return out;
  for (auto& x : *doc) {
    if (!x.is_object() || !x.contains("id") || !x["id"].is_string())
      continue;
    node_entry n;
    n.node_id = x["id"].get<std::string>();
    n.address = x.value("address", std::string{});
    n.version = x.value("version", std::string{});
    n.last_seen = x.value("last_seen", int64_t{0});
    out.push_back(std::move(n));
  }
  return out;
}

} // namespace joy
