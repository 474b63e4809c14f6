// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/bridge/hypha_ids.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <random>

#include <openssl/rand.h>

#include "runtime/errc.hpp"

namespace joy {

namespace {

caf::error bad_id(std::string_view text, std::string why) {
  return make_error(errc::invalid_argument, "invalid service id '"
                                              + std::string{text}
                                              + "': " + std::move(why));
}

} // namespace

caf::expected<hypha_service_id> parse_hypha_id(std::string_view text,
                                               std::string_view caller_ws) {
  for (char c : {'/', ':', '@'})
    if (std::count(text.begin(), text.end(), c) > 1)
      return bad_id(text, std::string{"more than one '"} + c + "'");
  hypha_service_id out;
  auto rest = text;
  if (auto at = rest.find('@'); at != std::string_view::npos) {
    out.app = std::string{rest.substr(at + 1)};
    rest = rest.substr(0, at);
    if (out.app.empty())
      return bad_id(text, "empty app id");
  }
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    out.workspace = std::string{rest.substr(0, slash)};
    rest = rest.substr(slash + 1);
  } else {
    out.workspace = std::string{caller_ws};
  }
  if (out.workspace.empty())
    return bad_id(text, "empty workspace");
  if (out.workspace == "*")
    return bad_id(text, "workspace '*' is not allowed");
  if (auto colon = rest.find(':'); colon != std::string_view::npos) {
    out.client = std::string{rest.substr(0, colon)};
    out.service = std::string{rest.substr(colon + 1)};
    if (out.client.empty())
      return bad_id(text, "empty client id");
  } else {
    out.service = std::string{rest};
  }
  if (out.service.empty())
    return bad_id(text, "empty service id");
  return out;
}

std::string to_string(const hypha_service_id& x) {
  return x.workspace + "/" + x.client + ":" + x.service;
}

bool glob_match(std::string_view pattern, std::string_view text) noexcept {
  // Iterative matcher with one backtrack point: linear in practice.
  std::size_t p = 0;
  std::size_t t = 0;
  std::size_t star = std::string_view::npos;
  std::size_t mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*')
    ++p;
  return p == pattern.size();
}

std::string random_id() {
  static constexpr char alphabet[]
    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::array<unsigned char, 17> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    std::random_device rd;
    for (auto& b : bytes)
      b = static_cast<unsigned char>(rd());
  }
  std::string out;
  out.reserve(22);
  // 22 characters of 6 bits: 132 bits from 136.
  uint32_t acc = 0;
  int bits = 0;
  for (auto b : bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6 && out.size() < 22) {
      bits -= 6;
      out.push_back(alphabet[(acc >> bits) & 63]);
    }
  }
  return out;
}

bool valid_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 64 || name[0] == '.')
    return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
  });
}

} // namespace joy
