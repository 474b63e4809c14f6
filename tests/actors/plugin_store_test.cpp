// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <sqlite3.h>

#include "actors/registry/plugin_store.hpp"
#include "runtime/errc.hpp"
#include "tests/support/temp_dir.hpp"

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using joy::errc;
using joy::plugin_record;
using joy::plugin_store;

namespace {

plugin_record make_record(const std::string& name, const std::string& version,
                          int64_t installed_at = 1) {
  plugin_record rec;
  rec.name = name;
  rec.version = version;
  rec.type = "native";
  rec.source = "/src/" + name;
  rec.manifest = R"({"name":")" + name + R"(","type":"native"})";
  rec.sha256 = std::string(64, 'a');
  rec.path = "/home/plugins/" + name + "/" + version;
  rec.installed_at = installed_at;
  rec.updated_at = installed_at + 1;
  return rec;
}

plugin_store open_or_fail(const std::string& path) {
  auto store = plugin_store::open(path);
  if (!store)
    FAIL("cannot open " << path << ": " << joy::message_of(store.error()));
  return std::move(*store);
}

void put_or_fail(plugin_store& store, const plugin_record& rec) {
  if (auto err = store.put(rec))
    FAIL("put failed: " << joy::message_of(err));
}

/// A store on ":memory:" or on a file in a temp dir, as the test generates.
struct store_fixture {
  std::unique_ptr<joy::test::temp_dir> dir;
  std::optional<plugin_store> store;

  explicit store_fixture(const std::string& kind) {
    std::string path = ":memory:";
    if (kind == "file") {
      dir = std::make_unique<joy::test::temp_dir>();
      path = (*dir / "registry.db").string();
    }
    store.emplace(open_or_fail(path));
  }
};

std::vector<std::string> version_names(const std::vector<plugin_record>& xs) {
  std::vector<std::string> out;
  for (auto& x : xs)
    out.push_back(x.version);
  return out;
}

/// Runs SQL on a file directly, bypassing plugin_store.
void raw_exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* msg = nullptr;
  auto rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &msg);
  std::string text = msg ? msg : "";
  sqlite3_free(msg);
  sqlite3_close(db);
  INFO(text);
  REQUIRE(rc == SQLITE_OK);
}

/// PRAGMA integrity_check on a file, directly.
std::string integrity_check(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr)
      != SQLITE_OK) {
    sqlite3_close(db);
    return "cannot open";
  }
  sqlite3_stmt* stmt = nullptr;
  std::string result = "no result";
  if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, nullptr)
        == SQLITE_OK
      && sqlite3_step(stmt) == SQLITE_ROW)
    result = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return result;
}

} // namespace

TEST_CASE("a stored record reads back unchanged", "[actors][registry]") {
  auto kind = GENERATE(as<std::string>{}, ":memory:", "file");
  SECTION(kind) {
    store_fixture f{kind};
    auto& store = *f.store;
    CHECK(store.version() == plugin_store::schema_version);
    auto rec = make_record("hello", "0.1.0", 1'700'000'000'000'000'000);
    rec.manifest = R"({"name":"hello","description":)"
                   R"("it's \"quoted\"; DROP TABLE plugins;--"})";
    put_or_fail(store, rec);
    auto got = store.get("hello");
    REQUIRE(got);
    CHECK(*got == rec);
    auto all = store.list();
    REQUIRE(all);
    REQUIRE(all->size() == 1);
    CHECK(all->front() == rec);
  }
}

TEST_CASE("a second version becomes active and the first stays for rollback",
          "[actors][registry]") {
  auto kind = GENERATE(as<std::string>{}, ":memory:", "file");
  SECTION(kind) {
    store_fixture f{kind};
    auto& store = *f.store;
    put_or_fail(store, make_record("hello", "1.0", 100));
    put_or_fail(store, make_record("hello", "2.0", 200));
    auto active = store.get("hello");
    REQUIRE(active);
    CHECK(active->version == "2.0");
    auto all = store.versions("hello");
    REQUIRE(all);
    CHECK(version_names(*all) == std::vector<std::string>{"2.0", "1.0"});
    // Putting the old version again (a rollback) makes it active again and
    // replaces its row instead of adding one.
    auto again = make_record("hello", "1.0", 300);
    again.sha256 = std::string(64, 'b');
    put_or_fail(store, again);
    active = store.get("hello");
    REQUIRE(active);
    CHECK(*active == again);
    all = store.versions("hello");
    REQUIRE(all);
    CHECK(version_names(*all) == std::vector<std::string>{"1.0", "2.0"});
    auto listed = store.list();
    REQUIRE(listed);
    REQUIRE(listed->size() == 1);
    CHECK(listed->front().version == "1.0");
  }
}

TEST_CASE("list returns the active version of every plugin by name",
          "[actors][registry]") {
  store_fixture f{":memory:"};
  auto& store = *f.store;
  auto empty = store.list();
  REQUIRE(empty);
  CHECK(empty->empty());
  for (auto name : {"zeta", "alpha", "Mid", "beta"})
    put_or_fail(store, make_record(name, "1"));
  put_or_fail(store, make_record("alpha", "2"));
  auto all = store.list();
  REQUIRE(all);
  std::vector<std::string> names;
  for (auto& rec : *all)
    names.push_back(rec.name + "@" + rec.version);
  CHECK(names
        == std::vector<std::string>{"Mid@1", "alpha@2", "beta@1", "zeta@1"});
}

