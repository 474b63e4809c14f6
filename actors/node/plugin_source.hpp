// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// Where a plugin to install comes from, and turning that into a local
/// folder the installer can validate and copy. Three spellings:
///
/// - an absolute folder path on the node's machine, or the path of an
///   ImJoy plugin file (`.imjoy.html`);
/// - an http(s) URL of a gzipped tarball holding the plugin folder (at its
///   top or inside its one top-level folder, as GitHub's archives are), or
///   of an ImJoy plugin file;
/// - an ImJoy manifest reference `user/repo[@ref]:Name[@tag]`: the node
///   reads `<manifest base>/<user>/<repo>/<ref>/manifest.imjoy.json`
///   (the base defaults to raw.githubusercontent.com; `ref` is a git ref,
///   `HEAD` when not given), finds the plugin called `Name` in its
///   `plugins` list and installs the archive its `uri` names, resolved
///   against the manifest's `uri_root` or the manifest itself.
///
/// As in ImJoy, `@tag` after an ImJoy file's path, URL or name picks the
/// variant of the plugin's `tags` it installs as (the first one when not
/// given); plugin folders and tarballs have no variants.
///
/// Blocking (network and tar): call from a detached actor.
#pragma once

#include <filesystem>
#include <string>

#include <caf/expected.hpp>

#include "actors/node/fetch.hpp"

namespace joy {

struct plugin_source {
  enum kind_t { folder, archive_url, manifest_ref };
  kind_t kind = folder;
  /// As the user wrote it; the registry keeps it as the record's source.
  std::string text;
  /// The folder, file or URL, without a `@tag` (folders and URLs).
  std::string where;
  /// The ImJoy variant to install; "" for the file's first.
  std::string tag;
  /// For manifest references.
  std::string user;
  std::string repo;
  std::string ref;
  std::string name;
};

/// Classifies `text`. Errors: invalid_argument, naming the three forms.
caf::expected<plugin_source> parse_plugin_source(const std::string& text);

/// Where remote sources are read from.
struct remote_config {
  /// Manifest references resolve under it.
  std::string manifest_base = "https://raw.githubusercontent.com";
  fetch_limits limits;
};

/// The URL of the manifest a reference reads.
std::string manifest_url(const plugin_source& src, const std::string& base);

/// Picks the archive URL for plugin `name` out of the manifest text that was
/// read from `url`. Errors: invalid_argument (not a manifest, no `uri`),
/// not_found (no such plugin; the message lists the ones there are).
caf::expected<std::string> pick_from_manifest(const std::string& manifest_text,
                                              const std::string& url,
                                              const std::string& name);

/// Unpacks the gzipped tarball `archive` into the empty folder `into` (GNU
/// tar; owners and setuid bits are never restored, members outside `into`
/// are refused by tar) and returns the plugin folder inside it.
caf::expected<std::filesystem::path>
unpack_plugin_archive(const std::filesystem::path& archive,
                      const std::filesystem::path& into);

/// Packs the plugin folder `folder` into the gzipped tarball `archive`, for
/// another node to unpack. Errors: io_error.
caf::error pack_plugin_folder(const std::filesystem::path& folder,
                              const std::filesystem::path& archive);

/// The local folder holding `src`: the folder itself, or the plugin
/// downloaded and unpacked into the empty folder `scratch`; an ImJoy file
/// (local or downloaded) is laid out as a folder there
/// (imjoy_file_to_folder).
caf::expected<std::filesystem::path>
materialize(const plugin_source& src, const std::filesystem::path& scratch,
            const remote_config& cfg);

} // namespace joy
