// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/bridge/bridge_actor.hpp"

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/bridge/hypha_envelope.hpp"
#include "actors/bridge/hypha_ids.hpp"
#include "actors/bridge/msgpack_value.hpp"
#include "actors/bridge/ws_session.hpp"
#include "runtime/errc.hpp"
#include "runtime/log.hpp"

namespace joy {

bool may_access(const hypha_service& x, const std::string& caller_ws) {
  if (x.visibility != "protected" || x.workspace == caller_ws)
    return true;
  return std::find(x.authorized_workspaces.begin(),
                   x.authorized_workspaces.end(), caller_ws)
         != x.authorized_workspaces.end();
}

namespace {

/// Services one client may register.
constexpr std::size_t max_services_per_client = 1000;

struct client_entry {
  std::string ws;
  std::string cid;
  value user;
  caf::actor session;
  uint64_t generation = 0;
  std::set<std::string> events;
};

struct bridge_state {
  bridge_settings_ptr cfg;
  /// By "ws/cid".
  std::map<std::string, client_entry> clients;
  /// By "ws/cid:sid@app".
  std::map<std::string, hypha_service> services;
  uint64_t next_generation = 1;
  std::minstd_rand rng{std::random_device{}()};
  static inline const char* name = "joy.bridge";
};

using self_ptr = bridge_actor::stateful_pointer<bridge_state>;

/// Sessions are kept untyped in the interface (ws_session.hpp includes
/// this header); here they get their type back.
ws_session_actor session_of(const caf::actor& x) {
  return caf::actor_cast<ws_session_actor>(x);
}

std::string service_key(const hypha_service& x) {
  return x.id + "@" + x.app;
}

/// A frame the bridge pushes as an event: `{type, to: "*", from, data}`.
std::string event_frame(const bridge_settings& cfg, const std::string& type,
                        value data) {
  value_map main{{"type", type},
                 {"to", "*"},
                 {"from", "*/" + cfg.manager_id},
                 {"data", std::move(data)}};
  auto frame = pack(value{std::move(main)});
  return frame ? std::move(*frame) : std::string{};
}

/// Sends event `type` to the clients of `ws` subscribed to it.
void broadcast(self_ptr self, const std::string& ws, const std::string& type,
               value data) {
  std::string frame;
  for (auto& [key, c] : self->state.clients) {
    if (c.ws != ws || c.events.count(type) == 0)
      continue;
    if (frame.empty())
      frame = event_frame(*self->state.cfg, type, data);
    self->send(session_of(c.session), deliver_atom_v, frame);
  }
}

/// Forgets the services of `ws/cid` (in the core too).
void drop_services(self_ptr self, const std::string& ws,
                   const std::string& cid) {
  auto& st = self->state;
  for (auto i = st.services.begin(); i != st.services.end();) {
    if (i->second.workspace == ws && i->second.client == cid) {
      if (i->second.service != "built-in") {
        caf::anon_send(st.cfg->core, unregister_atom_v, i->second.id);
        caf::anon_send(st.cfg->node, publish_atom_v);
      }
      i = st.services.erase(i);
    } else {
      ++i;
    }
  }
}

void evict(self_ptr self, const std::string& key) {
  auto& st = self->state;
  auto i = st.clients.find(key);
  if (i == st.clients.end())
    return;
  auto ws = i->second.ws;
  auto cid = i->second.cid;
  drop_services(self, ws, cid);
  st.clients.erase(i);
  broadcast(self, ws, "client_disconnected",
            value_map{{"id", cid}, {"workspace", ws}});
}

uint64_t enter(self_ptr self, const std::string& ws, const std::string& cid,
               value user, caf::actor session) {
  auto& st = self->state;
  auto& c = st.clients[ws + "/" + cid];
  c.ws = ws;
  c.cid = cid;
  c.user = std::move(user);
  c.session = std::move(session);
  c.generation = st.next_generation++;
  broadcast(self, ws, "client_connected",
            value_map{{"id", cid}, {"workspace", ws}});
  return c.generation;
}

/// The fields of a list_services query (hypha §6.3).
struct list_query {
  std::string workspace;
  std::string client = "*";
  std::string service = "*";
  std::string visibility = "*";
  std::string type = "*";
  std::string app = "*";
  bool include_unlisted = false;
};

caf::expected<list_query> parse_query(const value& q,
                                      const std::string& caller_ws) {
  list_query out;
  out.workspace = caller_ws;
  if (q.is_null())
    return out;
  if (auto* s = q.as_string()) {
    std::string_view text{*s};
    if (auto slash = text.find('/'); slash != std::string_view::npos) {
      out.workspace = std::string{text.substr(0, slash)};
      text = text.substr(slash + 1);
      if (auto colon = text.find(':'); colon != std::string_view::npos) {
        out.client = std::string{text.substr(0, colon)};
        out.service = std::string{text.substr(colon + 1)};
      } else if (!text.empty()) {
        out.service = std::string{text};
      }
    } else if (auto colon = text.find(':'); colon != std::string_view::npos) {
      out.client = std::string{text.substr(0, colon)};
      out.service = std::string{text.substr(colon + 1)};
    } else {
      out.workspace = std::string{text};
    }
  } else if (auto* m = q.as_map()) {
    for (auto& [k, v] : *m) {
      if (k == "include_unlisted") {
        out.include_unlisted = v.as_bool() != nullptr && *v.as_bool();
        continue;
      }
      auto* text = v.as_string();
      if (text == nullptr && !v.is_null())
        return make_error(errc::invalid_argument,
                          "list_services: '" + k + "' must be a string");
      auto str = text != nullptr ? *text : std::string{"*"};
      if (k == "workspace")
        out.workspace = str;
      else if (k == "client_id")
        out.client = str;
      else if (k == "service_id" || k == "id")
        out.service = str;
      else if (k == "visibility")
        out.visibility = str;
      else if (k == "type")
        out.type = str;
      else if (k == "app_id")
        out.app = str;
      else
        return make_error(errc::invalid_argument,
                          "list_services: unknown query key '" + k + "'");
    }
  } else {
    return make_error(errc::invalid_argument,
                      "list_services takes nothing, a string or a map");
  }
  if (out.workspace.empty())
    out.workspace = caller_ws;
  if (out.workspace == "*")
    out.visibility = "public";
  // A full id as service_id ("ws/cid:sid") narrows the others.
  if (auto colon = out.service.find(':'); colon != std::string::npos) {
    auto head = out.service.substr(0, colon);
    out.service = out.service.substr(colon + 1);
    if (auto slash = head.find('/'); slash != std::string::npos) {
      out.workspace = head.substr(0, slash);
      head = head.substr(slash + 1);
    }
    out.client = head;
  }
  return out;
}

std::string text_of(const value& info, std::string_view key) {
  auto* m = info.as_map();
  auto* v = m != nullptr ? m->find(key) : nullptr;
  return v != nullptr && v->as_string() != nullptr ? *v->as_string()
                                                   : std::string{};
}

bool matches(const hypha_service& x, const list_query& q,
             const std::string& caller_ws) {
  if (!glob_match(q.workspace, x.workspace) && q.workspace != "*")
    return false;
  if (!glob_match(q.client, x.client) || !glob_match(q.service, x.service)
      || !glob_match(q.visibility, x.visibility) || !glob_match(q.app, x.app)
      || !glob_match(q.type, text_of(x.info, "type")))
    return false;
  if (x.visibility == "unlisted"
      && !(q.include_unlisted && x.workspace == caller_ws))
    return false;
  return may_access(x, caller_ws);
}

} // namespace

bridge_actor spawn_bridge(caf::actor_system& sys, bridge_settings_ptr cfg) {
  return sys.spawn([cfg](self_ptr self) -> bridge_actor::behavior_type {
    self->state.cfg = cfg;
    return {
      [self](admit_atom, const std::string& ws, const std::string& cid,
             value& user, bool reconnect) -> caf::result<uint64_t> {
        auto& st = self->state;
        auto key = ws + "/" + cid;
        auto session = caf::actor_cast<caf::actor>(self->current_sender());
        auto i = st.clients.find(key);
        if (i == st.clients.end())
          return enter(self, ws, cid, std::move(user), session);
        if (reconnect) {
          // The new socket supersedes the old; the old one's close must
          // not take the services it will register again (generations).
          self->send(session_of(i->second.session), leave_atom_v,
                     std::string{"superseded by a reconnection"});
          auto& c = i->second;
          c.session = session;
          c.user = std::move(user);
          c.generation = st.next_generation++;
          return c.generation;
        }
        // Same id without a reconnection token: refuse it while the
        // client holding the id still answers a ping.
        auto rp = self->make_response_promise<uint64_t>();
        auto old = i->second.session;
        auto old_gen = i->second.generation;
        self->request(session_of(old), std::chrono::seconds{3}, ping_atom_v)
          .then(
            [rp, key](bool alive) mutable {
              if (alive)
                rp.deliver(
                  make_error(errc::already_exists,
                             "Client already exists and is active: " + key));
              else
                rp.deliver(make_error(errc::already_exists,
                                      "Client already exists: " + key));
            },
            [self, rp, key, ws, cid, user, session, old_gen,
             old](caf::error&) mutable {
              auto& st = self->state;
              auto j = st.clients.find(key);
              if (j != st.clients.end() && j->second.generation == old_gen) {
                log(log_level::info, "bridge", "client ", key,
                    " stopped answering; its id goes to a "
                    "new connection");
                self->send(session_of(old), leave_atom_v,
                           std::string{"replaced: the client did not answer"});
                evict(self, key);
              } else if (j != st.clients.end()) {
                rp.deliver(make_error(errc::already_exists,
                                      "Client already exists: " + key));
                return;
              }
              rp.deliver(enter(self, ws, cid, std::move(user), session));
            });
        return rp;
      },
      [self](leave_atom, const std::string& ws, const std::string& cid,
             uint64_t generation) {
        auto key = ws + "/" + cid;
        auto i = self->state.clients.find(key);
        if (i == self->state.clients.end()
            || i->second.generation != generation)
          return;
        evict(self, key);
      },
      [self](forward_atom, const std::string& to, const std::string& type,
             std::string& frame, std::string& reject) {
        auto& st = self->state;
        if (to.size() > 2 && to.compare(to.size() - 2, 2, "/*") == 0) {
          auto ws = to.substr(0, to.size() - 2);
          for (auto& [key, c] : st.clients)
            if (c.ws == ws && c.events.count(type) > 0)
              self->send(session_of(c.session), deliver_atom_v, frame);
          return;
        }
        auto i = st.clients.find(to);
        if (i != st.clients.end()) {
          self->send(session_of(i->second.session), deliver_atom_v,
                     std::move(frame));
          return;
        }
        // Gone: fail the caller's call at once; never answer an answer.
        if (!reject.empty())
          if (auto sender
              = caf::actor_cast<ws_session_actor>(self->current_sender()))
            self->send(sender, deliver_atom_v, std::move(reject));
      },
      [self](register_atom, hypha_service& svc) -> caf::result<bool> {
        auto& st = self->state;
        if (st.clients.count(svc.workspace + "/" + svc.client) == 0)
          return make_error(errc::failed_precondition, "client " + svc.workspace
                                                         + "/" + svc.client
                                                         + " is not connected");
        auto ws = svc.workspace;
        auto info = svc.info;
        auto key = service_key(svc);
        bool replaced = st.services.count(key) > 0;
        if (!replaced) {
          auto mine = std::count_if(
            st.services.begin(), st.services.end(), [&](const auto& kv) {
              return kv.second.workspace == svc.workspace
                     && kv.second.client == svc.client;
            });
          if (mine >= static_cast<long>(max_services_per_client))
            return make_error(errc::too_large,
                              "a client may register at most "
                                + std::to_string(max_services_per_client)
                                + " services");
        }
        st.services[key] = std::move(svc);
        broadcast(self, ws, replaced ? "service_updated" : "service_added",
                  std::move(info));
        return true;
      },
      [self](unregister_atom, const std::string& ws, const std::string& cid,
             const std::string& id) -> caf::result<bool> {
        auto& st = self->state;
        for (auto i = st.services.begin(); i != st.services.end(); ++i) {
          auto& x = i->second;
          if (x.workspace != ws || x.client != cid
              || (x.id != id && x.service != id
                  && (cid + ":" + x.service) != id))
            continue;
          auto info = x.info;
          if (x.service != "built-in") {
            caf::anon_send(st.cfg->core, unregister_atom_v, x.id);
            caf::anon_send(st.cfg->node, publish_atom_v);
          }
          st.services.erase(i);
          broadcast(self, ws, "service_removed", std::move(info));
          return true;
        }
        return make_error(errc::not_found, "Service not found: " + id);
      },
      [self](get_atom, const std::string& caller_ws, const std::string& ws,
             const std::string& cid, const std::string& sid,
             const std::string& app,
             const std::string& mode) -> caf::result<service_match> {
        auto& st = self->state;
        std::vector<const hypha_service*> found;
        bool denied = false;
        for (auto& [key, x] : st.services) {
          if (x.workspace != ws || x.service != sid
              || (cid != "*" && x.client != cid)
              || (app != "*" && x.app != app))
            continue;
          if (!may_access(x, caller_ws)) {
            denied = true;
            continue;
          }
          found.push_back(&x);
        }
        auto id = ws + "/" + cid + ":" + sid + "@" + app;
        if (found.empty()) {
          if (denied)
            return make_error(errc::permission_denied,
                              "Permission denied for non-public service in "
                              "workspace "
                                + ws);
          return make_error(errc::not_found, "Service not found: " + id);
        }
        const hypha_service* pick = found.front();
        if (found.size() > 1) {
          if (mode == "exact")
            return make_error(errc::invalid_argument,
                              "Multiple services found for " + id
                                + "; pass mode 'random', 'first' or 'last'");
          if (mode == "last")
            pick = found.back();
          else if (mode == "random")
            pick = found[st.rng() % found.size()];
        }
        auto c = st.clients.find(pick->workspace + "/" + pick->client);
        if (c == st.clients.end())
          return make_error(errc::not_found, "Service not found: " + id);
        return service_match{*pick, c->second.session};
      },
      [self](list_atom, const std::string& caller_ws,
             const value& query) -> caf::result<value> {
        auto q = parse_query(query, caller_ws);
        if (!q)
          return std::move(q.error());
        value_list out;
        for (auto& [key, x] : self->state.services)
          if (matches(x, *q, caller_ws))
            out.push_back(x.info);
        return value{std::move(out)};
      },
      [self](subscribe_atom, const std::string& ws, const std::string& cid,
             const std::string& type, bool on) -> caf::result<bool> {
        auto i = self->state.clients.find(ws + "/" + cid);
        if (i == self->state.clients.end())
          return make_error(errc::failed_precondition, "not connected");
        // Exact event names only: a pattern would reach other workspaces'
        // events (hypha's V2).
        if (type.empty() || type.find('/') != std::string::npos
            || type.find('*') != std::string::npos)
          return make_error(errc::invalid_argument,
                            "cannot subscribe to '" + type
                              + "': name one event of your workspace");
        if (on)
          i->second.events.insert(type);
        else
          i->second.events.erase(type);
        return true;
      },
      [self](client_atom, const std::string& id) -> caf::result<caf::actor> {
        auto i = self->state.clients.find(id);
        if (i == self->state.clients.end())
          return make_error(errc::not_found,
                            "Target peer " + id + " is not connected");
        return i->second.session;
      },
    };
  });
}

} // namespace joy
