// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// Plugin uids belong to the machine, not to one daemon. Two root daemons on
/// one machine (two homes; a test run next to a real node) each hand out
/// uids from the same default range, and two plugins sharing a uid share
/// its `RLIMIT_NPROC`, which the kernel counts per uid: one plugin's fork
/// bomb then stops the other from even starting, and the files one leaves
/// become the other's.
///
/// A claim is a symlink `DIR/UID` naming the work dir the uid was given to,
/// made while holding an flock of DIR, so claims by all daemons are
/// serialised. It lapses once that work dir is gone (the plugin
/// uninstalled, its home deleted), so nothing has to release it and a
/// daemon killed mid-way leaves nothing that blocks. DIR is root's
/// (`/var/lib/joy/plugin-uids`): claims must outlive a reboot, as the work
/// dirs' owners do.
#pragma once

#include <string>
#include <vector>

#include <sys/types.h>

#include <caf/expected.hpp>

namespace joy {

class uid_claims {
public:
  explicit uid_claims(std::string dir);

  /// The uid for `work_dir` from [first, first + count), claimed for it:
  /// `owner` (the work dir's owner now, the choice of an earlier start)
  /// when that is in the range and not another work dir's, else the lowest
  /// uid that neither a claim nor `taken` (the owners of this daemon's
  /// other work dirs, which may predate claims) holds. Blocks while another
  /// daemon claims. Errors: io_error (DIR unusable), unavailable (the range
  /// is used up), failed_precondition (a work dir from before claims owned
  /// by a uid
  /// another plugin now holds).
  caf::expected<uid_t> claim(const std::string& work_dir, uid_t owner,
                             uid_t first, uid_t count,
                             const std::vector<bool>& taken);

  const std::string& dir() const noexcept {
    return dir_;
  }

private:
  std::string dir_;
};

} // namespace joy
