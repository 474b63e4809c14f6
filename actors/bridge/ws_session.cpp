// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/bridge/ws_session.hpp"

#include <algorithm>
#include <chrono>
#include <unordered_map>

#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <nlohmann/json.hpp>

#include "actors/bridge/hypha_envelope.hpp"
#include "actors/bridge/hypha_ids.hpp"
#include "actors/bridge/msgpack_value.hpp"
#include "runtime/api_op.hpp"
#include "runtime/errc.hpp"
#include "runtime/log.hpp"
#include "runtime/value_codec.hpp"

namespace joy {

namespace {

using clock_type = std::chrono::steady_clock;
using done_fn = std::function<void(caf::expected<value>)>;

/// The protocol version this bridge speaks, as hypha reports its own.
constexpr const char* hypha_version = "0.21.40";

/// Functions of plugins one client may hold, and chunked messages it may
/// have open at once.
constexpr std::size_t max_exports = 100'000;
constexpr std::size_t max_open_messages = 64;

/// Heartbeat interval the bridge asks of callees (hypha's `t`).
constexpr int64_t heartbeat_seconds = 15;

/// A call this session made into its client, waiting for `<sid>.resolve`.
struct pending_call {
  done_fn done;
  clock_type::time_point deadline;
  /// The identity the call came from; functions in the answer are bound
  /// to it.
  std::string origin;
  bool functions = true;
};

/// A native call the client made, kept alive with heartbeats.
struct inbound_call {
  std::string identity;
  clock_type::time_point next;
  std::chrono::seconds interval;
};

/// A message arriving in chunks (hypha's message_cache).
struct chunked {
  std::vector<std::string> parts;
  std::size_t bytes = 0;
};

/// A call of the client into a function held here (a native plugin's),
/// answered once: by its result, or by the session's tick at the deadline.
struct outbound_call {
  envelope env;
  std::string identity;
  clock_type::time_point deadline;
};

struct cached_native {
  value object;
  std::chrono::steady_clock::time_point until;
};

struct session_state {
  bridge_settings_ptr cfg;
  bridge_actor bridge;
  ws_connection_ptr conn;
  bool admitted = false;
  bool closed = false;
  bool ticking = false;
  std::string ws;
  std::string cid;
  /// "ws/cid".
  std::string me;
  /// "*/<manager id>".
  std::string manager;
  value user;
  /// What the client may do in its workspace: "read", "read_write" or
  /// "admin" (its token's; without a token, "admin" of its own).
  std::string permission = "read_write";
  uint64_t generation = 0;
  std::unordered_map<std::string, pending_call> pending;
  std::unordered_map<std::string, function_ref> exports;
  std::unordered_map<const function_impl*, std::string> export_ids;
  std::unordered_map<std::string, inbound_call> inbound;
  std::unordered_map<std::string, chunked> cache;
  std::size_t cache_bytes = 0;
  /// Native service objects by "client:sid", for a short while, so a call
  /// costs no trip for the object (see native_service).
  std::unordered_map<std::string, cached_native> natives;
  /// Calls into native functions still running, by a number of ours.
  std::unordered_map<uint64_t, outbound_call> outbound;
  uint64_t next_outbound = 0;
  static inline const char* name = "joy.ws_session";
};

using self_ptr = ws_session_actor::stateful_pointer<session_state>;

/// Who native plugins are when they call into a client.
value native_user() {
  return value_map{{"id", "joy"},
                   {"is_anonymous", false},
                   {"email", ""},
                   {"roles", value_list{value{"joy-node"}}}};
}

// -- functions ----------------------------------------------------------------

void call_client(self_ptr self, const std::string& from, const std::string& ws,
                 const std::string& method, value_list args, value_map kwargs,
                 bool functions, done_fn done);

/// Functions crossing this session: native ones go into the export table,
/// the client's become functions owned by the session.
class session_codec final : public function_codec {
public:
  /// `identity`: the native side in play ("public/<plugin>" or the
  /// manager): the `_rtarget` of what is sent, the `from` of calls back.
  session_codec(self_ptr self, std::string identity)
    : self_(self), identity_(std::move(identity)) {
    // nop
  }

  caf::expected<value_map> encode(const function_ref& f) override {
    auto& st = self_->state;
    auto key = f.impl.get();
    auto i = st.export_ids.find(key);
    std::string id;
    if (i != st.export_ids.end()) {
      id = i->second;
    } else if (st.exports.size() >= max_exports) {
      // Functions sent to a client live as long as it does; a client that
      // collects them without end is stopped here, not by memory.
      return make_error(errc::too_large, "client " + st.me + " holds "
                                           + std::to_string(max_exports)
                                           + " functions of plugins already");
    } else {
      id = "fn." + random_id();
      st.export_ids.emplace(key, id);
      st.exports.emplace(id, f);
    }
    value_map out{{"_rtype", "method"}, {"_rtarget", identity_},
                  {"_rmethod", id},     {"_rpromise", "*"},
                  {"_rname", f.name},   {"_rdoc", ""}};
    if (!f.params.empty()) {
      // hypha's function schema (JSON Schema, as tool-calling APIs write
      // it): clients show it as `__schema__`; the browser core builds its
      // forms from it.
      value_map properties;
      value_list required;
      for (auto& p : f.params) {
        properties.insert(p, value_map{});
        required.emplace_back(p);
      }
      value_map parameters{{"type", "object"},
                           {"properties", value{std::move(properties)}},
                           {"required", value{std::move(required)}}};
      value_map function{{"name", f.name},
                         {"parameters", value{std::move(parameters)}}};
      out.insert("_rschema",
                 value_map{{"type", "function"},
                           {"function", value{std::move(function)}}});
    }
    return out;
  }

