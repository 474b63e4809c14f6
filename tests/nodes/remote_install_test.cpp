// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// Installing from the network: an http URL of a plugin tarball and an ImJoy
// manifest reference `user/repo@ref:Name@tag`, served by a local HTTP server
// (python3 -m http.server on 127.0.0.1, port 0).

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <regex>

#include "actors/node/fetch.hpp"
#include "runtime/errc.hpp"
#include "tests/nodes/node_fixture.hpp"

using namespace joy::test;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

/// A static HTTP server over `root` on a free loopback port.
class http_server {
public:
  explicit http_server(const fs::path& root, const fs::path& log)
    : log_(log),
      proc_({"python3", "-u", "-m", "http.server", "0", "--bind", "127.0.0.1",
             "--directory", root.string()},
            {}, log.string()) {
    static const std::regex serving{R"(port (\d+))"};
    REQUIRE(eventually(
      [&] {
        std::smatch m;
        auto text = read_file(log_);
        if (!std::regex_search(text, m, serving))
          return false;
        port_ = m[1];
        return true;
      },
      20s));
  }

  std::string url(const std::string& path = "") const {
    return "http://127.0.0.1:" + port_ + "/" + path;
  }

  /// Requests the server saw, one per line.
  std::string requests() const {
    return read_file(log_);
  }

private:
  fs::path log_;
  child proc_;
  std::string port_;
};

/// `dir/<name>` packed as `archive` with its one top-level folder, as
/// GitHub release archives are.
void pack(const fs::path& dir, const std::string& name,
          const fs::path& archive) {
  fs::create_directories(archive.parent_path());
  REQUIRE(
    run({"tar", "-czf", archive.string(), "-C", dir.string(), name}).exit_code
    == 0);
}

std::string source_of(node_fixture& node, const std::string& name) {
  for (auto& p : json::parse(node.ok({"plugins", "--json"})))
    if (p["name"] == name)
      return p["source"];
  return "";
}

} // namespace

TEST_CASE("a plugin installs from an http URL of its tarball and keeps the "
          "URL as its source",
          "[nodes][remote_install]") {
  node_fixture node;
  auto src = fs::path{node.copy_example("hello", "hello")};
  pack(src.parent_path(), "hello", node.dir() / "www" / "hello-1.0.tar.gz");
  http_server web{node.dir() / "www", node.dir() / "http.log"};
  node.start();

  auto url = web.url("hello-1.0.tar.gz");
  auto out = node.ok({"install", url});
  CHECK_THAT(out, Contains("installed hello"));
  CHECK_THAT(out, Contains("from " + url));
  CHECK(node.ok({"call", "hello", "add", "2", "3"}) == "5\n");
  CHECK(source_of(node, "hello") == url);
  // The download was only scratch.
  CHECK_FALSE(fs::exists(node.home() + "/downloads/install"));
}

