// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/node/fetch.hpp"

#include <fstream>
#include <optional>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "runtime/errc.hpp"

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace joy {

namespace {

struct parsed_url {
  bool tls = false;
  std::string host;
  std::string port;
  std::string target; // path and query
};

std::optional<parsed_url> parse_url(const std::string& url) {
  parsed_url out;
  std::string rest;
  if (url.rfind("https://", 0) == 0) {
    out.tls = true;
    rest = url.substr(8);
  } else if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else {
    return std::nullopt;
  }
  auto slash = rest.find('/');
  auto authority = rest.substr(0, slash);
  out.target = slash == std::string::npos ? "/" : rest.substr(slash);
  if (authority.empty() || authority.find('@') != std::string::npos)
    return std::nullopt;
  if (auto colon = authority.rfind(':');
      colon != std::string::npos && authority.find(']') == std::string::npos) {
    out.host = authority.substr(0, colon);
    out.port = authority.substr(colon + 1);
  } else {
    out.host = authority;
    out.port = out.tls ? "443" : "80";
  }
  if (out.host.empty() || out.port.empty())
    return std::nullopt;
  return out;
}

/// One GET; the body goes to `sink`. Returns the status, and the Location
/// of a redirect.
template <class Stream>
caf::expected<std::pair<unsigned, std::string>>
get(Stream& stream, beast::tcp_stream& tcp, const parsed_url& u,
    const fetch_limits& limits,
    const std::function<caf::error(std::string_view)>& sink) {
  http::request<http::empty_body> req{http::verb::get, u.target, 11};
  req.set(http::field::host, u.host);
  req.set(http::field::user_agent, "joy");
  tcp.expires_after(limits.timeout);
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(limits.max_bytes);
  tcp.expires_after(limits.timeout);
  http::read_header(stream, buffer, parser);
  auto status = parser.get().result_int();
  std::string location;
  if (auto loc = parser.get().find(http::field::location);
      loc != parser.get().end())
    location = std::string{loc->value()};
  if (status != 200)
    return std::make_pair(status, location);
  char chunk[64 * 1024];
  while (!parser.is_done()) {
    parser.get().body().data = chunk;
    parser.get().body().size = sizeof(chunk);
    tcp.expires_after(limits.timeout);
    beast::error_code ec;
    http::read(stream, buffer, parser, ec);
    if (ec && ec != http::error::need_buffer)
      throw beast::system_error{ec};
    auto got = sizeof(chunk) - parser.get().body().size;
    if (auto err = sink(std::string_view{chunk, got}))
      return err;
  }
  return std::make_pair(status, location);
}

caf::error fetch(std::string url, const fetch_limits& limits,
                 const std::function<caf::error(std::string_view)>& sink) {
  for (int hop = 0; hop <= limits.max_redirects; ++hop) {
    auto u = parse_url(url);
    if (!u)
      return make_error(errc::invalid_argument,
                        "'" + url + "' is not an http(s) URL");
    caf::expected<std::pair<unsigned, std::string>> res
      = make_error(errc::internal, "no answer");
    try {
      asio::io_context io;
      asio::ip::tcp::resolver resolver{io};
      beast::tcp_stream tcp{io};
      tcp.expires_after(limits.timeout);
      tcp.connect(resolver.resolve(u->host, u->port));
      if (u->tls) {
        asio::ssl::context tls{asio::ssl::context::tls_client};
        tls.set_default_verify_paths();
        tls.set_verify_mode(asio::ssl::verify_peer);
        beast::ssl_stream<beast::tcp_stream&> stream{tcp, tls};
        stream.set_verify_callback(asio::ssl::host_name_verification{u->host});
        // SNI: servers hosting several names need it.
        SSL_set_tlsext_host_name(stream.native_handle(), u->host.c_str());
        stream.handshake(asio::ssl::stream_base::client);
        res = get(stream, tcp, *u, limits, sink);
      } else {
        res = get(tcp, tcp, *u, limits, sink);
      }
    } catch (const beast::system_error& ex) {
      if (ex.code() == http::error::body_limit)
        return make_error(errc::too_large, url + " is larger than "
                                             + std::to_string(limits.max_bytes)
                                             + " bytes");
      return make_error(errc::io_error,
                        "cannot fetch " + url + ": " + ex.what());
    }
    if (!res)
      return std::move(res.error());
    auto [status, location] = *res;
    if (status == 200)
      return caf::none;
    if (status >= 300 && status < 400 && !location.empty()) {
      url = resolve_url(url, location);
      continue;
    }
    if (status == 404)
      return make_error(errc::not_found, url + " was not found (HTTP 404)");
    return make_error(errc::io_error, "fetching " + url + " failed with HTTP "
                                        + std::to_string(status));
  }
  return make_error(errc::io_error, "too many redirects fetching " + url);
}

} // namespace

std::string resolve_url(const std::string& base, const std::string& relative) {
  if (relative.rfind("http://", 0) == 0 || relative.rfind("https://", 0) == 0)
    return relative;
  auto scheme_end = base.find("://");
  auto path_start = scheme_end == std::string::npos
                      ? std::string::npos
                      : base.find('/', scheme_end + 3);
  auto origin
    = path_start == std::string::npos ? base : base.substr(0, path_start);
  if (!relative.empty() && relative[0] == '/')
    return origin + relative;
  auto dir = path_start == std::string::npos
               ? origin + "/"
               : base.substr(0, base.rfind('/') + 1);
  return dir + relative;
}

caf::error fetch_to_file(const std::string& url, const fs::path& dest,
                         const fetch_limits& limits) {
  std::ofstream out{dest, std::ios::binary | std::ios::trunc};
  if (!out)
    return make_error(errc::io_error, "cannot write " + dest.string());
  return fetch(url, limits, [&](std::string_view chunk) -> caf::error {
    out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    if (!out)
      return make_error(errc::io_error, "cannot write " + dest.string());
    return caf::none;
  });
}

caf::expected<std::string> fetch_text(const std::string& url,
                                      const fetch_limits& limits) {
  std::string body;
  if (auto err = fetch(url, limits, [&](std::string_view chunk) -> caf::error {
        body.append(chunk);
        return caf::none;
      }))
    return err;
  return body;
}

} // namespace joy
