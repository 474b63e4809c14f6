// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/bridge/bridge_token.hpp"

#include <array>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "runtime/errc.hpp"

namespace joy {

namespace {

constexpr char b64[]
  = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64url(std::string_view in) {
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(b64[(acc >> bits) & 63]);
    }
  }
  if (bits > 0)
    out.push_back(b64[(acc << (6 - bits)) & 63]);
  return out;
}

bool unbase64url(std::string_view in, std::string& out) {
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const char* p = std::char_traits<char>::find(b64, 64, c);
    if (p == nullptr)
      return false;
    acc = (acc << 6) | static_cast<uint32_t>(p - b64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return true;
}

std::string hmac(const std::string& key, std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(),
       md.data(), &len);
  return std::string{reinterpret_cast<const char*>(md.data()), len};
}

caf::error refused(std::string why) {
  return make_error(errc::permission_denied, "invalid token: " + why);
}

} // namespace

token_signer::token_signer(std::string secret) : secret_(std::move(secret)) {
  // nop
}

std::string token_signer::sign(const token_claims& c) const {
  nlohmann::json doc{{"k", c.kind},   {"u", c.user},       {"w", c.workspace},
                     {"c", c.client}, {"p", c.permission}, {"a", c.anonymous},
                     {"e", c.expires}};
  auto body = base64url(doc.dump());
  return body + "." + base64url(hmac(secret_, body));
}

caf::expected<token_claims> token_signer::verify(std::string_view token,
                                                 int64_t now) const {
  auto dot = token.find('.');
  if (dot == std::string_view::npos)
    return refused("malformed");
  auto body = token.substr(0, dot);
  std::string mac;
  if (!unbase64url(token.substr(dot + 1), mac))
    return refused("malformed");
  auto expected = hmac(secret_, body);
  if (mac.size() != expected.size()
      || CRYPTO_memcmp(mac.data(), expected.data(), mac.size()) != 0)
    return refused("bad signature (issued by another bridge?)");
  std::string json;
  if (!unbase64url(body, json))
    return refused("malformed");
  try {
    auto doc = nlohmann::json::parse(json);
    token_claims c;
    c.kind = doc.at("k").get<std::string>();
    c.user = doc.at("u").get<std::string>();
    c.workspace = doc.at("w").get<std::string>();
    c.client = doc.at("c").get<std::string>();
    c.permission = doc.at("p").get<std::string>();
    c.anonymous = doc.at("a").get<bool>();
    c.expires = doc.at("e").get<int64_t>();
    if (c.expires != 0 && c.expires < now)
      return refused("expired");
    return c;
  } catch (const std::exception&) {
    return refused("malformed claims");
  }
}

caf::expected<std::string> load_or_make_secret(const std::string& path) {
  {
    std::ifstream in{path, std::ios::binary};
    if (in) {
      std::ostringstream buf;
      buf << in.rdbuf();
      auto s = buf.str();
      if (s.size() >= 32)
        return s;
    }
  }
  std::string secret(32, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(secret.data()), 32) != 1)
    return make_error(errc::io_error, "no randomness for the bridge secret");
  auto tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return make_error(errc::io_error, "cannot write " + tmp);
  auto n = ::write(fd, secret.data(), secret.size());
  ::fsync(fd);
  ::close(fd);
  if (n != static_cast<ssize_t>(secret.size())
      || ::rename(tmp.c_str(), path.c_str()) != 0)
    return make_error(errc::io_error, "cannot write " + path);
  return secret;
}

} // namespace joy