TEST_CASE("unknown plugins are not_found", "[actors][registry]") {
  store_fixture f{":memory:"};
  auto& store = *f.store;
  put_or_fail(store, make_record("known", "1"));
  auto got = store.get("unknown");
  REQUIRE_FALSE(got);
  CHECK(joy::code_of(got.error()) == errc::not_found);
  CHECK(joy::message_of(got.error()) == "no plugin named 'unknown'");
  auto vs = store.versions("unknown");
  REQUIRE_FALSE(vs);
  CHECK(joy::code_of(vs.error()) == errc::not_found);
  CHECK(joy::code_of(store.remove("unknown")) == errc::not_found);
}

TEST_CASE("remove forgets every version of a plugin", "[actors][registry]") {
  store_fixture f{":memory:"};
  auto& store = *f.store;
  put_or_fail(store, make_record("gone", "1", 1));
  put_or_fail(store, make_record("gone", "2", 2));
  put_or_fail(store, make_record("stays", "1", 3));
  CHECK_FALSE(store.remove("gone"));
  CHECK(joy::code_of(store.get("gone").error()) == errc::not_found);
  CHECK(joy::code_of(store.versions("gone").error()) == errc::not_found);
  CHECK(store.get("stays"));
  CHECK(joy::code_of(store.remove("gone")) == errc::not_found);
  // A removed name can be installed again.
  put_or_fail(store, make_record("gone", "3", 4));
  CHECK(store.get("gone")->version == "3");
}

TEST_CASE("a record without name or version is refused", "[actors][registry]") {
  store_fixture f{":memory:"};
  CHECK(joy::code_of(f.store->put(make_record("", "1")))
        == errc::invalid_argument);
  CHECK(joy::code_of(f.store->put(make_record("x", "")))
        == errc::invalid_argument);
}

TEST_CASE("node settings are stored and overwritten", "[actors][registry]") {
  auto kind = GENERATE(as<std::string>{}, ":memory:", "file");
  SECTION(kind) {
    store_fixture f{kind};
    auto& store = *f.store;
    auto missing = store.meta("node_id");
    REQUIRE_FALSE(missing);
    CHECK(joy::code_of(missing.error()) == errc::not_found);
    CHECK_FALSE(store.set_meta("node_id", "abc"));
    CHECK(store.meta("node_id") == std::string{"abc"});
    CHECK_FALSE(store.set_meta("node_id", "it's 'x'"));
    CHECK(store.meta("node_id") == std::string{"it's 'x'"});
    CHECK_FALSE(store.set_meta("empty", ""));
    CHECK(store.meta("empty") == std::string{});
  }
}

TEST_CASE("a file store keeps its entries when reopened",
          "[actors][registry]") {
  joy::test::temp_dir dir;
  auto path = (dir / "registry.db").string();
  {
    auto store = open_or_fail(path);
    put_or_fail(store, make_record("a", "1", 1));
    put_or_fail(store, make_record("a", "2", 2));
    put_or_fail(store, make_record("b", "1", 3));
    CHECK_FALSE(store.set_meta("node_id", "n1"));
  }
  auto store = open_or_fail(path);
  CHECK(store.version() == plugin_store::schema_version);
  CHECK(store.get("a")->version == "2");
  CHECK(version_names(*store.versions("a"))
        == std::vector<std::string>{"2", "1"});
  CHECK(*store.get("b") == make_record("b", "1", 3));
  CHECK(store.meta("node_id") == std::string{"n1"});
  CHECK(integrity_check(path) == "ok");
}

TEST_CASE("a moved store keeps working and the moved-from one refuses calls",
          "[actors][registry]") {
  auto a = open_or_fail(":memory:");
  put_or_fail(a, make_record("x", "1"));
  plugin_store b{std::move(a)};
  CHECK(b.get("x"));
  CHECK(joy::code_of(a.get("x").error()) == errc::failed_precondition);
  CHECK(joy::code_of(a.put(make_record("y", "1")))
        == errc::failed_precondition);
  CHECK(a.version() == -1);
  auto c = open_or_fail(":memory:");
  c = std::move(b);
  CHECK(c.get("x"));
}

TEST_CASE("a registry written by a newer Joy is refused",
          "[actors][registry]") {
  joy::test::temp_dir dir;
  auto path = (dir / "registry.db").string();
  { open_or_fail(path); }
  raw_exec(path, "PRAGMA user_version = 99");
  auto store = plugin_store::open(path);
  REQUIRE_FALSE(store);
  CHECK(joy::code_of(store.error()) == errc::failed_precondition);
  CHECK(joy::message_of(store.error())
        == "registry " + path + " was written by a newer Joy (schema 99 > "
             + std::to_string(plugin_store::schema_version) + ")");
}

