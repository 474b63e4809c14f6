// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// ImJoy's single-file plugin format, `<name>.imjoy.html` (imjoy-features.md
/// §5): top-level blocks `<config>`, `<script>`, `<window>`, `<style>`,
/// `<docs>` and `<attachment name=...>`. A file may carry variants: the
/// config lists them in `tags`, a block with `tag="x"` belongs to variant
/// x, and a config field whose value is an object keyed by tags takes the
/// variant's entry. The node reads these files when installing them; the
/// browser core runs `window` plugins and the Python host `native-python`
/// ones.
///
/// ```html
/// <config lang="json">{"name": "viewer", "type": "window", "tags":
/// []}</config> <window><div id="out"></div></window> <script
/// lang="javascript">api.export({run(ctx) {...}})</script>
/// ```
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>

#include "runtime/value_json.hpp"

namespace joy {

/// One block of the file, its attributes and its text as written.
struct imjoy_block {
  std::string kind;
  std::map<std::string, std::string> attrs;
  std::string content;

  /// The attribute `key`, or `fallback`.
  std::string attr(const std::string& key, std::string fallback = {}) const;
};

/// A parsed file with one variant chosen.
struct imjoy_file {
  /// The config with the variant's fields picked.
  json config;
  /// The chosen tag ("" when the file has none).
  std::string tag;
  /// The script, window, style and docs of the chosen tag (text, possibly
  /// empty), and the script's `lang` ("javascript" when unsaid).
  std::string script;
  std::string script_lang;
  std::string window;
  std::string style;
  std::string docs;
  /// Attachments by name.
  std::map<std::string, std::string> attachments;
};

/// Bigger files are refused: plugins are source code, not data.
constexpr std::size_t max_imjoy_file_size = std::size_t{4} << 20;

/// Every top-level block of `text`, in order. Errors: invalid_argument (a
/// block that is never closed, with its line).
caf::expected<std::vector<imjoy_block>>
parse_imjoy_blocks(std::string_view text);

/// Parses `text` and picks the variant `tag` ("" = the config's first tag,
/// or none). The config is JSON (`lang="json"`, the default) or YAML
/// (`lang="yaml"`). Errors: invalid_argument (no `<config>`, a config that
/// is not an object, a tag the config does not list, two scripts for one
/// variant), too_large.
caf::expected<imjoy_file> parse_imjoy_file(std::string_view text,
                                           const std::string& tag = {});

/// True for a path or URL naming an ImJoy file (`.imjoy.html`).
bool is_imjoy_file_name(std::string_view path) noexcept;

} // namespace joy
