// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// Checks of numeric command-line options whose refusals read well
/// ("--timeout: 0 is not a positive number"): CLI11's own ranges print the
/// limits of a double ("not in range 0.000000 to 17976931348623...").
/// Header-only, for the programs' `main`s.
#pragma once

#include <cmath>
#include <cstdlib>
#include <string>

#include <CLI/CLI.hpp>

namespace joy::cli_checks {

namespace detail {

inline CLI::Validator number_check(bool zero_ok, const char* what,
                                   const char* name) {
  return CLI::Validator{[zero_ok, what](std::string& in) -> std::string {
                          char* end = nullptr;
                          double x = std::strtod(in.c_str(), &end);
                          bool number = !in.empty() && end != nullptr
                                        && *end == '\0' && std::isfinite(x);
                          if (number && (x > 0 || (zero_ok && x == 0)))
                            return {};
                          return in + " is not " + what;
                        },
                        name};
}

} // namespace detail

/// A finite number above zero.
inline const CLI::Validator positive
  = detail::number_check(false, "a positive number", "POSITIVE");

/// A finite number of zero or more.
inline const CLI::Validator non_negative
  = detail::number_check(true, "zero or a positive number", "NONNEGATIVE");

} // namespace joy::cli_checks
