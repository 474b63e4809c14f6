// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include <catch2/catch.hpp>

#include <string>

#include "runtime/errc.hpp"
#include "runtime/manifest.hpp"

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using joy::errc;
using joy::json;

namespace {

/// The error message of a manifest that must be rejected.
std::string rejection(const json& doc) {
  auto m = joy::validate_manifest(doc);
  REQUIRE_FALSE(m);
  CHECK(joy::code_of(m.error()) == errc::invalid_argument);
  return joy::message_of(m.error());
}

json minimal_native() {
  return json{{"name", "hello"}, {"type", "native"}, {"entry", "bin/hello"}};
}

/// `minimal_native()` with `key` set to `value`.
json with(const std::string& key, json value) {
  auto doc = minimal_native();
  doc[key] = std::move(value);
  return doc;
}

std::string memory_error(const json& x) {
  auto n = joy::parse_memory_size(x);
  REQUIRE_FALSE(n);
  CHECK(joy::code_of(n.error()) == errc::invalid_argument);
  return joy::message_of(n.error());
}

uint64_t memory(const json& x) {
  auto n = joy::parse_memory_size(x);
  if (!n)
    FAIL(joy::message_of(n.error()));
  return *n;
}

} // namespace

TEST_CASE("a minimal native manifest is valid", "[runtime][manifest]") {
  auto m = joy::parse_manifest(
    R"({"name": "hello", "type": "native", "entry": "bin/hello"})");
  REQUIRE(m);
  CHECK(m->name == "hello");
  CHECK(m->type == "native");
  CHECK(m->entry == "bin/hello");
  CHECK(m->resources.cpus == 0);
  CHECK(m->resources.memory_bytes == 0);
  CHECK(m->resources.gpus == 0);
}

TEST_CASE(
  "missing version and api_version are filled in at the end of the document",
  "[runtime][manifest]") {
  auto m = joy::parse_manifest(
    R"({"type": "native", "name": "hello", "entry": "run", "x-extra": [1]})");
  REQUIRE(m);
  CHECK(m->version == "0.1.0");
  CHECK(m->api_version == "0.1.8");
  CHECK(m->document.dump()
        == R"({"type":"native","name":"hello","entry":"run","x-extra":[1],)"
           R"("version":"0.1.0","api_version":"0.1.8"})");
}

TEST_CASE("a full ImJoy-style manifest keeps every field",
          "[runtime][manifest]") {
  auto m = joy::parse_manifest(R"({
    "name": "Image Viewer 2", "type": "native", "version": "1.2.3-rc.1+b5",
    "api_version": "0.1.7", "description": "views images",
    "tags": ["a", "b"], "ui": "<b>hi</b>", "inputs": {"type": "image"},
    "outputs": null, "flags": ["single-instance", "allow-detach"],
    "requirements": "numpy", "dependencies": ["other/plugin"],
    "env": ["A=1"], "icon": "extension", "cover": ["a.png", "b.png"],
    "runnable": true, "entry": "./bin/viewer",
    "resources": {"cpus": 0.5, "memory": "256MiB", "gpus": 1},
    "sandbox": {"network": false}, "lang": "en"
  })");
  REQUIRE(m);
  CHECK(m->name == "Image Viewer 2");
  CHECK(m->version == "1.2.3-rc.1+b5");
  CHECK(m->api_version == "0.1.7");
  CHECK(m->description == "views images");
  CHECK(m->tags == std::vector<std::string>{"a", "b"});
  CHECK(m->flags
        == std::vector<std::string>{"single-instance", "allow-detach"});
  CHECK(m->resources.cpus == 0.5);
  CHECK(m->resources.memory_bytes == 256u << 20);
  CHECK(m->resources.gpus == 1);
  CHECK(m->document["lang"] == "en");
  CHECK(m->document["inputs"]["type"] == "image");
  CHECK(m->document.back() == "en"); // nothing appended: both were given
}

TEST_CASE("non-native plugins need no entry", "[runtime][manifest]") {
  for (auto type : {"native-python", "window", "web-worker", "web-python"}) {
    auto m = joy::validate_manifest(json{{"name", "w"}, {"type", type}});
    CHECK(m);
  }
}

