// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/core/service_info.hpp"

#include "runtime/errc.hpp"

namespace joy {

namespace {

bool valid_part(std::string_view x) {
  if (x.empty() || x.size() > 128)
    return false;
  for (char c : x)
    if (c == '/' || c == ':' || c == '@'
        || static_cast<unsigned char>(c) < 0x20)
      return false;
  return true;
}

} // namespace

caf::expected<service_id> parse_service_id(std::string_view text) {
  auto bad = [&](const char* why) {
    return make_error(errc::invalid_argument,
                      "service id '" + std::string{text} + "': " + why);
  };
  service_id out;
  auto rest = text;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    out.workspace = std::string{rest.substr(0, slash)};
    if (!valid_part(out.workspace))
      return bad("malformed workspace");
    rest.remove_prefix(slash + 1);
  }
  if (auto colon = rest.find(':'); colon != std::string_view::npos) {
    out.service = std::string{rest.substr(colon + 1)};
    if (!valid_part(out.service))
      return bad("malformed service name");
    rest = rest.substr(0, colon);
  }
  out.client = std::string{rest};
  if (!valid_part(out.client))
    return bad("malformed client");
  return out;
}

value describe_service(const service_info& x) {
  value_list methods;
  if (auto* m = x.object.as_map())
    for (auto& [k, v] : *m)
      if (v.as_function() != nullptr)
        methods.emplace_back(k);
  return value{value_map{{"id", value{x.id}},
                         {"name", value{x.name}},
                         {"type", value{x.type}},
                         {"client", value{x.client}},
                         {"node", value{x.node}},
                         {"methods", value{std::move(methods)}}}};
}

bool descriptor_matches(const value& descriptor, const value& query) {
  if (query.is_null())
    return true;
  auto* d = descriptor.as_map();
  if (d == nullptr)
    return false;
  auto field = [&](const char* key) {
    auto* v = d->find(key);
    return v != nullptr && v->as_string() != nullptr ? *v->as_string()
                                                     : std::string{};
  };
  if (auto* s = query.as_string()) {
    auto id = parse_service_id(field("id"));
    return field("name") == *s || field("id") == *s
           || (id && id->client + ":" + id->service == *s);
  }
  auto* q = query.as_map();
  if (q == nullptr)
    return false;
  for (auto& [k, v] : *q) {
    auto* have = d->find(k);
    if (have == nullptr || *have != v)
      return false;
  }
  return true;
}

std::string to_string(const service_id& x) {
  return (x.workspace.empty() ? std::string{} : x.workspace + "/") + x.client
         + (x.service.empty() ? std::string{} : ":" + x.service);
}

std::string full_service_id(const service_id& x) {
  return (x.workspace.empty() ? std::string{cluster_workspace} : x.workspace)
         + "/" + x.client + ":" + (x.service.empty() ? "default" : x.service);
}

} // namespace joy
