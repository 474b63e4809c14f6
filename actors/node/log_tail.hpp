// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The last lines of a log, read from its end (logs grow to megabytes; the
/// tail is what people read). Blocking file I/O: call from a detached actor
/// or a program's own thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include <caf/expected.hpp>

namespace joy {

/// The last `lines` lines of `log`, as written (a last line without a
/// newline stays so). Reads at most 1 MiB from the end: a line longer than
/// what is read shows cut. A missing log has no lines. Errors: io_error.
caf::expected<std::string> tail_lines(const std::filesystem::path& log,
                                      uint64_t lines);

} // namespace joy
