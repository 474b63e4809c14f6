// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// ImJoy native-python plugins on a real node, run by joy-python-host in
// their sandbox: ImJoy's class + api.export, called from the CLI and from
// C++ plugins, callbacks both ways, numpy arrays of every dtype and of
// 256 MiB, tracebacks, requirements, blocking and crashing plugins, and the
// hostile checks written in Python. (tests/support/python holds the test
// plugins.)

#include <algorithm>

#include <catch2/catch.hpp>

#include <filesystem>

#include "tests/nodes/node_fixture.hpp"

using namespace joy::test;
using Catch::Matchers::Contains;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string mib256 = std::to_string(uint64_t{256} << 20);

/// A node with pycheck, and the C++ examples it talks to.
class python_node : public node_fixture {
public:
  python_node() {
    start();
    ok({"install", test_data("python/pycheck.imjoy.html")});
  }

  void with_examples() {
    ok({"install", example("hello")});
    ok({"install", example("demo")});
    ok({"install", example("arrays")});
  }

  /// Writes an ImJoy file for a plugin named `name` with `config` (JSON)
  /// and `script`, and returns its path.
  std::string imjoy_file(const std::string& name, json config,
                         const std::string& script) {
    config["name"] = name;
    config["type"] = "native-python";
    auto path = dir().path() / (name + ".imjoy.html");
    write_file(path, "<config lang=\"json\">" + config.dump()
                       + "</config>\n<script lang=\"python\">\n" + script
                       + "\n</script>\n");
    return path.string();
  }
};

} // namespace

TEST_CASE("an ImJoy Python plugin runs from its .imjoy.html file: setup, "
          "sync and async methods, run(ctx), private members stay private",
          "[nodes][python]") {
  python_node node;
  auto p = node.plugin("pycheck");
  CHECK(p["type"] == "native-python");
  CHECK(node.call("pycheck", "was_set_up") == true);
  CHECK(node.call("pycheck", "add", 1) == 11);
  CHECK(node.call("pycheck", "add", 1, 2) == 3);
  CHECK(node.call("pycheck", "async_add", 20, 22) == 42);
  CHECK(node.call("pycheck", "kwargs_through_node") == 6);
  CHECK(node.call("pycheck", "plus_100", 1) == 101);
  // The file's <attachment> blocks.
  CHECK(node.call("pycheck", "attachment", "greeting")
        == "hello from an attachment");
  auto missing = node.joy({"call", "pycheck", "attachment", "\"nope\""});
  CHECK_THAT(missing.err, Contains("no attachment 'nope'"));
  CHECK(node.call("pycheck", "echo", json{{"a", {1, 2.5, "x", nullptr}}})
        == json{{"a", {1, 2.5, "x", nullptr}}});
  CHECK(node.call("pycheck", "types_of", 1, 2.5, "s", nullptr, json::array(),
                  json::object(), true)
        == json{"int", "float", "str", "NoneType", "list", "dotdict", "bool"});
  // ImJoy's run(ctx): ctx.config reads as attributes.
  CHECK(node.ok({"call", "pycheck", "run", R"({"config": {"height": 7}})"})
        == "{\"config\":{\"height\":7},\"height\":7}\n");
  // Members starting with _ are not exported, nor are setup and exit.
  for (auto hidden : {"_secret", "__init__", "setup"}) {
    auto r = node.joy({"call", "pycheck", hidden});
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.err, Contains("has no method"));
  }
  // The config's requirements were importable: nothing to install.
  CHECK_THAT(node.ok({"logs", "pycheck"}), Contains("pycheck is set up"));
}

