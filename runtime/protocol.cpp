// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "runtime/protocol.hpp"

namespace joy {

std::string_view version() noexcept {
  return JOY_VERSION;
}

} // namespace joy