  caf::expected<value> decode(value_map m) override {
    auto text = [&](const char* key) {
      auto* v = m.find(key);
      return v != nullptr && v->as_string() != nullptr ? *v->as_string()
                                                       : std::string{};
    };
    auto target = text("_rtarget");
    auto method = text("_rmethod");
    if (target.empty() || method.empty())
      return make_error(errc::protocol_error,
                        "a method without _rtarget or _rmethod");
    if (target.find('/') == std::string::npos)
      target = self_->state.ws + "/" + target;
    auto name = text("_rname").empty() ? method : text("_rname");
    auto* promise = m.find("_rpromise");
    bool fire_and_forget = promise != nullptr && promise->as_bool() != nullptr
                           && !*promise->as_bool();
    auto from = identity_;
    auto self = self_;
    return value{make_function(
      caf::actor_cast<caf::actor>(self), name,
      [self, from, target, method,
       fire_and_forget](value_list args, value_map kwargs, reply_handle reply) {
        auto shared = std::make_shared<reply_handle>(std::move(reply));
        auto done = [shared](caf::expected<value> x) {
          if (x)
            shared->deliver_value(std::move(*x));
          else
            shared->deliver(std::move(x.error()));
        };
        if (target == self->state.me) {
          call_client(self, from, "public", method, std::move(args),
                      std::move(kwargs), true, std::move(done));
          if (fire_and_forget)
            shared->deliver_value(value{});
          return;
        }
        // A function of another client, passed on by this one.
        if (!kwargs.empty())
          args.push_back(value{std::move(kwargs)});
        self
          ->request(self->state.bridge, std::chrono::seconds{10}, client_atom_v,
                    target)
          .then(
            [self, from, method, args, done](caf::actor& other) mutable {
              self
                ->request(caf::actor_cast<ws_session_actor>(other),
                          self->state.cfg->client_call_timeout, call_atom_v,
                          from, std::string{"public"}, method, std::move(args))
                .then(
                  [done](value& x) mutable { done(std::move(x)); },
                  [done](caf::error& err) mutable { done(std::move(err)); });
            },
            [done](caf::error& err) mutable { done(std::move(err)); });
      })};
  }

private:
  self_ptr self_;
  std::string identity_;
};

void send_frame(self_ptr self, std::string frame) {
  if (!self->state.closed)
    self->state.conn->send(std::move(frame), true);
}

void send_text(self_ptr self, const nlohmann::json& doc) {
  if (!self->state.closed)
    self->state.conn->send(doc.dump(), false);
}

void start_ticking(self_ptr self) {
  if (self->state.ticking)
    return;
  self->state.ticking = true;
  self->delayed_send(self, std::chrono::seconds{1}, tick_atom_v);
}

/// Calls `method` of the client as `from` and hands the answer to `done`.
void call_client(self_ptr self, const std::string& from, const std::string& ws,
                 const std::string& method, value_list args, value_map kwargs,
                 bool functions, done_fn done) {
  auto& st = self->state;
  if (st.closed) {
    done(make_error(errc::disconnected, "client " + st.me + " is gone"));
    return;
  }
  if (st.cfg->kj_gateway
      && std::any_of(args.begin(), args.end(), has_unreadable_bytes)) {
    self
      ->request(st.cfg->kj_gateway, st.cfg->call_timeout, fetch_atom_v,
                value{std::move(args)})
      .then(
        [self, from, ws, method, kwargs, functions, done](value& x) mutable {
          call_client(self, from, ws, method, std::move(*x.as_list()),
                      std::move(kwargs), functions, std::move(done));
        },
        [done](caf::error& err) { done(std::move(err)); });
    return;
  }
  auto sid = random_id();
  value_map main{{"type", "method"},     {"from", from},   {"to", st.me},
                 {"method", method},     {"session", sid}, {"ws", ws},
                 {"user", native_user()}};
  value_map extra;
  bool with_kwargs = !kwargs.empty();
  if (with_kwargs)
    args.push_back(value{std::move(kwargs)});
  extra.insert("args", value{std::move(args)});
  if (with_kwargs)
    extra.insert("with_kwargs", true);
  extra.insert("promise", "*");
  extra.insert("t", heartbeat_seconds);
  session_codec codec{self, from};
  auto frame = make_frame(main, extra, &codec);
  if (!frame) {
    done(std::move(frame.error()));
    return;
  }
  st.pending.emplace(
    sid, pending_call{std::move(done),
                      clock_type::now() + st.cfg->client_call_timeout, from,
                      functions});
  send_frame(self, std::move(*frame));
  start_ticking(self);
}

// -- replies
// --------------------------------------------------------------------

/// Answers a call of the client (if it asked for an answer) as `identity`.
void respond(self_ptr self, const envelope& env, const std::string& identity,
             caf::expected<value> result, std::string functions_at = {}) {
  auto& st = self->state;
  if (result && !env.session.empty() && has_unreadable_bytes(*result)
      && st.cfg->kj_gateway) {
    // Arrays a plugin sent by shared memory or stream: read them first.
    self
      ->request(st.cfg->kj_gateway, st.cfg->call_timeout, fetch_atom_v,
                std::move(*result))
      .then(
        [self, env, identity, functions_at](value& x) {
          respond(self, env, identity, std::move(x), functions_at);
        },
        [self, env, identity](caf::error& err) {
          respond(self, env, identity, std::move(err));
        });
    return;
  }
  st.inbound.erase(env.session);
  if (env.session.empty())
    return;
  value_map main{{"type", "method"},
                 {"from", identity},
                 {"to", st.me},
                 {"method", env.session + (result ? ".resolve" : ".reject")},
                 {"parent", env.session}};
  value arg;
  if (result) {
    arg = std::move(*result);
  } else {
    error_value e;
    e.code = code_of(result.error());
    e.message = message_of(result.error());
    arg = value{std::move(e)};
  }
  session_codec codec{self, functions_at.empty() ? identity : functions_at};
  auto frame
    = make_frame(main, value_map{{"args", value_list{std::move(arg)}}}, &codec);
  if (!frame) {
    // The result cannot travel (e.g. data that cannot be read here).
    error_value e;
    e.code = code_of(frame.error());
    e.message = message_of(frame.error());
    main.insert("method", env.session + ".reject");
    frame = make_frame(main, value_map{{"args", value_list{value{e}}}});
  }
  if (frame)
    send_frame(self, std::move(*frame));
}

/// Keeps a slow native call alive on the client's side.
void track_inbound(self_ptr self, const envelope& env,
                   const std::string& identity, const value_map& extra) {
  if (env.session.empty())
    return;
  int64_t t = heartbeat_seconds;
  if (auto* v = extra.find("t"); v != nullptr) {
    if (auto* i = v->as_int64())
      t = *i;
    else if (auto* d = v->as_float64())
      t = static_cast<int64_t>(*d);
  }
  auto interval = std::chrono::seconds{std::max<int64_t>(1, t / 2)};
  self->state.inbound[env.session]
    = inbound_call{identity, clock_type::now() + interval, interval};
  start_ticking(self);
}

/// The call's positional arguments and kwargs.
std::pair<value_list, value_map> call_args(value_map& extra) {
  value_list args;
  value_map kwargs;
  if (auto* a = extra.find("args"); a != nullptr && a->as_list() != nullptr)
    args = std::move(*a->as_list());
  auto* wk = extra.find("with_kwargs");
  if (wk != nullptr && wk->as_bool() != nullptr && *wk->as_bool()
      && !args.empty() && args.back().as_map() != nullptr) {
    kwargs = std::move(*args.back().as_map());
    args.pop_back();
    kwargs.erase("_rkwargs");
  }
  return {std::move(args), std::move(kwargs)};
}

/// A method object as hypha writes them.
value method_ref(const std::string& target, const std::string& path,
                 const std::string& name) {
  return value_map{{"_rtype", "method"}, {"_rtarget", target},
                   {"_rmethod", path},   {"_rpromise", "*"},
                   {"_rname", name},     {"_rdoc", ""}};
}

/// The `built-in` service the bridge serves for `identity` (the manager or
/// a native plugin): what hypha clients expect of every peer.
value builtin_object(const std::string& identity) {
  auto m = [&](const std::string& name) {
    return method_ref(identity, "services.built-in." + name, name);
  };
  value_map cache{{"create", m("message_cache.create")},
                  {"append", m("message_cache.append")},
                  {"set", m("message_cache.set")},
                  {"process", m("message_cache.process")},
                  {"remove", m("message_cache.remove")}};
  return value_map{
    {"id", "built-in"},
    {"name", "Built-in services"},
    {"type", "built-in"},
    {"description", ""},
    {"config", value_map{{"require_context", true},
                         {"visibility", "public"},
                         {"api_version", 3}}},
    {"ping", m("ping")},
    {"get_service", m("get_service")},
    {"message_cache", value{std::move(cache)}},
  };
}

const char* const manager_methods[] = {
  "echo",
  "log",
  "register_service",
  "unregister_service",
  "get_service",
  "get_service_info",
  "list_services",
  "subscribe",
  "unsubscribe",
  "generate_token",
  "kick_client",
  "ping",
};

value manager_object(const session_state& st) {
  value_map config{{"require_context", true},
                   {"visibility", "public"},
                   {"workspace", "*"},
                   {"server_id", st.cfg->node_id},
                   {"hypha_version", hypha_version},
                   {"public_base_url", st.cfg->public_url},
                   {"local_base_url", st.cfg->public_url}};
  value_map obj{{"id", "default"},
                {"name", "Joy workspace manager"},
                {"description", "The workspace manager of a Joy bridge"},
                {"type", "generic"},
                {"config", value{std::move(config)}}};
  for (auto* name : manager_methods)
    obj.insert(name, method_ref(st.manager,
                                std::string{"services.default."} + name, name));
  return value{std::move(obj)};
}

caf::expected<std::string> text_arg(const value_list& args, std::size_t i,
                                    const char* what) {
  if (i >= args.size() || args[i].as_string() == nullptr)
    return make_error(errc::invalid_argument,
                      std::string{"expected "} + what + " (a string)");
  return *args[i].as_string();
}

/// hypha's ServiceInfo of a native plugin's service, from its descriptor.
value native_info(const value& descriptor) {
  auto* d = descriptor.as_map();
  auto text = [&](const char* key) {
    auto* v = d != nullptr ? d->find(key) : nullptr;
    return v != nullptr && v->as_string() != nullptr ? *v->as_string()
                                                     : std::string{};
  };
  value_map schema;
  if (auto* methods = d != nullptr ? d->find("methods") : nullptr)
    if (auto* list = methods->as_list())
      for (auto& m : *list)
        if (auto* name = m.as_string())
          schema.insert(*name,
                        value_map{{"type", "function"},
                                  {"function", value_map{{"name", *name}}}});
  return value_map{
    {"id", text("id")},
    {"name", text("name")},
    {"type", text("type").empty() ? "generic" : text("type")},
    {"description", ""},
    {"docs", value{}},
    {"app_id", "*"},
    {"service_schema", value{std::move(schema)}},
    {"config", value_map{{"visibility", "public"},
                         {"workspace", "public"},
                         {"require_context", false},
                         {"node", text("node")}}},
  };
}

/// Makes every `_rtarget` of a provider's answer absolute.
void absolutize(value& x, const std::string& ws, std::size_t depth = 0) {
  if (depth > max_value_depth)
    return;
  if (auto* m = x.as_map()) {
    auto* type = m->find("_rtype");
    auto* target = m->find("_rtarget");
    if (type != nullptr && target != nullptr && target->as_string() != nullptr
        && target->as_string()->find('/') == std::string::npos)
      *target = value{ws + "/" + *target->as_string()};
    for (auto& entry : *m)
      absolutize(const_cast<value&>(entry.second), ws, depth + 1);
  } else if (auto* l = x.as_list()) {
    for (auto& y : *l)
      absolutize(y, ws, depth + 1);
  }
}

// -- native plugins
// -------------------------------------------------------------

/// How long a native service object is reused. Its functions are the
/// node's and find the plugin by name when called, so a restarted plugin
/// is found again; a call that finds nothing drops the object at once.
constexpr auto native_ttl = std::chrono::seconds{5};
constexpr std::size_t max_cached_natives = 256;

/// Forgets the cached object of `public/<client>:<sid>` after a call into
/// it failed in a way that says it is gone or elsewhere.
void forget_native(self_ptr self, const std::string& key,
                   const caf::error& err) {
  auto code = code_of(err);
  if (code == errc::not_found || code == errc::unavailable
      || code == errc::disconnected)
    self->state.natives.erase(key);
}

/// Asks the node for the object of native service `public/<client>:<sid>`
/// (or takes it from the cache).
void native_service(self_ptr self, const std::string& client,
                    const std::string& sid,
                    std::function<void(caf::expected<value>)> done) {
  auto& st = self->state;
  auto key = client + ":" + sid;
  auto now = std::chrono::steady_clock::now();
  if (auto i = st.natives.find(key); i != st.natives.end()) {
    if (now < i->second.until) {
      done(i->second.object);
      return;
    }
    st.natives.erase(i);
  }
  auto id = "public/" + client + ":" + sid;
  self
    ->request(self->state.cfg->node, std::chrono::seconds{30}, api_atom_v,
              std::string{"bridge"}, static_cast<uint16_t>(api_op::get_service),
              value_list{value{id}}, value_map{})
    .then(
      [self, key, done, id, client, sid](value& obj) mutable {
        if (auto* m = obj.as_map()) {
          m->insert("id", id);
          if (!m->contains("name"))
            m->insert("name", client);
          if (!m->contains("type"))
            m->insert("type", "generic");
          m->insert("config", value_map{{"visibility", "public"},
                                        {"workspace", "public"},
                                        {"require_context", false}});
        }
        auto& natives = self->state.natives;
        if (natives.size() >= max_cached_natives)
          natives.clear();
        natives[key]
          = cached_native{obj, std::chrono::steady_clock::now() + native_ttl};
        done(std::move(obj));
      },
      [done](caf::error& err) mutable { done(std::move(err)); });
}

/// Answers outbound call `id` with `x`, unless its deadline answered it.
void answer_outbound(self_ptr self, uint64_t id, caf::expected<value> x) {
  auto& outbound = self->state.outbound;
  auto i = outbound.find(id);
  if (i == outbound.end())
    return;
  auto call = std::move(i->second);
  outbound.erase(i);
  respond(self, call.env, call.identity, std::move(x));
}

/// Runs function `f` for the client and answers it. `cached`: the key of
/// the cached native object `f` came from, dropped if the call finds the
/// service gone.
void invoke_for_client(self_ptr self, const envelope& env,
                       const std::string& identity, function_ref f,
                       value_map extra, std::string cached = {}) {
  auto& st = self->state;
  auto [args, kwargs] = call_args(extra);
  track_inbound(self, env, identity, extra);
  auto target = f.impl->target();
  // The deadline is the session's (its tick answers a call that overran):
  // in CAF 0.17 a request timeout wakes the clock thread on every call.
  auto id = ++st.next_outbound;
  st.outbound.emplace(
    id, outbound_call{env, identity, clock_type::now() + st.cfg->call_timeout});
  start_ticking(self);
  self
    ->request(target, caf::infinite, invoke_atom_v, std::move(f),
              std::move(args), std::move(kwargs))
    .then([self,
           id](value& result) { answer_outbound(self, id, std::move(result)); },
          [self, id, cached](caf::error& err) {
            if (!cached.empty())
              forget_native(self, cached, err);
            answer_outbound(self, id, std::move(err));
          });
}

/// Follows `services.<sid>.<a>.<b>` into a service object.
const value* member(const value& obj, std::string_view path) {
  const value* at = &obj;
  while (!path.empty()) {
    auto dot = path.find('.');
    auto key = path.substr(0, dot);
    auto* m = at->as_map();
    at = m != nullptr ? m->find(key) : nullptr;
    if (at == nullptr)
      return nullptr;
    path = dot == std::string_view::npos ? std::string_view{}
                                         : path.substr(dot + 1);
  }
  return at;
}

void handle_builtin(self_ptr self, const envelope& env,
                    const std::string& identity, std::string_view name,
                    value_map extra);

void handle_native(self_ptr self, const envelope& env, std::string_view frame) {
  auto& st = self->state;
  const auto& identity = env.to;
  auto client = identity.substr(identity.find('/') + 1);
  const auto& method = env.method;
  session_codec codec{self, identity};
  auto extra = read_extra(frame, env, &codec);
  if (!extra) {
    respond(self, env, identity, std::move(extra.error()));
    return;
  }
  if (method.rfind("services.built-in.", 0) == 0) {
    handle_builtin(self, env, identity, std::string_view{method}.substr(18),
                   std::move(*extra));
    return;
  }
  if (method.rfind("fn.", 0) == 0) {
    auto i = st.exports.find(method);
    if (i == st.exports.end()) {
      respond(self, env, identity,
              make_error(errc::not_found, "Method not found: " + method
                                            + " (released or never sent)"));
      return;
    }
    invoke_for_client(self, env, identity, i->second, std::move(*extra));
    return;
  }
  if (method.rfind("services.", 0) == 0) {
    auto rest = std::string_view{method}.substr(9);
    auto dot = rest.find('.');
    if (dot == std::string_view::npos) {
      respond(self, env, identity,
              make_error(errc::not_found, "Method not found: " + method));
      return;
    }
    auto sid = std::string{rest.substr(0, dot)};
    auto path = std::string{rest.substr(dot + 1)};
    native_service(
      self, client, sid,
      [self, env, identity, path, key = std::string{client} + ":" + sid,
       extra = std::move(*extra)](caf::expected<value> obj) mutable {
        if (!obj) {
          respond(self, env, identity, std::move(obj.error()));
          return;
        }
        auto* f = member(*obj, path);
        if (f == nullptr || f->as_function() == nullptr) {
          respond(self, env, identity,
                  make_error(errc::not_found, "Method not found: " + env.method
                                                + " at " + identity));
          return;
        }
        invoke_for_client(self, env, identity, *f->as_function(),
                          std::move(extra), key);
      });
    return;
  }
  respond(self, env, identity,
          make_error(errc::not_found,
                     "Method not found: " + method + " at " + identity));
}

// -- the message cache
// ------------------------------------------------------------

void handle_binary(self_ptr self, std::string_view frame);

void handle_builtin(self_ptr self, const envelope& env,
                    const std::string& identity, std::string_view name,
                    value_map extra) {
  auto& st = self->state;
  auto [args, kwargs] = call_args(extra);
  if (name == "ping") {
    respond(self, env, identity, value{"pong"});
    return;
  }
  if (name == "get_service") {
    auto sid = text_arg(args, 0, "a service id");
    if (!sid) {
      respond(self, env, identity, std::move(sid.error()));
      return;
    }
    if (*sid == "built-in") {
      respond(self, env, identity, builtin_object(identity));
      return;
    }
    if (identity == st.manager) {
      if (*sid == "default")
        respond(self, env, identity, manager_object(st));
      else
        respond(self, env, identity,
                make_error(errc::not_found, "Service not found: " + *sid));
      return;
    }
    auto client = identity.substr(7);
    native_service(self, client, *sid,
                   [self, env, identity](caf::expected<value> obj) {
                     respond(self, env, identity, std::move(obj));
                   });
    return;
  }
  if (name.rfind("message_cache.", 0) != 0) {
    respond(self, env, identity,
            make_error(errc::not_found, "Method not found: services.built-in."
                                          + std::string{name}));
    return;
  }
  auto op = name.substr(14);
  auto key = text_arg(args, 0, "a message key");
  if (!key) {
    respond(self, env, identity, std::move(key.error()));
    return;
  }
  auto drop = [&st](const std::string& k) {
    auto i = st.cache.find(k);
    if (i != st.cache.end()) {
      st.cache_bytes -= i->second.bytes;
      st.cfg->messages_open -= i->second.bytes;
      st.cache.erase(i);
    }
  };
  if (op == "create") {
    drop(*key);
    if (st.cache.size() >= max_open_messages) {
      respond(
        self, env, identity,
        make_error(errc::overloaded, "too many chunked messages open at once"));
      return;
    }
    st.cache.emplace(*key, chunked{});
    respond(self, env, identity, value{});
    return;
  }
  if (op == "remove") {
    drop(*key);
    respond(self, env, identity, value{});
    return;
  }
  auto i = st.cache.find(*key);
  if (i == st.cache.end()) {
    respond(self, env, identity,
            make_error(errc::not_found,
                       "Message with key " + *key + " does not exist"));
    return;
  }
  if (op == "append" || op == "set") {
    std::size_t index = i->second.parts.size();
    std::size_t data_at = 1;
    if (op == "set") {
      data_at = 2;
      auto* n = args.size() > 1 ? args[1].as_int64() : nullptr;
      // Chunks may come out of order, but not far beyond the ones held:
      // empty slots cost memory the byte count does not see.
      if (n == nullptr || *n < 0
          || static_cast<std::size_t>(*n) > i->second.parts.size() + 1024) {
        respond(self, env, identity,
                make_error(errc::invalid_argument,
                           "message_cache.set takes a chunk index at most 1024 "
                           "past the chunks held"));
        return;
      }
      index = static_cast<std::size_t>(*n);
    }
    auto* data = args.size() > data_at ? args[data_at].as_bytes() : nullptr;
    std::string chunk;
    if (data != nullptr)
      chunk.assign(data->view());
    else if (args.size() > data_at && args[data_at].as_string() != nullptr)
      chunk = *args[data_at].as_string();
    else {
      respond(
        self, env, identity,
        make_error(errc::invalid_argument, "message_cache chunks are bytes"));
      return;
    }
    if (st.cache_bytes + chunk.size() > st.cfg->message_max) {
      drop(*key);
      respond(self, env, identity,
              make_error(errc::too_large,
                         "chunked message larger than "
                           + std::to_string(st.cfg->message_max) + " bytes"));
      return;
    }
    // What every client holds open together is bounded too, so many
    // clients cannot add up to the node's memory.
    auto open = st.cfg->messages_open.fetch_add(chunk.size());
    if (open + chunk.size() > st.cfg->messages_max_total) {
      st.cfg->messages_open -= chunk.size();
      drop(*key);
      respond(self, env, identity,
              make_error(errc::overloaded,
                         "the bridge holds "
                           + std::to_string(st.cfg->messages_max_total)
                           + " bytes of chunked messages already; try "
                             "again later"));
      return;
    }
    auto& parts = i->second.parts;
    if (index >= parts.size())
      parts.resize(index + 1);
    st.cfg->messages_open -= parts[index].size();
    st.cache_bytes += chunk.size();
    st.cache_bytes -= parts[index].size();
    i->second.bytes += chunk.size();
    i->second.bytes -= parts[index].size();
    parts[index] = std::move(chunk);
    respond(self, env, identity, value{});
    return;
  }
  if (op == "process") {
    std::string whole;
    whole.reserve(i->second.bytes);
    for (auto& p : i->second.parts)
      whole += p;
    drop(*key);
    respond(self, env, identity, value{});
    // The reassembled message arrives as if the client sent it whole.
    handle_binary(self, whole);
    return;
  }
  respond(self, env, identity,
          make_error(errc::not_found,
                     "Method not found: message_cache." + std::string{op}));
}

// -- the workspace manager
// ----------------------------------------------------------

void handle_manager_call(self_ptr self, const envelope& env,
                         std::string_view name, std::string_view frame,
                         value_map extra);

void handle_manager(self_ptr self, const envelope& env,
                    std::string_view frame) {
  auto& st = self->state;
  const auto& method = env.method;
  if (method.rfind("services.built-in.", 0) == 0) {
    auto extra = read_extra(frame, env, nullptr);
    if (!extra) {
      respond(self, env, st.manager, std::move(extra.error()));
      return;
    }
    handle_builtin(self, env, st.manager, std::string_view{method}.substr(18),
                   std::move(*extra));
    return;
  }
  if (method.rfind("services.default.", 0) == 0) {
    auto extra = read_extra(frame, env, nullptr);
    if (!extra) {
      respond(self, env, st.manager, std::move(extra.error()));
      return;
    }
    handle_manager_call(self, env, std::string_view{method}.substr(17), frame,
                        std::move(*extra));
    return;
  }
  respond(self, env, st.manager,
          make_error(errc::not_found, "Method not found: " + method
                                        + " at the workspace manager"));
}

void manager_get_service(self_ptr self, const envelope& env, value query,
                         value_map options);

void manager_register(self_ptr self, const envelope& env, value info);

/// Orders permissions: read < read_write < admin (-1: not one).
int permission_rank(const std::string& p) {
  if (p == "read")
    return 0;
  if (p == "read_write")
    return 1;
  if (p == "admin")
    return 2;
  return -1;
}

void handle_manager_call(self_ptr self, const envelope& env,
                         std::string_view name, std::string_view frame,
                         value_map extra) {
  auto& st = self->state;
  auto [args, kwargs] = call_args(extra);
  auto reply = [self, env](caf::expected<value> x) {
    respond(self, env, self->state.manager, std::move(x));
  };
  static const value none;
  auto arg = [&](std::size_t i) -> const value& {
    return i < args.size() ? args[i] : none;
  };
  if (name == "echo") {
    // Echo the argument's bytes exactly: a decode and re-encode would turn
    // a Uint8Array into an ArrayBuffer.
    auto raw = first_arg_bytes(frame, env);
    if (!raw) {
      reply(std::move(raw.error()));
      return;
    }
    if (env.session.empty())
      return;
    value_map main{{"type", "method"},
                   {"from", st.manager},
                   {"to", st.me},
                   {"method", env.session + ".resolve"},
                   {"parent", env.session}};
    auto out = pack(value{main});
    if (!out) {
      reply(std::move(out.error()));
      return;
    }
    // {"args": [<raw>]}
    out->push_back(static_cast<char>(0x81));
    out->push_back(static_cast<char>(0xa4));
    out->append("args");
    out->push_back(static_cast<char>(0x91));
    out->append(*raw);
    send_frame(self, std::move(*out));
    return;
  }
  if (name == "log") {
    auto text
      = arg(0).as_string() != nullptr ? *arg(0).as_string() : to_string(arg(0));
    log(log_level::info, "bridge", st.me, ": ", text);
    reply(value{});
    return;
  }
  if (name == "ping") {
    reply(value{"pong"});
    return;
  }
  if (name == "register_service") {
    manager_register(self, env, arg(0));
    return;
  }
  if (name == "unregister_service") {
    auto id
      = arg(0).as_string() != nullptr ? *arg(0).as_string() : std::string{};
    if (auto* m = arg(0).as_map(); m != nullptr && m->find("id") != nullptr
                                   && m->find("id")->as_string() != nullptr)
      id = *m->find("id")->as_string();
    if (id.empty()) {
      reply(make_error(errc::invalid_argument,
                       "unregister_service takes a service id"));
      return;
    }
    self
      ->request(st.bridge, std::chrono::seconds{10}, unregister_atom_v, st.ws,
                st.cid, id)
      .then([reply](bool) { reply(value{}); },
            [reply](caf::error& err) { reply(std::move(err)); });
    return;
  }
  if (name == "get_service" || name == "get_service_info") {
    value_map options;
    if (auto* m = arg(1).as_map())
      options = *m;
    for (auto& [k, v] : kwargs)
      options.insert(k, v);
    if (name == "get_service_info")
      options.insert("_info", true);
    manager_get_service(self, env, arg(0), std::move(options));
    return;
  }
  if (name == "list_services") {
    auto query = arg(0);
    if (query.is_null() && !kwargs.empty())
      query = value{kwargs};
    if (auto* m = query.as_map(); m != nullptr && m->contains("query"))
      query = *m->find("query");
    self
      ->request(st.bridge, std::chrono::seconds{10}, list_atom_v, st.ws, query)
      .then(
        [self, reply, query](value& found) mutable {
          // Native plugins live in workspace public.
          bool natives = false;
          if (auto* s = query.as_string())
            natives = *s == "public" || s->rfind("public/", 0) == 0
                      || s->rfind("*/", 0) == 0 || *s == "*";
          if (auto* m = query.as_map())
            if (auto* w = m->find("workspace");
                w != nullptr && w->as_string() != nullptr)
              natives = *w->as_string() == "public" || *w->as_string() == "*";
          if (!natives) {
            reply(std::move(found));
            return;
          }
          self
            ->request(self->state.cfg->node, std::chrono::seconds{30},
                      api_atom_v, std::string{"bridge"},
                      static_cast<uint16_t>(api_op::list_services),
                      value_list{}, value_map{})
            .then(
              [reply, found](value& descriptors) mutable {
                auto* out = found.as_list();
                if (auto* list = descriptors.as_list())
                  for (auto& d : *list) {
                    auto info = native_info(d);
                    auto* m = info.as_map();
                    auto* id = m->find("id");
                    if (id != nullptr && id->as_string() != nullptr
                        && id->as_string()->rfind("public/", 0) == 0)
                      out->push_back(std::move(info));
                  }
                reply(std::move(found));
              },
              [reply, found](caf::error&) mutable { reply(std::move(found)); });
        },
        [reply](caf::error& err) { reply(std::move(err)); });
    return;
  }
  if (name == "subscribe" || name == "unsubscribe") {
    std::vector<std::string> types;
    if (auto* s = arg(0).as_string())
      types.push_back(*s);
    else if (auto* l = arg(0).as_list())
      for (auto& x : *l)
        if (auto* s = x.as_string())
          types.push_back(*s);
    if (types.empty()) {
      reply(make_error(errc::invalid_argument,
                       std::string{name} + " takes an event type or a list"));
      return;
    }
    auto remaining = std::make_shared<std::size_t>(types.size());
    auto failed = std::make_shared<bool>(false);
    for (auto& type : types)
      self
        ->request(st.bridge, std::chrono::seconds{10}, subscribe_atom_v, st.ws,
                  st.cid, type, name == "subscribe")
        .then(
          [reply, remaining, failed](bool) {
            if (--*remaining == 0 && !*failed)
              reply(value{true});
          },
          [reply, failed](caf::error& err) {
            if (!*failed) {
              *failed = true;
              reply(std::move(err));
            }
          });
    return;
  }
  if (name == "generate_token") {
    value_map options;
    if (auto* m = arg(0).as_map())
      options = *m;
    for (auto& [k, v] : kwargs)
      options.insert(k, v);
    if (auto* inner = options.find("config");
        inner != nullptr && inner->as_map() != nullptr)
      options = *inner->as_map();
    auto text = [&](const char* key, std::string fallback) {
      auto* v = options.find(key);
      return v != nullptr && v->as_string() != nullptr ? *v->as_string()
                                                       : fallback;
    };
    token_claims claims;
    claims.kind = "access";
    claims.workspace = text("workspace", st.ws);
    claims.permission = text("permission", "read_write");
    auto* user = st.user.as_map();
    auto* uid = user != nullptr ? user->find("id") : nullptr;
    claims.user = uid != nullptr && uid->as_string() != nullptr
                    ? *uid->as_string()
                    : std::string{};
    auto* anon = user != nullptr ? user->find("is_anonymous") : nullptr;
    claims.anonymous
      = anon != nullptr && anon->as_bool() != nullptr && *anon->as_bool();
    if (claims.workspace != st.ws) {
      reply(make_error(errc::permission_denied,
                       "Permission denied: a client of workspace " + st.ws
                         + " cannot issue tokens for " + claims.workspace));
      return;
    }
    if (permission_rank(claims.permission) < 0) {
      reply(make_error(errc::invalid_argument,
                       "permission must be read, read_write or admin"));
      return;
    }
    // A token grants at most what its issuer may do.
    if (permission_rank(claims.permission) > permission_rank(st.permission)) {
      reply(make_error(errc::permission_denied,
                       "Permission denied: a client with " + st.permission
                         + " permission cannot issue a token with "
                         + claims.permission));
      return;
    }
    int64_t expires_in = 3600;
    if (auto* e = options.find("expires_in"); e != nullptr) {
      if (auto* i = e->as_int64())
        expires_in = *i;
      else if (auto* d = e->as_float64())
        expires_in = static_cast<int64_t>(*d);
    }
    if (expires_in <= 0) {
      reply(make_error(errc::invalid_argument,
                       "expires_in must be a positive number of seconds"));
      return;
    }
    auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
    claims.expires = now + expires_in;
    reply(value{st.cfg->tokens->sign(claims)});
    return;
  }
  if (name == "kick_client") {
    // An admin of the workspace sends one of its clients away for good:
    // hypha's force-exit, so it does not reconnect.
    auto* target = arg(0).as_string();
    if (target == nullptr || target->empty()) {
      reply(make_error(errc::invalid_argument,
                       "kick_client(client_id, reason) takes a client id"));
      return;
    }
    if (st.permission != "admin") {
      reply(make_error(errc::permission_denied,
                       "Permission denied: kicking a client of " + st.ws
                         + " needs admin permission"));
      return;
    }
    auto reason = arg(1).as_string() != nullptr ? *arg(1).as_string()
                                                : "kicked by " + st.me;
    auto id = target->find('/') == std::string::npos ? st.ws + "/" + *target
                                                     : *target;
    if (id.compare(0, st.ws.size() + 1, st.ws + "/") != 0) {
      reply(make_error(errc::permission_denied, "Permission denied: " + id
                                                  + " is not a client of "
                                                  + st.ws));
      return;
    }
    self->request(st.bridge, std::chrono::seconds{5}, client_atom_v, id)
      .then(
        [self, reply, reason](caf::actor& session) mutable {
          self->send(caf::actor_cast<ws_session_actor>(session), exit_atom_v,
                     reason, false);
          reply(value{});
        },
        [reply](caf::error& err) mutable { reply(std::move(err)); });
    return;
  }
  reply(make_error(errc::not_found, "Method not found: services.default."
                                      + std::string{name}
                                      + " at the workspace manager"));
}

void manager_register(self_ptr self, const envelope& env, value info) {
  auto& st = self->state;
  auto reply = [self, env](caf::expected<value> x) {
    respond(self, env, self->state.manager, std::move(x));
  };
  auto* m = info.as_map();
  if (m == nullptr) {
    reply(make_error(errc::invalid_argument,
                     "register_service takes a service description"));
    return;
  }
  auto text = [&](const value_map& map, const char* key) {
    auto* v = map.find(key);
    return v != nullptr && v->as_string() != nullptr ? *v->as_string()
                                                     : std::string{};
  };
  auto id = text(*m, "id");
  if (id.empty()) {
    reply(make_error(errc::invalid_argument, "a service needs an id"));
    return;
  }
  // The workspace and client come from the connection, never the message
  // (hypha's V1: service-id workspace injection).
  auto parsed = parse_hypha_id(id, st.ws);
  if (!parsed) {
    reply(std::move(parsed.error()));
    return;
  }
  if (parsed->workspace != st.ws
      || (parsed->client != "*" && parsed->client != st.cid)) {
    reply(make_error(errc::permission_denied,
                     "Permission denied: service " + id
                       + " belongs to another workspace or client than "
                       + st.me));
    return;
  }
  auto sid = parsed->service;
  hypha_service svc;
  svc.workspace = st.ws;
  svc.client = st.cid;
  svc.service = sid;
  svc.id = st.me + ":" + sid;
  value_map config;
  if (auto* c = m->find("config"); c != nullptr && c->as_map() != nullptr)
    config = *c->as_map();
  auto visibility = text(config, "visibility");
  svc.visibility = visibility.empty() ? "protected" : visibility;
  if (svc.visibility != "public" && svc.visibility != "protected"
      && svc.visibility != "unlisted") {
    reply(make_error(errc::invalid_argument,
                     "visibility must be public, protected or unlisted"));
    return;
  }
  if (auto* aw = config.find("authorized_workspaces"))
    if (auto* l = aw->as_list())
      for (auto& w : *l)
        if (auto* s = w.as_string())
          svc.authorized_workspaces.push_back(*s);
  svc.app = text(*m, "app_id").empty() ? "*" : text(*m, "app_id");
  config.insert("workspace", st.ws);
  config.insert("visibility", svc.visibility);
  // Grants stay with the bridge (hypha's V3).
  config.erase("authorized_workspaces");
  value_map stored = *m;
  stored.insert("id", svc.id);
  stored.insert("config", value{config});
  stored.insert("app_id", svc.app);
  if (!stored.contains("description"))
    stored.insert("description", "");
  if (!stored.contains("docs"))
    stored.insert("docs", value{});
  svc.info = value{stored};
  // Native plugins reach public and unlisted services through the api.
  std::optional<service_info> native;
  if (sid != "built-in" && svc.visibility != "protected") {
    service_info si;
    si.id = svc.id;
    si.workspace = st.ws;
    si.client = st.cid;
    si.service = sid;
    si.node = st.cfg->node_id;
    si.name = text(stored, "name").empty() ? sid : text(stored, "name");
    si.type = text(stored, "type");
    value_map object{{"id", svc.id}, {"name", si.name}};
    if (auto* schema = stored.find("service_schema"))
      if (auto* fields = schema->as_map())
        for (auto& [key, spec] : *fields) {
          auto* s = spec.as_map();
          auto* type = s != nullptr ? s->find("type") : nullptr;
          if (type == nullptr || type->as_string() == nullptr
              || *type->as_string() != "function")
            continue;
          session_codec codec{self, "public/joy"};
          auto f = codec.decode(
            value_map{{"_rtype", "method"},
                      {"_rtarget", st.me},
                      {"_rmethod", "services." + sid + "." + key},
                      {"_rname", key}});
          if (f)
            object.insert(key, std::move(*f));
        }
    si.object = value{std::move(object)};
    native = std::move(si);
  }
  // A service of type "joy-ui" with a `show(op, plugin, ...args)` becomes
  // the cluster's UI: plugins' alert, prompt, confirm and show_* land in
  // the client that registered it (the browser core).
  std::optional<function_ref> ui;
  if (text(stored, "type") == "joy-ui") {
    // Whoever is the UI sees every plugin's questions and answers them:
    // only an admin may take that role (a loopback browser without a
    // token, or a token from `joy token --permission admin`).
    if (st.permission != "admin") {
      reply(make_error(errc::permission_denied,
                       "Permission denied: only an admin may register the "
                       "cluster's UI (type joy-ui); this client has "
                         + st.permission));
      return;
    }
    session_codec codec{self, "public/joy"};
    auto f = codec.decode(value_map{{"_rtype", "method"},
                                    {"_rtarget", st.me},
                                    {"_rmethod", "services." + sid + ".show"},
                                    {"_rname", "show"}});
    if (f && f->as_function() != nullptr)
      ui = *f->as_function();
  }
  self->request(st.bridge, std::chrono::seconds{10}, register_atom_v, svc)
    .then(
      [self, reply, native, ui](bool) {
        if (ui) {
          log(log_level::info, "bridge", "client ", self->state.me,
              " is the UI now");
          self
            ->request(self->state.cfg->core, std::chrono::seconds{10},
                      attach_atom_v, *ui)
            .then([](bool) {}, [](caf::error&) {});
        }
        if (native)
          self
            ->request(self->state.cfg->core, std::chrono::seconds{10},
                      register_atom_v, *native)
            .then(
              [self](service_info&) {
                // The cluster's directory learns of it too.
                caf::anon_send(self->state.cfg->node, publish_atom_v);
              },
              [](caf::error& err) {
                log(log_level::warning, "bridge",
                    "a client's service is not visible to plugins: ",
                    message_of(err));
              });
        reply(value{});
      },
      [reply](caf::error& err) { reply(std::move(err)); });
}

void manager_get_service(self_ptr self, const envelope& env, value query,
                         value_map options) {
  auto& st = self->state;
  auto reply = [self, env](caf::expected<value> x) {
    respond(self, env, self->state.manager, std::move(x));
  };
  std::string text;
  if (auto* s = query.as_string())
    text = *s;
  else if (auto* m = query.as_map())
    if (auto* id = m->find("id"); id != nullptr && id->as_string() != nullptr)
      text = *id->as_string();
  if (text.empty()) {
    reply(make_error(errc::invalid_argument, "get_service takes a service id"));
    return;
  }
  bool info_only = options.contains("_info");
  if (text == "~" || text == "~:default") {
    reply(info_only ? value{value_map{{"id", st.manager + ":default"}}}
                    : manager_object(st));
    return;
  }
  auto id = parse_hypha_id(text, st.ws);
  if (!id) {
    reply(std::move(id.error()));
    return;
  }
  bool explicit_ws = text.find('/') != std::string::npos;
  auto mode_of = [&](const std::string& ws) {
    auto* m = options.find("mode");
    if (m != nullptr && m->as_string() != nullptr)
      return *m->as_string();
    return std::string{ws == "public" ? "random" : "exact"};
  };
  auto from_native = [self, env, info_only](hypha_service_id id) {
    auto client = id.client == "*" ? id.service : id.client;
    auto sid = id.client == "*" ? std::string{"default"} : id.service;
    native_service(
      self, client, sid,
      [self, env, info_only, client, sid](caf::expected<value> obj) {
        auto& manager = self->state.manager;
        if (!obj && code_of(obj.error()) == errc::not_found)
          obj = make_error(errc::not_found, "Service not found: public/"
                                              + client + ":" + sid + " ("
                                              + message_of(obj.error()) + ")");
        if (obj && info_only)
          obj = native_info(value_map{{"id", "public/" + client + ":" + sid},
                                      {"name", client}});
        // The functions answer as the plugin, not as the manager.
        respond(self, env, manager, std::move(obj), "public/" + client);
      });
  };
  if (id->workspace == "public") {
    from_native(*id);
    return;
  }
  self
    ->request(st.bridge, std::chrono::seconds{10}, get_atom_v, st.ws,
              id->workspace, id->client, id->service, id->app,
              mode_of(id->workspace))
    .then(
      [self, reply, info_only](service_match& found) {
        if (info_only) {
          reply(found.service.info);
          return;
        }
        auto svc = found.service;
        self
          ->request(caf::actor_cast<ws_session_actor>(found.provider),
                    self->state.cfg->client_call_timeout, call_atom_v,
                    self->state.manager, svc.workspace,
                    std::string{"services.built-in.get_service"},
                    value_list{value{svc.service}})
          .then(
            [reply, svc](value& obj) {
              absolutize(obj, svc.workspace);
              if (auto* m = obj.as_map()) {
                m->insert("id", svc.id);
                value_map config;
                if (auto* c = m->find("config");
                    c != nullptr && c->as_map() != nullptr)
                  config = *c->as_map();
                config.insert("workspace", svc.workspace);
                m->insert("config", value{std::move(config)});
              }
              reply(std::move(obj));
            },
            [reply](caf::error& err) { reply(std::move(err)); });
      },
      [self, reply, from_native, explicit_ws,
       id = *id](caf::error& err) mutable {
        // A bare id resolves in the caller's workspace, then in public.
        if (!explicit_ws && code_of(err) == errc::not_found) {
          id.workspace = "public";
          from_native(id);
          return;
        }
        reply(std::move(err));
      });
}

// -- dispatch
// ---------------------------------------------------------------------

void handle_reply(self_ptr self, const envelope& env, std::string_view sid,
                  std::string_view verb, std::string_view frame) {
  auto& st = self->state;
  auto i = st.pending.find(std::string{sid});
  if (i == st.pending.end())
    return;
  if (verb == "heartbeat") {
    i->second.deadline = clock_type::now() + st.cfg->client_call_timeout;
    return;
  }
  auto call = std::move(i->second);
  st.pending.erase(i);
  session_codec codec{self, call.origin};
  auto extra = read_extra(frame, env, call.functions ? &codec : nullptr);
  if (!extra) {
    call.done(std::move(extra.error()));
    return;
  }
  auto [args, kwargs] = call_args(*extra);
  auto result = args.empty() ? value{} : std::move(args[0]);
  if (verb == "resolve") {
    call.done(std::move(result));
    return;
  }
  std::string message = "the client rejected the call";
  if (auto* e = result.as_error())
    message = e->message;
  else if (auto* s = result.as_string())
    message = *s;
  call.done(make_error(errc::plugin_error, message));
}

void handle_binary(self_ptr self, std::string_view frame) {
  auto& st = self->state;
  auto env = read_envelope(frame);
  if (!env) {
    log(log_level::info, "bridge", "closing ", st.me, ": ",
        message_of(env.error()));
    send_text(self, {{"type", "error"}, {"message", message_of(env.error())}});
    st.conn->close(1007, "bad frame: not hypha-rpc msgpack");
    return;
  }
  auto& to = env->to;
  if (to.empty() || to == "*")
    to = st.ws + "/*";
  else if (to.find('/') == std::string::npos)
    to = st.ws + "/" + to;
  env->from = st.me;
  if (to == st.manager || to.rfind("public/", 0) == 0) {
    if (env->type != "method")
      return;
    if (env->method.rfind("services.", 0) != 0
        && env->method.rfind("fn.", 0) != 0) {
      auto [sid, verb] = split_promise_method(env->method);
      if (!sid.empty()) {
        handle_reply(self, *env, sid, verb, frame);
        return;
      }
    }
    if (to == st.manager && env->method.rfind("fn.", 0) != 0)
      handle_manager(self, *env, frame);
    else
      handle_native(self, *env, frame);
    return;
  }
  if (to.rfind("*/", 0) == 0) {
    // Another manager id (from before a restart): nobody is there.
    if (!env->session.empty())
      respond(self, *env, to,
              make_error(errc::disconnected,
                         "Target peer " + to + " is not connected"));
    return;
  }
  auto rewritten = rewrite_envelope(frame, *env, st.me, to, st.ws, st.user);
  if (!rewritten)
    return;
  std::string reject;
  if (!env->session.empty() && env->type == "method") {
    value_map main{{"type", "method"},
                   {"from", to},
                   {"to", st.me},
                   {"method", env->session + ".reject"}};
    error_value e;
    e.code = errc::disconnected;
    e.message = "Target peer " + to + " is not connected";
    auto r = make_frame(main, value_map{{"args", value_list{value{e}}}});
    if (r)
      reject = std::move(*r);
  }
  self->send(st.bridge, forward_atom_v, to, env->type, std::move(*rewritten),
             std::move(reject));
}

// -- the handshake
// ----------------------------------------------------------------

void refuse(self_ptr self, const std::string& message, uint16_t code = 1008) {
  auto& st = self->state;
  log(log_level::info, "bridge", "refused ", st.conn->remote(), ": ", message);
  send_text(self, {{"type", "error"}, {"message", message}});
  st.conn->close(code, message);
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

std::string reconnection_token(const session_state& st) {
  token_claims c;
  c.kind = "reconnect";
  auto* user = st.user.as_map();
  auto* uid = user->find("id");
  c.user = uid != nullptr && uid->as_string() != nullptr ? *uid->as_string()
                                                         : std::string{};
  auto* anon = user->find("is_anonymous");
  c.anonymous
    = anon != nullptr && anon->as_bool() != nullptr && *anon->as_bool();
  c.workspace = st.ws;
  c.client = st.cid;
  c.permission = st.permission;
  c.expires = unix_now() + st.cfg->reconnection_life.count();
  return st.cfg->tokens->sign(c);
}

value user_info(const std::string& id, bool anonymous) {
  value_list roles;
  if (anonymous)
    roles.emplace_back("anonymous");
  return value_map{{"id", id},
                   {"is_anonymous", anonymous},
                   {"email", ""},
                   {"roles", value{std::move(roles)}}};
}

void handle_auth(self_ptr self, const std::string& text) {
  auto& st = self->state;
  auto& target = st.conn->target();
  if (auto q = target.find('?'); q != std::string::npos) {
    auto query = target.substr(q);
    for (auto* key :
         {"workspace=", "client_id=", "token=", "reconnection_token="})
      if (query.find(key) != std::string::npos) {
        refuse(self, "Connection rejected, please  upgrade to `hypha-rpc` "
                     "which pass the authentication information in the "
                     "first message");
        return;
      }
  }
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text);
  } catch (const std::exception&) {
    refuse(self, "Authentication error: the first frame must be JSON");
    return;
  }
  if (!doc.is_object()) {
    refuse(self, "Authentication error: the first frame must be an object");
    return;
  }
  auto str = [&](const char* key) -> std::string {
    auto i = doc.find(key);
    return i != doc.end() && i->is_string() ? i->get<std::string>()
                                            : std::string{};
  };
  auto cid = str("client_id");
  auto ws = str("workspace");
  auto token = str("token");
  auto reconnect = str("reconnection_token");
  auto now = unix_now();
  std::string user_id;
  // A token says what its holder may do; a client without one is alone in
  // its own workspace and its admin.
  std::string permission = "admin";
  bool anonymous = false;
  bool is_reconnect = false;
  if (!reconnect.empty()) {
    auto claims = st.cfg->tokens->verify(reconnect, now);
    if (!claims || claims->kind != "reconnect") {
      refuse(self, "Authentication error: "
                     + (claims ? std::string{"not a reconnection token"}
                               : message_of(claims.error())));
      return;
    }
    if (!cid.empty() && cid != claims->client) {
      refuse(self, "Client id mismatch, disconnecting");
      return;
    }
    if (!ws.empty() && ws != claims->workspace) {
      refuse(self, "Workspace mismatch, disconnecting");
      return;
    }
    cid = claims->client;
    ws = claims->workspace;
    user_id = claims->user;
    anonymous = claims->anonymous;
    permission = claims->permission;
    is_reconnect = true;
  } else if (!token.empty()) {
    auto claims = st.cfg->tokens->verify(token, now);
    if (!claims || claims->kind != "access") {
      refuse(self, "Authentication error: "
                     + (claims ? std::string{"not an access token"}
                               : message_of(claims.error())));
      return;
    }
    user_id = claims->user;
    anonymous = claims->anonymous;
    permission = claims->permission;
    if (ws.empty())
      ws = claims->workspace;
    if (ws != claims->workspace && ws != "ws-user-" + user_id) {
      refuse(self, "Permission denied for workspace " + ws
                     + ": the token grants " + claims->workspace);
      return;
    }
  } else {
    if (!st.conn->loopback() && !st.cfg->anonymous_remote) {
      refuse(self, "Authentication error: connections from " + st.conn->remote()
                     + " need a token (ask the node's owner for `joy token`)");
      return;
    }
    user_id = "anonymouz-" + random_id();
    // Beyond loopback (--bridge-anonymous), a client without a token is
    // not trusted with its workspace's admin rights (the UI, kicking).
    if (!st.conn->loopback())
      permission = "read_write";
    anonymous = true;
    if (!ws.empty() && ws != "ws-user-" + user_id) {
      refuse(self, "Permission denied for workspace " + ws
                     + ": anonymous clients get a workspace of their own; "
                       "join others with a token");
      return;
    }
  }
  if (ws.empty())
    ws = "ws-user-" + user_id;
  if (cid.empty())
    cid = random_id();
  if (!valid_name(cid) || !valid_name(ws) || ws == "public") {
    refuse(self, "Authentication error: invalid client id or workspace");
    return;
  }
  st.ws = ws;
  st.cid = cid;
  st.me = ws + "/" + cid;
  st.user = user_info(user_id, anonymous);
  st.permission = permission;
  self
    ->request(st.bridge, std::chrono::seconds{5}, admit_atom_v, ws, cid,
              st.user, is_reconnect)
    .then(
      [self](uint64_t generation) {
        auto& st = self->state;
        if (st.closed) {
          self->send(st.bridge, leave_atom_v, st.ws, st.cid, generation);
          return;
        }
        st.admitted = true;
        st.generation = generation;
        nlohmann::json user;
        auto* u = st.user.as_map();
        user["id"] = *u->find("id")->as_string();
        user["is_anonymous"] = *u->find("is_anonymous")->as_bool();
        user["email"] = "";
        user["roles"] = *u->find("is_anonymous")->as_bool()
                          ? nlohmann::json::array({"anonymous"})
                          : nlohmann::json::array();
        send_text(self, {{"type", "connection_info"},
                         {"hypha_version", hypha_version},
                         {"public_base_url", st.cfg->public_url},
                         {"local_base_url", st.cfg->public_url},
                         {"manager_id", st.cfg->manager_id},
                         {"workspace", st.ws},
                         {"client_id", st.cid},
                         {"user", user},
                         {"reconnection_token", reconnection_token(st)},
                         {"reconnection_token_life_time",
                          st.cfg->reconnection_life.count()}});
        log(log_level::debug, "bridge", "client ", st.me, " connected from ",
            st.conn->remote());
      },
      [self](caf::error& err) { refuse(self, message_of(err)); });
}

/// Takes the entries of `calls` whose deadline has passed.
template <class Map>
std::vector<typename Map::mapped_type>
take_expired(Map& calls, clock_type::time_point now) {
  std::vector<typename Map::mapped_type> out;
  for (auto i = calls.begin(); i != calls.end();) {
    if (i->second.deadline <= now) {
      out.push_back(std::move(i->second));
      i = calls.erase(i);
    } else {
      ++i;
    }
  }
  return out;
}

void close_down(self_ptr self) {
  auto& st = self->state;
  if (st.closed)
    return;
  st.closed = true;
  st.cfg->messages_open -= st.cache_bytes;
  st.cache_bytes = 0;
  st.cache.clear();
  if (st.admitted)
    self->send(st.bridge, leave_atom_v, st.ws, st.cid, st.generation);
  auto pending = std::move(st.pending);
  st.pending.clear();
  for (auto& [sid, call] : pending)
    call.done(
      make_error(errc::disconnected, "client " + st.me + " disconnected"));
  self->quit();
}

} // namespace

