// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/node/log_rotation.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <caf/expected.hpp>

#include "runtime/errc.hpp"

namespace fs = std::filesystem;

namespace joy {

caf::expected<bool> rotate_if_large(const fs::path& log, uint64_t max_bytes,
                                    int keep) {
  std::error_code ec;
  auto size = fs::file_size(log, ec);
  if (ec)
    return false; // no log yet
  if (size <= max_bytes || keep < 1)
    return false;
  auto numbered
    = [&](int i) { return fs::path{log.string() + "." + std::to_string(i)}; };
  fs::remove(numbered(keep), ec);
  for (int i = keep - 1; i >= 1; --i) {
    if (fs::exists(numbered(i), ec))
      fs::rename(numbered(i), numbered(i + 1), ec);
  }
  fs::copy_file(log, numbered(1), fs::copy_options::overwrite_existing, ec);
  if (ec)
    return make_error(errc::io_error,
                      "cannot rotate " + log.string() + ": " + ec.message());
  if (::truncate(log.c_str(), 0) != 0)
    return make_error(errc::io_error, "cannot truncate " + log.string());
  return true;
}

} // namespace joy
