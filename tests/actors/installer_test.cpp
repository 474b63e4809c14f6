// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <openssl/evp.h>

#include "actors/node/installer.hpp"
#include "runtime/errc.hpp"
#include "tests/support/temp_dir.hpp"

namespace fs = std::filesystem;

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using joy::errc;
using joy::test::read_file;
using joy::test::write_file;

namespace {

constexpr const char* run_script = "#!/bin/sh\necho hello\n";

/// Writes a native plugin folder: plugin.json, an executable bin/run and a
/// data file.
void make_plugin(const fs::path& dir, const std::string& name = "hello",
                 const std::string& version = "1.0.0") {
  write_file(dir / "plugin.json", R"({"name": ")" + name
                                    + R"(", "type": "native", "version": ")"
                                    + version + R"(", "entry": "bin/run"})");
  write_file(dir / "bin" / "run", run_script);
  fs::permissions(dir / "bin" / "run", fs::perms(0755));
  write_file(dir / "data" / "model.txt", "weights");
}

std::pair<errc, std::string> error_of(const caf::error& err) {
  return {joy::code_of(err), joy::message_of(err)};
}

template <class T>
std::pair<errc, std::string> error_of(const caf::expected<T>& x) {
  REQUIRE_FALSE(x);
  return error_of(x.error());
}

std::string hash_or_fail(const fs::path& dir) {
  auto h = joy::hash_plugin_folder(dir);
  if (!h)
    FAIL("cannot hash " << dir << ": " << joy::message_of(h.error()));
  return *h;
}

joy::plugin_record install_or_fail(const fs::path& source,
                                   const fs::path& plugins) {
  auto rec = joy::install_plugin_folder(source, plugins);
  if (!rec)
    FAIL("cannot install " << source << ": " << joy::message_of(rec.error()));
  return *rec;
}

/// Names in `dir` (not recursive).
std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> out;
  for (auto& e : fs::directory_iterator{dir})
    out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

/// sha256 of `data` as lowercase hex, computed here independently.
std::string sha256_hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  REQUIRE(EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr)
          == 1);
  std::string out;
  char buf[3];
  for (unsigned int i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof(buf), "%02x", md[i]);
    out += buf;
  }
  return out;
}

/// One file's part of the hashed stream: path, NUL, 8-byte LE size, content.
std::string file_record(const std::string& rel, const std::string& content) {
  std::string out = rel;
  out += '\0';
  auto size = static_cast<uint64_t>(content.size());
  for (int k = 0; k < 8; ++k)
    out += static_cast<char>((size >> (8 * k)) & 0xFF);
  return out + content;
}

} // namespace

TEST_CASE("installing copies the folder and keeps the entry executable",
          "[actors][installer]") {
  joy::test::temp_dir tmp;
  auto source = tmp / "src";
  auto plugins = tmp / "home" / "plugins";
  make_plugin(source);
  auto rec = install_or_fail(source, plugins);
  auto target = plugins / "hello" / "1.0.0";
  CHECK(rec.name == "hello");
  CHECK(rec.version == "1.0.0");
  CHECK(rec.type == "native");
  CHECK(rec.source == fs::canonical(source).string());
  CHECK(rec.path == target.string());
  CHECK(rec.installed_at > 0);
  CHECK(rec.updated_at == rec.installed_at);
  CHECK(
    rec.manifest
    == R"({"name":"hello","type":"native","version":"1.0.0","entry":"bin/run",)"
       R"("api_version":"0.1.8"})");
  CHECK(read_file(target / "bin" / "run") == run_script);
  CHECK(read_file(target / "data" / "model.txt") == "weights");
  CHECK(read_file(target / "plugin.json") == read_file(source / "plugin.json"));
  auto perms = fs::status(target / "bin" / "run").permissions();
  CHECK((perms & fs::perms::owner_exec) != fs::perms::none);
  CHECK((fs::status(target / "data" / "model.txt").permissions()
         & fs::perms::owner_exec)
        == fs::perms::none);
  CHECK(rec.sha256 == hash_or_fail(source));
  CHECK(rec.sha256 == hash_or_fail(target));
  CHECK(joy::load_plugin_folder(target));
  // No temporary copies are left behind.
  CHECK(entries(plugins / "hello") == std::vector<std::string>{"1.0.0"});
}

