// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// Bridge tokens: claims signed with HMAC-SHA256 under a secret kept in
/// `$JOY_HOME/bridge.secret`, so tokens a bridge issued are still accepted
/// after it restarts (hypha clients stop reconnecting for good when a
/// reconnection token is refused). Two kinds: `access` tokens (`joy token`,
/// `generate_token`) grant a workspace; `reconnect` tokens also pin the
/// client id.
///
/// Format: `base64url(json claims) "." base64url(hmac)`.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <caf/expected.hpp>

namespace joy {

struct token_claims {
  /// "access" or "reconnect".
  std::string kind = "access";
  /// Who the token stands for; hypha's `UserInfo.id`.
  std::string user;
  /// The workspace it grants (access) or returns to (reconnect).
  std::string workspace;
  /// Reconnect tokens: the client id it returns to.
  std::string client;
  /// "read", "read_write" or "admin".
  std::string permission = "read_write";
  bool anonymous = false;
  /// Seconds since the epoch.
  int64_t expires = 0;
};

class token_signer {
public:
  /// `secret`: at least 32 bytes.
  explicit token_signer(std::string secret);

  std::string sign(const token_claims& claims) const;

  /// Checks the signature and the expiry against `now` (seconds since the
  /// epoch). Errors: permission_denied (forged, expired, malformed).
  caf::expected<token_claims> verify(std::string_view token, int64_t now) const;

private:
  std::string secret_;
};

/// Reads the secret at `path`, making a fresh random one (mode 0600) when
/// there is none. Errors: io_error.
caf::expected<std::string> load_or_make_secret(const std::string& path);

} // namespace joy
