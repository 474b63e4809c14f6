// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "tools/joy/new_plugin.hpp"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <system_error>

#include <nlohmann/json.hpp>

#include "runtime/manifest.hpp"
#include "runtime/protocol.hpp"

namespace fs = std::filesystem;

namespace joy::cli {

namespace {

/// Replaces every `@NAME@` in `text`.
std::string fill(std::string text, const std::string& name) {
  const std::string key = "@NAME@";
  for (auto i = text.find(key); i != std::string::npos;
       i = text.find(key, i + name.size()))
    text.replace(i, key.size(), name);
  return text;
}

const char* cmake_template
  = R"(# The @NAME@ plugin, built against the installed Joy SDK:
#
#   cmake -S . -B build -DCMAKE_PREFIX_PATH=<where Joy is installed>
#   cmake --build build
#   joy install build/plugin/@NAME@
cmake_minimum_required(VERSION 3.25)
# C too: Cap'n Proto's CMake package probes with a C check.
project(@NAME@ VERSION 0.1.0 LANGUAGES C CXX)

find_package(Joy 0.1 REQUIRED)

# Builds the plugin and lays out build/plugin/@NAME@ (plugin.json + binary).
joy_add_plugin(@NAME@ SRCS main.cpp)
)";

const char* functions_template
  = R"(// @NAME@: a Joy plugin. Each exported function is a method:
//
//   joy call @NAME@ greet '"Ada"'   # "Hello, Ada!"
//   joy call @NAME@ add 2 3         # 5

#include <cstdint>
#include <string>

#include "runtime/plugin.hpp"

int main(int argc, char** argv) {
  joy::plugin plugin{"@NAME@"};
  plugin.exports.add(
    "greet", [](std::string who) { return "Hello, " + who + "!"; }, {"who"});
  plugin.exports.add(
    "add", [](int64_t a, int64_t b) { return a + b; }, {"a", "b"});
  // A function that takes `joy::context&` first may use the ImJoy api,
  // report progress and see cancellation (docs/plugins.md).
  plugin.exports.add(
    "notify",
    [](joy::context& ctx, std::string text) {
      return ctx.api().show_message(text);
    },
    {"text"});
  return joy::run_plugin(argc, argv, std::move(plugin));
}
)";

const char* actor_template
  = R"(// @NAME@: a Joy plugin written as a typed actor. Each handler is a method
// named after its atom, and the actor keeps its state between calls:
//
//   joy call @NAME@ greet '"Ada"'   # "Hello, Ada!"
//   joy call @NAME@ add 2 3         # 5
//   joy call @NAME@ count           # calls so far

#include <cstdint>
#include <string>

#include "runtime/actor_exports.hpp"
#include "runtime/plugin.hpp"

using greet_atom = caf::atom_constant<caf::atom("greet")>;
using add_atom = caf::atom_constant<caf::atom("add")>;
using count_atom = caf::atom_constant<caf::atom("count")>;

using plugin_impl = caf::typed_actor<
  caf::replies_to<greet_atom, std::string>::with<std::string>,
  caf::replies_to<add_atom, int64_t, int64_t>::with<int64_t>,
  caf::replies_to<count_atom>::with<int64_t>>;

struct plugin_state {
  int64_t calls = 0;
};

plugin_impl::behavior_type
behavior(plugin_impl::stateful_pointer<plugin_state> self) {
  return {
    [self](greet_atom, std::string who) {
      ++self->state.calls;
      return "Hello, " + who + "!";
    },
    [self](add_atom, int64_t a, int64_t b) {
      ++self->state.calls;
      return a + b;
    },
    [self](count_atom) { return self->state.calls; },
  };
}

int main(int argc, char** argv) {
  joy::plugin plugin{"@NAME@"};
  joy::export_actor<plugin_impl>(plugin.exports, behavior,
                                  {{"greet", {"who"}}, {"add", {"a", "b"}}});
  return joy::run_plugin(argc, argv, std::move(plugin));
}
)";

/// Manifest names may hold spaces; CMake targets and file names should not.
bool fits_cmake(const std::string& name) {
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'
          || c == '.'))
      return false;
  return true;
}

} // namespace

int cmd_new_plugin(const std::string& name, std::string dir, bool actor) {
  nlohmann::json manifest{{"name", name},
                          {"type", "native"},
                          {"version", "0.1.0"},
                          {"api_version", "0.1.8"},
                          {"description", "A Joy plugin."},
                          {"entry", name},
                          {"resources", {{"cpus", 1}, {"memory", "256MiB"}}}};
  if (auto parsed = parse_manifest(manifest.dump()); !parsed) {
    std::cerr << "joy: error (invalid_argument): " << message_of(parsed.error())
              << "\n";
    return 2;
  }
  if (!fits_cmake(name)) {
    std::cerr << "joy: error (invalid_argument): a new plugin's name may "
                 "contain only letters, digits, '_', '.' and '-', got '"
              << name << "'\n";
    return 2;
  }
  if (dir.empty())
    dir = name;
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_empty(dir, ec)) {
    std::cerr << "joy: error (already_exists): " << dir
              << " exists and is not empty; pick another --dir\n";
    return 1;
  }
  fs::create_directories(dir, ec);
  if (ec) {
    std::cerr << "joy: error (io_error): cannot create " << dir << ": "
              << ec.message() << "\n";
    return 1;
  }
  auto write = [&](const std::string& file, const std::string& text) {
    std::ofstream out{fs::path{dir} / file, std::ios::binary};
    out << text;
    out.close();
    if (!out) {
      std::cerr << "joy: error (io_error): cannot write "
                << (fs::path{dir} / file).string() << "\n";
      return false;
    }
    return true;
  };
  if (!write("CMakeLists.txt", fill(cmake_template, name))
      || !write("plugin.json", manifest.dump(2) + "\n")
      || !write("main.cpp",
                fill(actor ? actor_template : functions_template, name))
      || !write(".gitignore", "build/\n"))
    return 1;
  std::cout << "created plugin " << name << " in " << dir
            << (actor ? " (a typed actor)" : "") << "\n"
            << "  cmake -S " << dir << " -B " << dir
            << "/build -DCMAKE_PREFIX_PATH=<where Joy is installed>\n"
            << "  cmake --build " << dir << "/build\n"
            << "  joy install " << dir << "/build/plugin/" << name << "\n";
  return 0;
}

} // namespace joy::cli
