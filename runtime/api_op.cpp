// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "runtime/api_op.hpp"

#include <array>

namespace joy {

namespace {

constexpr std::array<std::string_view, 20> names{{
  "alert",
  "prompt",
  "confirm",
  "show_message",
  "show_progress",
  "show_status",
  "register_service",
  "unregister_service",
  "get_service",
  "list_services",
  "get_plugin",
  "call",
  "emit",
  "on",
  "off",
  "get_config",
  "set_config",
  "progress",
  "create_window",
  "call_service",
}};

} // namespace

std::string_view to_string(api_op op) noexcept {
  auto i = static_cast<std::size_t>(op);
  return i < names.size() ? names[i] : "unknown";
}

std::optional<api_op> api_op_from_wire(uint16_t x) noexcept {
  if (x < names.size())
    return static_cast<api_op>(x);
  return std::nullopt;
}

bool is_ui_op(api_op op) noexcept {
  switch (op) {
    case api_op::alert:
    case api_op::prompt:
    case api_op::confirm:
    case api_op::show_message:
    case api_op::show_progress:
    case api_op::show_status:
    case api_op::progress:
    case api_op::create_window:
      return true;
    default:
      return false;
  }
}

} // namespace joy
