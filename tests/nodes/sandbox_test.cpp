// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// R6: a hostile plugin tries everything, and every attempt is denied — as
// the kernel answered it *inside* the sandbox (the errno), or as the node saw
// it killed (the exit reason). Once with Landlock and once without, for
// hosts whose kernel has none. A plugin with legitimate needs gets exactly
// what it asked for.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <filesystem>
#include <string>

#include "actors/sandbox/landlock.hpp"
#include "tests/nodes/node_fixture.hpp"

using Catch::Matchers::Contains;
using nlohmann::json;

namespace {

using joy::test::node_fixture;

/// The limits the hostile plugin asks for: small, so that hitting them is
/// quick.
json hostile_manifest() {
  return json{
    {"resources",
     {{"memory", "96MiB"}, {"pids", 32}, {"cpus", 0.2}, {"disk", "8MiB"}}}};
}

bool denied(const json& result) {
  return result.is_string() && result != "ok";
}

/// A listening abstract unix socket on the host, for as long as it lives.
struct abstract_listener {
  std::string name = "joy-test-abstract-" + std::to_string(::getpid());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  abstract_listener() {
    REQUIRE(fd >= 0);
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path + 1, name.data(), name.size());
    auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1
                                      + name.size());
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&un), len) == 0);
    REQUIRE(::listen(fd, 4) == 0);
  }

  ~abstract_listener() {
    ::close(fd);
  }
};

} // namespace

