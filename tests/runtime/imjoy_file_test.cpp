// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include <catch2/catch.hpp>

#include <string>

#include "runtime/errc.hpp"
#include "runtime/imjoy_file.hpp"

using Catch::Matchers::Contains;
using joy::errc;

namespace {

constexpr auto viewer = R"imjoy(<docs lang="markdown">
# Viewer
Shows what it is given.
</docs>

<config lang="json">
{
  "name": "viewer",
  "type": "window",
  "version": "0.2.0",
  "tags": ["stable", "dev"],
  "ui": {"stable": "shows data", "dev": "shows data (dev)"},
  "inputs": {"type": "object"}
}
</config>

<!-- <script>not a block: a comment</script> -->
<script lang="javascript" tag="stable">
class Viewer { run(ctx) { document.getElementById("out").textContent = "<b>"; } }
api.export(new Viewer());
</script>
<script lang="javascript" tag="dev">api.export({run() {}});</script>

<window lang="html">
  <div id="out"></div>
</window>

<STYLE lang="css">#out { color: red; }</STYLE>
<attachment name="notes">remember the milk</attachment>
)imjoy";

errc code(const caf::expected<joy::imjoy_file>& x) {
  REQUIRE_FALSE(x);
  return joy::code_of(x.error());
}

} // namespace

TEST_CASE("an ImJoy file is split into its blocks with their attributes",
          "[runtime]") {
  auto blocks = joy::parse_imjoy_blocks(viewer);
  REQUIRE(blocks);
  REQUIRE(blocks->size() == 7);
  CHECK((*blocks)[0].kind == "docs");
  CHECK((*blocks)[1].kind == "config");
  CHECK((*blocks)[1].attr("lang") == "json");
  CHECK((*blocks)[2].kind == "script");
  CHECK((*blocks)[2].attr("tag") == "stable");
  CHECK((*blocks)[2].attr("missing", "x") == "x");
  CHECK_THAT((*blocks)[2].content, Contains("textContent = \"<b>\""));
  CHECK((*blocks)[5].kind == "style");
  CHECK((*blocks)[6].attr("name") == "notes");
}

TEST_CASE("the first tag is the variant unless one is asked for", "[runtime]") {
  auto file = joy::parse_imjoy_file(viewer);
  REQUIRE(file);
  CHECK(file->tag == "stable");
  CHECK(file->config["name"] == "viewer");
  CHECK(file->config["ui"] == "shows data");
  // An object not keyed by tags is left alone.
  CHECK(file->config["inputs"]["type"] == "object");
  CHECK_THAT(file->script, Contains("class Viewer"));
  CHECK(file->script_lang == "javascript");
  CHECK_THAT(file->window, Contains("<div id=\"out\"></div>"));
  CHECK(file->style == "#out { color: red; }");
  CHECK_THAT(file->docs, Contains("# Viewer"));
  CHECK(file->attachments.at("notes") == "remember the milk");

  auto dev = joy::parse_imjoy_file(viewer, "dev");
  REQUIRE(dev);
  CHECK(dev->config["ui"] == "shows data (dev)");
  CHECK(dev->script == "api.export({run() {}});");
}

TEST_CASE("a file that is not a well-formed ImJoy plugin is refused with "
          "the reason",
          "[runtime]") {
  CHECK(code(joy::parse_imjoy_file("<script>x</script>"))
        == errc::invalid_argument);
  auto unclosed = joy::parse_imjoy_file("<config>{}</config>\n\n<script>x");
  CHECK(code(unclosed) == errc::invalid_argument);
  CHECK_THAT(joy::message_of(unclosed.error()),
             Contains("<script> on line 3 has no </script>"));
  auto not_json = joy::parse_imjoy_file("<config>{name: 1}</config>");
  CHECK(code(not_json) == errc::invalid_argument);
  CHECK_THAT(joy::message_of(not_json.error()), Contains("<config>"));
  CHECK(code(joy::parse_imjoy_file("<config>[1]</config>"))
        == errc::invalid_argument);
  CHECK(code(joy::parse_imjoy_file("<config lang=\"yaml\">name: x</config>"))
        == errc::unimplemented);
  CHECK(code(joy::parse_imjoy_file(viewer, "nightly"))
        == errc::invalid_argument);
  CHECK(code(joy::parse_imjoy_file(
          "<config>{}</config><script>a</script><script>b</script>"))
        == errc::invalid_argument);
  CHECK(
    code(joy::parse_imjoy_file(std::string(joy::max_imjoy_file_size + 1, ' ')))
    == errc::too_large);
}

TEST_CASE("ImJoy file names are recognised with any query or fragment",
          "[runtime]") {
  CHECK(joy::is_imjoy_file_name("a/Viewer.imjoy.html"));
  CHECK(joy::is_imjoy_file_name("https://x/y/Viewer.imjoy.html?raw=1"));
  CHECK(joy::is_imjoy_file_name("Viewer.IMJOY.HTML"));
  CHECK_FALSE(joy::is_imjoy_file_name(".imjoy.html"));
  CHECK_FALSE(joy::is_imjoy_file_name("viewer.html"));
  CHECK_FALSE(joy::is_imjoy_file_name("viewer"));
}
