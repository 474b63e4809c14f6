// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "runtime/value_convert.hpp"

#include <cstdio>

namespace joy {

std::string describe_for_error(const value& x) {
  auto kind = std::string{to_string(x.type())};
  switch (x.type()) {
    case value::kind::boolean:
      return kind + " " + (*x.as_bool() ? "true" : "false");
    case value::kind::int64:
      return kind + " " + std::to_string(*x.as_int64());
    case value::kind::uint64:
      return kind + " " + std::to_string(*x.as_uint64());
    case value::kind::float64: {
      char buf[40];
      std::snprintf(buf, sizeof(buf), "%.17g", *x.as_float64());
      return kind + " " + buf;
    }
    case value::kind::string: {
      auto& s = *x.as_string();
      if (s.size() <= 32)
        return kind + " \"" + s + "\"";
      return kind + " of " + std::to_string(s.size()) + " bytes";
    }
    case value::kind::list:
      return kind + " of " + std::to_string(x.as_list()->size());
    case value::kind::map:
      return kind + " of " + std::to_string(x.as_map()->size());
    case value::kind::ndarray:
      return std::string{to_string(x.as_ndarray()->type)} + " " + kind;
    default:
      return kind;
  }
}

} // namespace joy