TEST_CASE("a manifest must be a JSON object", "[runtime][manifest]") {
  CHECK(rejection(json::array())
        == "manifest: must be a JSON object, got an array");
  auto m = joy::parse_manifest("not json");
  REQUIRE_FALSE(m);
  CHECK(joy::code_of(m.error()) == errc::invalid_argument);
  CHECK_THAT(joy::message_of(m.error()), Contains("invalid JSON"));
}

TEST_CASE("the name is required and must be a safe directory name",
          "[runtime][manifest]") {
  auto doc = minimal_native();
  doc.erase("name");
  CHECK(rejection(doc) == "name: is required");
  CHECK(rejection(with("name", 5)) == "name: must be a string, got 5");
  CHECK_THAT(rejection(with("name", "")),
             StartsWith("name: must be 1 to 64 characters"));
  CHECK(rejection(with("name", std::string(65, 'a')))
        == "name: must be 1 to 64 characters long, got 65");
  CHECK(joy::validate_manifest(with("name", std::string(64, 'a'))));
  for (auto bad : {".", "..", "a/b", "../x", "/abs"})
    CHECK_THAT(rejection(with("name", bad)), StartsWith("name: "));
  for (auto bad : {"-x", "_x", " x", ".hidden"})
    CHECK_THAT(rejection(with("name", bad)),
               StartsWith("name: must start with"));
  for (auto bad : {"a\\b", "a:b", "a\nb", "caf\xc3\xa9"})
    CHECK_THAT(rejection(with("name", bad)),
               StartsWith("name: may contain only"));
  CHECK_THAT(rejection(with("name", std::string("a\0b", 3))),
             StartsWith("name: may contain only"));
  for (auto good : {"a", "My Plugin_1.0-beta", "9lives"})
    CHECK(joy::validate_manifest(with("name", good)));
}

TEST_CASE("the type is required and must be one Joy knows",
          "[runtime][manifest]") {
  auto doc = minimal_native();
  doc.erase("type");
  CHECK(rejection(doc) == "type: is required");
  CHECK(rejection(with("type", "foo"))
        == "type: must be one of native, native-python, window, web-worker, "
           "web-python, got 'foo'");
  CHECK_THAT(rejection(with("type", true)), StartsWith("type: must be one of"));
}

TEST_CASE("the version must be a short safe string", "[runtime][manifest]") {
  CHECK(rejection(with("version", 1)) == "version: must be a string, got 1");
  CHECK_THAT(rejection(with("version", "")),
             StartsWith("version: must be 1 to 32"));
  CHECK_THAT(rejection(with("version", std::string(33, '1'))),
             StartsWith("version: "));
  CHECK(rejection(with("version", ".")) == "version: must not start with '.'");
  CHECK(rejection(with("version", "..")) == "version: must not start with '.'");
  CHECK(rejection(with("version", ".tmp-1"))
        == "version: must not start with '.'");
  for (auto bad : {"1/2", "1 2", "1.0:x", "1/../1"})
    CHECK_THAT(rejection(with("version", bad)),
               StartsWith("version: may contain only"));
}

TEST_CASE("optional ImJoy fields must have their types",
          "[runtime][manifest]") {
  CHECK(rejection(with("api_version", 1))
        == "api_version: must be a string, got 1");
  CHECK(rejection(with("description", json::array()))
        == "description: must be a string, got an array");
  CHECK(rejection(with("ui", json::object()))
        == "ui: must be a string, got an object");
  CHECK(rejection(with("tags", "a"))
        == "tags: must be a list of strings, got 'a'");
  CHECK(rejection(with("tags", json{"a", 2}))
        == "tags[1]: must be a string, got 2");
  CHECK(rejection(with("dependencies", json{nullptr}))
        == "dependencies[0]: must be a string, got null");
  CHECK(rejection(with("requirements", 3))
        == "requirements: must be a string or a list of strings, got 3");
  CHECK(rejection(with("requirements", json{"numpy", false}))
        == "requirements[1]: must be a string, got false");
  CHECK_THAT(rejection(with("env", json::object())), StartsWith("env: "));
  CHECK_THAT(rejection(with("icon", 1)), StartsWith("icon: "));
  CHECK_THAT(rejection(with("cover", json{1})), StartsWith("cover[0]: "));
  CHECK(rejection(with("runnable", "yes"))
        == "runnable: must be true or false, got 'yes'");
  CHECK(rejection(with("sandbox", json::array()))
        == "sandbox: must be an object, got an array");
  CHECK(rejection(with("sandbox", json{{"network", "yes"}}))
        == "sandbox.network: must be true or false, got 'yes'");
  // Unknown sandbox fields are not silently ignored: they may be meant to
  // loosen it.
  CHECK(rejection(with("sandbox", json{{"ptrace", true}}))
        == "sandbox.ptrace: unknown field");
  CHECK_THAT(rejection(with("resources", json{{"pids", 0}})),
             StartsWith("resources.pids: must be an integer from 1"));
  CHECK_THAT(rejection(with("resources", json{{"disk", "lots"}})),
             StartsWith("resources.disk: "));
  {
    auto m = joy::validate_manifest(
      with("resources", json{{"pids", 64}, {"disk", "16MiB"}}));
    REQUIRE(m);
    CHECK(m->resources.pids == 64);
    CHECK(m->resources.disk_bytes == 16 << 20);
    CHECK_FALSE(m->sandbox.network);
    auto n = joy::validate_manifest(with("sandbox", json{{"network", true}}));
    REQUIRE(n);
    CHECK(n->sandbox.network);
  }
  for (auto key : {"requirements", "env", "icon", "cover"}) {
    CHECK(joy::validate_manifest(with(key, "x")));
    CHECK(joy::validate_manifest(with(key, json{"x", "y"})));
  }
}