TEST_CASE("a hostile plugin is denied everything it tries, each by its errno",
          "[nodes][sandbox]") {
  std::string landlock = GENERATE("on", "off");
  INFO("landlock " << landlock);
  node_fixture node;
  node.start({"--landlock", landlock});
  auto status = node.status();
  if (landlock == "off")
    CHECK_THAT(status["sandbox"].get<std::string>(), Contains("landlock off"));
  node.ok({"install", node.copy_example("hello", "neighbour")});
  node.ok({"install", node.hostile_plugin("hostile", hostile_manifest())});
  // A secret the daemon's user can read: only the sandbox hides it.
  auto secret = node.dir().path() / "dot-ssh" / "id_rsa";
  joy::test::write_file(secret, "secret");
  std::filesystem::permissions(secret, std::filesystem::perms::all);

  SECTION("it runs unprivileged in namespaces of its own") {
    auto me = node.call("hostile", "whoami");
    if (::geteuid() == 0) {
      // A uid of its own, not its neighbour's.
      auto uid = me["uid"].get<int64_t>();
      CHECK(uid >= 200000);
      CHECK(uid < 200000 + 65536);
      node.call("neighbour", "echo", 1);
      struct stat mine {};
      struct stat theirs {};
      REQUIRE(::stat((node.home() + "/work/hostile").c_str(), &mine) == 0);
      REQUIRE(::stat((node.home() + "/work/neighbour").c_str(), &theirs) == 0);
      CHECK(mine.st_uid == uid);
      CHECK(theirs.st_uid != mine.st_uid);
    }
    CHECK(me["hostname"] == "plugin");
    CHECK(me["home"] == node.home() + "/work/hostile");
    // Root is not even mapped in its user namespace.
    CHECK(denied(node.call("hostile", "syscall", "setuid")));
    // Nor may it write its own exit report.
    CHECK(denied(node.call("hostile", "syscall", "forge-exit")));
  }
  SECTION("files outside its own folders do not exist for it") {
    CHECK(node.call("hostile", "read", secret.string()) == "ENOENT");
    CHECK(node.call("hostile", "read", "/root/.ssh/id_rsa") == "ENOENT");
    CHECK(node.call("hostile", "read", "/etc/shadow") == "ENOENT");
    CHECK(node.call("hostile", "read", node.home() + "/registry.db")
          == "ENOENT");
    CHECK(node.call("hostile", "read",
                    node.home() + "/plugins/neighbour/0.1.0/plugin.json")
          == "ENOENT");
    CHECK(node.call("hostile", "read", node.home() + "/work/neighbour")
          == "ENOENT");
    CHECK(node.call("hostile", "read", node.home() + "/logs/joyd.log")
          == "ENOENT");
    // What it may see, it may not change.
    auto own = node.home() + "/plugins/hostile/0.1.0/plugin.json";
    CHECK(node.call("hostile", "read", own) == "ok");
    auto w = node.call("hostile", "write", own);
    CHECK((w == "EROFS" || w == "EACCES"));
    w = node.call("hostile", "write", "/usr/bin/joy-was-here");
    CHECK((w == "EROFS" || w == "EACCES"));
    CHECK(node.call("hostile", "write", node.home() + "/work/hostile/mine")
          == "ok");
    CHECK(node.call("hostile", "write", "/tmp/mine") == "ok");
  }
  SECTION("it has no network and no sockets but AF_UNIX") {
    for (auto family : {"inet", "inet6", "netlink", "packet"}) {
      INFO(family);
      CHECK(node.call("hostile", "socket", family) == "EAFNOSUPPORT");
    }
    CHECK(node.call("hostile", "socket", "unix") == "ok");
    // The host's abstract unix sockets live in the host's network
    // namespace.
    abstract_listener host_socket;
    CHECK(denied(node.call("hostile", "connect_abstract", host_socket.name)));
  }
  SECTION("it cannot trace, unshare, mount or reach kernel attack surface") {
    for (auto what : {"ptrace", "process_vm_readv", "unshare", "unshare-net",
                      "clone-newuser", "mount", "bpf", "keyctl", "io_uring"}) {
      INFO(what);
      auto r = node.call("hostile", "syscall", what);
      CHECK(denied(r));
      // seccomp answers EPERM; ptrace of a process outside its pid
      // namespace may also be ESRCH.
      CHECK((r == "EPERM" || r == "ESRCH"));
    }
  }
  SECTION("a fork bomb runs out of pids") {
    auto r = node.call("hostile", "fork_bomb", 10000);
    CHECK(r["result"] == "EAGAIN");
    CHECK(r["forked"].get<int>() < 32);
    // and the plugin lives on
    CHECK(node.call("hostile", "socket", "unix") == "ok");
  }
  SECTION("its /tmp and its work dir are capped") {
    auto r = node.call("hostile", "fill", "/tmp/big", 64);
    CHECK(r["result"] == "ENOSPC");
    CHECK(r["bytes"].get<int64_t>() <= 8 << 20);
    // A root node keeps the work dir in an ext4 image of resources.disk.
    if (status["sandbox"].get<std::string>().find("work dirs capped")
        != std::string::npos) {
      r = node.call("hostile", "fill", node.home() + "/work/hostile/big", 64);
      CHECK(r["result"] == "ENOSPC");
      CHECK(r["bytes"].get<int64_t>() <= 8 << 20);
      // What is left after the file went is usable again.
      CHECK(node.call("hostile", "write", node.home() + "/work/hostile/small")
            == "ok");
    } else {
      WARN("work dirs are not capped on this machine: " << status["sandbox"]);
    }
  }
  SECTION("its CPU is capped") {
    auto cpu = node.call("hostile", "spin", 1.5).get<double>();
    // 0.2 of a core for 1.5 s, plus the CFS period's slack.
    CHECK(cpu < 0.6);
  }
  SECTION("a memory hog is killed by its memory limit, and the node says so") {
    auto r = node.joy({"call", "hostile", "hog", "512"});
    CHECK(r.exit_code != 0);
    CHECK_THAT(r.err, Contains("disconnected"));
    joy::test::eventually([&] {
      return node.plugin("hostile")["last_error"].get<std::string>().find(
               "memory limit")
             != std::string::npos;
    });
    CHECK_THAT(node.plugin("hostile")["last_error"].get<std::string>(),
               Contains("killed by the memory limit (96 MiB)"));
    CHECK_THAT(node.ok({"logs", "hostile"}), Contains("memory limit"));
  }
}

