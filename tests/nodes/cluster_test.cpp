// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// Real daemons joined into a cluster over TCP on loopback: joining, direct
// calls between nodes with callbacks, services and large arrays, failure
// detection, restarts, and the refusals at the door (R7).

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <thread>

#include <catch2/catch.hpp>
#include <kj/async-io.h>

#include "runtime/errc.hpp"
#include "runtime/protocol.hpp"
#include "runtime/rpc_link.hpp"
#include "runtime/value_wire.hpp"
#include "schema/node.capnp.h"
#include "tests/nodes/node_fixture.hpp"

using namespace joy;
using namespace joy::test;
using namespace std::chrono_literals;

namespace {

/// Detection in a test's time: beats every 200 ms, 1 s of pause.
const std::vector<std::string> quick_detection{"--heartbeat", "0.2",
                                               "--acceptable-pause", "1"};

std::vector<std::string> with(std::vector<std::string> xs,
                              const std::vector<std::string>& more) {
  xs.insert(xs.end(), more.begin(), more.end());
  return xs;
}

/// A node of a test cluster.
struct cluster_node : node_fixture {
  std::string id() {
    return status()["node_id"].get<std::string>();
  }

  std::string listen() {
    return status()["listen"].get<std::string>();
  }

  std::string log() {
    return read_file(home() + "/logs/joyd.log");
  }

  /// The states of the other nodes as this one's status shows them.
  std::vector<std::string> others() {
    std::vector<std::string> out;
    auto st = status();
    for (auto& n : st["cluster"])
      out.push_back(n["state"].get<std::string>());
    return out;
  }
};

/// A head on loopback, port `port` (0: any free one).
void start_head(cluster_node& head, int port = 0,
                std::vector<std::string> more = {}) {
  head.start(with(
    with({"--sandbox", "none", "--listen", "127.0.0.1:" + std::to_string(port)},
         quick_detection),
    more));
}

void start_worker(cluster_node& worker, cluster_node& head,
                  const std::string& head_address,
                  std::vector<std::string> more = {}) {
  worker.start(with(with({"--sandbox", "none", "--address", head_address,
                          "--token-file", head.home() + "/cluster.token"},
                         quick_detection),
                    more));
}

/// A port free right now on loopback.
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

bool joined(cluster_node& worker) {
  return worker.log().find("joined the head") != std::string::npos;
}

/// `node`'s hello answers add(x, x) within 5 s. hello serves one call at
/// a time, so a nap still running there would hold it up for its 30 s.
void check_hello_free(cluster_node& node, int x) {
  auto t0 = std::chrono::steady_clock::now();
  auto sum = std::to_string(x);
  CHECK(node.ok({"call", "hello", "add", sum, sum})
        == std::to_string(2 * x) + "\n");
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
}

/// `head` on loopback and `worker` joined to it.
void start_pair(cluster_node& head, cluster_node& worker) {
  start_head(head);
  start_worker(worker, head, head.listen());
  await([&] { return joined(worker); });
}

/// The largest shared-memory block a process has mapped writable: a node
/// maps one only for arrays from other hosts that landed there.
std::size_t largest_writable_block(int pid) {
  std::ifstream maps{"/proc/" + std::to_string(pid) + "/maps"};
  std::size_t most = 0;
  for (std::string line; std::getline(maps, line);) {
    if (line.find("memfd:joy-shm") == std::string::npos
        || line.find(" rw-s ") == std::string::npos)
      continue;
    auto dash = line.find('-');
    auto from = std::stoull(line.substr(0, dash), nullptr, 16);
    auto to = std::stoull(line.substr(dash + 1), nullptr, 16);
    most = std::max<std::size_t>(most, to - from);
  }
  return most;
}

} // namespace

