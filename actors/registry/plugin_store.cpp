// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/registry/plugin_store.hpp"

#include <algorithm>

#include <climits>
#include <utility>

#include <sqlite3.h>

#include "runtime/errc.hpp"

namespace joy {

namespace {

/// Forward-only migrations: `migrations[i]` takes the schema from version i
/// to version i + 1. Never edit a shipped migration; append a new one.
constexpr const char* migrations[] = {
  // 0 -> 1: plugin versions and node settings.
  "CREATE TABLE plugins ("
  "  name TEXT NOT NULL,"
  "  version TEXT NOT NULL,"
  "  type TEXT NOT NULL,"
  "  source TEXT NOT NULL,"
  "  manifest TEXT NOT NULL,"
  "  sha256 TEXT NOT NULL,"
  "  path TEXT NOT NULL,"
  "  installed_at INTEGER NOT NULL,"
  "  updated_at INTEGER NOT NULL,"
  "  active INTEGER NOT NULL DEFAULT 0,"
  "  PRIMARY KEY (name, version));"
  "CREATE UNIQUE INDEX plugins_one_active ON plugins (name) WHERE active = 1;"
  "CREATE TABLE meta ("
  "  key TEXT PRIMARY KEY,"
  "  value TEXT NOT NULL);",
  // 1 -> 2: per-plugin settings (api.set_config), values as JSON.
  "CREATE TABLE config ("
  "  plugin TEXT NOT NULL,"
  "  key TEXT NOT NULL,"
  "  value TEXT NOT NULL,"
  "  PRIMARY KEY (plugin, key));",
};

static_assert(sizeof(migrations) / sizeof(migrations[0])
                == plugin_store::schema_version,
              "one migration per schema version");

constexpr const char* record_columns
  = "name, version, type, source, manifest, sha256, path, installed_at, "
    "updated_at";

caf::error sqlite_error(sqlite3* db, const std::string& what) {
  return make_error(errc::io_error, what + ": " + sqlite3_errmsg(db));
}

caf::error closed_error() {
  return make_error(errc::failed_precondition, "the plugin store is closed");
}

/// One prepared statement, finalized on destruction.
class statement {
public:
  statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK)
      error_ = sqlite_error(db, "registry: cannot prepare statement");
  }

  ~statement() {
    sqlite3_finalize(stmt_);
  }

  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;

  /// The preparation or binding error, if any.
  const caf::error& error() const noexcept {
    return error_;
  }

  void bind(int index, const std::string& text) {
    if (error_)
      return;
    if (text.size() > static_cast<std::size_t>(INT_MAX)) {
      error_ = make_error(errc::too_large, "registry: value too large");
      return;
    }
    if (sqlite3_bind_text(stmt_, index, text.data(),
                          static_cast<int>(text.size()), SQLITE_TRANSIENT)
        != SQLITE_OK)
      error_ = sqlite_error(db_, "registry: cannot bind parameter");
  }

  void bind(int index, int64_t x) {
    if (error_)
      return;
    if (sqlite3_bind_int64(stmt_, index, x) != SQLITE_OK)
      error_ = sqlite_error(db_, "registry: cannot bind parameter");
  }

  /// Steps once: true for a row, false when done (or on error, see error()).
  bool next_row() {
    if (error_)
      return false;
    auto rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW)
      return true;
    if (rc != SQLITE_DONE)
      error_ = sqlite_error(db_, "registry");
    return false;
  }

  /// Runs a statement that returns no rows.
  caf::error run() {
    while (next_row()) {
      // Discard rows (PRAGMAs may return one).
    }
    return error_;
  }

  std::string text(int column) const {
    auto p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
    auto n = sqlite3_column_bytes(stmt_, column);
    return p ? std::string(p, static_cast<std::size_t>(n)) : std::string{};
  }

  int64_t int64(int column) const {
    return sqlite3_column_int64(stmt_, column);
  }

private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  caf::error error_;
};

