// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// `joy new plugin NAME`: writes a plugin folder that builds outside this
/// repository against the installed SDK (`find_package(Joy)`): CMakeLists,
/// plugin.json, main.cpp (exported functions, or with `actor` a typed
/// actor) and a .gitignore.
#pragma once

#include <string>

namespace joy::cli {

/// Writes the folder `dir` (default: ./NAME); refuses a name the manifest
/// would refuse or that cannot name a CMake target, and a folder that
/// exists and is not empty. Returns the exit code.
int cmd_new_plugin(const std::string& name, std::string dir, bool actor);

} // namespace joy::cli