TEST_CASE("a plugin with legitimate needs gets them: its work dir and the "
          "network it asked for",
          "[nodes][sandbox]") {
  node_fixture node;
  node.start();
  node.ok({"install", node.hostile_plugin(
                        "legit", json{{"sandbox", {{"network", true}}}})});
  // A TCP server on loopback for it to reach.
  int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(server >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr))
          == 0);
  REQUIRE(::listen(server, 4) == 0);
  socklen_t len = sizeof(addr);
  ::getsockname(server, reinterpret_cast<sockaddr*>(&addr), &len);
  CHECK(node.call("legit", "socket", "inet") == "ok");
  CHECK(node.call("legit", "connect", "127.0.0.1", ntohs(addr.sin_port))
        == "ok");
  ::close(server);
  // The host's abstract unix sockets share its network namespace; Landlock
  // (ABI 6) scopes them away.
  {
    abstract_listener host_socket;
    auto reached = node.call("legit", "connect_abstract", host_socket.name);
    if (joy::landlock::abi_version() >= 6)
      CHECK(reached == "EPERM");
    else
      CHECK(reached == "ok");
  }
  // Its work dir keeps what it wrote across restarts.
  auto file = node.home() + "/work/legit/notes";
  CHECK(node.call("legit", "write", file) == "ok");
  node.ok({"stop"});
  node.start();
  CHECK(node.call("legit", "read", file) == "ok");
  // Still no ptrace or namespaces: network is all it asked for.
  CHECK(node.call("legit", "syscall", "ptrace") != "ok");
  CHECK(node.call("legit", "syscall", "unshare") == "EPERM");
}

TEST_CASE("two root daemons on one machine give their plugins uids of "
          "their own",
          "[nodes][sandbox]") {
  if (::geteuid() != 0) {
    WARN("skipped: plugins get uids of their own only under a root daemon");
    return;
  }
  // Same default range in both; without machine-wide claims each daemon's
  // first plugin got 200000, and shared its RLIMIT_NPROC with the other.
  node_fixture a;
  node_fixture b;
  a.start();
  b.start();
  a.ok({"install", a.hostile_plugin("first", hostile_manifest())});
  b.ok({"install", b.hostile_plugin("first", hostile_manifest())});
  auto uid_a = a.call("first", "whoami")["uid"].get<int64_t>();
  auto uid_b = b.call("first", "whoami")["uid"].get<int64_t>();
  CHECK(uid_a != uid_b);
  // Each keeps its uid across a restart of both daemons.
  a.ok({"stop"});
  b.ok({"stop"});
  b.start();
  a.start();
  CHECK(b.call("first", "whoami")["uid"] == uid_b);
  CHECK(a.call("first", "whoami")["uid"] == uid_a);
}

TEST_CASE("a plugin flooding its output cannot fill the node's disk",
          "[nodes][sandbox]") {
  node_fixture node;
  // Rotation would not run during the test: the cap alone holds.
  node.start({"--log-max-bytes", "1048576", "--log-check", "600"});
  node.ok({"install", node.hostile_plugin("chatty")});
  CHECK(node.call("chatty", "spam", 64) == true);
  auto log = node.home() + "/logs/chatty.log";
  // The hard cap is twice the rotation size.
  CHECK(std::filesystem::file_size(log) <= 2 * 1048576);
  CHECK(node.call("chatty", "socket", "unix") == "ok");
  // The plugin cannot reach its log file to truncate or rewrite it: it
  // only has a pipe.
  CHECK(node.call("chatty", "read", log) == "ENOENT");
}

TEST_CASE("a node without bubblewrap refuses to start unless told to run "
          "plugins unsandboxed, and then says so loudly",
          "[nodes][sandbox]") {
  node_fixture node;
  auto r = node.joy({"start", "--bwrap", "/nonexistent/bwrap"});
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.err + joy::test::read_file(node.home() + "/logs/joyd.log"),
             Contains("install bubblewrap") && Contains("--sandbox=none"));
  node.start({"--sandbox", "none"});
  CHECK_THAT(node.status()["sandbox"].get<std::string>(),
             Catch::StartsWith("NONE: plugins run unsandboxed"));
  CHECK_THAT(node.ok({"status"}), Contains("NONE: plugins run unsandboxed"));
  // Unsandboxed, a plugin still works (as the daemon's user).
  node.ok({"install", node.hostile_plugin("open")});
  CHECK(node.call("open", "whoami")["uid"] == ::geteuid());
}
