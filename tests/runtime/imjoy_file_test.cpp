// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include <catch2/catch.hpp>

#include <cmath>
#include <string>

#include "runtime/errc.hpp"
#include "runtime/imjoy_file.hpp"
#include "runtime/yaml_config.hpp"

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
  CHECK(code(joy::parse_imjoy_file("<config lang=\"toml\">name = 1</config>"))
        == errc::invalid_argument);
  CHECK(code(joy::parse_imjoy_file("<config lang=\"yaml\">[1, 2]</config>"))
        == errc::invalid_argument);
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

TEST_CASE("a YAML config reads as the JSON one would, scalars typed as "
          "js-yaml types them",
          "[runtime]") {
  auto file = joy::parse_imjoy_file(R"(<config lang="yaml">
name: Image Processor
type: native-python
version: 0.1.2
tags: [stable, dev]
flags: []
env:
  stable: conda create -n x
  dev: ~
requirements: ["numpy", 'scipy']
cover: null
runnable: yes
yes_quoted: "true"
count: 12
hex: 0x1F
ratio: 1.5e3
big: .inf
api_version: 0.1.8
</config>
<script lang="python" tag="stable">print(1)</script>
<script lang="python" tag="dev">print(2)</script>)",
                                    "dev");
  REQUIRE(file);
  auto& c = file->config;
  CHECK(c["name"] == "Image Processor");
  CHECK(c["version"] == "0.1.2");
  CHECK(c["tags"] == joy::json::array({"stable", "dev"}));
  CHECK(c["env"].is_null()); // dev's
  CHECK(c["requirements"] == joy::json::array({"numpy", "scipy"}));
  CHECK(c["cover"].is_null());
  CHECK(c["runnable"] == "yes"); // YAML 1.2: not a boolean
  CHECK(c["yes_quoted"] == "true");
  CHECK(c["count"] == 12);
  CHECK(c["hex"] == 31);
  CHECK(c["ratio"] == 1500.0);
  CHECK(std::isinf(c["big"].get<double>()));
  CHECK(c["api_version"] == "0.1.8");
  CHECK(file->script == "print(2)");
  CHECK(file->script_lang == "python");
}

TEST_CASE("YAML that is broken or expands without end is refused",
          "[runtime]") {
  auto broken = joy::parse_yaml_config("name: [unclosed\n");
  REQUIRE_FALSE(broken);
  CHECK(joy::code_of(broken.error()) == errc::invalid_argument);
  CHECK_THAT(joy::message_of(broken.error()), Contains("line"));
  // Nine levels of ten aliases each: a billion values from a few lines.
  std::string laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char c = 'b'; c <= 'i'; ++c) {
    std::string prev(1, static_cast<char>(c - 1));
    laughs += std::string(1, c) + ": &" + c + " [*" + prev;
    for (int k = 0; k < 9; ++k)
      laughs += ", *" + prev;
    laughs += "]\n";
  }
  auto bomb = joy::parse_yaml_config(laughs);
  REQUIRE_FALSE(bomb);
  CHECK_THAT(joy::message_of(bomb.error()), Contains("a million values"));
  // Few values, but each a megabyte: bounded by bytes too.
  std::string wide = "a: &a \"" + std::string(1 << 20, 'x') + "\"\n";
  wide += "b: [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, "
          "*a]\n";
  auto heavy = joy::parse_yaml_config(wide);
  REQUIRE_FALSE(heavy);
  CHECK_THAT(joy::message_of(heavy.error()), Contains("16 MiB"));
  // A number a million digits long is text, not a crash.
  auto digits
    = joy::parse_yaml_config("v: " + std::string(1000000, '1') + "\n");
  REQUIRE(digits);
  CHECK((*digits)["v"].is_string());
  auto complex_key = joy::parse_yaml_config("? [a, b]\n: 1\n");
  REQUIRE_FALSE(complex_key);
  CHECK_THAT(joy::message_of(complex_key.error()), Contains("keys"));
}
