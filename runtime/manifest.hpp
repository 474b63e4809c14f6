// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The plugin manifest (DESIGN §6): ImJoy's `<config>` fields plus Joy's own
/// `entry`, `resources` and `sandbox`. A plugin folder carries it as
/// `plugin.json`. Validation is strict about what Joy relies on and tolerant
/// of extra ImJoy fields; an invalid manifest is rejected with the field and
/// the reason, e.g. `resources.gpus: must be an integer >= 0, got -1`.
///
/// ```json
/// {"name": "hello", "type": "native", "version": "0.1.0",
///  "entry": "bin/hello", "resources": {"cpus": 1, "memory": "256MiB"}}
/// ```
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>

#include "runtime/value_json.hpp"

namespace joy {

/// What a plugin asks of its node. Zero means "no particular need".
struct plugin_resources {
  double cpus = 0;
  uint64_t memory_bytes = 0;
  uint32_t gpus = 0;
  /// Processes and threads at once (the cgroup's pids.max).
  uint32_t pids = 0;
  /// Disk: the size of the private /tmp.
  uint64_t disk_bytes = 0;
};

/// What a plugin asks its sandbox to allow beyond the defaults (DESIGN §7).
struct plugin_sandbox {
  /// AF_INET/AF_INET6 sockets and the host's network.
  bool network = false;
};

struct plugin_manifest {
  std::string name;
  /// native | native-python | window | web-worker (ImJoy's types Joy knows).
  std::string type;
  std::string version = "0.1.0";
  std::string api_version = "0.1.8";
  std::string description;
  std::vector<std::string> tags;
  std::vector<std::string> flags;
  /// Executable relative to the plugin folder (required for `native`).
  std::string entry;
  plugin_resources resources;
  plugin_sandbox sandbox;
  /// The validated document with defaults filled in, keys in their original
  /// order; extra ImJoy fields are kept verbatim.
  json document;
};

/// Parses and validates `plugin.json` text.
caf::expected<plugin_manifest> parse_manifest(std::string_view text);

/// Validates a parsed document. Errors are `errc::invalid_argument` with
/// messages of the form "<field>: <reason>".
caf::expected<plugin_manifest> validate_manifest(const json& doc);

/// Parses a memory size: an integer number of bytes, or a string such as
/// "512MiB", "2GB", "1.5 GiB", "100k" (k/M/G/T = powers of 1000, Ki/Mi/Gi/Ti
/// = powers of 1024, an optional trailing "B").
caf::expected<uint64_t> parse_memory_size(const json& x);

} // namespace joy
