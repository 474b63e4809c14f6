// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// Where plugins come from: the three spellings of a source, ImJoy
// manifests, URL resolution and unpacking downloaded archives.

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "actors/node/fetch.hpp"
#include "actors/node/plugin_source.hpp"
#include "runtime/errc.hpp"
#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

namespace fs = std::filesystem;

using Catch::Matchers::Contains;
using joy::code_of;
using joy::errc;
using joy::message_of;
using joy::parse_plugin_source;
using joy::plugin_source;
using joy::test::read_file;
using joy::test::write_file;

namespace {

void make_plugin(const fs::path& dir) {
  write_file(dir / "plugin.json",
             R"({"name": "hello", "type": "native", "version": "1.0.0", )"
             R"("entry": "bin/run"})");
  write_file(dir / "bin" / "run", "#!/bin/sh\n");
  fs::permissions(dir / "bin" / "run", fs::perms(04755));
}

/// `tar -czf archive -C dir members...`.
void make_tarball(const fs::path& archive, const fs::path& dir,
                  const std::vector<std::string>& members) {
  std::vector<std::string> argv{"tar", "-czf", archive.string(), "-C",
                                dir.string()};
  argv.insert(argv.end(), members.begin(), members.end());
  REQUIRE(joy::test::run(argv).exit_code == 0);
}

} // namespace

TEST_CASE("a source is a folder, a URL or a manifest reference",
          "[actors][plugin_source]") {
  auto folder = parse_plugin_source("/opt/plugins/hello");
  REQUIRE(folder);
  CHECK(folder->kind == plugin_source::folder);

  auto url = parse_plugin_source("https://example.org/hello.tar.gz");
  REQUIRE(url);
  CHECK(url->kind == plugin_source::archive_url);

  auto ref = parse_plugin_source("imjoy-team/joy-plugins:Image Viewer");
  REQUIRE(ref);
  CHECK(ref->kind == plugin_source::manifest_ref);
  CHECK(ref->user == "imjoy-team");
  CHECK(ref->repo == "joy-plugins");
  CHECK(ref->name == "Image Viewer");
  CHECK(ref->ref == "HEAD");
  CHECK(ref->tag.empty());

  auto head = parse_plugin_source("alice/tools:hello");
  REQUIRE(head);
  CHECK(head->ref == "HEAD");
  auto at_commit = parse_plugin_source("alice/tools@3f2a1c:hello");
  REQUIRE(at_commit);
  CHECK(at_commit->ref == "3f2a1c");
  CHECK(at_commit->name == "hello");
}

TEST_CASE("as in ImJoy, @tag after a plugin picks its variant and @ref "
          "after a repository its git ref",
          "[actors][plugin_source]") {
  auto both = parse_plugin_source("alice/tools@v2:Image Viewer@GPU");
  REQUIRE(both);
  CHECK(both->ref == "v2");
  CHECK(both->name == "Image Viewer");
  CHECK(both->tag == "GPU");
  auto tag_only = parse_plugin_source("alice/tools:hello@CPU");
  REQUIRE(tag_only);
  CHECK(tag_only->ref == "HEAD");
  CHECK(tag_only->tag == "CPU");
  // A file's path or URL takes a tag after its name.
  auto file = parse_plugin_source("/opt/p/viewer.imjoy.html@dev");
  REQUIRE(file);
  CHECK(file->kind == plugin_source::folder);
  CHECK(file->where == "/opt/p/viewer.imjoy.html");
  CHECK(file->tag == "dev");
  CHECK(file->text == "/opt/p/viewer.imjoy.html@dev");
  auto url = parse_plugin_source("https://example.org/v.imjoy.html@stable");
  REQUIRE(url);
  CHECK(url->where == "https://example.org/v.imjoy.html");
  CHECK(url->tag == "stable");
  // An @ anywhere else is part of the path.
  auto odd = parse_plugin_source("/opt/p@1/hello");
  REQUIRE(odd);
  CHECK(odd->where == "/opt/p@1/hello");
  CHECK(odd->tag.empty());
}