TEST_CASE("the folder hash follows the documented format",
          "[actors][installer]") {
  joy::test::temp_dir tmp;
  auto dir = tmp / "p";
  write_file(dir / "b.txt", "bee");
  write_file(dir / "a" / "z.txt", "");
  write_file(dir / "a-b", "dash");
  fs::create_directories(dir / "empty" / "dir");
  // Byte order of the relative paths: "a-b" < "a/z.txt" < "b.txt".
  auto expected
    = sha256_hex(file_record("a-b", "dash") + file_record("a/z.txt", "")
                 + file_record("b.txt", "bee"));
  CHECK(hash_or_fail(dir) == expected);
}

TEST_CASE("the folder hash is stable and changes when any file changes",
          "[actors][installer]") {
  joy::test::temp_dir tmp;
  auto dir = tmp / "p";
  make_plugin(dir);
  auto h = hash_or_fail(dir);
  CHECK(h.size() == 64);
  CHECK(h.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(hash_or_fail(dir) == h);
  SECTION("content") {
    write_file(dir / "data" / "model.txt", "weightz");
    CHECK(hash_or_fail(dir) != h);
    write_file(dir / "data" / "model.txt", "weights");
    CHECK(hash_or_fail(dir) == h);
  }
  SECTION("a rename") {
    fs::rename(dir / "data" / "model.txt", dir / "data" / "model2.txt");
    CHECK(hash_or_fail(dir) != h);
  }
  SECTION("a new empty file") {
    write_file(dir / "empty", "");
    CHECK(hash_or_fail(dir) != h);
  }
  SECTION("the manifest") {
    write_file(dir / "plugin.json", read_file(dir / "plugin.json") + " ");
    CHECK(hash_or_fail(dir) != h);
  }
  SECTION("but not an empty directory") {
    fs::create_directories(dir / "nothing" / "here");
    CHECK(hash_or_fail(dir) == h);
  }
}

TEST_CASE("a folder without plugin.json is not_found", "[actors][installer]") {
  joy::test::temp_dir tmp;
  auto dir = tmp / "p";
  fs::create_directories(dir);
  auto [code, msg] = error_of(joy::load_plugin_folder(dir));
  CHECK(code == errc::not_found);
  CHECK(msg == "no plugin.json in " + dir.string());
  auto [code2, msg2]
    = error_of(joy::install_plugin_folder(dir, tmp / "plugins"));
  CHECK(code2 == errc::not_found);
  CHECK_FALSE(fs::exists(tmp / "plugins"));
}

TEST_CASE("a folder that does not exist is not_found", "[actors][installer]") {
  joy::test::temp_dir tmp;
  auto missing = tmp / "missing";
  auto [code, msg] = error_of(joy::load_plugin_folder(missing));
  CHECK(code == errc::not_found);
  CHECK(msg == missing.string() + " does not exist");
  CHECK(error_of(joy::hash_plugin_folder(missing)).first == errc::not_found);
  write_file(tmp / "file", "x");
  CHECK(error_of(joy::load_plugin_folder(tmp / "file")).first
        == errc::invalid_argument);
}

TEST_CASE("an invalid manifest names the field", "[actors][installer]") {
  joy::test::temp_dir tmp;
  auto dir = tmp / "p";
  make_plugin(dir);
  write_file(dir / "plugin.json",
             R"({"name": "hello", "type": "native", "entry": "bin/run",
                 "resources": {"gpus": -1}})");
  auto [code, msg] = error_of(joy::load_plugin_folder(dir));
  CHECK(code == errc::invalid_argument);
  CHECK(msg == "plugin.json: resources.gpus: must be an integer >= 0, got -1");
  write_file(dir / "plugin.json", "{\"name\": ");
  auto [code2, msg2]
    = error_of(joy::install_plugin_folder(dir, tmp / "plugins"));
  CHECK(code2 == errc::invalid_argument);
  CHECK_THAT(msg2, StartsWith("plugin.json: invalid JSON"));
}

