// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// `plugin_store`: the node's registry in sqlite (`<home>/registry.db`,
/// DESIGN §8). WAL with `synchronous=FULL`, so an acknowledged write survives
/// a kill -9 of the daemon (and power loss where the disk honours flushes);
/// `busy_timeout` 5 s; `quick_check` when opened; the schema version in
/// `PRAGMA user_version` with forward-only migrations.
///
/// Blocking: use it only from a detached actor (registry_actor.hpp) or in
/// tests (`plugin_store::open(":memory:")`). One connection per daemon,
/// never used across `fork()` (plugins are started with posix_spawn).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "actors/registry/plugin_record.hpp"

struct sqlite3;

namespace joy {

class plugin_store {
public:
  /// The schema version this build writes.
  static constexpr int schema_version = 2;

  /// Opens (creating if needed) and migrates the database at `path`;
  /// ":memory:" gives a private in-memory store. Errors: io_error (cannot
  /// open, corrupt: quick_check failed), failed_precondition (the file was
  /// written by a newer Joy).
  static caf::expected<plugin_store> open(const std::string& path);

  plugin_store(plugin_store&&) noexcept;
  plugin_store& operator=(plugin_store&&) noexcept;
  ~plugin_store();

  /// Inserts or replaces the version `rec.name`/`rec.version` and makes it
  /// the active version of `rec.name`; other versions stay (for rollback).
  /// Durable when it returns without error.
  caf::error put(const plugin_record& rec);

  /// The active version of `name`. Errors: not_found.
  caf::expected<plugin_record> get(const std::string& name) const;

  /// Every version of `name`, newest install first. Errors: not_found.
  caf::expected<std::vector<plugin_record>>
  versions(const std::string& name) const;

  /// Makes the newest version installed before the active one active, and
  /// returns it. Errors: not_found, failed_precondition (no earlier
  /// version).
  caf::expected<plugin_record> rollback(const std::string& name);

  /// The active version of every plugin, by name.
  caf::expected<std::vector<plugin_record>> list() const;

  /// Forgets every version of `name`, and its settings. Errors: not_found.
  caf::error remove(const std::string& name);

  /// A plugin's setting (api.get_config), as JSON. Errors: not_found.
  caf::expected<std::string> config(const std::string& plugin,
                                    const std::string& key) const;

  /// Stores a plugin's setting (JSON), or deletes it when `json` is empty.
  caf::error set_config(const std::string& plugin, const std::string& key,
                        const std::optional<std::string>& json);

  /// A node-level setting (e.g. "node_id"). Errors: not_found.
  caf::expected<std::string> meta(const std::string& key) const;

  caf::error set_meta(const std::string& key, const std::string& value);

  /// `PRAGMA user_version` of the open database.
  int version() const;

private:
  explicit plugin_store(sqlite3* db) noexcept;

  sqlite3* db_ = nullptr;
};

} // namespace joy