/// Runs constant SQL (no values) such as DDL or transaction control.
caf::error exec(sqlite3* db, const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    std::string text = msg ? msg : sqlite3_errmsg(db);
    sqlite3_free(msg);
    return make_error(errc::io_error, "registry: " + text);
  }
  return {};
}

/// Runs `body` inside BEGIN IMMEDIATE ... COMMIT, rolling back on error.
template <class F>
caf::error transaction(sqlite3* db, F body) {
  if (auto err = exec(db, "BEGIN IMMEDIATE"))
    return err;
  auto err = body();
  if (!err)
    err = exec(db, "COMMIT");
  if (err && !sqlite3_get_autocommit(db))
    exec(db, "ROLLBACK");
  return err;
}

plugin_record read_record(const statement& row) {
  plugin_record rec;
  rec.name = row.text(0);
  rec.version = row.text(1);
  rec.type = row.text(2);
  rec.source = row.text(3);
  rec.manifest = row.text(4);
  rec.sha256 = row.text(5);
  rec.path = row.text(6);
  rec.installed_at = row.int64(7);
  rec.updated_at = row.int64(8);
  return rec;
}

caf::expected<std::vector<plugin_record>>
select_records(sqlite3* db, const std::string& sql, const std::string* name) {
  statement stmt{db, sql.c_str()};
  if (name)
    stmt.bind(1, *name);
  std::vector<plugin_record> result;
  while (stmt.next_row())
    result.push_back(read_record(stmt));
  if (stmt.error())
    return stmt.error();
  return result;
}

/// Reads a single-value PRAGMA.
caf::expected<std::string> pragma(sqlite3* db, const char* sql) {
  statement stmt{db, sql};
  std::string result;
  if (stmt.next_row())
    result = stmt.text(0);
  if (stmt.error())
    return stmt.error();
  return result;
}

/// Reads an integer PRAGMA.
caf::expected<int> pragma_int(sqlite3* db, const char* sql) {
  statement stmt{db, sql};
  int64_t result = 0;
  if (stmt.next_row())
    result = stmt.int64(0);
  if (stmt.error())
    return stmt.error();
  return static_cast<int>(result);
}

/// Owns a connection until released.
struct db_guard {
  sqlite3* db = nullptr;
  ~db_guard() {
    sqlite3_close_v2(db);
  }
};

bool is_corruption(sqlite3* db) {
  auto rc = sqlite3_errcode(db) & 0xFF;
  return rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB;
}

} // namespace

caf::expected<plugin_store> plugin_store::open(const std::string& path) {
  db_guard guard;
  constexpr int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                        | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  if (sqlite3_open_v2(path.c_str(), &guard.db, flags, nullptr) != SQLITE_OK) {
    std::string why = guard.db ? sqlite3_errmsg(guard.db) : "out of memory";
    return make_error(errc::io_error,
                      "cannot open registry " + path + ": " + why);
  }
  auto db = guard.db;
  // The first statements read the header: a file that is not a database
  // fails here, and must read as corrupt rather than as a generic error.
  auto opening_error = [&](const caf::error& err) {
    auto why = message_of(err);
    if (auto pos = why.find(": "); pos != std::string::npos)
      why.erase(0, pos + 2);
    if (is_corruption(db))
      return make_error(errc::io_error,
                        "registry " + path + " is corrupt: " + why);
    return make_error(code_of(err),
                      "cannot open registry " + path + ": " + why);
  };
  for (auto sql : {"PRAGMA busy_timeout = 5000", "PRAGMA journal_mode = WAL",
                   "PRAGMA synchronous = FULL", "PRAGMA foreign_keys = ON"})
    if (auto err = exec(db, sql))
      return opening_error(err);
  auto check = pragma(db, "PRAGMA quick_check");
  if (!check)
    return opening_error(check.error());
  if (*check != "ok")
    return make_error(errc::io_error,
                      "registry " + path + " is corrupt: " + *check);
  auto user_version = pragma_int(db, "PRAGMA user_version");
  if (!user_version)
    return opening_error(user_version.error());
  auto version = *user_version;
  if (version < 0)
    return make_error(errc::io_error, "registry " + path
                                        + " is corrupt: schema version "
                                        + std::to_string(version));
  if (version > schema_version)
    return make_error(errc::failed_precondition,
                      "registry " + path
                        + " was written by a newer Joy (schema "
                        + std::to_string(version) + " > "
                        + std::to_string(schema_version) + ")");
  for (; version < schema_version; ++version) {
    // PRAGMA takes no parameters; the number is ours, not user input.
    auto set_version = "PRAGMA user_version = " + std::to_string(version + 1);
    auto err = transaction(db, [&] {
      if (auto err = exec(db, migrations[version]))
        return err;
      return exec(db, set_version.c_str());
    });
    if (err)
      return make_error(errc::io_error, "cannot migrate registry " + path
                                          + " to schema "
                                          + std::to_string(version + 1) + ": "
                                          + message_of(err));
  }
  guard.db = nullptr;
  return plugin_store{db};
}