TEST_CASE("the entry must be an executable regular file",
          "[actors][installer]") {
  joy::test::temp_dir tmp;
  auto dir = tmp / "p";
  make_plugin(dir);
  SECTION("not executable") {
    fs::permissions(dir / "bin" / "run", fs::perms(0644));
    auto [code, msg] = error_of(joy::load_plugin_folder(dir));
    CHECK(code == errc::invalid_argument);
    CHECK(msg == "entry: bin/run is not executable");
    CHECK_FALSE(joy::install_plugin_folder(dir, tmp / "plugins"));
  }
  SECTION("missing") {
    fs::remove(dir / "bin" / "run");
    auto [code, msg] = error_of(joy::load_plugin_folder(dir));
    CHECK(code == errc::invalid_argument);
    CHECK_THAT(msg, StartsWith("entry: bin/run does not exist"));
  }
  SECTION("a directory") {
    fs::remove(dir / "bin" / "run");
    fs::create_directories(dir / "bin" / "run");
    auto [code, msg] = error_of(joy::load_plugin_folder(dir));
    CHECK(code == errc::invalid_argument);
    CHECK(msg == "entry: bin/run is not a regular file");
  }
}

TEST_CASE("an entry that escapes the folder is refused",
          "[actors][installer]") {
  joy::test::temp_dir tmp;
  auto dir = tmp / "p";
  make_plugin(dir);
  write_file(tmp / "x", run_script);
  fs::permissions(tmp / "x", fs::perms(0755));
  SECTION("through ..") {
    write_file(dir / "plugin.json",
               R"({"name": "hello", "type": "native", "entry": "../x"})");
    auto [code, msg] = error_of(joy::load_plugin_folder(dir));
    CHECK(code == errc::invalid_argument);
    CHECK_THAT(
      msg,
      StartsWith("plugin.json: entry: must stay inside the plugin folder"));
  }
  SECTION("through a symlink") {
    fs::remove(dir / "bin" / "run");
    fs::create_symlink(tmp / "x", dir / "bin" / "run");
    auto [code, msg] = error_of(joy::load_plugin_folder(dir));
    CHECK(code == errc::invalid_argument);
    CHECK(msg == "entry: bin/run leads outside the plugin folder");
  }
  SECTION("through a symlinked directory") {
    fs::remove_all(dir / "bin");
    fs::create_directories(tmp / "outside");
    write_file(tmp / "outside" / "run", run_script);
    fs::permissions(tmp / "outside" / "run", fs::perms(0755));
    fs::create_directory_symlink(tmp / "outside", dir / "bin");
    auto [code, msg] = error_of(joy::load_plugin_folder(dir));
    CHECK(code == errc::invalid_argument);
    CHECK(msg == "entry: bin/run leads outside the plugin folder");
  }
}

TEST_CASE("symlinks and special files inside a plugin are refused",
          "[actors][installer]") {
  joy::test::temp_dir tmp;
  auto dir = tmp / "p";
  auto plugins = tmp / "plugins";
  make_plugin(dir);
  SECTION("a symlink that stays inside") {
    fs::create_symlink("model.txt", dir / "data" / "link");
    CHECK(joy::load_plugin_folder(dir)); // the entry itself is fine
    auto [code, msg] = error_of(joy::hash_plugin_folder(dir));
    CHECK(code == errc::invalid_argument);
    CHECK(msg
          == "data/link is a symlink; plugin folders may not contain symlinks");
    auto [code2, msg2] = error_of(joy::install_plugin_folder(dir, plugins));
    CHECK(code2 == errc::invalid_argument);
    CHECK(msg2 == msg);
    CHECK_FALSE(fs::exists(plugins / "hello" / "1.0.0"));
  }
  SECTION("a symlinked directory") {
    fs::create_directories(tmp / "elsewhere");
    fs::create_directory_symlink(tmp / "elsewhere", dir / "more");
    auto [code, msg] = error_of(joy::hash_plugin_folder(dir));
    CHECK(code == errc::invalid_argument);
    CHECK(msg == "more is a symlink; plugin folders may not contain symlinks");
  }
  SECTION("a named pipe") {
    REQUIRE(::mkfifo((dir / "data" / "fifo").c_str(), 0644) == 0);
    auto [code, msg] = error_of(joy::install_plugin_folder(dir, plugins));
    CHECK(code == errc::invalid_argument);
    CHECK(msg == "data/fifo is not a regular file or directory");
    CHECK_FALSE(fs::exists(plugins / "hello" / "1.0.0"));
  }
}

