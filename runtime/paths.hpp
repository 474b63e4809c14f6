// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// Where things are on a machine: a node's home and Joy's own binaries.
#pragma once

#include <string>

namespace joy {

/// `$JOY_HOME`, else `$HOME/.joy`: one node per home.
std::string default_home();

/// The directory of the running executable; Joy's programs find their
/// siblings (`joyd`, `joy-exec`) there.
std::string self_dir();

/// The control socket of the node at `home`.
std::string socket_path(const std::string& home);

} // namespace joy