TEST_CASE("nodes on loopback join a head and use each other's plugins "
          "directly: calls, callbacks both ways, services and 256 MiB arrays",
          "[nodes][cluster]") {
  cluster_node a;
  cluster_node b;
  start_pair(a, b);
  auto b_id = b.id();
  CHECK(b.status()["head_link"]["joined"] == true);
  CHECK(a.status().count("head_link") == 0);
  // Installed from A onto B: the folder travels packed.
  a.ok(
    {"install", "--node", b_id.substr(0, 8), a.copy_example("demo", "demo-b")});
  a.ok({"install", "--node", b_id, a.copy_example("arrays", "arrays-b")});
  // So does a local ImJoy file, laid out as the folder it installs as.
  a.ok({"install", "--node", b_id, example("viewer.imjoy.html")});
  CHECK(b.plugin("viewer")["type"] == "window");
  a.ok({"install", example("demo")});
  a.ok({"install", example("arrays")});
  CHECK(b.plugin("demo-b")["state"] != nullptr);
  CHECK(a.plugin("demo-b") == nullptr);

  // From A's CLI to B's plugin; the result comes back to A.
  await([&] {
    return a.joy({"call", "demo-b", "live_callbacks"}).exit_code == 0;
  });
  // A's demo hands a callback to B's demo-b, which calls back 100 times.
  CHECK(a.call("demo", "loop_through", "demo-b", 100) == 9900);
  // The other way round: B's CLI calls A's demo, which calls back into B.
  CHECK(b.call("demo", "loop_through", "demo-b", 10) == 90);
  // A service registered on B, found and called from A.
  b.ok({"call", "demo-b", "offer", "\"tools\""});
  await([&] {
    return a.joy({"call", "demo", "use", "\"demo-b:tools\"", "21"}).out
           == "42.0\n";
  });
  CHECK(
    a.ok({"call", "demo", "use_at_once", "\"demo-b:tools\"", "\"double\"", "2"})
    == "4.0\n");
  // Every node in everyone's status.
  auto st = a.status();
  REQUIRE(st["cluster"].size() == 1);
  CHECK(st["cluster"][0]["node_id"] == b_id);
  CHECK(st["cluster"][0]["state"] == "up");
  CHECK(b.status()["cluster"][0]["head"] == true);
  // 256 MiB there and back, checked on both sides.
  auto quarter = std::to_string(256u << 20);
  CHECK(a.ok({"call", "arrays", "round_trip", "\"arrays-b\"", quarter, "5"})
        == "true\n");
  CHECK(b.ok({"call", "arrays-b", "send", "\"arrays\"", quarter, "6"})
        == "true\n");
  // They landed in each node's shared memory, which its plugin mapped
  // (docs/design/large-data.md, "Landing"): the nodes keep those blocks.
  CHECK(largest_writable_block(a.daemon_pid()) >= (256u << 20));
  CHECK(largest_writable_block(b.daemon_pid()) >= (256u << 20));
  // Calls never went through anyone but A and B; with only two nodes, the
  // data path check is the netns test's: here, both logs name the link.
  CHECK(a.log().find("refused") == std::string::npos);
}

TEST_CASE("a plugin installed on a node takes the calls that reached a plugin "
          "of its name on another node",
          "[nodes][cluster]") {
  cluster_node a;
  cluster_node b;
  start_pair(a, b);
  b.ok({"install", b.copy_example("demo", "keeper")});
  b.ok({"call", "keeper", "remember", "\"where\"", "\"on b\""});
  // Reached on B, twice: the second call goes from A's kj thread straight
  // to the link to B (remote_plugins.hpp).
  await([&] {
    return a.joy({"call", "keeper", "recall", "\"where\""}).out == "\"on b\"\n";
  });
  CHECK(a.ok({"call", "keeper", "recall", "\"where\""}) == "\"on b\"\n");
  CHECK_THAT(a.log(), Catch::Contains("calls of plugin 'keeper' go straight "
                                      "to node "
                                      + b.id()));
  // A plugin of that name here is the one called from now on, at once,
  // even one that does not run (its calls say why).
  auto broken = a.evil_plugin("exit3");
  auto manifest = nlohmann::json::parse(read_file(broken + "/plugin.json"));
  manifest["name"] = "keeper";
  write_file(broken + "/plugin.json", manifest.dump());
  a.joy({"install", broken});
  auto r = a.joy({"call", "keeper", "recall", "\"where\""});
  CHECK(r.exit_code != 0);
  CHECK(r.out.find("on b") == std::string::npos);
  a.ok({"uninstall", "keeper"});
  a.ok({"install", a.copy_example("demo", "keeper")});
  CHECK(a.ok({"call", "keeper", "recall", "\"where\""}) == "null\n");
  a.ok({"call", "keeper", "remember", "\"where\"", "\"on a\""});
  CHECK(a.ok({"call", "keeper", "recall", "\"where\""}) == "\"on a\"\n");
  CHECK(b.ok({"call", "keeper", "recall", "\"where\""}) == "\"on b\"\n");
  // Gone from here: B's is called again, and again straight.
  a.ok({"uninstall", "keeper"});
  await([&] {
    return a.joy({"call", "keeper", "recall", "\"where\""}).out == "\"on b\"\n";
  });
  CHECK(a.ok({"call", "keeper", "recall", "\"where\""}) == "\"on b\"\n");
}

