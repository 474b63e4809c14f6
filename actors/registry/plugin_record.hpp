// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// One installed plugin version, as the registry keeps it.
#pragma once

#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>

namespace joy {

struct plugin_record {
  std::string name;
  std::string version;
  std::string type;
  /// Where it was installed from (a path, later a URL or manifest ref).
  std::string source;
  /// The validated manifest as JSON text.
  std::string manifest;
  /// Hex sha256 over the manifest and every file (see installer.hpp).
  std::string sha256;
  /// The installed copy: `<home>/plugins/<name>/<version>`.
  std::string path;
  /// Nanoseconds since the Unix epoch.
  int64_t installed_at = 0;
  int64_t updated_at = 0;
};

inline bool operator==(const plugin_record& x, const plugin_record& y) {
  return x.name == y.name && x.version == y.version && x.type == y.type
         && x.source == y.source && x.manifest == y.manifest
         && x.sha256 == y.sha256 && x.path == y.path
         && x.installed_at == y.installed_at && x.updated_at == y.updated_at;
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, plugin_record& x) {
  return f(caf::meta::type_name("joy::plugin_record"), x.name, x.version,
           x.type, x.source, x.manifest, x.sha256, x.path, x.installed_at,
           x.updated_at);
}

} // namespace joy
