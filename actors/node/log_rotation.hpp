// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// Rotating the logs the node's processes write (plugins' stdout and
/// stderr, joyd's own). The writers keep their file open with O_APPEND, so
/// a log is rotated by copying it to `<log>.1` (after shifting `.1` to
/// `.2`, ...) and truncating it: the writers carry on at the start of the
/// emptied file. Lines written between the copy and the truncation are
/// lost — the price of never making a writer reopen. Blocking file I/O:
/// call from a detached actor.
#pragma once

#include <cstdint>
#include <filesystem>

#include <caf/error.hpp>

namespace joy {

/// Rotates `log` if it is larger than `max_bytes`, keeping `keep` old
/// copies. Returns whether it rotated. A missing log is no error.
caf::expected<bool> rotate_if_large(const std::filesystem::path& log,
                                    uint64_t max_bytes, int keep);

} // namespace joy