TEST_CASE("Ctrl-C and the deadline of a call from one node cancel it in the "
          "plugin of another",
          "[nodes][cluster][cancel]") {
  cluster_node a;
  cluster_node b;
  start_pair(a, b);
  b.ok({"install", example("hello")});
  // Reached once through the node actor, then straight from A's kj thread.
  await([&] { return a.joy({"call", "hello", "add", "1", "2"}).out == "3\n"; });
  CHECK(a.ok({"call", "hello", "add", "2", "2"}) == "4\n");
  child call{{bin("joy"), "call", "hello", "nap", "30"}, a.env()};
  std::this_thread::sleep_for(500ms);
  call.kill(SIGINT);
  CHECK(call.wait(5s) >= 0);
  check_hello_free(a, 3);
  auto late = a.joy({"call", "hello", "nap", "30", "--timeout", "1"});
  CHECK(late.exit_code != 0);
  CHECK_THAT(late.err, Catch::Contains("timeout"));
  check_hello_free(a, 4);
}

TEST_CASE("a node stopped while its plugin's call to another node's plugin is "
          "in flight stops cleanly, and the call is cancelled over there",
          "[nodes][cluster][cancel]") {
  cluster_node a;
  cluster_node b;
  start_pair(a, b);
  b.ok({"install", example("hello")});
  a.ok({"install", example("demo")});
  // A first call from A's demo reaches B's hello; later ones go straight.
  await([&] {
    return a.joy(
              {"call", "demo", "flood", "\"hello\"", "\"add\"", "[1, 2]", "1"})
             .out.find("\"ok\":1")
           != std::string::npos;
  });
  CHECK_THAT(a.log(),
             Catch::Contains("calls of plugin 'hello' go straight to node"));
  child call{
    {bin("joy"), "call", "demo", "flood", "\"hello\"", "\"nap\"", "[30]", "1"},
    a.env()};
  std::this_thread::sleep_for(500ms);
  a.ok({"stop"});
  CHECK_FALSE(a.daemon_running());
  CHECK(call.wait(10s) >= 0);
  CHECK(a.log().find("stopping") != std::string::npos);
  // The nap ended over there when A's link went.
  check_hello_free(b, 2);
}

TEST_CASE("a killed worker is down at once, calls to its plugins fail with "
          "disconnected, and it brings its plugins back when it returns",
          "[nodes][cluster]") {
  cluster_node a;
  cluster_node b;
  start_head(a);
  auto head = a.listen();
  start_worker(b, a, head);
  await([&] { return joined(b); });
  b.ok({"install", example("hello")});
  await([&] { return a.joy({"call", "hello", "add", "1", "2"}).out == "3\n"; });
  ::kill(b.daemon_pid(), SIGKILL);
  await([&] { return !b.daemon_running(); });
  await([&] { return a.others() == std::vector<std::string>{"down"}; }, 6s);
  auto r = a.joy({"call", "hello", "add", "1", "2"});
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.err, Catch::Contains("disconnected")
                      && Catch::Contains("which is down"));
  for (int pid : b.processes_in_home())
    ::kill(pid, SIGKILL);
  start_worker(b, a, head);
  auto back = eventually([&] {
    return a.joy({"call", "hello", "add", "1", "2"}).out == "3\n";
  });
  INFO(b.log() + "\n" + a.log());
  REQUIRE(back);
  CHECK(a.others() == std::vector<std::string>{"up"});
  // Stopped on purpose, it leaves: the head forgets it and its plugins,
  // where a node that went silent stays listed as down.
  b.ok({"stop"});
  CHECK_THAT(b.log(), Catch::Contains("left the cluster"));
  await([&] { return a.others().empty(); });
  CHECK_THAT(a.log(), Catch::Contains(" left"));
  auto gone = a.joy({"call", "hello", "add", "1", "2"});
  CHECK(gone.exit_code != 0);
  CHECK_THAT(gone.err, Catch::Contains("not_found"));
  // It joins again as any new node does.
  start_worker(b, a, head);
  await([&] { return a.others() == std::vector<std::string>{"up"}; });
}

