// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "runtime/future.hpp"

#include <exception>
#include <string>

namespace joy::detail {

caf::error error_from_current_exception(const char* where) {
  try {
    throw;
  } catch (const std::exception& ex) {
    return make_error(errc::plugin_error,
                      std::string{where} + " threw: " + ex.what());
  } catch (...) {
    return make_error(errc::plugin_error,
                      std::string{where} + " threw an unknown exception");
  }
}

} // namespace joy::detail