TEST_CASE("reinstalling the same version replaces the copy",
          "[actors][installer]") {
  joy::test::temp_dir tmp;
  auto source = tmp / "src";
  auto plugins = tmp / "plugins";
  make_plugin(source);
  write_file(source / "old.txt", "old");
  auto first = install_or_fail(source, plugins);
  fs::remove(source / "old.txt");
  write_file(source / "data" / "model.txt", "new weights");
  auto second = install_or_fail(source, plugins);
  CHECK(second.path == first.path);
  CHECK(second.sha256 != first.sha256);
  CHECK(second.installed_at >= first.installed_at);
  CHECK(read_file(fs::path{second.path} / "data" / "model.txt")
        == "new weights");
  CHECK_FALSE(fs::exists(fs::path{second.path} / "old.txt"));
  CHECK(hash_or_fail(second.path) == second.sha256);
  CHECK(entries(plugins / "hello") == std::vector<std::string>{"1.0.0"});
}

TEST_CASE("a new version is installed beside the old one",
          "[actors][installer]") {
  joy::test::temp_dir tmp;
  auto plugins = tmp / "plugins";
  make_plugin(tmp / "v1", "hello", "1.0.0");
  make_plugin(tmp / "v2", "hello", "2.0.0");
  install_or_fail(tmp / "v1", plugins);
  install_or_fail(tmp / "v2", plugins);
  CHECK(entries(plugins / "hello")
        == std::vector<std::string>{"1.0.0", "2.0.0"});
}

TEST_CASE("the installed copy outlives its source", "[actors][installer]") {
  joy::test::temp_dir tmp;
  auto source = tmp / "src";
  make_plugin(source);
  auto rec = install_or_fail(source, tmp / "plugins");
  fs::remove_all(source);
  CHECK(joy::load_plugin_folder(rec.path));
  CHECK(hash_or_fail(rec.path) == rec.sha256);
  CHECK(read_file(fs::path{rec.path} / "bin" / "run") == run_script);
}

TEST_CASE("install into a plugins dir that cannot be created is an io_error",
          "[actors][installer]") {
  joy::test::temp_dir tmp;
  make_plugin(tmp / "src");
  write_file(tmp / "blocker", "a file where a directory should be");
  auto [code, msg]
    = error_of(joy::install_plugin_folder(tmp / "src", tmp / "blocker"));
  CHECK(code == errc::io_error);
  CHECK_THAT(msg, Contains((tmp / "blocker").string()));
}

TEST_CASE(
  "an install sweeps the temporary copies a crashed install left behind",
  "[actors][installer]") {
  joy::test::temp_dir dir;
  auto src = dir / "src";
  joy::test::write_file(
    src / "plugin.json",
    R"({"name": "swept", "type": "native", "entry": "run"})");
  joy::test::write_file(src / "run", "#!/bin/sh\n");
  std::filesystem::permissions(src / "run", std::filesystem::perms::owner_all);
  auto plugins = dir / "plugins";
  auto leftover = plugins / "swept" / ".tmp-0.1.0-123456";
  joy::test::write_file(leftover / "partial", "half a copy");
  auto rec = joy::install_plugin_folder(src, plugins);
  REQUIRE(rec);
  CHECK_FALSE(std::filesystem::exists(leftover));
  CHECK(std::filesystem::exists(plugins / "swept" / "0.1.0" / "run"));
}