TEST_CASE("a head killed with -9 gets its workers back on its own when it "
          "restarts, and remembers them",
          "[nodes][cluster]") {
  cluster_node a;
  cluster_node b;
  auto port = free_port();
  start_head(a, port);
  auto head = a.listen();
  start_worker(b, a, head);
  await([&] { return joined(b); });
  b.ok({"install", example("hello")});
  await([&] { return a.joy({"call", "hello", "add", "2", "2"}).out == "4\n"; });
  ::kill(a.daemon_pid(), SIGKILL);
  await([&] { return !a.daemon_running(); });
  await([&] { return b.log().find("lost the head") != std::string::npos; });
  // The worker's own plugins still answer its own CLI meanwhile.
  CHECK(b.call("hello", "add", 1, 1) == 2);
  start_head(a, port);
  // The worker dials again (backoff at most 5 s) and publishes its plugins.
  await(
    [&] {
      return a.joy({"call", "hello", "add", "2", "2"}).out == "4\n";
    },
    15s);
  CHECK(a.others() == std::vector<std::string>{"up"});
}

namespace {

/// A plaintext link to a node's cluster port, as any peer opens one.
kj::Own<rpc_link> dial_cluster_port(kj::AsyncIoContext& io,
                                    const std::string& address) {
  auto addr
    = io.provider->getNetwork().parseAddress(address).wait(io.waitScope);
  return rpc_link::connect(
    rpc_link::without_fds(addr->connect().wait(io.waitScope)), stream_limits{});
}

/// A hello with the cluster token on `link`, as peer `client`.
capnp::Response<wire::Gate::HelloResults>
hello_with_token(kj::AsyncIoContext& io, rpc_link& link,
                 const std::string& token, const char* client) {
  auto req = link.bootstrap_as<wire::Gate>().helloRequest();
  req.setVersion(protocol_version);
  req.setClient(client);
  req.setToken(token);
  return req.send().wait(io.waitScope);
}

/// A raw hello to a node's cluster port, as an old or rogue peer would
/// send it; returns the error or the node id.
caf::expected<std::string> raw_hello(const std::string& address,
                                     uint32_t version,
                                     const std::string& token) {
  auto io = kj::setupAsyncIo();
  try {
    auto link = dial_cluster_port(io, address);
    auto req = link->bootstrap_as<wire::Gate>().helloRequest();
    req.setVersion(version);
    req.setClient("a test");
    req.setToken(token);
    auto resp = io.provider->getTimer()
                  .timeoutAfter(10 * kj::SECONDS, req.send())
                  .wait(io.waitScope);
    auto res = resp.getResult();
    if (res.isErr())
      return read_error(res.getErr());
    return std::string{res.getOk().getNodeId()};
  } catch (const kj::Exception& ex) {
    return make_error(errc::disconnected, ex.getDescription().cStr());
  }
}

/// With the token, asks the node to shut down over its cluster port, as
/// a peer could; returns what it answered.
std::string peer_shutdown(const std::string& address,
                          const std::string& token) {
  auto io = kj::setupAsyncIo();
  try {
    auto link = dial_cluster_port(io, address);
    auto hello = hello_with_token(io, *link, token, "a peer");
    if (hello.getResult().isErr())
      return "hello refused";
    auto node = hello.getResult().getOk().getNode();
    node.shutdownRequest().send().wait(io.waitScope);
    return "shut down";
  } catch (const kj::Exception& ex) {
    return ex.getDescription().cStr();
  }
}

/// A wrong token, then the right one on the same connection; returns the
/// second hello's failure (or "accepted").
std::string peer_shutdown_after_wrong_token(const std::string& address,
                                            const std::string& token) {
  auto io = kj::setupAsyncIo();
  try {
    auto link = dial_cluster_port(io, address);
    auto gate = link->bootstrap_as<wire::Gate>();
    auto hello = [&](const std::string& t) {
      auto req = gate.helloRequest();
      req.setVersion(protocol_version);
      req.setClient("a guesser");
      req.setToken(t);
      return req.send();
    };
    hello(std::string(token.size(), 'z')).wait(io.waitScope);
    io.provider->getTimer()
      .afterDelay(500 * kj::MILLISECONDS)
      .wait(io.waitScope);
    hello(token).wait(io.waitScope);
    return "accepted";
  } catch (const kj::Exception& ex) {
    return ex.getDescription().cStr();
  }
}

/// A stream source that never sends a byte: a stalled or rogue peer.
class stalled_source final : public wire::ByteSource::Server {
public:
  kj::Promise<void> pipeTo(PipeToContext) override {
    return kj::NEVER_DONE;
  }
};

/// With the token, calls `plugin.method` over the cluster port with one
/// 64 MiB argument whose stream never comes, and a deadline of `ms`;
/// returns the call's outcome and how long the answer took.
std::pair<caf::error, std::chrono::milliseconds>
call_with_stalled_stream(const std::string& address, const std::string& token,
                         const std::string& plugin, const std::string& method,
                         uint64_t ms) {
  auto io = kj::setupAsyncIo();
  auto t0 = std::chrono::steady_clock::now();
  auto took = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - t0);
  };
  try {
    auto link = dial_cluster_port(io, address);
    auto res = hello_with_token(io, *link, token, "a stalling peer");
    if (res.getResult().isErr())
      return {read_error(res.getResult().getErr()), took()};
    auto req = res.getResult().getOk().getNode().callRequest();
    req.setPlugin(plugin);
    req.setMethod(method);
    req.setTimeoutMs(ms);
    auto st = req.initArgs(1)[0].initBytes().initStream();
    st.setSize(uint64_t{64} << 20);
    st.setSource(kj::heap<stalled_source>());
    t0 = std::chrono::steady_clock::now();
    auto resp = io.provider->getTimer()
                  .timeoutAfter(30 * kj::SECONDS, req.send())
                  .wait(io.waitScope);
    auto out = resp.getResult();
    if (out.isErr())
      return {read_error(out.getErr()), took()};
    return {caf::error{}, took()};
  } catch (const kj::Exception& ex) {
    return {make_error(errc::disconnected, ex.getDescription().cStr()), took()};
  }
}

} // namespace

