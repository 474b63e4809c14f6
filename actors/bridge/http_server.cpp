// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/bridge/http_server.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <deque>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_set>

#include <pthread.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <caf/send.hpp>

#include "runtime/errc.hpp"
#include "runtime/log.hpp"
#include "runtime/type_ids.hpp"

namespace joy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

ws_connection::~ws_connection() = default;

namespace {

constexpr std::size_t header_limit = 16 * 1024;

std::string content_type(const std::string& path) {
  auto dot = path.rfind('.');
  auto ext = dot == std::string::npos ? std::string{} : path.substr(dot + 1);
  if (ext == "html")
    return "text/html; charset=utf-8";
  if (ext == "js" || ext == "mjs")
    return "text/javascript; charset=utf-8";
  if (ext == "css")
    return "text/css; charset=utf-8";
  if (ext == "json" || ext == "map")
    return "application/json";
  if (ext == "svg")
    return "image/svg+xml";
  if (ext == "png")
    return "image/png";
  if (ext == "ico")
    return "image/x-icon";
  return "application/octet-stream";
}

/// A request path mapped into the web root, or "" when it would leave it.
std::string safe_path(const std::string& root, std::string_view target) {
  auto path = target.substr(0, target.find_first_of("?#"));
  if (path.empty() || path[0] != '/')
    return {};
  if (path.find("..") != std::string_view::npos
      || path.find('\\') != std::string_view::npos
      || path.find('\0') != std::string_view::npos)
    return {};
  std::string out = root + std::string{path};
  if (out.back() == '/')
    out += "index.html";
  return out;
}

std::string endpoint_text(const tcp::endpoint& ep) {
  auto addr = ep.address();
  auto host = addr.to_string();
  if (addr.is_v6())
    host = "[" + host + "]";
  return host + ":" + std::to_string(ep.port());
}

} // namespace

class http_server::impl : public std::enable_shared_from_this<impl> {
public:
  class ws_conn;
  class http_conn;

  impl(http_server_config cfg, open_fn open)
    : open_(std::move(open)), cfg_(std::move(cfg)), acceptor_(ioc_) {
    // nop
  }

  caf::error start() {
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(cfg_.host, ec);
    if (ec)
      return make_error(errc::invalid_argument,
                        "bridge: '" + cfg_.host + "' is not an IP address");
    tcp::endpoint ep{addr, cfg_.port};
    acceptor_.open(ep.protocol(), ec);
    if (!ec)
      acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec)
      acceptor_.bind(ep, ec);
    if (!ec)
      acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
      return make_error(errc::io_error, "bridge: cannot listen on "
                                          + endpoint_text(ep) + ": "
                                          + ec.message());
    port_ = acceptor_.local_endpoint().port();
    add_own_origins();
    return {};
  }

  void run() {
    if (thread_.joinable() || !acceptor_.is_open())
      return;
    accept();
    thread_ = std::thread{[self = shared_from_this()] {
      pthread_setname_np(pthread_self(), "joy.bridge");
      self->ioc_.run();
    }};
  }

  void stop() {
    if (!thread_.joinable())
      return;
    asio::post(ioc_, [self = shared_from_this()] { self->shutdown(); });
    // Connections close gracefully within a short grace, then the loop
    // ends with whatever is left cancelled.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{2};
    while (!ioc_.stopped() && std::chrono::steady_clock::now() < deadline
           && live_.load() > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds{5});
    ioc_.stop();
    thread_.join();
  }

  uint16_t port() const noexcept {
    return port_;
  }

  bool origin_allowed(std::string_view origin) const {
    return std::find(cfg_.origins.begin(), cfg_.origins.end(), origin)
           != cfg_.origins.end();
  }

  const http_server_config& cfg() const noexcept {
    return cfg_;
  }

  asio::io_context ioc_;
  std::atomic<std::size_t> live_{0};
  std::atomic<std::size_t> ws_count_{0};
  std::unordered_set<std::shared_ptr<ws_conn>> ws_; // io thread only
  open_fn open_;

