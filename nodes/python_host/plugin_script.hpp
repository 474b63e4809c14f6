// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// What joy-python-host runs: the Python script of a `native-python`
/// plugin and its config, read from an ImJoy `.imjoy.html` file (the
/// `<script lang="python">` of the variant its `plugin.json` names) or from
/// a `.py` file whose folder holds `plugin.json`.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "runtime/value_json.hpp"

namespace joy::python {

struct plugin_script {
  /// The plugin's name (its config's `name`).
  std::string name;
  /// The Python source, and the file tracebacks name.
  std::string source;
  std::string file;
  /// ImJoy's config (the `<config>` block, or plugin.json).
  json config;
  /// The config's `requirements`, as written.
  std::vector<std::string> requirements;
  /// The file's `<attachment name=...>` blocks (api.getAttachment) and its
  /// `<docs>`.
  std::map<std::string, std::string> attachments;
  std::string docs;
};

/// Reads the plugin whose entry is `path`. Errors: not_found, io_error,
/// invalid_argument (no Python script, a script in another language,
/// requirements that are not strings, a conda `env`).
caf::expected<plugin_script> load_plugin_script(const std::string& path);

} // namespace joy::python