TEST_CASE("a peer with the token may call plugins but not run the node: no "
          "shutdown, no local folders",
          "[nodes][cluster]") {
  cluster_node a;
  start_head(a);
  std::string token;
  {
    std::ifstream in{a.home() + "/cluster.token"};
    std::getline(in, token);
  }
  CHECK_THAT(peer_shutdown(a.listen(), token),
             Catch::Contains("not served on the cluster port"));
  CHECK(a.daemon_running());
  CHECK(a.status()["state"] == "up");
}

TEST_CASE("peers without the token, with a wrong one or an old protocol get "
          "nothing but a clear refusal, logged on both sides (R7)",
          "[nodes][cluster]") {
  cluster_node a;
  start_head(a);
  auto head = a.listen();
  std::string token;
  {
    std::ifstream in{a.home() + "/cluster.token"};
    std::getline(in, token);
  }
  auto good = raw_hello(head, protocol_version, token);
  REQUIRE(good);
  CHECK(*good == a.id());
  auto none = raw_hello(head, protocol_version, "");
  REQUIRE_FALSE(none);
  CHECK(code_of(none.error()) == errc::permission_denied);
  CHECK_THAT(message_of(none.error()), Catch::Contains("requires the cluster "
                                                       "token"));
  auto wrong
    = raw_hello(head, protocol_version, std::string(token.size(), 'x'));
  REQUIRE_FALSE(wrong);
  CHECK(code_of(wrong.error()) == errc::permission_denied);
  CHECK_THAT(message_of(wrong.error()), Catch::Contains("wrong cluster token"));
  // A refused hello costs the connection: a second guess on it fails.
  CHECK_THAT(peer_shutdown_after_wrong_token(head, token),
             Catch::Contains("disconnected") || Catch::Contains("closed")
               || Catch::Contains("Broken") || Catch::Contains("EOF"));
  auto old = raw_hello(head, protocol_version - 1, token);
  REQUIRE_FALSE(old);
  CHECK(code_of(old.error()) == errc::version_mismatch);
  auto log = a.log();
  CHECK_THAT(log, Catch::Contains("no cluster token"));
  CHECK_THAT(log, Catch::Contains("wrong cluster token"));
  CHECK_THAT(log, Catch::Contains("speaks protocol"));
  // The token never shows in a log.
  CHECK(log.find(token) == std::string::npos);

  // A worker with the wrong token keeps running alone and says why.
  cluster_node b;
  auto bad_token = (b.dir() / "wrong.token").string();
  write_file(bad_token, std::string(32, 'y') + "\n");
  std::vector<std::string> start_b{"start"};
  for (auto& x :
       with({"--sandbox", "none", "--address", head, "--token-file", bad_token},
            quick_detection))
    start_b.push_back(x);
  auto started = b.joy(start_b);
  CHECK(started.exit_code == 0); // it runs, and keeps trying
  CHECK_THAT(started.err, Catch::Contains("not joined to the head")
                            && Catch::Contains("wrong cluster token"));
  await(
    [&] { return b.log().find("wrong cluster token") != std::string::npos; });
  CHECK_FALSE(joined(b));
  // Its status says so too, not only its log.
  auto link = b.status()["head_link"];
  CHECK(link["joined"] == false);
  CHECK_THAT(link["error"].get<std::string>(),
             Catch::Contains("wrong cluster token"));
  CHECK_THAT(b.ok({"status"}), Catch::Contains("NOT JOINED"));
  CHECK(a.status()["cluster"].empty());
  // A worker without any token does not start.
  cluster_node c;
  auto r = c.joy({"start", "--sandbox", "none", "--address", head});
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.err + c.log(), Catch::Contains("--token-file"));
}