private:
  void add_own_origins() {
    auto port = std::to_string(port_);
    for (auto host : {std::string{"localhost"}, std::string{"127.0.0.1"},
                      std::string{"[::1]"}, cfg_.host})
      cfg_.origins.push_back("http://" + host + ":" + port);
  }

  void accept();

  void shutdown();

  http_server_config cfg_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread thread_;
  bool stopping_ = false;
};

// -- WebSocket connections ----------------------------------------------------

class http_server::impl::ws_conn final
  : public ws_connection,
    public std::enable_shared_from_this<ws_conn> {
public:
  ws_conn(std::shared_ptr<impl> server, beast::tcp_stream&& stream,
          std::string target, std::string remote, bool loopback)
    : server_(std::move(server)),
      ws_(std::move(stream)),
      target_(std::move(target)),
      remote_(std::move(remote)),
      loopback_(loopback) {
    ++server_->live_;
  }

  ~ws_conn() override {
    --server_->live_;
  }

  void run(http::request<http::string_body> req) {
    auto& cfg = server_->cfg();
    beast::get_lowest_layer(ws_).expires_never();
    websocket::stream_base::timeout t;
    t.handshake_timeout = cfg.handshake_timeout;
    t.idle_timeout = cfg.idle_timeout;
    t.keep_alive_pings = true;
    ws_.set_option(t);
    // The cap is checked as frames arrive (see read()).
    ws_.read_message_max(0);
    ws_.auto_fragment(false);
    ws_.set_option(
      websocket::stream_base::decorator([](websocket::response_type& res) {
        res.set(http::field::server, "joy-bridge");
      }));
    ws_.async_accept(req, [self = shared_from_this()](beast::error_code ec) {
      self->on_accept(ec);
    });
  }

  void send(std::string data, bool binary) override {
    asio::post(server_->ioc_,
               [self = shared_from_this(), data = std::move(data),
                binary]() mutable { self->queue(std::move(data), binary); });
  }

  void close(uint16_t code, std::string reason) override {
    asio::post(server_->ioc_, [self = shared_from_this(), code,
                               reason = std::move(reason)]() mutable {
      self->begin_close(code, std::move(reason));
    });
  }

  void ack() override {
    asio::post(server_->ioc_, [self = shared_from_this()] {
      if (self->in_flight_ > 0)
        --self->in_flight_;
      if (self->paused_
          && self->in_flight_ < self->server_->cfg().frames_in_flight) {
        self->paused_ = false;
        self->read();
      }
    });
  }

  const std::string& target() const override {
    return target_;
  }

  const std::string& remote() const override {
    return remote_;
  }

  bool loopback() const override {
    return loopback_;
  }

  /// From the server's shutdown.
  void going_away() {
    begin_close(1001, "the bridge is shutting down");
  }

private:
  void on_accept(beast::error_code ec) {
    if (ec) {
      log(log_level::debug, "bridge",
          "WebSocket handshake from " + remote_ + " failed: " + ec.message());
      return;
    }
    server_->ws_.insert(shared_from_this());
    ++server_->ws_count_;
    sink_ = server_->open_(shared_from_this());
    if (!sink_) {
      begin_close(1013, "the bridge cannot take clients now");
      return;
    }
    open_ = true;
    read();
  }

  void read() {
    if (closing_ || !open_)
      return;
    // Piece by piece, so that the frame cap is ours to enforce: Beast 1.74
    // fails an oversized message by closing with input unread, which
    // resets the connection before the client reads the 1009.
    ws_.async_read_some(
      in_, 64 * 1024,
      [self = shared_from_this()](beast::error_code ec, std::size_t) {
        self->on_read(ec);
      });
  }

  void on_read(beast::error_code ec) {
    if (ec) {
      finish(ec);
      return;
    }
    if (in_.size() > server_->cfg().frame_max) {
      in_.consume(in_.size());
      log(log_level::debug, "bridge", "closing ", remote_,
          ": a frame over the cap");
      begin_close(1009, "frame larger than "
                          + std::to_string(server_->cfg().frame_max)
                          + " bytes");
      return;
    }
    if (!ws_.is_message_done()) {
      read();
      return;
    }
    std::string data{static_cast<const char*>(in_.cdata().data()), in_.size()};
    in_.consume(in_.size());
    caf::anon_send(sink_, frame_atom_v, std::move(data), ws_.got_binary());
    if (++in_flight_ >= server_->cfg().frames_in_flight) {
      paused_ = true;
      return;
    }
    read();
  }

  void queue(std::string data, bool binary) {
    if (!open_ || closing_)
      return;
    queued_bytes_ += data.size();
    out_.emplace_back(std::move(data), binary);
    if (queued_bytes_ > server_->cfg().output_max) {
      out_.clear();
      queued_bytes_ = 0;
      begin_close(1008, "the client reads too slowly");
      return;
    }
    if (!writing_)
      write();
  }

  void write() {
    if (out_.empty() || close_pending_) {
      writing_ = false;
      if (close_pending_)
        do_close();
      return;
    }
    writing_ = true;
    ws_.binary(out_.front().second);
    ws_.async_write(
      asio::buffer(out_.front().first),
      [self = shared_from_this()](beast::error_code ec, std::size_t n) {
        self->queued_bytes_ -= std::min(self->queued_bytes_, n);
        self->out_.pop_front();
        if (ec) {
          self->writing_ = false;
          self->finish(ec);
          return;
        }
        self->write();
      });
  }

  void begin_close(uint16_t code, std::string reason) {
    if (closing_ || !open_)
      return;
    closing_ = true;
    close_code_ = code;
    close_reason_ = std::move(reason);
    // What was queued before the close still goes out first.
    close_pending_ = true;
    if (!writing_)
      do_close();
  }

  void do_close() {
    close_pending_ = false;
    // A close reason is at most 123 bytes on the wire.
    if (close_reason_.size() > 123)
      close_reason_.resize(123);
    ws_.async_close(
      websocket::close_reason{static_cast<websocket::close_code>(close_code_),
                              close_reason_},
      [self = shared_from_this()](beast::error_code) {
        self->report(self->close_code_, self->close_reason_);
        self->teardown();
      });
  }

  void finish(beast::error_code ec) {
    uint16_t code = 1006;
    std::string reason = ec.message();
    if (ec == websocket::error::closed) {
      code = ws_.reason().code;
      reason = std::string{ws_.reason().reason.c_str()};
    } else if (ec == websocket::error::message_too_big) {
      code = 1009;
      reason = "frame larger than " + std::to_string(server_->cfg().frame_max)
               + " bytes";
    } else if (ec == websocket::error::bad_frame_payload) {
      code = 1007;
      reason = "text frame is not valid UTF-8";
    }
    if (code != 1000 && code != 1001 && code != 1005)
      log(log_level::debug, "bridge",
          "connection " + remote_ + " ended: " + std::to_string(code) + " "
            + reason);
    report(code, reason);
    teardown();
  }

  void report(uint16_t code, std::string reason) {
    if (reported_ || !sink_)
      return;
    reported_ = true;
    caf::anon_send(sink_, closed_atom_v, code, std::move(reason));
  }

  void teardown() {
    if (!open_)
      return;
    open_ = false;
    if (server_->ws_.erase(shared_from_this()) > 0)
      --server_->ws_count_;
    // Closing with unread input would reset the connection and lose the
    // close frame just sent (a client still sending an oversized frame
    // would see 1006, not 1009): stop sending, drain for a moment, close.
    auto& stream = beast::get_lowest_layer(ws_);
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    if (!stream.socket().is_open())
      return;
    stream.expires_after(std::chrono::seconds{2});
    drain();
  }

  void drain() {
    auto& stream = beast::get_lowest_layer(ws_);
    stream.async_read_some(
      asio::buffer(scratch_),
      [self = shared_from_this()](beast::error_code ec, std::size_t) {
        if (!ec) {
          self->drain();
          return;
        }
        beast::get_lowest_layer(self->ws_).close();
      });
  }

  std::shared_ptr<impl> server_;
  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer in_;
  std::array<char, 16384> scratch_;
  std::deque<std::pair<std::string, bool>> out_;
  std::size_t queued_bytes_ = 0;
  std::size_t in_flight_ = 0;
  std::string target_;
  std::string remote_;
  bool loopback_;
  caf::actor sink_;
  bool open_ = false;
  bool paused_ = false;
  bool writing_ = false;
  bool closing_ = false;
  bool close_pending_ = false;
  bool reported_ = false;
  uint16_t close_code_ = 1000;
  std::string close_reason_;
};

