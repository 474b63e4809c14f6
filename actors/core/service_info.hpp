// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// One entry of the cluster's service directory. Ids follow hypha:
/// `workspace/client:service`; a native plugin is the client, its exported
/// functions the service `default`, in the cluster workspace `public`.
#pragma once

#include <string>
#include <string_view>

#include <caf/expected.hpp>
#include <caf/meta/type_name.hpp>

#include "runtime/value.hpp"

namespace joy {

struct service_info {
  /// Full id, e.g. "public/hello:default".
  std::string id;
  std::string workspace;
  /// The client providing it (for native plugins, the plugin's name).
  std::string client;
  /// The service's own name, e.g. "default".
  std::string service;
  /// The node it lives on.
  std::string node;
  /// ImJoy's descriptive fields of the service object.
  std::string name;
  std::string type;
  /// The service object itself: a map whose function members are the
  /// service's methods (capabilities of the providing process).
  value object;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, service_info& x) {
  return f(caf::meta::type_name("joy::service_info"), x.id, x.workspace,
           x.client, x.service, x.node, x.name, x.type, x.object);
}

/// The descriptor of a service, for listings: id, name, type, client and
/// node, and the names of its methods — no functions.
value describe_service(const service_info& x);

/// Whether a descriptor matches a listing query: null matches all, a
/// string a name, a full id or `client:service`, a map exact values of the
/// descriptor's fields.
bool descriptor_matches(const value& descriptor, const value& query);

/// The workspace native plugins live in.
constexpr const char* cluster_workspace = "public";

/// A parsed service id.
struct service_id {
  std::string workspace; // empty: not given
  std::string client;
  std::string service; // empty: not given (the client's default service)
};

/// Parses `workspace/client:service`, `client:service`, `workspace/client`
/// or `client`. Errors: invalid_argument.
caf::expected<service_id> parse_service_id(std::string_view text);

/// "workspace/client:service".
std::string to_string(const service_id& x);

/// The id the directory files a service under: the workspace `public`
/// and the service `default` where `x` names none.
std::string full_service_id(const service_id& x);

} // namespace joy
