// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// B6 and B7b: two real nodes on loopback (a head and a worker, each with a
// bench plugin). B6 is a plugin on A calling a plugin on B and back: one
// call at a time (p50, p99) and 64 in flight (calls/s). B7b is an ndarray
// from A's plugin to B's, which reads all of it, without and with TLS.
// Baselines run in this process in the same run: raw Cap'n Proto over TCP
// plus a raw unix-socket round trip (the two hops a cross-node call has
// besides Joy), raw Cap'n Proto pipelined over TCP, raw TCP throughput.

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <thread>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include "runtime/unique_fd.hpp"
#include "schema/plugin.capnp.h"
#include "tools/bench/bench.hpp"
#include "tools/bench/bench_node.hpp"

namespace joy::bench {

namespace {

using clock_type = std::chrono::steady_clock;

/// A TCP listener on 127.0.0.1 with a free port.
unique_fd tcp_listener(uint16_t& port) {
  unique_fd fd{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0
      || ::listen(fd.get(), 4) != 0)
    throw std::runtime_error("cannot listen on loopback");
  socklen_t len = sizeof(addr);
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  port = ntohs(addr.sin_port);
  return fd;
}

unique_fd tcp_connect(uint16_t port) {
  unique_fd fd{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr))
      != 0)
    throw std::runtime_error("cannot connect on loopback");
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

/// Raw Cap'n Proto over TCP: a server thread serving the raw plugin to one
/// client; sequential round trips (latencies) and 64 lanes (calls/s).
struct raw_capnp_tcp {
  latencies round_trips;
  double calls_per_s = 0;
};

raw_capnp_tcp measure_raw_capnp_tcp(std::size_t samples, std::size_t calls) {
  uint16_t port = 0;
  auto listener = tcp_listener(port);
  std::thread server{[fd = listener.release()] {
    auto io = kj::setupAsyncIo();
    int conn = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    ::close(fd);
    int one = 1;
    ::setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    auto stream = io.lowLevelProvider->wrapSocketFd(
      conn, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
    capnp::TwoPartyVatNetwork net{*stream, capnp::rpc::twoparty::Side::SERVER};
    auto rpc = capnp::makeRpcServer(net, raw_plugin_server());
    net.onDisconnect().wait(io.waitScope);
  }};
  raw_capnp_tcp out;
  {
    auto io = kj::setupAsyncIo();
    auto stream = io.lowLevelProvider->wrapSocketFd(
      tcp_connect(port).release(), kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
    capnp::TwoPartyClient client{*stream};
    auto plugin = client.bootstrap().castAs<wire::Plugin>();
    auto call = [&](int64_t i) {
      auto req = plugin.callRequest();
      req.setMethod("add");
      auto args = req.initArgs(2);
      args[0].setInt64(i);
      args[1].setInt64(1);
      return req.send();
    };
    for (std::size_t i = 0; i < samples / 10; ++i)
      call(0).wait(io.waitScope);
    for (std::size_t i = 0; i < samples; ++i) {
      auto t0 = clock_type::now();
      call(static_cast<int64_t>(i)).wait(io.waitScope);
      out.round_trips.add(clock_type::now() - t0);
    }
    std::size_t issued = 0;
    std::function<kj::Promise<void>()> lane = [&]() -> kj::Promise<void> {
      if (issued >= calls)
        return kj::READY_NOW;
      return call(static_cast<int64_t>(issued++)).then([&](auto&&) {
        return lane();
      });
    };
    auto t0 = clock_type::now();
    auto lanes = kj::heapArrayBuilder<kj::Promise<void>>(64);
    for (int k = 0; k < 64; ++k)
      lanes.add(lane());
    kj::joinPromises(lanes.finish()).wait(io.waitScope);
    out.calls_per_s
      = static_cast<double>(calls)
        / std::chrono::duration<double>(clock_type::now() - t0).count();
  }
  server.join();
  return out;
}

/// 8-byte ping-pongs over a unix socketpair, with a thread echoing.
latencies measure_raw_unix(std::size_t samples) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    throw std::runtime_error("socketpair failed");
  unique_fd mine{sv[0]};
  std::thread echo{[fd = sv[1]] {
    char buf[8];
    while (::read(fd, buf, 8) == 8)
      if (::write(fd, buf, 8) != 8)
        break;
    ::close(fd);
  }};
  latencies out;
  char buf[8] = {};
  for (std::size_t i = 0; i < samples + samples / 10; ++i) {
    auto t0 = clock_type::now();
    if (::write(mine.get(), buf, 8) != 8 || ::read(mine.get(), buf, 8) != 8)
      throw std::runtime_error("unix echo failed");
    if (i >= samples / 10)
      out.add(clock_type::now() - t0);
  }
  mine.reset();
  echo.join();
  return out;
}

/// `bytes` over TCP loopback into a reader that keeps nothing (as a stream
/// into reused buffers); GB/s, the median of `reps`.
double measure_raw_tcp(uint64_t bytes, int reps) {
  std::vector<double> rates;
  std::vector<char> data(std::size_t{4} << 20, 1);
  for (int r = 0; r < reps; ++r) {
    uint16_t port = 0;
    auto listener = tcp_listener(port);
    std::thread reader{[fd = listener.release(), bytes] {
      int conn = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
      ::close(fd);
      std::vector<char> buf(std::size_t{4} << 20);
      uint64_t got = 0;
      while (got < bytes) {
        auto n = ::read(conn, buf.data(), buf.size());
        if (n <= 0)
          break;
        got += static_cast<uint64_t>(n);
      }
      char done = 1;
      (void)!::write(conn, &done, 1);
      ::close(conn);
    }};
    auto fd = tcp_connect(port);
    auto t0 = clock_type::now();
    uint64_t sent = 0;
    while (sent < bytes) {
      auto chunk = std::min<uint64_t>(data.size(), bytes - sent);
      auto n = ::write(fd.get(), data.data(), chunk);
      if (n <= 0)
        throw std::runtime_error("raw tcp write failed");
      sent += static_cast<uint64_t>(n);
    }
    char done = 0;
    (void)!::read(fd.get(), &done, 1);
    auto s = std::chrono::duration<double>(clock_type::now() - t0).count();
    reader.join();
    rates.push_back(static_cast<double>(bytes) / 1e9 / s);
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

/// A head with bench-a and a worker with bench-b on loopback.
struct two_nodes {
  bench_node a;
  std::unique_ptr<bench_node> b;

  two_nodes(const options& opts, const std::vector<std::string>& extra_a,
            const std::vector<std::string>& extra_b)
    : a(opts, with({"--sandbox", "none", "--listen", "127.0.0.1:0"}, extra_a),
        {"bench-a"}) {
    auto listen = nlohmann::json::parse(a.joy({"status", "--json"}))["listen"]
                    .get<std::string>();
    b = std::make_unique<bench_node>(
      opts,
      with({"--sandbox", "none", "--address", listen, "--token-file",
            a.home() + "/cluster.token"},
           extra_b),
      std::vector<std::string>{"bench-b"});
    // Until the head's plugin reaches the worker's.
    for (int i = 0;; ++i) {
      try {
        a.call({"bench-a", "pipelined", "\"bench-b\"", "1", "1"});
        break;
      } catch (const std::exception&) {
        if (i > 100)
          throw;
        std::this_thread::sleep_for(std::chrono::milliseconds{100});
      }
    }
  }

  static std::vector<std::string> with(std::vector<std::string> xs,
                                       const std::vector<std::string>& more) {
    xs.insert(xs.end(), more.begin(), more.end());
    return xs;
  }
};

} // namespace

std::vector<row> run_cluster_benches(const options& opts) {
  std::vector<row> rows;
  auto samples = std::max<std::size_t>(opts.samples / 4, 200);
  auto calls = std::max<std::size_t>(opts.calls / 10, 2000);
  auto capnp = measure_raw_capnp_tcp(samples, calls);
  auto unix_rt = measure_raw_unix(samples);
  auto base50 = capnp.round_trips.quantile_us(0.5) + unix_rt.quantile_us(0.5);
  auto base99 = capnp.round_trips.quantile_us(0.99) + unix_rt.quantile_us(0.99);
  {
    two_nodes cluster{opts, {}, {}};
    auto id = cluster.b->call({"bench-b", "offer"}).get<std::string>();
    auto n = std::to_string(samples);
    double p50 = 1e18, p99 = 1e18;
    for (int round = 0; round < 3; ++round) {
      auto m = cluster.a.call(
        {"bench-a", "measure", "\"bench-b\"", nlohmann::json(id).dump(), n});
      p50 = std::min(p50, m["plain"]["p50"].get<double>());
      p99 = std::min(p99, m["plain"]["p99"].get<double>());
    }
    rows.push_back(row{"B6.p50",
                       "plugin on node A calls plugin on node B and back "
                       "(TCP loopback), p50",
                       p50, "us", base50, "lower",
                       "raw Cap'n Proto TCP round trip + raw unix-socket "
                       "round trip, p50"});
    rows.push_back(row{"B6.p99", "the same, p99", p99, "us", base99, "lower",
                       "the same baselines, p99"});
    auto rate = cluster.a
                  .call({"bench-a", "pipelined", "\"bench-b\"",
                         std::to_string(calls), "64"})
                  .get<double>();
    rows.push_back(row{"B6.calls/s",
                       "plugin on A calls plugin on B, 64 in flight", rate,
                       "calls/s", capnp.calls_per_s, "higher",
                       "raw Cap'n Proto over TCP, 64 in flight"});
    for (uint64_t mib : {16, 256, 1024}) {
      auto bytes = mib << 20;
      auto reps = mib >= 1024 ? 3 : mib >= 256 ? 5 : 9;
      auto r = cluster.a.call({"bench-a", "measure_arrays", "\"bench-b\"",
                               std::to_string(bytes), std::to_string(reps)});
      rows.push_back(row{"B7b." + std::to_string(mib) + "MiB",
                         "ndarray plugin on A -> plugin on B (stream arm over "
                         "TCP), receiver reads it all, "
                           + std::to_string(mib) + " MiB",
                         r["ours"].get<double>(), "GB/s",
                         measure_raw_tcp(bytes, reps), "higher",
                         "raw TCP loopback, the same bytes"});
    }
  }
  {
    // The same with mutual TLS between the nodes.
    bench_node ca_home{opts, {"--sandbox", "none"}, {}};
    auto ca = (ca_home.dir() / "ca").string();
    ca_home.joy({"cert", "ca", "--dir", ca});
    auto certify = [&](const std::string& name) {
      auto dir = (ca_home.dir() / (name + "-tls")).string();
      ca_home.joy({"cert", "node", name, "--ca", ca, "--out", dir});
      return std::vector<std::string>{"--tls-dir", dir};
    };
    two_nodes cluster{opts, certify("a"), certify("b")};
    auto bytes = uint64_t{256} << 20;
    auto r = cluster.a.call(
      {"bench-a", "measure_arrays", "\"bench-b\"", std::to_string(bytes), "5"});
    rows.push_back(row{"B7b.tls.256MiB",
                       "ndarray plugin on A -> plugin on B over mutual TLS, "
                       "256 MiB",
                       r["ours"].get<double>(), "GB/s",
                       measure_raw_tcp(bytes, 5), "higher",
                       "raw TCP loopback (no TLS), the same bytes"});
  }
  return rows;
}

} // namespace joy::bench