TEST_CASE("a plugin installs from a user/repo@ref:Name@tag manifest "
          "reference",
          "[nodes][remote_install]") {
  node_fixture node;
  auto src = fs::path{node.copy_example("hello", "hello")};
  auto repo = node.dir() / "www" / "alice" / "tools";
  pack(src.parent_path(), "hello", repo / "v1" / "dist" / "hello.tar.gz");
  write_file(repo / "v1" / "manifest.imjoy.json",
             json{{"name", "Alice's tools"},
                  {"plugins",
                   {{{"name", "hello"}, {"uri", "dist/hello.tar.gz"}},
                    {{"name", "viewer"}, {"uri", "Viewer.imjoy.html"}}}}}
               .dump());
  http_server web{node.dir() / "www", node.dir() / "http.log"};
  node.ok({"start", "--manifest-base", web.url()});

  auto out = node.ok({"install", "alice/tools@v1:hello"});
  CHECK_THAT(out, Contains("installed hello 0.1.0"));
  CHECK(node.ok({"call", "hello", "echo", "\"hi\""}) == "\"hi\"\n");
  CHECK(source_of(node, "hello") == "alice/tools@v1:hello");
  CHECK_THAT(web.requests(),
             Contains("GET /alice/tools/v1/manifest.imjoy.json"));
  CHECK_THAT(web.requests(), Contains("GET /alice/tools/v1/dist/hello.tar.gz"));

  SECTION("a name the manifest lacks lists the ones it has") {
    auto r = node.joy({"install", "alice/tools@v1:nope"});
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Contains("not_found"));
    CHECK_THAT(r.err, Contains("(it lists: hello, viewer)"));
  }
  SECTION("a ref that does not exist is not found") {
    auto r = node.joy({"install", "alice/tools@v9:hello"});
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Contains("not_found"));
    CHECK_THAT(r.err, Contains("/alice/tools/v9/manifest.imjoy.json"));
  }
  SECTION("a tarball has no variants to pick") {
    auto r = node.joy({"install", "alice/tools@v1:hello@GPU"});
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Contains("only ImJoy files")
                        && Contains("write alice/tools@GPU:hello"));
  }
  SECTION("a window plugin (an .imjoy.html) installs, for the browser core, "
          "as the variant its @tag picks") {
    write_file(repo / "v1" / "Viewer.imjoy.html",
               R"(<config lang="json">{"name": "viewer", "type": "window", )"
               R"("version": "0.1.0", "tags": ["stable", "dev"], )"
               R"("ui": {"stable": "plain", "dev": "with extras"}}</config>)"
               R"(<window>hi</window><script>api.export({})</script>)");
    auto r = node.ok({"install", "alice/tools@v1:viewer@dev"});
    CHECK_THAT(r, Contains("installed viewer 0.1.0"));
    CHECK_THAT(web.requests(),
               Contains("GET /alice/tools/v1/Viewer.imjoy.html"));
    CHECK(source_of(node, "viewer") == "alice/tools@v1:viewer@dev");
    auto manifest = node.plugin("viewer")["manifest"];
    CHECK(manifest["tag"] == "dev");
    CHECK(manifest["ui"] == "with extras");
    // A tag the file does not list is refused, naming it.
    auto bad = node.joy({"install", "alice/tools@v1:viewer@GPU"});
    CHECK(bad.exit_code == 1);
    CHECK_THAT(bad.err, Contains("GPU"));
  }
  // Whatever failed left the installed plugin as it was.
  CHECK(node.ok({"call", "hello", "add", "1", "1"}) == "2\n");
}

TEST_CASE("a download that is not a plugin changes nothing",
          "[nodes][remote_install]") {
  node_fixture node;
  write_file(node.dir() / "www" / "junk.tar.gz", "<html>nope</html>");
  http_server web{node.dir() / "www", node.dir() / "http.log"};
  node.start();
  node.ok({"install", example("hello")});

  auto junk = node.joy({"install", web.url("junk.tar.gz")});
  CHECK(junk.exit_code == 1);
  CHECK_THAT(junk.err, Contains("gzipped tarball"));
  // tar's and gzip's lines make one line of the error.
  CHECK(std::count(junk.err.begin(), junk.err.end(), '\n') == 1);
  auto missing = node.joy({"install", web.url("missing.tar.gz")});
  CHECK(missing.exit_code == 1);
  CHECK_THAT(missing.err, Contains("HTTP 404"));
  auto bad_form = node.joy({"install", "not-a-folder-or-url"});
  CHECK(bad_form.exit_code == 1);
  CHECK_THAT(bad_form.err, Contains("does not exist"));

  auto plugins = json::parse(node.ok({"plugins", "--json"}));
  REQUIRE(plugins.size() == 1);
  CHECK(plugins[0]["name"] == "hello");
  CHECK(node.ok({"call", "hello", "add", "2", "2"}) == "4\n");
}

TEST_CASE("fetching follows redirects and refuses bodies over the cap",
          "[nodes][remote_install]") {
  temp_dir dir;
  write_file(dir / "www" / "sub" / "file.txt", std::string(4096, 'x'));
  http_server web{dir / "www", dir / "http.log"};

  // http.server answers a folder without its slash with a 301.
  auto listing = joy::fetch_text(web.url("sub"));
  REQUIRE(listing);
  CHECK_THAT(*listing, Contains("file.txt"));

  joy::fetch_limits small;
  small.max_bytes = 1000;
  auto big = joy::fetch_text(web.url("sub/file.txt"), small);
  REQUIRE_FALSE(big);
  CHECK(joy::code_of(big.error()) == joy::errc::too_large);

  auto not_http = joy::fetch_text("file:///etc/passwd");
  REQUIRE_FALSE(not_http);
  CHECK(joy::code_of(not_http.error()) == joy::errc::invalid_argument);
}
