// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "runtime/log.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "runtime/value.hpp"
#include "runtime/value_json.hpp"

namespace joy {

namespace {

log_level threshold_from_env() noexcept {
  const char* env = std::getenv("JOY_LOG");
  if (env == nullptr)
    return log_level::info;
  if (std::strcmp(env, "debug") == 0)
    return log_level::debug;
  if (std::strcmp(env, "warning") == 0 || std::strcmp(env, "warn") == 0)
    return log_level::warning;
  if (std::strcmp(env, "error") == 0)
    return log_level::error;
  return log_level::info;
}

const char* level_name(log_level level) noexcept {
  switch (level) {
    case log_level::debug:
      return "debug";
    case log_level::info:
      return "info ";
    case log_level::warning:
      return "warn ";
    case log_level::error:
      return "error";
  }
  return "?    ";
}

} // namespace

bool log_enabled(log_level level) noexcept {
  static const log_level threshold = threshold_from_env();
  return level >= threshold;
}

void log_line(log_level level, std::string_view component,
              std::string_view text) {
  log_line_to(STDERR_FILENO, level, component, text);
}

std::vector<std::string> last_lines(const std::string& path, std::size_t n) {
  constexpr std::streamoff window = 65536;
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return {};
  in.seekg(0, std::ios::end);
  auto size = static_cast<std::streamoff>(in.tellg());
  auto from = std::max<std::streamoff>(0, size - window);
  in.seekg(from);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    lines.push_back(std::move(line));
  if (from > 0 && !lines.empty())
    lines.erase(lines.begin()); // a partial line
  if (lines.size() > n)
    lines.erase(lines.begin(),
                lines.begin() + static_cast<std::ptrdiff_t>(lines.size() - n));
  return lines;
}

void log_line_to(int fd, log_level level, std::string_view component,
                 std::string_view text) {
  auto line = format_log_line(level, component, text);
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    auto n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return;
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

std::string format_log_line(log_level level, std::string_view component,
                            std::string_view text) {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now).count();
  // Milliseconds are enough for logs.
  auto stamp = format_iso8601(timestamp{ns - ns % 1'000'000});
  std::string line;
  line.reserve(stamp.size() + component.size() + text.size() + 12);
  line += stamp;
  line += ' ';
  line += level_name(level);
  line += ' ';
  line += component;
  line += ": ";
  line += text;
  line += '\n';
  return line;
}

} // namespace joy
