// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// What joy-python-host reads: the Python script and config of an ImJoy
// file (its variant by tag, lines where the file has them) or of a folder
// with plugin.json and a .py file; and what it refuses.

#include <catch2/catch.hpp>

#include <pybind11/stl.h>

#include "nodes/python_host/plugin_script.hpp"
#include "runtime/errc.hpp"
#include "tests/python/python_fixture.hpp"
#include "tests/support/temp_dir.hpp"

using Catch::Matchers::Contains;
using joy::python::load_plugin_script;
using joy::test::temp_dir;
using joy::test::write_file;

TEST_CASE("an ImJoy file gives the script of its variant, at the file's "
          "lines, and its requirements",
          "[python][script]") {
  temp_dir dir;
  write_file(dir / "p.imjoy.html",
             "<config lang=\"yaml\">\n"
             "name: p\n"
             "type: native-python\n"
             "tags: [a, b]\n"
             "requirements: {a: [numpy], b: [\"pip:scipy\"]}\n"
             "</config>\n"
             "<script lang=\"python\" tag=\"a\">\nprint('a')\n</script>\n"
             "<script lang=\"python\" tag=\"b\">\nprint('b')\n</script>\n"
             "<attachment name=\"notes\">some text</attachment>\n"
             "<docs>How to use p.</docs>\n");
  auto a = load_plugin_script((dir / "p.imjoy.html").string());
  REQUIRE(a);
  CHECK(a->name == "p");
  CHECK(a->requirements == std::vector<std::string>{"numpy"});
  CHECK(a->attachments.at("notes") == "some text");
  CHECK(a->docs == "How to use p.");
  // Seven newlines before it: print('a') is on line 8, as in the file.
  CHECK(a->source.find("print('a')") == 7);
  write_file(dir / "plugin.json", R"({"name": "p", "tag": "b"})");
  auto b = load_plugin_script((dir / "p.imjoy.html").string());
  REQUIRE(b);
  CHECK(b->requirements == std::vector<std::string>{"pip:scipy"});
  CHECK_THAT(b->source, Contains("print('b')"));
}

TEST_CASE("a .py entry takes its config from plugin.json next to it",
          "[python][script]") {
  temp_dir dir;
  write_file(dir / "plugin.json",
             R"({"name": "folded", "requirements": "numpy"})");
  write_file(dir / "main.py", "x = 1\n");
  auto s = load_plugin_script((dir / "main.py").string());
  REQUIRE(s);
  CHECK(s->name == "folded");
  CHECK(s->source == "x = 1\n");
  CHECK(s->requirements == std::vector<std::string>{"numpy"});
}

TEST_CASE("scripts the host cannot run are refused with the reason",
          "[python][script]") {
  temp_dir dir;
  auto refused = [&](const std::string& file, const std::string& text) {
    write_file(dir / file, text);
    auto s = load_plugin_script((dir / file).string());
    REQUIRE_FALSE(s);
    return joy::message_of(s.error());
  };
  CHECK_THAT(refused("js.imjoy.html", "<config>{\"name\": \"js\"}</config>"
                                      "<script lang=\"javascript\">x</script>"),
             Contains("not lang=\"python\""));
  CHECK_THAT(refused("none.imjoy.html", "<config>{\"name\": \"n\"}</config>"),
             Contains("has no <script>"));
  CHECK_THAT(refused("env.imjoy.html",
                     "<config>{\"name\": \"e\", \"env\": \"conda create -n "
                     "e\"}</config><script lang=\"python\">x</script>"),
             Contains("conda environments are not supported"));
  CHECK_THAT(refused("req.imjoy.html",
                     "<config>{\"name\": \"r\", \"requirements\": [1]}"
                     "</config><script lang=\"python\">x</script>"),
             Contains("entries must be strings"));
  auto missing = load_plugin_script((dir / "absent.py").string());
  REQUIRE_FALSE(missing);
  CHECK(joy::code_of(missing.error()) == joy::errc::not_found);
}

TEST_CASE("requirements that import pass, missing ones name themselves, "
          "conda entries are refused",
          "[python][script]") {
  temp_dir dir;
  auto& imjoy = joy::test::python_fixture::host().module();
  auto check = [&](std::vector<std::string> reqs) {
    auto why = imjoy.attr("_check_requirements")(reqs, dir.path().string());
    return why.is_none() ? std::string{} : why.cast<std::string>();
  };
  CHECK(check({}).empty());
  CHECK(check({"numpy", "numpy>=1.0", "pip:numpy", "numpy >= 1.20",
               "pip:numpy >= 1.0 numpy", "imjoy", "imjoy-rpc"})
          .empty());
  CHECK_THAT(check({">=1.0"}), Contains("no package name"));
  // Offline (no index, or no pip at all): a clear refusal.
  pybind11::module_::import("os").attr("environ")["PIP_NO_INDEX"] = "1";
  CHECK_THAT(check({"joy-surely-missing-package==1.0"}),
             Contains("requirement 'joy-surely-missing-package==1.0' not "
                      "installed, and installing failed"));
  CHECK_THAT(check({"conda:numpy"}), Contains("conda is not supported"));
  CHECK_THAT(check({"pip:--index-url=x numpy"}),
             Contains("pip options are not supported"));
}
