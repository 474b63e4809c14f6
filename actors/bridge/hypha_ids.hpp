// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// Ids as hypha writes them (hypha-protocol.md §6.2): services are
/// `workspace/client:service@app`, clients `workspace/client`.
#pragma once

#include <string>
#include <string_view>

#include <caf/expected.hpp>

namespace joy {

struct hypha_service_id {
  std::string workspace;
  /// "*" when not given: any client.
  std::string client = "*";
  std::string service;
  /// "*" when not given.
  std::string app = "*";
};

/// Parses `svc`, `cid:svc`, `ws/svc`, `ws/cid:svc`, each with an optional
/// `@app`; a missing workspace is `caller_ws`. Errors: invalid_argument (an
/// empty part, more than one of `/`, `:` or `@`, workspace `*`).
caf::expected<hypha_service_id> parse_hypha_id(std::string_view text,
                                               std::string_view caller_ws);

/// `ws/client:service` (without the app).
std::string to_string(const hypha_service_id& x);

/// Shell-style match: `*` is any run of characters, `?` one character;
/// everything else matches itself exactly.
bool glob_match(std::string_view pattern, std::string_view text) noexcept;

/// 128 random bits as 22 url-safe characters (ids that cannot be guessed).
std::string random_id();

/// Whether `name` may name a workspace or client: 1–64 characters of
/// letters, digits, `-`, `_` and `.`, not starting with `.`.
bool valid_name(std::string_view name) noexcept;

} // namespace joy
