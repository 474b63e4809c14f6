// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/node/log_tail.hpp"

#include <algorithm>
#include <fstream>

#include "runtime/errc.hpp"

namespace joy {

caf::expected<std::string> tail_lines(const std::filesystem::path& log,
                                      uint64_t lines) {
  std::ifstream in{log, std::ios::binary};
  if (!in)
    return std::string{}; // nothing logged yet
  if (lines == 0)
    return std::string{};
  // Lines are short: 512 bytes a line, at least 64 KiB and at most 1 MiB
  // from the end hold them.
  auto window
    = std::clamp<uint64_t>(lines * 512, uint64_t{64} << 10, uint64_t{1} << 20);
  in.seekg(0, std::ios::end);
  auto size = static_cast<uint64_t>(in.tellg());
  auto from = size > window ? size - window : 0;
  // One byte more before the window tells whether its first line is whole
  // (it follows a newline) or cut.
  auto at = from > 0 ? from - 1 : 0;
  in.seekg(static_cast<std::streamoff>(at));
  std::string text(size - at, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad())
    return make_error(errc::io_error, "cannot read " + log.string());
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (from > 0) {
    auto nl = text.find('\n');
    // A line longer than the window is shown cut rather than not at all.
    if (nl != std::string::npos && nl + 1 < text.size())
      text.erase(0, nl + 1);
    else
      text.erase(0, 1);
  }
  // Back `lines` newlines from the end (a last newline ends the last line
  // rather than starting one).
  auto end = text.size();
  if (end > 0 && text[end - 1] == '\n')
    --end;
  std::size_t start = end;
  uint64_t seen = 0;
  while (start > 0) {
    auto nl = text.rfind('\n', start - 1);
    if (nl == std::string::npos) {
      start = 0;
      break;
    }
    start = nl;
    if (++seen == lines) {
      ++start;
      break;
    }
  }
  return text.substr(start);
}

} // namespace joy
