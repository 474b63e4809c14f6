// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// Downloading what an install needs: plugin archives and `user/repo`
/// manifests, over http or https (Boost.Beast; certificates checked against
/// the system's trust store and the host name). Blocking: call from a
/// detached actor.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>

#include <caf/error.hpp>
#include <caf/expected.hpp>

namespace joy {

struct fetch_limits {
  /// Larger bodies are refused (too_large).
  uint64_t max_bytes = uint64_t{512} << 20;
  /// For connecting and for each read or write.
  std::chrono::seconds timeout{30};
  /// Redirects followed at most.
  int max_redirects = 5;
};

/// Downloads `url` into the file `dest`. Errors: invalid_argument (not an
/// http(s) URL), not_found (404), io_error (network or HTTP failure),
/// too_large.
caf::error fetch_to_file(const std::string& url,
                         const std::filesystem::path& dest,
                         const fetch_limits& limits = {});

/// Downloads `url` and returns its body.
caf::expected<std::string> fetch_text(const std::string& url,
                                      const fetch_limits& limits = {});

/// `base` joined with `relative` as a browser would: an absolute URL stays,
/// "/x" keeps the origin, "x" replaces the last path segment.
std::string resolve_url(const std::string& base, const std::string& relative);

} // namespace joy