TEST_CASE("C++ and Python plugins call each other and pass callbacks both "
          "ways",
          "[nodes][python]") {
  python_node node;
  node.with_examples();
  // C++ -> Python, with a C++ callback Python calls: sum of 2i, i < 5.
  CHECK(node.call("demo", "loop_through", "pycheck", 5) == 20);
  // Python -> C++, with a Python callback C++ calls: sum of 3i, i < 4.
  CHECK(node.call("pycheck", "count_with_demo", 4) == 18);
  // A function a C++ plugin returns, called from Python three times.
  CHECK(node.call("pycheck", "counter_from_demo") == json{1, 2, 3});
  // Two calls at once (asyncio.gather, ImJoy's Promise.all).
  CHECK(node.call("pycheck", "gather") == json{5, "hi"});
  // A service of Python functions, used by a C++ plugin.
  auto id = node.call("pycheck", "offer", "doubler");
  CHECK(node.call("demo", "use", id, 4.5) == 9.0);
  CHECK(node.call("demo", "use_at_once", id, "double", 4.5) == 9.0);
  // And the other way: a C++ service, called from Python in one trip.
  auto tools = node.call("demo", "offer", "tools");
  CHECK(node.call("pycheck", "use_at_once", tools, 1.25) == 2.5);
  auto bad = node.call("pycheck", "use_at_once_badly", tools);
  CHECK(bad[0] == "RemoteError");
  CHECK(bad[1] == "invalid_argument");
  CHECK_THAT(bad[2].get<std::string>(), Catch::Contains("a list of arguments"));
  // Settings persist through the node.
  CHECK(node.call("pycheck", "settings", "k", json{{"v", {1, 2}}})
        == json{{"v", {1, 2}}});
  // An error from another plugin arrives as RemoteError with its code.
  CHECK(node.call("pycheck", "remote_error")
        == json{"RemoteError", "invalid_argument"});
}