ws_session_actor spawn_ws_session(caf::actor_system& sys,
                                  bridge_settings_ptr cfg, bridge_actor bridge,
                                  ws_connection_ptr conn) {
  return sys.spawn([cfg, bridge,
                    conn](self_ptr self) -> ws_session_actor::behavior_type {
    auto& st = self->state;
    st.cfg = cfg;
    st.bridge = bridge;
    st.conn = conn;
    st.manager = "*/" + cfg->manager_id;
    // Sessions end with their bridge (joyd's shutdown).
    self->link_to(bridge);
    self->delayed_send(self, cfg->auth_timeout, auth_atom_v);
    return {
      [self](frame_atom, std::string& data, bool binary) {
        auto& st = self->state;
        if (st.closed)
          return;
        if (!st.admitted) {
          if (binary || !st.me.empty()) {
            // Binary before the handshake, or frames while admitting.
            if (binary && st.me.empty())
              refuse(self, "Authentication error: expected the "
                           "authentication frame (JSON text) first");
          } else {
            handle_auth(self, data);
          }
          st.conn->ack();
          return;
        }
        if (binary) {
          handle_binary(self, data);
        } else if (data.size() <= 1000) {
          // Control frames; longer text is ignored, as hypha does.
          try {
            auto doc = nlohmann::json::parse(data);
            auto type = doc.value("type", std::string{});
            if (type == "ping")
              send_text(self, {{"type", "pong"}});
            else if (type == "refresh_token")
              send_text(self, {{"type", "reconnection_token"},
                               {"reconnection_token", reconnection_token(st)}});
          } catch (const std::exception&) {
            // Not JSON: ignored like any unknown control frame.
          }
        }
        st.conn->ack();
      },
      [self](closed_atom, uint16_t code, std::string& reason) {
        log(log_level::debug, "bridge", "client ", self->state.me,
            " closed: ", code, " ", reason);
        close_down(self);
      },
      [self](deliver_atom, std::string& frame) {
        send_frame(self, std::move(frame));
      },
      [self](exit_atom, std::string& reason, bool now) {
        auto& st = self->state;
        if (st.closed)
          return;
        if (now) {
          st.conn->close(1000, reason);
          close_down(self);
          return;
        }
        // The client disconnects itself on force-exit; closing first would
        // make it reconnect.
        value_map main{{"type", "force-exit"},
                       {"from", st.manager},
                       {"to", st.me},
                       {"reason", reason}};
        if (auto frame = pack(value{std::move(main)}))
          send_frame(self, std::move(*frame));
        log(log_level::info, "bridge", "told ", st.me, " to exit: ", reason);
        self->delayed_send(self, std::chrono::seconds{5}, exit_atom_v,
                           std::move(reason), true);
      },
      [self](leave_atom, std::string& reason) {
        auto& st = self->state;
        st.admitted = false;
        st.conn->close(1000, reason);
        close_down(self);
      },
      [self](ping_atom) -> caf::result<bool> {
        auto rp = self->make_response_promise<bool>();
        auto& st = self->state;
        call_client(self, st.manager, st.ws, "services.built-in.ping",
                    value_list{value{"ping"}}, value_map{}, false,
                    [rp](caf::expected<value> x) mutable {
                      rp.deliver(x && x->as_string() != nullptr
                                 && *x->as_string() == "pong");
                    });
        return rp;
      },
      [self](call_atom, std::string& from, std::string& ws, std::string& method,
             value_list& args) -> caf::result<value> {
        auto rp = self->make_response_promise<value>();
        call_client(self, from, ws, method, std::move(args), value_map{}, false,
                    [rp](caf::expected<value> x) mutable {
                      if (x)
                        rp.deliver(std::move(*x));
                      else
                        rp.deliver(std::move(x.error()));
                    });
        return rp;
      },
      [self](invoke_atom, function_ref& f, value_list& args,
             value_map& kwargs) -> caf::result<value> {
        return run_local_function(self, f, std::move(args), std::move(kwargs));
      },
      [self](tick_atom) {
        auto& st = self->state;
        st.ticking = false;
        if (st.closed)
          return;
        auto now = clock_type::now();
        for (auto& call : take_expired(st.pending, now))
          call.done(make_error(errc::timeout,
                               "client " + st.me
                                 + " neither answered nor sent a heartbeat"));
        for (auto& call : take_expired(st.outbound, now))
          respond(
            self, call.env, call.identity,
            make_error(errc::timeout,
                       "the call took longer than "
                         + std::to_string(
                           std::chrono::duration_cast<std::chrono::seconds>(
                             st.cfg->call_timeout)
                             .count())
                         + " s"));
        for (auto& [session, call] : st.inbound) {
          if (call.next > now)
            continue;
          call.next = now + call.interval;
          value_map main{{"type", "method"},
                         {"from", call.identity},
                         {"to", st.me},
                         {"method", session + ".heartbeat"}};
          if (auto frame = make_frame(main, value_map{{"args", value_list{}}}))
            send_frame(self, std::move(*frame));
        }
        if (!st.pending.empty() || !st.inbound.empty() || !st.outbound.empty())
          start_ticking(self);
      },
      [self](auth_atom) {
        auto& st = self->state;
        if (!st.admitted && !st.closed && st.me.empty())
          refuse(self, "Authentication payload timeout");
      },
    };
  });
}

} // namespace joy
