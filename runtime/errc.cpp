// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "runtime/errc.hpp"

#include <array>
#include <utility>

#include <caf/atom.hpp>
#include <caf/message.hpp>

namespace joy {

namespace {

constexpr std::array<std::pair<errc, std::string_view>, 17> names{{
  {errc::timeout, "timeout"},
  {errc::overloaded, "overloaded"},
  {errc::disconnected, "disconnected"},
  {errc::unavailable, "unavailable"},
  {errc::cancelled, "cancelled"},
  {errc::invalid_argument, "invalid_argument"},
  {errc::not_found, "not_found"},
  {errc::already_exists, "already_exists"},
  {errc::too_large, "too_large"},
  {errc::permission_denied, "permission_denied"},
  {errc::failed_precondition, "failed_precondition"},
  {errc::version_mismatch, "version_mismatch"},
  {errc::unimplemented, "unimplemented"},
  {errc::plugin_error, "plugin_error"},
  {errc::protocol_error, "protocol_error"},
  {errc::io_error, "io_error"},
  {errc::internal, "internal"},
}};

constexpr caf::atom_value joy_category = caf::atom("joy");

} // namespace

std::string_view to_string(errc code) noexcept {
  for (auto& [c, name] : names)
    if (c == code)
      return name;
  return "internal";
}

std::optional<errc> errc_from_string(std::string_view name) noexcept {
  for (auto& [c, n] : names)
    if (n == name)
      return c;
  return std::nullopt;
}

errc errc_from_code(uint16_t code) noexcept {
  for (auto& [c, name] : names)
    if (static_cast<uint16_t>(c) == code)
      return c;
  return errc::internal;
}

caf::error make_error(errc code, std::string message) {
  return caf::error{static_cast<uint8_t>(code), joy_category,
                    caf::make_message(std::move(message))};
}

errc code_of(const caf::error& err) noexcept {
  if (!err)
    return errc::internal;
  if (err.category() == joy_category)
    return errc_from_code(err.code());
  if (err.category() == caf::atom("system")) {
    switch (static_cast<caf::sec>(err.code())) {
      case caf::sec::request_timeout:
        return errc::timeout;
      case caf::sec::request_receiver_down:
      case caf::sec::remote_linking_failed:
      case caf::sec::no_route_to_receiving_node:
        return errc::disconnected;
      case caf::sec::unexpected_message:
      case caf::sec::unexpected_response:
        return errc::protocol_error;
      case caf::sec::invalid_argument:
        return errc::invalid_argument;
      default:
        return errc::internal;
    }
  }
  if (err.category() == caf::atom("exit"))
    return errc::disconnected;
  return errc::internal;
}

std::string message_of(const caf::error& err) {
  if (!err)
    return {};
  if (err.category() == joy_category) {
    auto& ctx = err.context();
    if (ctx.size() == 1 && ctx.match_element<std::string>(0))
      return ctx.get_as<std::string>(0);
    return std::string{to_string(code_of(err))};
  }
  // A CAF system error: its own rendering is the best message we have.
  return caf::to_string(err);
}

} // namespace joy