plugin_store::plugin_store(sqlite3* db) noexcept : db_(db) {
  // nop
}

plugin_store::plugin_store(plugin_store&& other) noexcept
  : db_(std::exchange(other.db_, nullptr)) {
  // nop
}

plugin_store& plugin_store::operator=(plugin_store&& other) noexcept {
  if (this != &other) {
    sqlite3_close_v2(db_);
    db_ = std::exchange(other.db_, nullptr);
  }
  return *this;
}

plugin_store::~plugin_store() {
  sqlite3_close_v2(db_);
}

caf::error plugin_store::put(const plugin_record& rec) {
  if (!db_)
    return closed_error();
  if (rec.name.empty() || rec.version.empty())
    return make_error(errc::invalid_argument,
                      "registry: a plugin record needs a name and a version");
  return transaction(db_, [&] {
    statement deactivate{db_, "UPDATE plugins SET active = 0 "
                              "WHERE name = ?1 AND active = 1"};
    deactivate.bind(1, rec.name);
    if (auto err = deactivate.run())
      return err;
    statement insert{
      db_, "INSERT INTO plugins (name, version, type, source, manifest, "
           "sha256, path, installed_at, updated_at, active) "
           "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1) "
           "ON CONFLICT (name, version) DO UPDATE SET "
           "type = excluded.type, source = excluded.source, "
           "manifest = excluded.manifest, sha256 = excluded.sha256, "
           "path = excluded.path, installed_at = excluded.installed_at, "
           "updated_at = excluded.updated_at, active = 1"};
    insert.bind(1, rec.name);
    insert.bind(2, rec.version);
    insert.bind(3, rec.type);
    insert.bind(4, rec.source);
    insert.bind(5, rec.manifest);
    insert.bind(6, rec.sha256);
    insert.bind(7, rec.path);
    insert.bind(8, rec.installed_at);
    insert.bind(9, rec.updated_at);
    return insert.run();
  });
}

caf::expected<plugin_record> plugin_store::get(const std::string& name) const {
  if (!db_)
    return closed_error();
  auto rows = select_records(db_,
                             std::string{"SELECT "} + record_columns
                               + " FROM plugins WHERE name = ?1 AND active = 1",
                             &name);
  if (!rows)
    return rows.error();
  if (rows->empty())
    return make_error(errc::not_found, "no plugin named '" + name + "'");
  return std::move(rows->front());
}

caf::expected<std::vector<plugin_record>>
plugin_store::versions(const std::string& name) const {
  if (!db_)
    return closed_error();
  // rowid breaks ties between installs within the same nanosecond.
  auto rows = select_records(db_,
                             std::string{"SELECT "} + record_columns
                               + " FROM plugins WHERE name = ?1 "
                                 "ORDER BY installed_at DESC, rowid DESC",
                             &name);
  if (!rows)
    return rows.error();
  if (rows->empty())
    return make_error(errc::not_found, "no plugin named '" + name + "'");
  return rows;
}

