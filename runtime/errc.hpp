// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// `joy::errc`, the one error enum of the project. Every failure a caller can
/// see is one of these codes plus a message. The codes are grouped by how the
/// caller should react, not by subsystem, and their numbers are part of the
/// wire format (schema/value.capnp `Error.code`): never renumber, only append.
///
/// ```
/// return caf::make_error(joy::errc::not_found, "no plugin named 'hello'");
/// ```
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <caf/error.hpp>
#include <caf/sec.hpp>

namespace joy {

enum class errc : uint8_t {
  // -- retry: the same call may succeed later ---------------------------------
  /// The call did not finish within its deadline.
  timeout = 1,
  /// The callee is busy; back off and retry.
  overloaded = 2,
  /// The link to the callee broke (process or node gone). At-most-once: the
  /// call may or may not have run.
  disconnected = 3,
  /// The callee exists but is not running (stopped, failed, starting).
  unavailable = 4,
  /// The caller gave up (Ctrl-C, explicit cancel).
  cancelled = 5,

  // -- fix the call -----------------------------------------------------------
  /// An argument, manifest field or input is malformed or has the wrong type.
  invalid_argument = 10,
  /// No such plugin, method, service or node.
  not_found = 11,
  /// The thing to create exists already.
  already_exists = 12,
  /// A value exceeds a limit (size, nesting depth, count).
  too_large = 13,
  /// The caller may not do this.
  permission_denied = 14,

  // -- fix the state first ----------------------------------------------------
  /// The system is not in a state that allows the call.
  failed_precondition = 20,
  /// The peer speaks another protocol version.
  version_mismatch = 21,

  // -- not there --------------------------------------------------------------
  /// The operation exists in the design but not in this build.
  unimplemented = 30,

  // -- failures in the callee or in Joy ---------------------------------------
  /// The plugin's own code failed (threw, returned an error).
  plugin_error = 40,
  /// A peer violated the wire protocol.
  protocol_error = 41,
  /// The disk or the registry failed.
  io_error = 42,
  /// A bug in Joy.
  internal = 43,
};

/// The name used in JSON (`_rcode`) and in messages, e.g. "not_found".
std::string_view to_string(errc code) noexcept;

/// Parses a name produced by `to_string`.
std::optional<errc> errc_from_string(std::string_view name) noexcept;

/// Maps a wire code to an `errc`; unknown codes become `errc::internal`.
errc errc_from_code(uint16_t code) noexcept;

/// Makes a CAF error in Joy's category carrying `message`.
caf::error make_error(errc code, std::string message);

/// Extracts Joy's code from any CAF error: Joy's own category, or CAF's
/// system errors mapped to the nearest Joy code.
errc code_of(const caf::error& err) noexcept;

/// The human-readable message of a CAF error in Joy's category (or a
/// rendering of a foreign error).
std::string message_of(const caf::error& err);

} // namespace joy

// Joy's codes travel inside caf::error with category "joy".
CAF_ERROR_CODE_ENUM(joy::errc, "joy")