TEST_CASE("a tag is picked from an ImJoy file and refused for a folder",
          "[actors][plugin_source]") {
  joy::test::temp_dir tmp;
  auto file = tmp.path() / "v.imjoy.html";
  write_file(file, R"(<config lang="json">{"name": "v", "type": "window", )"
                   R"("tags": ["stable", "dev"], "ui": {"stable": "s", )"
                   R"("dev": "d"}}</config><window>hi</window>)");
  for (std::string tag : {"", "stable", "dev"}) {
    INFO("tag " << tag);
    auto scratch = tmp.path() / ("scratch-" + tag);
    fs::create_directories(scratch);
    auto src
      = parse_plugin_source(file.string() + (tag.empty() ? "" : "@" + tag));
    REQUIRE(src);
    auto folder = joy::materialize(*src, scratch, {});
    REQUIRE(folder);
    auto manifest = nlohmann::json::parse(read_file(*folder / "plugin.json"));
    auto picked = tag.empty() ? std::string{"stable"} : tag;
    CHECK(manifest["tag"] == picked);
    CHECK(manifest["ui"] == picked.substr(0, 1));
  }
  auto unknown = parse_plugin_source(file.string() + "@GPU");
  REQUIRE(unknown);
  auto none = joy::materialize(*unknown, tmp.path() / "x", {});
  REQUIRE_FALSE(none);
  CHECK_THAT(message_of(none.error()), Contains("GPU"));
  auto dir = tmp.path() / "plain";
  make_plugin(dir);
  auto folder_tag = parse_plugin_source(dir.string() + "/x.imjoy.html@a");
  REQUIRE(folder_tag);
  CHECK_FALSE(joy::materialize(*folder_tag, tmp.path() / "y", {}));
}

TEST_CASE("a source in none of the three forms is refused with the forms "
          "named",
          "[actors][plugin_source]") {
  for (auto bad :
       {"hello", "relative/path", "ftp://example.org/x.tar.gz", "alice:hello",
        "alice/tools:", "alice/tools@a:hello@b@c", ""}) {
    INFO(bad);
    auto src = parse_plugin_source(bad);
    REQUIRE_FALSE(src);
    CHECK(code_of(src.error()) == errc::invalid_argument);
  }
  CHECK_THAT(message_of(parse_plugin_source("hello").error()),
             Contains("user/repo[@ref]:Name[@tag]"));
}

TEST_CASE("a manifest reference reads manifest.imjoy.json at its ref",
          "[actors][plugin_source]") {
  auto ref = parse_plugin_source("alice/tools@v2:hello");
  REQUIRE(ref);
  CHECK(joy::manifest_url(*ref, "http://127.0.0.1:8000/")
        == "http://127.0.0.1:8000/alice/tools/v2/manifest.imjoy.json");
  CHECK(joy::manifest_url(*ref, "https://raw.githubusercontent.com")
        == "https://raw.githubusercontent.com/alice/tools/v2/"
           "manifest.imjoy.json");
}

TEST_CASE("URLs resolve as a browser resolves them",
          "[actors][plugin_source]") {
  auto base = std::string{"http://h:1/a/b/manifest.json"};
  CHECK(joy::resolve_url(base, "x.tar.gz") == "http://h:1/a/b/x.tar.gz");
  CHECK(joy::resolve_url(base, "/x.tar.gz") == "http://h:1/x.tar.gz");
  CHECK(joy::resolve_url(base, "https://o/x") == "https://o/x");
  CHECK(joy::resolve_url("http://h:1", "x") == "http://h:1/x");
}

TEST_CASE("the manifest entry's uri resolves against uri_root or the manifest",
          "[actors][plugin_source]") {
  auto url = std::string{"http://h/alice/tools/HEAD/manifest.imjoy.json"};
  auto plain = R"({"name": "tools", "plugins": [
      {"name": "other", "uri": "other.tar.gz"},
      {"name": "hello", "uri": "dist/hello.tar.gz"}]})";
  CHECK(joy::pick_from_manifest(plain, url, "hello").value()
        == "http://h/alice/tools/HEAD/dist/hello.tar.gz");

  auto rooted = R"({"uri_root": "/releases",
      "plugins": [{"name": "hello", "uri": "hello-1.0.tar.gz"}]})";
  CHECK(joy::pick_from_manifest(rooted, url, "hello").value()
        == "http://h/releases/hello-1.0.tar.gz");

  auto absolute = R"({"plugins": [{"name": "hello",
      "uri": "https://cdn.example.org/hello.tar.gz"}]})";
  CHECK(joy::pick_from_manifest(absolute, url, "hello").value()
        == "https://cdn.example.org/hello.tar.gz");
}