TEST_CASE("a file that is not a database is a clear io_error",
          "[actors][registry]") {
  joy::test::temp_dir dir;
  auto path = (dir / "registry.db").string();
  std::mt19937 rng{42};
  std::string junk(64 * 1024, '\0');
  for (auto& c : junk)
    c = static_cast<char>(rng());
  joy::test::write_file(path, junk);
  auto store = plugin_store::open(path);
  REQUIRE_FALSE(store);
  CHECK(joy::code_of(store.error()) == errc::io_error);
  CHECK_THAT(joy::message_of(store.error()),
             StartsWith("registry " + path + " is corrupt: "));
}

TEST_CASE("a database with damaged pages is reported as corrupt",
          "[actors][registry]") {
  joy::test::temp_dir dir;
  auto path = (dir / "registry.db").string();
  {
    auto store = open_or_fail(path);
    for (int i = 0; i < 200; ++i) {
      auto rec = make_record("p" + std::to_string(i), "1", i);
      rec.manifest = std::string(500, 'm');
      put_or_fail(store, rec);
    }
  }
  // Keep the header page, overwrite the b-tree pages behind it.
  auto bytes = joy::test::read_file(path);
  REQUIRE(bytes.size() > 16 * 4096);
  for (std::size_t i = 4096; i < bytes.size(); i += 7)
    bytes[i] = static_cast<char>(0xA5);
  joy::test::write_file(path, bytes);
  auto store = plugin_store::open(path);
  REQUIRE_FALSE(store);
  CHECK(joy::code_of(store.error()) == errc::io_error);
  CHECK_THAT(joy::message_of(store.error()), Contains("is corrupt"));
}

TEST_CASE("a registry in a missing directory cannot be opened",
          "[actors][registry]") {
  joy::test::temp_dir dir;
  auto path = (dir / "no" / "such" / "registry.db").string();
  auto store = plugin_store::open(path);
  REQUIRE_FALSE(store);
  CHECK(joy::code_of(store.error()) == errc::io_error);
  CHECK_THAT(joy::message_of(store.error()),
             StartsWith("cannot open registry " + path));
}

TEST_CASE("every acknowledged put survives a kill -9 of the writer",
          "[actors][registry]") {
  joy::test::temp_dir dir;
  auto path = (dir / "registry.db").string();
  std::mt19937 rng{std::random_device{}()};
  constexpr int rounds = 20;
  constexpr int names = 5;
  // Acknowledged (name, version) pairs over all rounds.
  std::set<std::pair<std::string, std::string>> acked;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{30};
  for (int round = 0; round < rounds; ++round) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    // No store is open in this process while it forks.
    auto pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(fds[0]);
      auto store = plugin_store::open(path);
      if (!store)
        ::_exit(2);
      for (int i = 0; i < 100'000; ++i) {
        auto rec = make_record("p" + std::to_string(i % names),
                               std::to_string(round) + "." + std::to_string(i),
                               round * 1'000'000 + i);
        if (store->put(rec))
          ::_exit(3);
        char line[32];
        auto n = std::snprintf(line, sizeof(line), "acked %d\n", i);
        if (::write(fds[1], line, static_cast<std::size_t>(n)) != n)
          ::_exit(4);
      }
      ::_exit(0);
    }
    ::close(fds[1]);
    // Reads "acked i" lines; returns false at EOF.
    std::string pending;
    auto read_acks = [&](int want) {
      int got = 0;
      char buf[512];
      while (want < 0 || got < want) {
        auto n = ::read(fds[0], buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
          continue;
        if (n <= 0)
          return false;
        pending.append(buf, static_cast<std::size_t>(n));
        for (auto pos = pending.find('\n'); pos != std::string::npos;
             pos = pending.find('\n')) {
          auto i = std::stoi(pending.substr(6, pos - 6));
          acked.emplace("p" + std::to_string(i % names),
                        std::to_string(round) + "." + std::to_string(i));
          pending.erase(0, pos + 1);
          ++got;
        }
      }
      return true;
    };
    // Kill at a random moment: after a random number of acks, plus a random
    // delay so the kill lands anywhere inside the next put.
    auto alive = read_acks(static_cast<int>(rng() % 25));
    std::this_thread::sleep_for(std::chrono::microseconds{rng() % 3000});
    ::kill(pid, SIGKILL);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    if (alive)
      read_acks(-1); // acks written before the kill count too
    ::close(fds[0]);
    INFO("round " << round);
    if (WIFEXITED(status))
      REQUIRE(WEXITSTATUS(status) == 0);
    auto store = open_or_fail(path);
    for (auto& [name, version] : acked) {
      auto vs = store.versions(name);
      REQUIRE(vs);
      auto have = version_names(*vs);
      INFO(name << " " << version);
      CHECK(std::find(have.begin(), have.end(), version) != have.end());
    }
    auto all = store.list();
    REQUIRE(all);
    CHECK(all->size() <= static_cast<std::size_t>(names));
    if (std::chrono::steady_clock::now() > deadline)
      break;
  }
  CHECK(integrity_check(path) == "ok");
  CHECK(acked.size() > 0);
}
