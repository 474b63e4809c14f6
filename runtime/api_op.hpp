// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The ImJoy api calls a plugin can make of its node (schema/plugin.capnp
/// `ApiOp`; arguments and results in docs/plugins.md). Numbers are the wire
/// enum's.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace joy {

enum class api_op : uint16_t {
  alert = 0,
  prompt = 1,
  confirm = 2,
  show_message = 3,
  show_progress = 4,
  show_status = 5,
  register_service = 6,
  unregister_service = 7,
  get_service = 8,
  list_services = 9,
  get_plugin = 10,
  call = 11,
  emit = 12,
  on = 13,
  off = 14,
  get_config = 15,
  set_config = 16,
  progress = 17,
  create_window = 18,
  /// `get_service(id)` then a call of one of its methods, in one round trip.
  call_service = 19,
};

/// ImJoy's snake_case name: "alert", "show_message", ...
std::string_view to_string(api_op op) noexcept;

/// The op with wire number `x`, or nullopt for one this build does not know.
std::optional<api_op> api_op_from_wire(uint16_t x) noexcept;

/// True for the calls a UI provider answers (alert, prompt, confirm,
/// show_*, progress, create_window).
bool is_ui_op(api_op op) noexcept;

} // namespace joy