TEST_CASE("listening beyond loopback without TLS is refused at start",
          "[nodes][cluster]") {
  cluster_node a;
  auto r = a.joy({"start", "--sandbox", "none", "--listen", "0.0.0.0:0"});
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.err + a.log(), Catch::Contains("need mutual TLS"));
}

TEST_CASE("a TLS cluster joins with certificates from its CA and refuses "
          "another CA's, plaintext peers and plaintext ports (R7)",
          "[nodes][cluster]") {
  cluster_node a;
  cluster_node b;
  cluster_node c;
  auto ca = (a.dir() / "ca").string();
  auto other_ca = (a.dir() / "other-ca").string();
  a.ok({"cert", "ca", "--dir", ca});
  a.ok({"cert", "ca", "--dir", other_ca});
  a.ok({"cert", "node", "a", "--ca", ca, "--out", a.home() + "/tls"});
  a.ok({"cert", "node", "b", "--ca", ca, "--out", b.home() + "/tls"});
  a.ok({"cert", "node", "c", "--ca", other_ca, "--out", c.home() + "/tls"});
  // Certificates in the home's tls/ turn TLS on by themselves.
  start_head(a);
  auto head = a.listen();
  CHECK(a.status()["tls"] == true);
  start_worker(b, a, head);
  await([&] { return joined(b); });
  CHECK(b.status()["tls"] == true);
  b.ok({"install", example("hello")});
  await([&] { return a.joy({"call", "hello", "add", "4", "5"}).out == "9\n"; });

  // Another CA's certificate: refused during the handshake, both sides say.
  start_worker(c, a, head);
  await(
    [&] { return c.log().find("cannot join the head") != std::string::npos; });
  CHECK_THAT(c.log(), Catch::Contains("TLS"));
  await(
    [&] { return a.log().find("TLS handshake failed") != std::string::npos; });
  CHECK_FALSE(joined(c));

  // Plaintext to the TLS port gets nothing: no hello answered.
  std::string token;
  {
    std::ifstream in{a.home() + "/cluster.token"};
    std::getline(in, token);
  }
  auto plain = raw_hello(head, protocol_version, token);
  REQUIRE_FALSE(plain);
  // And a plaintext worker is refused with a line saying why.
  cluster_node d;
  start_worker(d, a, head, {"--tls", "off"});
  await(
    [&] { return d.log().find("cannot join the head") != std::string::npos; });
  CHECK_THAT(d.log(), Catch::Contains("require TLS"));
  CHECK(a.status()["cluster"].size() == 1);
}

