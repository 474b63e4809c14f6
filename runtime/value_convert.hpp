// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// Conversions between `joy::value` and plain C++ types, for typed exports
/// (DESIGN §3): numbers convert only when no information is lost — an
/// integer fits an `int64_t`, `uint64_t` or `double` parameter when it is in
/// range and representable; `2.5` does not fit an integer parameter, `2.0`
/// does. `float` parameters accept any finite double in range (rounded),
/// since JSON has no single-precision numbers.
///
/// Supported types: `value`, `bool`, every integer type, `float`, `double`,
/// `std::string`, `buffer` (bytes), `ndarray`, `timestamp`, `value_list`,
/// `value_map`, `std::vector<T>`, `std::map<std::string, T>`,
/// `std::optional<T>` (null ↔ nullopt) and `void` (as a result: null).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "runtime/value.hpp"

namespace joy {

/// Why a conversion failed, phrased to complete "expected X, got Y".
struct conversion_error {
  std::string expected;
  std::string got;
};

/// A short description of a value for error messages: its kind and, for
/// scalars, the value itself.
std::string describe_for_error(const value& x);

template <class T, class = void>
struct value_converter;

/// Converts `x` to `T`, or says why not.
template <class T>
std::optional<conversion_error> from_value(const value& x, T& out) {
  return value_converter<T>::from(x, out);
}

/// Converts `x` to a value.
template <class T>
value to_value(T&& x) {
  return value_converter<std::decay_t<T>>::to(std::forward<T>(x));
}

// -- converters ---------------------------------------------------------------

template <>
struct value_converter<value> {
  static std::optional<conversion_error> from(const value& x, value& out) {
    out = x;
    return std::nullopt;
  }
  static value to(value x) {
    return x;
  }
};

template <>
struct value_converter<bool> {
  static std::optional<conversion_error> from(const value& x, bool& out) {
    if (auto* b = x.as_bool()) {
      out = *b;
      return std::nullopt;
    }
    return conversion_error{"a bool", describe_for_error(x)};
  }
  static value to(bool x) {
    return value{x};
  }
};

/// Every integer type except bool.
template <class T>
struct value_converter<
  T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>>> {
  static std::optional<conversion_error> from(const value& x, T& out) {
    using lim = std::numeric_limits<T>;
    auto fail = [&] {
      return conversion_error{std::string{"an integer from "}
                                + std::to_string(lim::min()) + " to "
                                + std::to_string(lim::max()),
                              describe_for_error(x)};
    };
    if (auto* i = x.as_int64()) {
      if constexpr (std::is_signed_v<T>) {
        if (*i < lim::min() || *i > lim::max())
          return fail();
      } else {
        if (*i < 0 || static_cast<uint64_t>(*i) > lim::max())
          return fail();
      }
      out = static_cast<T>(*i);
      return std::nullopt;
    }
    if (auto* u = x.as_uint64()) {
      if (*u > static_cast<uint64_t>(lim::max()))
        return fail();
      out = static_cast<T>(*u);
      return std::nullopt;
    }
    if (auto* d = x.as_float64()) {
      // Lossless only: integral and in range. 2^63 itself is out of range
      // for int64, so compare against the exclusive upper bound.
      double upper = std::ldexp(1.0, lim::digits);
      if (std::isfinite(*d) && std::trunc(*d) == *d
          && *d >= static_cast<double>(lim::min()) && *d < upper) {
        out = static_cast<T>(*d);
        return std::nullopt;
      }
      return fail();
    }
    return fail();
  }
  static value to(T x) {
    if constexpr (std::is_same_v<
                    T, uint64_t> || std::is_same_v<T, unsigned long long>)
      return value{static_cast<uint64_t>(x)};
    else if constexpr (std::is_unsigned_v<T> && sizeof(T) == 8)
      return value{static_cast<uint64_t>(x)};
    else
      return value{static_cast<int64_t>(x)};
  }
};

template <class T>
struct value_converter<T, std::enable_if_t<std::is_floating_point_v<T>>> {
  static std::optional<conversion_error> from(const value& x, T& out) {
    if (auto* d = x.as_float64()) {
      if constexpr (std::is_same_v<T, float>) {
        if (std::isfinite(*d)
            && std::fabs(*d)
                 > static_cast<double>(std::numeric_limits<float>::max()))
          return conversion_error{"a number in float range",
                                  describe_for_error(x)};
      }
      out = static_cast<T>(*d);
      return std::nullopt;
    }
    // Integers convert when the floating type represents them exactly.
    if (auto* i = x.as_int64()) {
      auto f = static_cast<T>(*i);
      if (static_cast<long double>(f) == static_cast<long double>(*i)) {
        out = f;
        return std::nullopt;
      }
      return conversion_error{"a number representable without rounding",
                              describe_for_error(x)};
    }
    if (auto* u = x.as_uint64()) {
      auto f = static_cast<T>(*u);
      if (static_cast<long double>(f) == static_cast<long double>(*u)) {
        out = f;
        return std::nullopt;
      }
      return conversion_error{"a number representable without rounding",
                              describe_for_error(x)};
    }
    return conversion_error{"a number", describe_for_error(x)};
  }
  static value to(T x) {
    return value{static_cast<double>(x)};
  }
};

template <>
struct value_converter<std::string> {
  static std::optional<conversion_error> from(const value& x,
                                              std::string& out) {
    if (auto* s = x.as_string()) {
      out = *s;
      return std::nullopt;
    }
    return conversion_error{"a string", describe_for_error(x)};
  }
  static value to(std::string x) {
    return value{std::move(x)};
  }
};

template <>
struct value_converter<buffer> {
  static std::optional<conversion_error> from(const value& x, buffer& out) {
    if (auto* b = x.as_bytes()) {
      out = *b;
      return std::nullopt;
    }
    return conversion_error{"bytes", describe_for_error(x)};
  }
  static value to(buffer x) {
    return value{std::move(x)};
  }
};

template <>
struct value_converter<ndarray> {
  static std::optional<conversion_error> from(const value& x, ndarray& out) {
    if (auto* a = x.as_ndarray()) {
      out = *a;
      return std::nullopt;
    }
    return conversion_error{"an ndarray", describe_for_error(x)};
  }
  static value to(ndarray x) {
    return value{std::move(x)};
  }
};

template <>
struct value_converter<timestamp> {
  static std::optional<conversion_error> from(const value& x, timestamp& out) {
    if (auto* t = x.as_timestamp()) {
      out = *t;
      return std::nullopt;
    }
    return conversion_error{"a timestamp", describe_for_error(x)};
  }
  static value to(timestamp x) {
    return value{x};
  }
};

template <>
struct value_converter<function_ref> {
  static std::optional<conversion_error> from(const value& x,
                                              function_ref& out) {
    if (auto* f = x.as_function()) {
      out = *f;
      return std::nullopt;
    }
    return conversion_error{"a function", describe_for_error(x)};
  }
  static value to(function_ref x) {
    return value{std::move(x)};
  }
};

template <>
struct value_converter<value_list> {
  static std::optional<conversion_error> from(const value& x, value_list& out) {
    if (auto* xs = x.as_list()) {
      out = *xs;
      return std::nullopt;
    }
    return conversion_error{"a list", describe_for_error(x)};
  }
  static value to(value_list x) {
    return value{std::move(x)};
  }
};

template <>
struct value_converter<value_map> {
  static std::optional<conversion_error> from(const value& x, value_map& out) {
    if (auto* xs = x.as_map()) {
      out = *xs;
      return std::nullopt;
    }
    return conversion_error{"a map", describe_for_error(x)};
  }
  static value to(value_map x) {
    return value{std::move(x)};
  }
};

template <class T>
struct value_converter<std::vector<T>> {
  static std::optional<conversion_error> from(const value& x,
                                              std::vector<T>& out) {
    auto* xs = x.as_list();
    if (xs == nullptr)
      return conversion_error{"a list", describe_for_error(x)};
    out.clear();
    out.reserve(xs->size());
    for (std::size_t i = 0; i < xs->size(); ++i) {
      T item{};
      if (auto err = from_value((*xs)[i], item))
        return conversion_error{
          err->expected + " at index " + std::to_string(i), err->got};
      out.push_back(std::move(item));
    }
    return std::nullopt;
  }
  static value to(std::vector<T> xs) {
    value_list out;
    out.reserve(xs.size());
    for (auto& x : xs)
      out.push_back(to_value(std::move(x)));
    return value{std::move(out)};
  }
};

template <class T>
struct value_converter<std::map<std::string, T>> {
  static std::optional<conversion_error> from(const value& x,
                                              std::map<std::string, T>& out) {
    auto* xs = x.as_map();
    if (xs == nullptr)
      return conversion_error{"a map", describe_for_error(x)};
    out.clear();
    for (auto& [k, v] : *xs) {
      T item{};
      if (auto err = from_value(v, item))
        return conversion_error{err->expected + " at key '" + k + "'",
                                err->got};
      out.emplace(k, std::move(item));
    }
    return std::nullopt;
  }
  static value to(std::map<std::string, T> xs) {
    value_map out;
    for (auto& [k, v] : xs)
      out.insert(k, to_value(std::move(v)));
    return value{std::move(out)};
  }
};

template <class T>
struct value_converter<std::optional<T>> {
  static std::optional<conversion_error> from(const value& x,
                                              std::optional<T>& out) {
    if (x.is_null()) {
      out.reset();
      return std::nullopt;
    }
    T item{};
    if (auto err = from_value(x, item))
      return conversion_error{err->expected + " or null", err->got};
    out = std::move(item);
    return std::nullopt;
  }
  static value to(std::optional<T> x) {
    return x ? to_value(std::move(*x)) : value{};
  }
};

} // namespace joy