TEST_CASE("numpy arrays of every dtype cross intact, received arrays are "
          "read-only views, and unsupported dtypes are refused clearly",
          "[nodes][python]") {
  python_node node;
  for (auto dtype :
       {"bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64",
        "uint64", "float16", "float32", "float64"}) {
    INFO(dtype);
    // Python makes it, the CLI carries it as JSON, Python reads it back.
    auto made = node.call("pycheck", "make_array", dtype, 10);
    CHECK(made["_rtype"] == "ndarray");
    CHECK(made["_rdtype"] == dtype);
    CHECK(made["_rshape"] == json{10});
    auto info = node.call("pycheck", "array_info", made);
    CHECK(info["dtype"] == dtype);
    CHECK(info["shape"] == json{10});
    // 0..6, 0..2: 24 (bools: 8 true)
    CHECK(info["sum"] == (std::string{dtype} == "bool" ? 8.0 : 24.0));
    CHECK(info["writeable"] == false);
    CHECK(node.call("pycheck", "echo", made) == made);
  }
  auto r = node.joy({"call", "pycheck", "make_array", "\"complex64\"", "3"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Contains("dtype 'complex64' cannot be sent"));
  // Bytes, whichever way Python holds them.
  json bytes{{"_rtype", "memoryview"}, {"_rvalue", "AAH/"}};
  CHECK(node.call("pycheck", "echo", bytes) == bytes);
  CHECK(node.call("pycheck", "types_of", bytes) == json{"bytes"});
}

TEST_CASE("a 256 MiB numpy array goes between C++ and Python plugins "
          "through shared memory, every byte checked",
          "[nodes][python][large]") {
  python_node node;
  node.with_examples();
  // C++ makes it in shared memory, numpy checks it in place.
  CHECK(node.call("arrays", "send", "pycheck", std::stoull(mib256), 7) == true);
  // There and back: Python returns the array it got, without a copy.
  CHECK(node.call("arrays", "round_trip", "pycheck", std::stoull(mib256), 8)
        == true);
  // Python makes it in shared memory (imjoy.shared_array), C++ checks it.
  CHECK(node.call("pycheck", "send_to", "arrays", std::stoull(mib256), 9)
        == true);
  // On numpy's heap: the host copies it into shared memory once.
  CHECK(node.call("pycheck", "send_to", "arrays", 64 << 20, 10, false) == true);
}

TEST_CASE("a Python exception reaches the caller with its traceback",
          "[nodes][python]") {
  python_node node;
  auto r = node.joy({"call", "pycheck", "fail", "\"boom\""});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Contains("plugin_error"));
  CHECK_THAT(r.err, Contains("Traceback (most recent call last)"));
  CHECK_THAT(r.err, Contains("plugin.imjoy.html\", line"));
  CHECK_THAT(r.err, Contains("in fail"));
  CHECK_THAT(r.err, Contains("ValueError: boom"));
  CHECK(r.err.find("\n\n") == std::string::npos); // no empty last line
  // The host's own frames are not the author's business.
  CHECK_THAT(r.err, !Contains("imjoy.py"));
  CHECK_THAT(r.err, !Contains("concurrent/futures"));
  r = node.joy({"call", "pycheck", "fail_deep"});
  CHECK_THAT(r.err, Contains("in inner"));
  CHECK_THAT(r.err, Contains("KeyError: 'missing'"));
  // Arguments the function cannot take are the caller's mistake, in one
  // line, as with a C++ plugin; not the plugin's TypeError.
  r = node.joy({"call", "pycheck", "fail"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Contains("invalid_argument") && Contains("fail: ")
                      && Contains("missing a required argument"));
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  r = node.joy({"call", "pycheck", "ping", "1", "2"});
  CHECK_THAT(r.err, Contains("invalid_argument")
                      && Contains("too many positional arguments"));
  // The plugin lives on.
  CHECK(node.call("pycheck", "ping") == "pong");
}

TEST_CASE("a blocking Python function does not stall the plugin's other "
          "calls",
          "[nodes][python]") {
  python_node node;
  CHECK(node.call("pycheck", "ping") == "pong");
  child blocked{{bin("joy"), "call", "pycheck", "block", "4"},
                {{"JOY_HOME", node.home()}},
                (node.dir().path() / "block.out").string()};
  // Once the blocking call runs, other calls still go through.
  // The main thread, the blocked worker and the one asking.
  await([&] { return node.call("pycheck", "threads").get<int>() > 2; });
  for (int i = 0; i < 5; ++i)
    CHECK(node.call("pycheck", "async_add", i, 1) == i + 1);
  CHECK(blocked.running());
  CHECK(blocked.wait(std::chrono::seconds{30}) == 0);
  CHECK_THAT(read_file(node.dir().path() / "block.out"), Contains("woke"));
}

TEST_CASE("a Python plugin that crashes its interpreter is restarted by "
          "supervision",
          "[nodes][python]") {
  python_node node;
  auto before = node.plugin("pycheck")["pid"].get<int>();
  auto r = node.joy({"call", "pycheck", "crash"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Contains("disconnected"));
  await([&] {
    auto p = node.plugin("pycheck");
    return p["state"] == "running" && p["pid"].get<int>() != before;
  });
  CHECK_THAT(node.plugin("pycheck")["last_error"].get<std::string>(),
             Contains("SIGABRT"));
  CHECK(node.call("pycheck", "ping") == "pong");
  CHECK(node.call("pycheck", "was_set_up") == true);

  // sys.exit() in a plugin function ends the plugin like a crash.
  before = node.plugin("pycheck")["pid"].get<int>();
  r = node.joy({"call", "pycheck", "quit"});
  CHECK(r.exit_code == 1);
  await([&] {
    auto p = node.plugin("pycheck");
    return p["state"] == "running" && p["pid"].get<int>() != before;
  });
  CHECK_THAT(node.ok({"logs", "pycheck"}),
             Contains("the plugin called sys.exit()"));
  CHECK(node.call("pycheck", "ping") == "pong");
}

TEST_CASE("a Python plugin stopped while a plain function still runs ends "
          "without waiting for it",
          "[nodes][python]") {
  python_node node;
  child blocked{{bin("joy"), "call", "pycheck", "block", "60"},
                {{"JOY_HOME", node.home()}}};
  // The main thread, the blocked worker and the one asking.
  await([&] { return node.call("pycheck", "threads").get<int>() > 2; });
  node.ok({"restart", "pycheck"});
  CHECK(blocked.wait(std::chrono::seconds{30}) != 0);
  CHECK_THAT(node.ok({"logs", "pycheck"}),
             Contains("functions still running at exit: ending"));
  CHECK(node.call("pycheck", "ping") == "pong");
}

TEST_CASE("a Python plugin whose requirement is missing stops at start with "
          "an error naming it, conda environments are refused",
          "[nodes][python]") {
  python_node node;
  auto missing = node.imjoy_file(
    "needy", {{"requirements", {"numpy", "joy-surely-missing-package==1.0"}}},
    "from imjoy import api\napi.export({'f': lambda: 1})");
  node.ok({"install", missing});
  auto r = node.joy({"call", "needy", "f"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Contains("could not start"));
  await([&] {
    return node.ok({"logs", "needy"}).find("joy-surely-missing-package")
           != std::string::npos;
  });
  CHECK_THAT(node.ok({"logs", "needy"}),
             Contains("requirement 'joy-surely-missing-package==1.0' not "
                      "installed"));

  auto conda
    = node.imjoy_file("snake", {{"env", "conda create -n snake python=3.7"}},
                      "from imjoy import api\napi.export({'f': lambda: 1})");
  node.ok({"install", conda});
  node.joy({"call", "snake", "f"});
  await([&] {
    return node.ok({"logs", "snake"}).find("not supported")
           != std::string::npos;
  });
  CHECK_THAT(node.ok({"logs", "snake"}),
             Contains("env: conda environments are not supported"));

  // A script that never exports says so.
  auto silent = node.imjoy_file("silent", json::object(), "x = 1");
  node.ok({"install", silent});
  node.joy({"call", "silent", "f"});
  await([&] {
    return node.ok({"logs", "silent"}).find("api.export") != std::string::npos;
  });
  // And a script with a syntax error shows Python's own message.
  auto broken = node.imjoy_file("broken", json::object(), "def (:\n");
  node.ok({"install", broken});
  node.joy({"call", "broken", "f"});
  await([&] {
    return node.ok({"logs", "broken"}).find("SyntaxError") != std::string::npos;
  });
}

TEST_CASE("a Python plugin in a folder (plugin.json and a .py file) runs "
          "too, and a non-Python script is refused at install",
          "[nodes][python]") {
  python_node node;
  auto dir = node.dir().path() / "folder-plugin";
  fs::create_directories(dir);
  write_file(
    dir / "plugin.json",
    json{{"name", "folded"}, {"type", "native-python"}, {"entry", "main.py"}}
      .dump());
  write_file(dir / "main.py", "from imjoy import api\n"
                              "class P:\n"
                              "    def hi(self, who):\n"
                              "        return 'hi ' + who\n"
                              "api.export(P())\n");
  node.ok({"install", dir.string()});
  CHECK(node.call("folded", "hi", "there") == "hi there");

  auto js = node.dir().path() / "js.imjoy.html";
  write_file(js, R"(<config>{"name": "js", "type": "native-python"}</config>)"
                 R"(<script lang="javascript">api.export({})</script>)");
  auto r = node.joy({"install", js.string()});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Contains("lang=\"python\""));
}

TEST_CASE("a hostile Python plugin is denied what it tries, and its memory "
          "is limited by its cgroup",
          "[nodes][python][sandbox]") {
  node_fixture node;
  node.start();
  node.ok({"install", node.copy_example("hello", "neighbour")});
  node.ok({"install", test_data("python/pyhostile")});
  auto me = node.call("pyhostile", "whoami");
  if (::geteuid() == 0)
    CHECK(me["uid"].get<int64_t>() >= 200000);
  CHECK(me["hostname"] == "plugin");
  CHECK(me["home"] == node.home() + "/work/pyhostile");

  CHECK(node.call("pyhostile", "read", "/etc/shadow") == "ENOENT");
  CHECK(node.call("pyhostile", "read", "/root/.ssh/id_rsa") == "ENOENT");
  CHECK(node.call("pyhostile", "read", node.home() + "/registry.db")
        == "ENOENT");
  CHECK(node.call("pyhostile", "read",
                  node.home() + "/plugins/neighbour/0.1.0/plugin.json")
        == "ENOENT");
  CHECK(node.call("pyhostile", "read",
                  node.home() + "/plugins/pyhostile/0.1.0/hostile.py")
        == "ok");
  for (auto family : {"inet", "inet6", "netlink", "packet"}) {
    INFO(family);
    CHECK(node.call("pyhostile", "socket", family) == "EAFNOSUPPORT");
  }
  CHECK(node.call("pyhostile", "socket", "unix") == "ok");
  for (auto what : {"ptrace", "unshare", "mount", "setuid"}) {
    INFO(what);
    auto r = node.call("pyhostile", "syscall", what);
    CHECK((r == "EPERM" || r == "ESRCH" || r == "EINVAL"));
  }
  auto fill = node.call("pyhostile", "fill", "/tmp/big", 64);
  CHECK(fill["result"] == "ENOSPC");

  // numpy's pages count against the cgroup (BLAS's reserved address
  // space does not): the hog dies by the memory limit.
  auto r = node.joy({"call", "pyhostile", "hog", "1024"});
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.err, Contains("disconnected"));
  await([&] {
    return node.plugin("pyhostile")["last_error"].get<std::string>().find(
             "memory limit")
           != std::string::npos;
  });
  CHECK(node.call("pyhostile", "socket", "unix") == "ok");
}

TEST_CASE("the Python examples work: an image filter reporting progress, "
          "and callbacks between Python and C++",
          "[nodes][python]") {
  python_node node;
  node.with_examples();
  node.ok({"install", example("image-filter.imjoy.html")});
  node.ok({"install", example("py-callbacks.imjoy.html")});

  auto image = node.call("arrays", "gradient", 16, 24);
  auto blurred = node.call("image-filter", "blur", image, 2);
  CHECK(blurred["_rtype"] == "ndarray");
  CHECK(blurred["_rdtype"] == "float32");
  CHECK(blurred["_rshape"] == json{16, 24});
  // Smoothing keeps the mean of a linear ramp (edges clamped: about).
  auto before = node.call("pycheck", "array_info", image)["sum"].get<double>();
  auto after = node.call("pycheck", "array_info", blurred)["sum"].get<double>();
  CHECK(std::abs(after - before) / before < 0.05);
  auto mask = node.call("image-filter", "threshold", image);
  CHECK(mask["_rdtype"] == "uint8");
  // run(ctx) with the form's config: a 128 x 128 uint8 picture.
  auto run = json::parse(
    node.ok({"call", "image-filter", "run", R"({"config": {"radius": 4}})"}));
  CHECK(run["_rshape"] == json{128, 128});
  CHECK(run["_rdtype"] == "uint8");
  auto r = node.joy({"call", "image-filter", "blur", image.dump(), "0"});
  CHECK_THAT(r.err, Contains("radius must be at least 1"));
  // Its progress and messages reach the node's log (no UI is attached).
  await([&] {
    return read_file(node.home() + "/logs/joyd.log")
             .find("image-filter show_message: \"image-filter: blurred with "
                   "radius 4\"")
           != std::string::npos;
  });
  CHECK_THAT(read_file(node.home() + "/logs/joyd.log"),
             Contains("image-filter show_progress: 50"));

  // sum of i*i for i < 10, computed by demo calling Python back.
  CHECK(node.call("py-callbacks", "sum_of_squares", 10) == 285);
  CHECK(node.call("py-callbacks", "count_from_demo", 3) == json{1, 2, 3});
}

TEST_CASE("a caller giving up cancels the Python call, and stopping a "
          "Python plugin runs its exit()",
          "[nodes][python]") {
  python_node node;
  CHECK(node.call("pycheck", "was_cancelled") == false);
  auto r = node.joy({"call", "--timeout", "0.5", "pycheck", "wait_forever"});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Contains("timeout"));
  // The asyncio task was cancelled inside the plugin.
  await([&] { return node.call("pycheck", "was_cancelled") == true; });

  auto log = node.home() + "/logs/pycheck.log";
  CHECK_THAT(read_file(log), !Contains("exit() ran"));
  node.ok({"stop"});
  CHECK_THAT(read_file(log), Contains("pycheck: exit() ran"));
}
