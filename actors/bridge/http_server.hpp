// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The bridge's HTTP and WebSocket server (Boost.Beast), on a thread of its
/// own so that no CAF worker ever waits on a socket:
///
/// * `GET /` and other paths: the browser core's files from `web_root`;
/// * `GET /health/liveness` (200 while the process runs) and
///   `/health/readiness` (200: the listener accepts only once `run()`
///   was called, after the node started);
/// * `GET /ws`: the WebSocket endpoint. Each connection gets an actor (made
///   by `open`) that receives its frames as `(frame_atom, data, binary)`
///   and, once, `(closed_atom, code, reason)`; the actor answers through
///   the `ws_connection`, whose methods may be called from any thread.
///
/// Limits, each with a clear refusal: an exact `Origin` allowlist (a request
/// without `Origin` is no browser's and passes), a frame cap (close 1009),
/// UTF-8 in text frames (close 1007), a deadline for the HTTP request and
/// the WebSocket handshake, an idle timeout with keep-alive pings, a cap on
/// queued output (close 1008) and on connections (HTTP 503).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/expected.hpp>

namespace joy {

struct http_server_config {
  /// Where to listen; port 0 picks a free one.
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  /// Browser origins allowed to open the WebSocket, exactly
  /// (`scheme://host[:port]`). The server's own origins are always added.
  std::vector<std::string> origins;
  /// Largest WebSocket frame (message) read; bigger ones close with 1009.
  std::size_t frame_max = std::size_t{1} << 20;
  /// Output a slow client may leave unread before it is closed.
  std::size_t output_max = std::size_t{256} << 20;
  /// Frames handed to the connection's actor and not yet acknowledged
  /// (`ws_connection::ack`); reading pauses beyond this.
  std::size_t frames_in_flight = 64;
  /// Deadline for the HTTP request line and headers, and for the
  /// WebSocket upgrade.
  std::chrono::milliseconds handshake_timeout{5000};
  /// A WebSocket with no traffic is pinged after half of this and closed
  /// after all of it.
  std::chrono::milliseconds idle_timeout{600'000};
  /// The browser core's files; empty serves none.
  std::string web_root;
  std::size_t max_connections = 20'000;
};

/// One WebSocket connection; every method is safe from any thread.
class ws_connection {
public:
  virtual ~ws_connection();

  /// Queues one frame.
  virtual void send(std::string data, bool binary) = 0;

  /// Sends a close frame with `code` and `reason`, then closes.
  virtual void close(uint16_t code, std::string reason) = 0;

  /// The actor is done with one frame (see frames_in_flight).
  virtual void ack() = 0;

  /// The request target of the upgrade (path and query).
  virtual const std::string& target() const = 0;

  /// The peer's address, "ip:port".
  virtual const std::string& remote() const = 0;

  /// Whether the peer connected from a loopback address.
  virtual bool loopback() const = 0;
};

using ws_connection_ptr = std::shared_ptr<ws_connection>;

class http_server {
public:
  /// Makes the actor for a new connection.
  using open_fn = std::function<caf::actor(ws_connection_ptr)>;

  http_server(http_server_config cfg, open_fn open);

  ~http_server();

  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  /// Binds and listens. Errors: io_error (cannot bind), invalid_argument
  /// (bad host).
  caf::error start();

  /// The port listened on (after start).
  uint16_t port() const noexcept;

  /// Starts the server's thread: connections are served from now on.
  void run();

  /// Closes the listener and every connection (1001, "going away") and
  /// joins the thread.
  void stop();

  class impl;

private:
  std::shared_ptr<impl> impl_;
};

} // namespace joy
