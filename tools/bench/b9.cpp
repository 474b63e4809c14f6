// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT
// B9, B7c and B12: a real node with a bridge, driven by the npm hypha-rpc
// client in Node (b9.mjs). Baselines in the same run: a raw Beast
// WebSocket server in this process (echo, and 1 MiB frames pushed to the
// same Node client) and a raw Cap'n Proto round trip over a unix socket.

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <nlohmann/json.hpp>

#include "runtime/unique_fd.hpp"
#include "schema/plugin.capnp.h"
#include "tools/bench/bench.hpp"
#include "tools/bench/bench_node.hpp"

namespace joy::bench {

namespace {

using clock_type = std::chrono::steady_clock;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

/// A raw Beast WebSocket server: echoes binary frames; a text frame
/// "push N SIZE" makes it send N binary frames of SIZE bytes.
class raw_ws_server {
public:
  raw_ws_server()
    : acceptor_(ioc_, tcp::endpoint{asio::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread{[this] { serve(); }};
  }

  ~raw_ws_server() {
    // A blocked accept() wakes on shutdown(), not on close().
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    thread_.join();
  }

  uint16_t port() const {
    return port_;
  }

private:
  void serve() {
    // One client at a time, synchronously: the baseline is the wire.
    beast::error_code ec;
    tcp::socket socket{ioc_};
    acceptor_.accept(socket, ec);
    if (ec)
      return;
    socket.set_option(tcp::no_delay(true));
    websocket::stream<tcp::socket> ws{std::move(socket)};
    ws.accept(ec);
    if (ec)
      return;
    ws.read_message_max(0);
    beast::flat_buffer buf;
    std::string payload;
    for (;;) {
      ws.read(buf, ec);
      if (ec)
        return;
      if (ws.got_text()) {
        std::string cmd{static_cast<const char*>(buf.cdata().data()),
                        buf.size()};
        buf.consume(buf.size());
        unsigned long n = 0;
        unsigned long size = 0;
        if (std::sscanf(cmd.c_str(), "push %lu %lu", &n, &size) == 2) {
          payload.assign(size, 'x');
          ws.binary(true);
          for (unsigned long i = 0; i < n && !ec; ++i)
            ws.write(asio::buffer(payload), ec);
        }
        continue;
      }
      ws.binary(true);
      ws.write(buf.data(), ec);
      buf.consume(buf.size());
      if (ec)
        return;
    }
  }

  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread thread_;
};

/// Raw Cap'n Proto round trips over a unix socketpair (the bridge's hop to
/// a plugin process is one).
latencies measure_raw_capnp_unix(std::size_t samples) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    throw std::runtime_error("socketpair failed");
  std::thread server{[fd = sv[1]] {
    auto io = kj::setupAsyncIo();
    auto stream = io.lowLevelProvider->wrapSocketFd(
      fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
    capnp::TwoPartyVatNetwork net{*stream, capnp::rpc::twoparty::Side::SERVER};
    auto rpc = capnp::makeRpcServer(net, raw_plugin_server());
    net.onDisconnect().wait(io.waitScope);
  }};
  latencies out;
  {
    auto io = kj::setupAsyncIo();
    auto stream = io.lowLevelProvider->wrapSocketFd(
      sv[0], kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
    capnp::TwoPartyClient client{*stream};
    auto plugin = client.bootstrap().castAs<wire::Plugin>();
    auto call = [&] {
      auto req = plugin.callRequest();
      req.setMethod("add");
      auto args = req.initArgs(2);
      args[0].setInt64(1);
      args[1].setInt64(1);
      return req.send();
    };
    for (std::size_t i = 0; i < samples / 10; ++i)
      call().wait(io.waitScope);
    for (std::size_t i = 0; i < samples; ++i) {
      auto t0 = clock_type::now();
      call().wait(io.waitScope);
      out.add(clock_type::now() - t0);
    }
  }
  server.join();
  return out;
}

} // namespace

std::vector<row> run_bridge_benches(const options& opts) {
  std::vector<row> rows;
  auto samples = std::max<std::size_t>(opts.samples / 10, 200);
  auto calls = std::max<std::size_t>(opts.calls / 20, 2000);
  std::size_t idle = 5000;
  auto capnp = measure_raw_capnp_unix(samples);
  raw_ws_server echo;
  bench_node node{opts, {"--sandbox", "none", "--bridge", "127.0.0.1:0"}, {}};
  for (auto* plugin : {"hello", "arrays"})
    node.joy({"install", opts.examples_dir + "/" + plugin});
  auto status = nlohmann::json::parse(node.joy({"status", "--json"}));
  auto url = status["bridge"].get<std::string>();
  auto pid = std::to_string(status["pid"].get<int64_t>());
  auto modules = opts.bin_dir + "/../web-npm/node_modules";
  auto script = opts.bin_dir + "/joy-bench-bridge.mjs";
  auto text = run({"/usr/bin/env", "JOY_NODE_MODULES=" + modules, "node",
                   script, url, "ws://127.0.0.1:" + std::to_string(echo.port()),
                   pid, std::to_string(samples), std::to_string(calls),
                   std::to_string(idle)});
  // The last line is the figures; hypha-rpc logs before it.
  auto m = nlohmann::json::parse(text.substr(text.rfind("{\"ws_echo\"")));
  auto ws50 = m["ws_echo"]["p50"].get<double>();
  auto ws99 = m["ws_echo"]["p99"].get<double>();
  rows.push_back(row{"B9.p50",
                     "hypha-rpc client (Node) -> bridge -> native plugin -> "
                     "back, p50",
                     m["hypha_call"]["p50"].get<double>(), "us",
                     ws50 + capnp.quantile_us(0.5), "lower",
                     "raw Beast WebSocket echo + raw Cap'n Proto unix round "
                     "trip, p50"});
  rows.push_back(
    row{"B9.p99", "the same, p99", m["hypha_call"]["p99"].get<double>(), "us",
        ws99 + capnp.quantile_us(0.99), "lower", "the same baselines, p99"});
  rows.push_back(row{"B9.mgr.p50",
                     "hypha-rpc client (Node) -> bridge manager echo -> back "
                     "(no native plugin), p50",
                     m["hypha_echo"]["p50"].get<double>(), "us", ws50, "lower",
                     "raw Beast WebSocket echo, p50"});
  rows.push_back(row{"B9.calls/s",
                     "hypha-rpc calls into a native plugin, 64 in flight",
                     m["hypha_calls_per_s"].get<double>(), "calls/s", 0,
                     "higher", "(no baseline: reported)"});
  rows.push_back(row{"B7c.1MiB",
                     "1 MiB arrays from a plugin to a hypha-rpc client "
                     "(Node), 4 in flight",
                     m["bridge_push_gbps"].get<double>(), "GB/s",
                     m["ws_push_gbps"].get<double>(), "higher",
                     "raw Beast -> Node WebSocket, 1 MiB frames"});
  rows.push_back(row{"B12.idle",
                     "bridge memory per idle authenticated WebSocket client ("
                       + std::to_string(m["idle"]["clients"].get<int64_t>())
                       + " clients)",
                     m["idle"]["bytes_per_client"].get<double>() / 1024.0,
                     "KiB", 100, "lower", "target: 100 KB"});
  return rows;
}

} // namespace joy::bench