TEST_CASE("flags must be ones ImJoy defines", "[runtime][manifest]") {
  CHECK(joy::validate_manifest(
    with("flags", json{"single-instance", "allow-detach", "engine-instance"})));
  CHECK(rejection(with("flags", json{"single-instance", "fast"}))
        == "flags[1]: must be one of single-instance, allow-detach, "
           "engine-instance, got 'fast'");
  CHECK(rejection(with("flags", "single-instance"))
        == "flags: must be a list of strings, got 'single-instance'");
}

TEST_CASE("a native plugin needs a relative entry inside its folder",
          "[runtime][manifest]") {
  auto doc = minimal_native();
  doc.erase("entry");
  CHECK(rejection(doc) == "entry: is required for native plugins");
  CHECK(rejection(with("entry", "")) == "entry: must not be empty");
  CHECK(rejection(with("entry", 7)) == "entry: must be a string, got 7");
  CHECK_THAT(rejection(with("entry", "/bin/sh")),
             StartsWith("entry: must be a path relative"));
  for (auto bad : {"..", "../x", "bin/../../x", "a/.."})
    CHECK_THAT(rejection(with("entry", bad)),
               StartsWith("entry: must stay inside"));
  CHECK(rejection(with("entry", std::string("a\0b", 3)))
        == "entry: must not contain NUL characters");
  for (auto good : {"run", "./bin/run", "bin/x..y", "..hidden"})
    CHECK(joy::validate_manifest(with("entry", good)));
}

TEST_CASE("resources are checked field by field", "[runtime][manifest]") {
  auto res = [](json r) { return with("resources", std::move(r)); };
  CHECK(rejection(res(json::array()))
        == "resources: must be an object, got an array");
  CHECK(rejection(res({{"gpus", -1}}))
        == "resources.gpus: must be an integer >= 0, got -1");
  CHECK(rejection(res({{"gpus", 1.5}}))
        == "resources.gpus: must be an integer >= 0, got 1.5");
  CHECK(rejection(res({{"gpus", "1"}}))
        == "resources.gpus: must be an integer >= 0, got '1'");
  CHECK_THAT(rejection(res({{"gpus", 5000000000}})),
             StartsWith("resources.gpus: must be at most"));
  CHECK(rejection(res({{"cpus", 0}}))
        == "resources.cpus: must be a number > 0, got 0");
  CHECK(rejection(res({{"cpus", -0.5}}))
        == "resources.cpus: must be a number > 0, got -0.5");
  CHECK(rejection(res({{"cpus", true}}))
        == "resources.cpus: must be a number > 0, got true");
  CHECK(rejection(res({{"memory", "12XB"}}))
        == "resources.memory: cannot parse '12XB' as a size (examples: 1024, "
           "100k, 512MiB, 2GB, 1.5 GiB)");
  CHECK(rejection(res({{"memory", -1}}))
        == "resources.memory: must not be negative, got -1");
  CHECK(rejection(res({{"foo", 1}})) == "resources.foo: unknown field");
  auto m
    = joy::validate_manifest(res({{"cpus", 2}, {"memory", 1024}, {"gpus", 0}}));
  REQUIRE(m);
  CHECK(m->resources.cpus == 2);
  CHECK(m->resources.memory_bytes == 1024);
}