// -- HTTP connections ---------------------------------------------------------

class http_server::impl::http_conn final
  : public std::enable_shared_from_this<http_conn> {
public:
  http_conn(std::shared_ptr<impl> server, tcp::socket socket)
    : server_(std::move(server)), stream_(std::move(socket)) {
    ++server_->live_;
    boost::system::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) {
      remote_ = endpoint_text(ep);
      loopback_ = ep.address().is_loopback();
    }
  }

  ~http_conn() {
    --server_->live_;
  }

  void run() {
    read();
  }

private:
  void read() {
    parser_.emplace();
    parser_->header_limit(header_limit);
    parser_->body_limit(64 * 1024);
    stream_.expires_after(server_->cfg().handshake_timeout);
    http::async_read(
      stream_, buf_, *parser_,
      [self = shared_from_this()](beast::error_code ec, std::size_t) {
        self->on_read(ec);
      });
  }

  void on_read(beast::error_code ec) {
    if (ec) {
      if (ec != http::error::end_of_stream && ec != beast::error::timeout)
        log(log_level::debug, "bridge",
            "bad HTTP request from " + remote_ + ": " + ec.message());
      if (ec == http::error::header_limit || ec == http::error::body_limit)
        return respond(http::status::request_header_fields_too_large,
                       "request too large\n", false);
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
      return;
    }
    auto req = parser_->release();
    std::string target{req.target()};
    auto path = target.substr(0, target.find('?'));
    if (websocket::is_upgrade(req)) {
      if (path != "/ws")
        return respond(http::status::not_found,
                       "no WebSocket endpoint at " + path + "; use /ws\n",
                       false);
      auto origin = req[http::field::origin];
      if (!origin.empty()
          && !server_->origin_allowed(
            std::string_view{origin.data(), origin.size()})) {
        log(log_level::info, "bridge",
            "refused a WebSocket from origin '" + std::string{origin} + "' ("
              + remote_ + "); allow it with --bridge-origin");
        return respond(http::status::forbidden,
                       "origin " + std::string{origin} + " is not allowed\n",
                       false);
      }
      if (server_->ws_count_.load() >= server_->cfg().max_connections)
        return respond(http::status::service_unavailable,
                       "too many connections\n", false);
      auto conn = std::make_shared<ws_conn>(server_, std::move(stream_), target,
                                            remote_, loopback_);
      conn->run(std::move(req));
      return;
    }
    if (req.method() != http::verb::get && req.method() != http::verb::head)
      return respond(http::status::method_not_allowed, "GET only\n",
                     req.keep_alive());
    if (path == "/health/liveness")
      return respond(http::status::ok, "{\"status\":\"ok\"}\n",
                     req.keep_alive(), "application/json");
    if (path == "/health/readiness")
      // Connections are accepted only once the node runs (run()): whoever
      // gets an answer here may connect.
      return respond(http::status::ok, "{\"status\":\"ready\"}\n",
                     req.keep_alive(), "application/json");
    serve_file(path, req.keep_alive(), req.method() == http::verb::head);
  }

  void serve_file(const std::string& path, bool keep_alive, bool head) {
    auto& root = server_->cfg().web_root;
    auto file = root.empty() ? std::string{} : safe_path(root, path);
    std::ifstream in{file, std::ios::binary};
    if (file.empty() || !in)
      return respond(http::status::not_found, "not found\n", keep_alive);
    std::ostringstream body;
    body << in.rdbuf();
    respond(http::status::ok, head ? std::string{} : body.str(), keep_alive,
            content_type(file), path == "/window.html");
  }

  /// `window_page`: the page window plugins run in, which gets a policy of
  /// its own (see below).
  void respond(http::status status, std::string body, bool keep_alive,
               std::string type = "text/plain; charset=utf-8",
               bool window_page = false) {
    auto res = std::make_shared<http::response<http::string_body>>(status, 11);
    res->set(http::field::server, "joy-bridge");
    res->set(http::field::content_type, type);
    res->set(http::field::cache_control, "no-store");
    res->set("X-Content-Type-Options", "nosniff");
    if (window_page) {
      // A window plugin is someone else's code. The page is sandboxed by
      // its own header too (so even opened directly it has an opaque
      // origin and no access to the core's storage or token); inside, the
      // plugin may load what ImJoy plugins load (CDN libraries, inline
      // code). Only the core's own pages may frame it.
      res->set("Content-Security-Policy",
               "sandbox allow-scripts allow-forms allow-popups; "
               "default-src * data: blob: 'unsafe-inline' 'unsafe-eval'; "
               "frame-ancestors 'self'");
    } else if (type.rfind("text/html", 0) == 0) {
      // The core loads only its own files; window plugins run in
      // sandboxed iframes of window.html.
      // hypha-rpc's bundle calls eval() while loading, hence unsafe-eval.
      res->set("Content-Security-Policy",
               "default-src 'self'; script-src 'self' 'unsafe-eval'; "
               "connect-src 'self' ws: wss:; "
               "img-src 'self' data: blob:; style-src 'self' "
               "'unsafe-inline'; frame-src 'self' blob: data: about:");
      res->set("X-Frame-Options", "DENY");
    }
    res->body() = std::move(body);
    res->keep_alive(keep_alive);
    res->prepare_payload();
    stream_.expires_after(server_->cfg().handshake_timeout);
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res,
                       keep_alive](beast::error_code ec, std::size_t) {
                        if (ec || !keep_alive) {
                          beast::error_code ignored;
                          self->stream_.socket().shutdown(
                            tcp::socket::shutdown_both, ignored);
                          return;
                        }
                        self->read();
                      });
  }

  std::shared_ptr<impl> server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buf_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string remote_ = "?";
  bool loopback_ = false;
};

void http_server::impl::accept() {
  acceptor_.async_accept(
    [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
      if (self->stopping_)
        return;
      if (!ec) {
        socket.set_option(tcp::no_delay(true), ec);
        std::make_shared<http_conn>(self, std::move(socket))->run();
      } else if (ec == asio::error::no_descriptors) {
        log(log_level::warning, "bridge",
            "out of file descriptors; raise the limit "
            "(ulimit -n) for more clients");
      }
      self->accept();
    });
}

void http_server::impl::shutdown() {
  stopping_ = true;
  beast::error_code ignored;
  acceptor_.close(ignored);
  auto conns = ws_;
  for (auto& c : conns)
    c->going_away();
}

// -- http_server --------------------------------------------------------------

http_server::http_server(http_server_config cfg, open_fn open)
  : impl_(std::make_shared<impl>(std::move(cfg), std::move(open))) {
  // nop
}

http_server::~http_server() {
  stop();
}

caf::error http_server::start() {
  return impl_->start();
}

void http_server::run() {
  impl_->run();
}

uint16_t http_server::port() const noexcept {
  return impl_->port();
}

void http_server::stop() {
  impl_->stop();
}

} // namespace joy