TEST_CASE("a plugin asking for GPUs is placed on a node that has them free "
          "(fake device counts), and refused when none has",
          "[nodes][cluster][gpu]") {
  cluster_node head, worker;
  start_head(head, 0, {"--gpus", "0"});
  start_worker(worker, head, head.listen(), {"--gpus", "2"});
  await([&] { return joined(worker); });
  CHECK(head.status()["resources"]["gpus"] == 0);
  CHECK(worker.status()["resources"]["gpus"] == 2);
  auto hungry = [&](const std::string& name, int gpus) {
    auto dir = head.copy_example("hello", name);
    auto doc = nlohmann::json::parse(read_file(dir + "/plugin.json"));
    doc["resources"] = {{"gpus", gpus}, {"memory", "64MiB"}, {"cpus", 0.1}};
    write_file(dir + "/plugin.json", doc.dump());
    return dir;
  };
  // The head has none: the plugin goes to the worker.
  head.ok({"install", "--node", "", hungry("gpu-a", 2)});
  auto on_worker = nlohmann::json::parse(worker.ok({"plugins", "--json"}));
  REQUIRE(on_worker.size() == 1);
  CHECK(on_worker[0]["name"] == "gpu-a");
  CHECK(head.call("gpu-a", "add", 1, 2) == 3);
  // Both of the worker's GPUs are taken now.
  auto r = head.joy({"install", "--node", "", hungry("gpu-b", 1)});
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Catch::Contains("1 GPUs"));
}

TEST_CASE("every node of a cluster serves the gpu service, and a caller's "
          "own node answers",
          "[nodes][cluster][gpu]") {
  cluster_node head, worker;
  start_head(head, 0, {"--gpu-service", "on"});
  start_worker(worker, head, head.listen(), {"--gpu-service", "on"});
  await([&] { return joined(worker); });
  auto runs_gpu_host = [](cluster_node& node) {
    return !find_programs(node.home() + "/builtin/gpu/").empty();
  };
  CHECK(worker.call("gpu", "info")["workers"].size() >= 1);
  CHECK(runs_gpu_host(worker));
  CHECK_FALSE(runs_gpu_host(head));
  CHECK(head.call("gpu", "info")["workers"].size() >= 1);
  CHECK(runs_gpu_host(head));
  // Everyone's status lists it on both.
  auto has_gpu = [](const nlohmann::json& node) {
    for (auto& p : node["plugins"])
      if (p["name"] == "gpu")
        return true;
    return false;
  };
  auto st = head.status();
  CHECK(has_gpu(st));
  REQUIRE(st["cluster"].size() == 1);
  CHECK(has_gpu(st["cluster"][0]));
}

TEST_CASE("a call whose streamed argument stalls fails at its deadline, and "
          "the node keeps serving",
          "[nodes][cluster]") {
  cluster_node a;
  start_head(a);
  a.ok({"install", example("arrays")});
  std::string token;
  {
    std::ifstream in{a.home() + "/cluster.token"};
    std::getline(in, token);
  }
  auto [err, took]
    = call_with_stalled_stream(a.listen(), token, "arrays", "mirror", 500);
  CHECK(code_of(err) == errc::timeout);
  CHECK_THAT(message_of(err), Catch::Contains("did not arrive"));
  CHECK(took < std::chrono::seconds{20});
  CHECK_FALSE(a.ok({"call", "arrays", "make", "16", "1"}).empty());
}