TEST_CASE("a manifest without the plugin, or not a manifest, is a clear error",
          "[actors][plugin_source]") {
  auto url = std::string{"http://h/m.json"};
  auto missing = joy::pick_from_manifest(
    R"({"plugins": [{"name": "a", "uri": "a.tgz"}, {"name": "b", "uri": "b"}]})",
    url, "hello");
  REQUIRE_FALSE(missing);
  CHECK(code_of(missing.error()) == errc::not_found);
  CHECK_THAT(message_of(missing.error()), Contains("(it lists: a, b)"));

  auto no_uri = joy::pick_from_manifest(R"({"plugins": [{"name": "hello"}]})",
                                        url, "hello");
  REQUIRE_FALSE(no_uri);
  CHECK(code_of(no_uri.error()) == errc::invalid_argument);

  for (auto text : {"<html>not found</html>", "[]", R"({"name": "x"})"}) {
    auto bad = joy::pick_from_manifest(text, url, "hello");
    REQUIRE_FALSE(bad);
    CHECK(code_of(bad.error()) == errc::invalid_argument);
  }

  auto web = joy::pick_from_manifest(
    R"({"plugins": [{"name": "hello", "uri": "Hello.imjoy.html"}]})", url,
    "hello");
  // An ImJoy file is picked like an archive; the node lays it out.
  REQUIRE(web);
  CHECK(*web == "http://h/Hello.imjoy.html");
}

TEST_CASE("an archive unpacks with the plugin at its top or in its one folder, "
          "without setuid bits",
          "[actors][plugin_source]") {
  joy::test::temp_dir dir;
  make_plugin(dir / "src" / "hello-1.0");

  make_tarball(dir / "nested.tar.gz", dir / "src", {"hello-1.0"});
  fs::create_directory(dir / "a");
  auto nested = joy::unpack_plugin_archive(dir / "nested.tar.gz", dir / "a");
  REQUIRE(nested);
  CHECK(*nested == dir / "a" / "hello-1.0");
  struct stat st {};
  REQUIRE(::stat((*nested / "bin" / "run").c_str(), &st) == 0);
  CHECK((st.st_mode & S_ISUID) == 0);
  CHECK((st.st_mode & S_IXUSR) != 0);

  make_tarball(dir / "flat.tar.gz", dir / "src" / "hello-1.0", {"."});
  fs::create_directory(dir / "b");
  auto flat = joy::unpack_plugin_archive(dir / "flat.tar.gz", dir / "b");
  REQUIRE(flat);
  CHECK(*flat == dir / "b");
}

TEST_CASE("an archive that is not a plugin tarball is refused and escapes "
          "nothing",
          "[actors][plugin_source]") {
  joy::test::temp_dir dir;
  write_file(dir / "junk.tar.gz", "<html>404</html>");
  fs::create_directory(dir / "a");
  auto junk = joy::unpack_plugin_archive(dir / "junk.tar.gz", dir / "a");
  REQUIRE_FALSE(junk);
  CHECK(code_of(junk.error()) == errc::invalid_argument);
  CHECK_THAT(message_of(junk.error()), Contains("gzipped tarball"));

  write_file(dir / "src" / "x" / "readme", "no manifest");
  write_file(dir / "src" / "y" / "readme", "no manifest");
  make_tarball(dir / "two.tar.gz", dir / "src", {"x", "y"});
  fs::create_directory(dir / "b");
  auto two = joy::unpack_plugin_archive(dir / "two.tar.gz", dir / "b");
  REQUIRE_FALSE(two);
  CHECK_THAT(message_of(two.error()), Contains("no plugin.json"));

  // A member named ../escaped must not land outside the folder.
  fs::create_directories(dir / "c" / "inner");
  write_file(dir / "c" / "escaped", "outside");
  REQUIRE(joy::test::run({"tar", "-czf", (dir / "evil.tar.gz").string(), "-C",
                          (dir / "c" / "inner").string(), "../escaped"})
            .exit_code
          == 0);
  fs::remove(dir / "c" / "escaped");
  fs::create_directory(dir / "d");
  auto evil = joy::unpack_plugin_archive(dir / "evil.tar.gz", dir / "d");
  REQUIRE_FALSE(evil);
  CHECK_FALSE(fs::exists(dir / "escaped"));
  CHECK_FALSE(fs::exists(dir / "c" / "escaped"));
}
