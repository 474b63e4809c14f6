// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// Installing a plugin folder: validate, copy, hash. Blocking file I/O: call
/// it from a detached actor.
///
/// Install copies the plugin into `<plugins_dir>/<name>/<version>/` so the
/// source may go away afterwards. The copy is made in a temporary sibling
/// and renamed into place, so a crash never leaves a half-copied plugin;
/// the next install of that plugin sweeps such leftovers. One install at a
/// time per `plugins_dir` (the node actor queues them).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include <caf/expected.hpp>

#include "actors/registry/plugin_record.hpp"
#include "runtime/manifest.hpp"

namespace joy {

/// Reads and validates `<dir>/plugin.json`, then checks what the manifest
/// points at (for `native`: `entry` exists inside the folder, is a regular
/// file and executable; for the ImJoy types: `entry` is an `.imjoy.html`
/// file inside the folder that parses and has a script). Errors:
/// invalid_argument, not_found, too_large.
caf::expected<plugin_manifest>
load_plugin_folder(const std::filesystem::path& dir);

/// Hex sha256 over the plugin: for every regular file, in byte order of
/// the relative paths, the path, a NUL, the content length as 8 bytes
/// little-endian and the content. Symlinks and special files are refused
/// (invalid_argument).
caf::expected<std::string> hash_plugin_folder(const std::filesystem::path& dir);

/// Validates the plugin folder `source` and copies it into `plugins_dir`.
/// Returns the record to store (timestamps set to now). Installing the same
/// name and version again replaces the copy. Errors: invalid_argument,
/// not_found, io_error.
caf::expected<plugin_record>
install_plugin_folder(const std::filesystem::path& source,
                      const std::filesystem::path& plugins_dir);

/// The record of a plugin folder the node uses where it is (a built-in
/// plugin): validated and hashed like an install, `source` "built-in".
caf::expected<plugin_record> builtin_record(const std::filesystem::path& dir);

/// Where an ImJoy file lives in the plugin folder made of it.
constexpr std::string_view imjoy_entry_name = "plugin.imjoy.html";

/// Lays out the ImJoy plugin file `text` (`.imjoy.html`) as a plugin folder
/// in `into`: `plugin.json` holds its config (variant `tag` picked, the
/// first when ""; `entry` the file, `tag` the variant) and the file itself
/// is `plugin.imjoy.html`. Errors: those of parse_imjoy_file (a tag the
/// file does not list), invalid_argument (a config that is not a valid
/// manifest, or says `native`), io_error.
caf::error imjoy_file_to_folder(const std::string& text,
                                const std::filesystem::path& into,
                                const std::string& tag = {});

} // namespace joy
