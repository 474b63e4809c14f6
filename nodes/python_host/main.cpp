// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// joy-python-host: runs one native-python plugin (an ImJoy .imjoy.html file
// or a .py file) as a Joy plugin process. The node starts it, sandboxed
// like any plugin, as `joy-python-host ENTRY` with the plugin's socket on
// fd 3. See python_host.hpp for its threads.

#include <fcntl.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include <pybind11/embed.h>
#include <pybind11/stl.h>

#include "nodes/python_host/plugin_script.hpp"
#include "nodes/python_host/python_host.hpp"
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

/// Prints the pending Python exception as Python would.
void print_python_error(py::error_already_set& e) {
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
  caf::actor_system_config cfg;
  configure_actor_system(cfg, 1);
  caf::actor_system sys{cfg};
  large_data_policy large;
  large.mappings = std::make_shared<shm_mapping_cache>();
  const char* mode = std::getenv(std::string{large_data_env}.c_str());
  if (mode == nullptr || std::string_view{mode} != "stream")
    large.pool = shm_pool::make();
  kj_thread kj{sys};
  auto link = kj.next_id();
  python_host host{name, kj, link};
  host.set_pool(large.pool);
  int code = 0;
  {
    py::scoped_interpreter interpreter{true, 1, argv + 1};
    // However this block ends, the host lets go of Python first.
    struct release_python {
      python_host& host;
      ~release_python() {
        host.drop_python();
      }
    } release{host};
    py::module_ imjoy;
    try {
      imjoy = load_imjoy_module();
      host.set_module(imjoy);
      bind_host(host);
      imjoy.attr("_start")(host.inbox().fd());
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
    kj.post([&host, &code, large, name, link](kj_context& ctx) {
      ctx.set_large_data(large);
      connect_to_node(ctx, link, plugin_fd, host.make_server(ctx), name,
                      protocol_version, [&host, &code](int c) {
                        host.inbox().post([&host, &code, c] {
                          code = c;
                          host.module().attr("_stop")();
                        });
                      });
    });
    try {
      imjoy.attr("_run_forever")();
    } catch (py::error_already_set& e) {
      // SystemExit from plugin code ends the plugin like a crash would.
      std::fprintf(stderr, "%s: the event loop stopped:\n", name.c_str());
      print_python_error(e);
      code = 1;
    }
    {
      // The kj thread drops its Python references through the inbox.
      py::gil_scoped_release unlocked;
      kj.stop();
    }
  }
  return code;
}
