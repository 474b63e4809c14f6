// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// joy-python-host: runs one native-python plugin (an ImJoy .imjoy.html file
// or a .py file) as a Joy plugin process. The node starts it, sandboxed
// like any plugin, as `joy-python-host ENTRY` with the plugin's socket on
// fd 3. See python_host.hpp for its threads.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include <pybind11/embed.h>
#include <pybind11/stl.h>

#include "nodes/python_host/plugin_script.hpp"
#include "nodes/python_host/python_host.hpp"
#include "runtime/allocator.hpp"
#include "runtime/log.hpp"
#include "runtime/plugin_connection.hpp"
#include "runtime/protocol.hpp"
#include "runtime/shared_memory.hpp"
#include "runtime/system_config.hpp"
#include "runtime/value_codec.hpp"

namespace py = pybind11;

namespace {

using namespace joy;
using namespace joy::python;

int fail(const std::string& name, const std::string& why) {
  std::fprintf(stderr, "%s: %s\n", name.c_str(), why.c_str());
  return 1;
}

/// Prints the exception as Python would (a traceback). SystemExit gets a
/// line of its own: PyErr_Print would exit the process on the spot.
void print_python_error(py::error_already_set& e) {
  if (e.matches(PyExc_SystemExit)) {
    std::fprintf(stderr, "the plugin called sys.exit()\n");
    return;
  }
  e.restore();
  PyErr_Print();
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2 || argv[1][0] == '-') {
    std::fprintf(stderr,
                 "usage: joy-python-host ENTRY\n"
                 "Runs a native-python plugin (an .imjoy.html or .py file) "
                 "for its Joy node.\n");
    return 2;
  }
  auto script = load_plugin_script(argv[1]);
  if (!script)
    return fail(argv[1], message_of(script.error()));
  auto name = script->name;
  if (const char* n = std::getenv(std::string{plugin_name_env}.c_str()))
    name = n;
  struct stat st;
  if (::fstat(plugin_fd, &st) != 0 || !S_ISSOCK(st.st_mode))
    return fail(name, "this is a Joy plugin: install it with `joy install "
                      "<folder>` and call it with `joy call "
                        + name + " <method> ...`");
  ::fcntl(plugin_fd, F_SETFD, FD_CLOEXEC);
  tune_allocator();
  caf::actor_system_config cfg;
  configure_actor_system(cfg, 1);
  caf::actor_system sys{cfg};
  auto large = plugin_large_data();
  kj_thread kj{sys};
  auto link = kj.next_id();
  python_host host{name, kj, link};
  host.set_pool(large.pool);
  int code = 0;
  std::atomic<bool> ended{false};
  {
    py::scoped_interpreter interpreter{true, 1, argv + 1};
    // However this block ends: the kj thread stops first (it drops its
    // Python references through the inbox), then the host lets go of
    // Python, and only then does the interpreter finalize.
    struct shutdown {
      python_host& host;
      kj_thread& kj;
      ~shutdown() {
        {
          py::gil_scoped_release unlocked;
          kj.stop();
        }
        host.drop_python();
      }
    } guard{host, kj};
    py::module_ imjoy;
    try {
      imjoy = load_imjoy_module();
      host.set_module(imjoy);
      bind_host(host);
      imjoy.attr("_start")(host.inbox().fd());
      imjoy.attr("_attachments") = script->attachments;
      // Missing requirements stop the plugin before its code runs.
      auto cache = std::string{std::getenv("HOME") ? std::getenv("HOME") : "."}
                   + "/.joy-python";
      auto why = imjoy.attr("_check_requirements")(script->requirements, cache);
      if (!why.is_none())
        return fail(name, why.cast<std::string>());
      auto main_dict = py::module_::import("__main__").attr("__dict__");
      auto code_obj = py::module_::import("builtins")
                        .attr("compile")(script->source, script->file, "exec");
      py::module_::import("builtins").attr("exec")(code_obj, main_dict);
    } catch (py::error_already_set& e) {
      std::fprintf(stderr, "%s: the plugin's script failed:\n", name.c_str());
      print_python_error(e);
      return 1;
    } catch (std::exception& e) {
      return fail(name, std::string{"cannot start: "} + e.what());
    }
    if (!host.has_exports())
      return fail(name, "the script never called api.export(...)");
    kj.post([&host, &code, &ended, large, name, link](kj_context& ctx) {
      ctx.set_large_data(large);
      // The link may end twice (a refused hello, then the disconnect): the
      // first reason is the exit code.
      connect_to_node(ctx, link, plugin_fd, host.make_server(ctx), name,
                      protocol_version, [&host, &code, &ended](int c) {
                        if (ended.exchange(true))
                          return;
                        host.inbox().post([&host, &code, c] {
                          code = c;
                          if (!host.closing())
                            host.module().attr("_stop")();
                        });
                      });
    });
    bool busy = false;
    try {
      busy = imjoy.attr("_run_forever")().cast<bool>();
    } catch (py::error_already_set& e) {
      // SystemExit or KeyboardInterrupt from plugin code: like a crash.
      std::fprintf(stderr, "%s: the event loop stopped:\n", name.c_str());
      print_python_error(e);
      code = 1;
    }
    if (busy) {
      // A plain function still runs on a worker thread, and finalizing
      // would wait for it: end the process instead.
      std::fprintf(stderr, "%s: functions still running at exit: ending\n",
                   name.c_str());
      {
        py::gil_scoped_release unlocked;
        kj.stop();
      }
      std::fflush(nullptr);
      ::_exit(code);
    }
  }
  return code;
}