TEST_CASE("unknown top-level fields are kept", "[runtime][manifest]") {
  auto m = joy::validate_manifest(with("x-custom", json{{"deep", {1, 2}}}));
  REQUIRE(m);
  CHECK(m->document["x-custom"]["deep"][1] == 2);
}

TEST_CASE("a nesting bomb is a clear error, not a crash",
          "[runtime][manifest]") {
  std::string bomb(10000, '[');
  bomb += std::string(10000, ']');
  auto m = joy::parse_manifest(bomb);
  REQUIRE_FALSE(m);
  CHECK(joy::code_of(m.error()) == errc::too_large);
  CHECK_THAT(joy::message_of(m.error()), Contains("nesting"));
  // Also inside an otherwise valid manifest.
  auto inner = R"({"name": "a", "type": "window", "inputs": )" + bomb + "}";
  auto m2 = joy::parse_manifest(inner);
  REQUIRE_FALSE(m2);
  CHECK(joy::code_of(m2.error()) == errc::too_large);
}

TEST_CASE("an integer literal beyond 64 bits is refused",
          "[runtime][manifest]") {
  auto m = joy::parse_manifest(
    R"({"name": "a", "type": "window",)"
    R"( "resources": {"gpus": 99999999999999999999999}})");
  REQUIRE_FALSE(m);
  CHECK(joy::code_of(m.error()) == errc::invalid_argument);
}

TEST_CASE("memory sizes accept bytes, SI and binary units",
          "[runtime][manifest]") {
  CHECK(memory(0) == 0);
  CHECK(memory(1024) == 1024);
  CHECK(memory(json(uint64_t{18446744073709551615u})) == 18446744073709551615u);
  CHECK(memory("1024") == 1024);
  CHECK(memory("1024B") == 1024);
  CHECK(memory("100k") == 100'000);
  CHECK(memory("100kB") == 100'000);
  CHECK(memory("100K") == 100'000);
  CHECK(memory("64M") == 64'000'000);
  CHECK(memory("2GB") == 2'000'000'000);
  CHECK(memory("3T") == 3'000'000'000'000);
  CHECK(memory("1Ki") == 1024);
  CHECK(memory("512MiB") == 512ull << 20);
  CHECK(memory("512 MiB") == 512ull << 20);
  CHECK(memory("1.5 GiB") == 1536ull << 20);
  CHECK(memory("1.5GiB") == 1536ull << 20);
  CHECK(memory("2TiB") == 2ull << 40);
  CHECK(memory("0.5k") == 500);
  CHECK(memory("1.0001k") == 1000); // fractions of a byte round down
  CHECK(memory("1.5") == 1);
  CHECK(memory(" 8 Mi ") == 8ull << 20);
  CHECK(memory("16777215TiB") == 16777215ull << 40);
  CHECK(memory("18446744073709551615") == 18446744073709551615u);
}

TEST_CASE("memory sizes reject what they cannot represent",
          "[runtime][manifest]") {
  CHECK(memory_error("12XB")
        == "memory: cannot parse '12XB' as a size (examples: 1024, 100k, "
           "512MiB, 2GB, 1.5 GiB)");
  for (auto bad : {"", " ", "MiB", "-5", "-5MB", "1.", ".5k", "1..5k", "5 M iB",
                   "5MiBB", "5Xi", "1e6", "0x10", "5 kilobytes", "1,5G"})
    CHECK_THAT(memory_error(bad), StartsWith("memory: cannot parse"));
  CHECK(memory_error(-1) == "memory: must not be negative, got -1");
  CHECK_THAT(memory_error(1.5),
             StartsWith("memory: must be a whole number of bytes"));
  CHECK_THAT(memory_error(true),
             StartsWith("memory: must be a whole number of bytes"));
  CHECK_THAT(memory_error(nullptr), StartsWith("memory: must be"));
  CHECK(memory_error("16777216TiB")
        == "memory: '16777216TiB' does not fit in 64 bits");
  CHECK(memory_error("18446744073709551616")
        == "memory: '18446744073709551616' does not fit in 64 bits");
  CHECK_THAT(memory_error("99999999999999999999999999 B"),
             Contains("does not fit"));
  CHECK_THAT(memory_error("20000000000T"), Contains("does not fit"));
}