caf::expected<plugin_record> plugin_store::rollback(const std::string& name) {
  auto all = versions(name);
  if (!all)
    return all.error();
  auto active = get(name);
  if (!active)
    return active.error();
  // The newest version installed before the active one.
  auto i = std::find_if(all->begin(), all->end(), [&](const plugin_record& r) {
    return r.version == active->version;
  });
  if (i == all->end() || ++i == all->end())
    return make_error(errc::failed_precondition,
                      "plugin '" + name + "' has no earlier version than "
                        + active->version + " to roll back to");
  auto target = *i;
  auto err = transaction(db_, [&] {
    statement deactivate{db_, "UPDATE plugins SET active = 0 "
                              "WHERE name = ?1 AND active = 1"};
    deactivate.bind(1, name);
    if (auto err = deactivate.run())
      return err;
    statement activate{db_, "UPDATE plugins SET active = 1 "
                            "WHERE name = ?1 AND version = ?2"};
    activate.bind(1, name);
    activate.bind(2, target.version);
    return activate.run();
  });
  if (err)
    return err;
  return target;
}

caf::expected<std::vector<plugin_record>> plugin_store::list() const {
  if (!db_)
    return closed_error();
  return select_records(db_,
                        std::string{"SELECT "} + record_columns
                          + " FROM plugins WHERE active = 1 ORDER BY name",
                        nullptr);
}

caf::error plugin_store::remove(const std::string& name) {
  if (!db_)
    return closed_error();
  statement stmt{db_, "DELETE FROM plugins WHERE name = ?1"};
  stmt.bind(1, name);
  if (auto err = stmt.run())
    return err;
  if (sqlite3_changes(db_) == 0)
    return make_error(errc::not_found, "no plugin named '" + name + "'");
  // Its settings go with it.
  statement config{db_, "DELETE FROM config WHERE plugin = ?1"};
  config.bind(1, name);
  return config.run();
}

caf::expected<std::string> plugin_store::config(const std::string& plugin,
                                                const std::string& key) const {
  if (!db_)
    return closed_error();
  statement stmt{db_,
                 "SELECT value FROM config WHERE plugin = ?1 AND key = ?2"};
  stmt.bind(1, plugin);
  stmt.bind(2, key);
  if (stmt.next_row())
    return stmt.text(0);
  if (stmt.error())
    return stmt.error();
  return make_error(errc::not_found,
                    "plugin '" + plugin + "' has no setting '" + key + "'");
}

caf::error plugin_store::set_config(const std::string& plugin,
                                    const std::string& key,
                                    const std::optional<std::string>& json) {
  if (!db_)
    return closed_error();
  if (!json) {
    statement stmt{db_, "DELETE FROM config WHERE plugin = ?1 AND key = ?2"};
    stmt.bind(1, plugin);
    stmt.bind(2, key);
    return stmt.run();
  }
  statement stmt{
    db_, "INSERT INTO config (plugin, key, value) VALUES (?1, ?2, ?3) "
         "ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value"};
  stmt.bind(1, plugin);
  stmt.bind(2, key);
  stmt.bind(3, *json);
  return stmt.run();
}

caf::expected<std::string> plugin_store::meta(const std::string& key) const {
  if (!db_)
    return closed_error();
  statement stmt{db_, "SELECT value FROM meta WHERE key = ?1"};
  stmt.bind(1, key);
  if (stmt.next_row())
    return stmt.text(0);
  if (stmt.error())
    return stmt.error();
  return make_error(errc::not_found, "no node setting '" + key + "'");
}

caf::error plugin_store::set_meta(const std::string& key,
                                  const std::string& value) {
  if (!db_)
    return closed_error();
  statement stmt{db_, "INSERT INTO meta (key, value) VALUES (?1, ?2) "
                      "ON CONFLICT (key) DO UPDATE SET value = excluded.value"};
  stmt.bind(1, key);
  stmt.bind(2, value);
  return stmt.run();
}

int plugin_store::version() const {
  if (!db_)
    return -1;
  auto result = pragma_int(db_, "PRAGMA user_version");
  return result ? *result : -1;
}

} // namespace joy
