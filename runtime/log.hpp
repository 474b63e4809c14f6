// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// Line-oriented logging to stderr: `2026-11-28T04:05:06.123Z warn  kj: text`.
/// Daemons redirect stderr to their log file; plugin processes' stderr is
/// captured by their node. The threshold comes from `JOY_LOG`
/// (debug|info|warning|error; default info), read once per process.
#pragma once

#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace joy {

enum class log_level { debug = 0, info = 1, warning = 2, error = 3 };

/// True if messages at `level` are written.
bool log_enabled(log_level level) noexcept;

/// Writes one line atomically (a single write(2)).
void log_line(log_level level, std::string_view component,
              std::string_view text);

/// The last `n` lines of the file at `path` (empty if it cannot be read),
/// read from its last 64 KiB at most: logs can be large.
std::vector<std::string> last_lines(const std::string& path, std::size_t n);

/// The same line to `fd` (e.g. a plugin's log, which its node appends to),
/// whatever the threshold.
void log_line_to(int fd, log_level level, std::string_view component,
                 std::string_view text);

/// The line `log_line_to` writes, with its time stamp and newline.
std::string format_log_line(log_level level, std::string_view component,
                            std::string_view text);

template <class... Ts>
void log(log_level level, std::string_view component, Ts&&... xs) {
  if (!log_enabled(level))
    return;
  std::ostringstream out;
  (out << ... << xs);
  log_line(level, component, out.str());
}

} // namespace joy
