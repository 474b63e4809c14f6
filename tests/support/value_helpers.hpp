// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// Shared helpers for the value-model tests (value, JSON, wire, round trips,
/// plugin exports): the names those tests use unqualified, and builders for
/// nested values, byte buffers and arrays. A test file includes this header
/// and says `using namespace joy::test;`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include <caf/expected.hpp>
#include <capnp/message.h>

#include "runtime/errc.hpp"
#include "runtime/value.hpp"
#include "runtime/value_wire.hpp"
#include "schema/value.capnp.h"

namespace joy::test {

/// The value-model names the tests use unqualified.
using Catch::Matchers::Contains;
using joy::buffer;
using joy::dtype;
using joy::errc;
using joy::error_value;
using joy::function_ref;
using joy::ndarray;
using joy::timestamp;
using joy::value;
using joy::value_list;
using joy::value_map;
using kind = joy::value::kind;

/// `n` nested lists around the integer 0: depth `n`.
inline value nested_list(std::size_t n) {
  value v{0};
  for (std::size_t i = 0; i < n; ++i) {
    value_list xs;
    xs.push_back(std::move(v));
    v = value{std::move(xs)};
  }
  return v;
}

/// `n` nested single-entry maps (key "k") around the integer 0: depth `n`.
inline value nested_map(std::size_t n) {
  value v{0};
  for (std::size_t i = 0; i < n; ++i) {
    value_map m;
    m.insert("k", std::move(v));
    v = value{std::move(m)};
  }
  return v;
}

/// A buffer holding the bytes `xs`, in order.
inline buffer bytes_of(std::initializer_list<unsigned> xs) {
  std::vector<std::byte> out;
  for (auto x : xs)
    out.push_back(static_cast<std::byte>(x));
  return buffer::take(std::move(out));
}

/// `n` zero bytes.
inline buffer zeros(std::size_t n) {
  return buffer::take(std::vector<std::byte>(n));
}

/// `n` bytes counting up from 1.
inline buffer counting(std::size_t n) {
  std::vector<std::byte> out(n);
  for (std::size_t i = 0; i < n; ++i)
    out[i] = static_cast<std::byte>(i + 1);
  return buffer::take(std::move(out));
}

/// `n` bytes drawn from `rng`.
inline buffer random_bytes(std::mt19937_64& rng, std::size_t n) {
  std::vector<std::byte> out(n);
  for (auto& b : out)
    b = static_cast<std::byte>(rng() & 0xFF);
  return buffer::take(std::move(out));
}

/// An array of `type` and `shape` holding exactly `data`, valid or not.
inline ndarray make_array(dtype type, std::vector<uint64_t> shape, buffer data,
                          bool typed = false) {
  ndarray a;
  a.type = type;
  a.shape = std::move(shape);
  a.typed_array = typed;
  a.data = std::move(data);
  return a;
}

/// A valid array of `type` and `shape` whose bytes count up from 1.
inline ndarray make_array(dtype type, std::vector<uint64_t> shape,
                          bool typed = false) {
  auto a = make_array(type, std::move(shape), buffer{}, typed);
  a.data = counting(*a.element_count() * joy::itemsize(type));
  return a;
}

/// The keys of `m` in iteration order.
inline std::vector<std::string> keys_of(const value_map& m) {
  std::vector<std::string> out;
  for (auto& [k, v] : m)
    out.push_back(k);
  return out;
}

/// The bit pattern of `d`.
inline uint64_t bits_of(double d) {
  uint64_t u;
  std::memcpy(&u, &d, sizeof u);
  return u;
}

/// The double with bit pattern `u`.
inline double double_of(uint64_t u) {
  double d;
  std::memcpy(&d, &u, sizeof d);
  return d;
}

/// C++ -> capnp builder -> reader -> C++.
inline caf::expected<value> through_builder(const value& x) {
  capnp::MallocMessageBuilder msg;
  if (auto err = joy::write_value(x, msg.initRoot<joy::wire::Value>()))
    return err;
  return joy::read_value(msg.getRoot<joy::wire::Value>().asReader());
}

/// C++ -> serialized bytes -> C++.
inline caf::expected<value> through_bytes(const value& x) {
  auto bytes = joy::encode_bytes(x);
  if (!bytes)
    return bytes.error();
  return joy::decode_bytes(*bytes);
}

/// A function value's target that runs nothing: for identity tests.
inline std::shared_ptr<const joy::function_impl> fake_function() {
  struct impl final : joy::function_impl {
    caf::actor target() const override {
      return {};
    }
  };
  return std::make_shared<const impl>();
}

} // namespace joy::test
