// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "tests/support/test_network.hpp"

#include <signal.h>
#include <unistd.h>

#include <sstream>

#include "tests/support/process.hpp"

namespace joy::test {

namespace {

constexpr const char* tag = "jt";

bool sh(const std::vector<std::string>& argv, std::string* why = nullptr) {
  auto r = run(argv, {}, std::chrono::seconds{20});
  if (r.exit_code != 0 && why != nullptr) {
    *why = r.err.empty() ? r.out : r.err;
    for (auto& a : argv)
      *why += " " + a;
  }
  return r.exit_code == 0;
}

/// Removes the namespaces of test processes that are gone.
void sweep() {
  auto r = run({"ip", "netns", "list"});
  std::istringstream in{r.out};
  std::string line;
  while (std::getline(in, line)) {
    auto name = line.substr(0, line.find(' '));
    if (name.rfind(tag, 0) != 0)
      continue;
    auto dash = name.find('-');
    if (dash == std::string::npos)
      continue;
    auto pid = std::atoi(name.substr(2, dash - 2).c_str());
    if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH)
      sh({"ip", "netns", "del", name});
  }
}

} // namespace

test_network::test_network(std::string prefix, int hosts)
  : prefix_(std::move(prefix)), hosts_(hosts) {
  // nop
}

std::unique_ptr<test_network> test_network::make(int hosts, std::string& why) {
  if (::geteuid() != 0) {
    why = "network namespaces need root";
    return nullptr;
  }
  sweep();
  auto prefix = std::string{tag} + std::to_string(::getpid());
  std::unique_ptr<test_network> net{new test_network(prefix, hosts)};
  auto sw = prefix + "-sw";
  if (!sh({"ip", "netns", "add", sw}, &why)
      || !sh({"ip", "-n", sw, "link", "add", "br0", "type", "bridge"}, &why)
      || !sh({"ip", "-n", sw, "link", "set", "br0", "up"}, &why))
    return nullptr;
  for (int i = 0; i < hosts; ++i) {
    auto host = net->ns(i);
    // Interface names stay under 16 bytes: jt<pid>h<i> / jt<pid>s<i>.
    auto hv = prefix + "h" + std::to_string(i);
    auto sv = prefix + "s" + std::to_string(i);
    if (!sh({"ip", "netns", "add", host}, &why)
        || !sh({"ip", "link", "add", hv, "netns", host, "type", "veth", "peer",
                "name", sv, "netns", sw},
               &why)
        || !sh({"ip", "-n", sw, "link", "set", sv, "master", "br0", "up"}, &why)
        || !sh({"ip", "-n", host, "link", "set", "lo", "up"}, &why)
        || !sh({"ip", "-n", host, "link", "set", hv, "name", "eth0"}, &why)
        || !sh(
          {"ip", "-n", host, "addr", "add", net->ip(i) + "/24", "dev", "eth0"},
          &why)
        || !sh({"ip", "-n", host, "link", "set", "eth0", "up"}, &why))
      return nullptr;
  }
  return net;
}

test_network::~test_network() {
  for (int i = 0; i < hosts_; ++i)
    sh({"ip", "netns", "del", ns(i)});
  sh({"ip", "netns", "del", prefix_ + "-sw"});
}

std::string test_network::ns(int i) const {
  return prefix_ + "-h" + std::to_string(i);
}

std::string test_network::ip(int i) const {
  return "10.77.0." + std::to_string(i + 1);
}

std::vector<std::string> test_network::in(int i,
                                          std::vector<std::string> argv) const {
  argv.insert(argv.begin(), {"ip", "netns", "exec", ns(i)});
  return argv;
}

void test_network::cut(int i) {
  sh({"ip", "-n", prefix_ + "-sw", "link", "set",
      prefix_ + "s" + std::to_string(i), "down"});
}

void test_network::heal(int i) {
  sh({"ip", "-n", prefix_ + "-sw", "link", "set",
      prefix_ + "s" + std::to_string(i), "up"});
}

void test_network::drop(int from, int to) {
  sh({"ip", "-n", ns(from), "route", "add", "blackhole", ip(to) + "/32"});
}

void test_network::undrop(int from, int to) {
  sh({"ip", "-n", ns(from), "route", "del", "blackhole", ip(to) + "/32"});
}

uint64_t test_network::bytes_from(int i) const {
  auto r = run({"ip", "-n", prefix_ + "-sw", "-s", "-j", "link", "show",
                prefix_ + "s" + std::to_string(i)});
  // "rx":{"bytes":N,...}: what the switch port received from the host.
  auto at = r.out.find("\"rx\":{\"bytes\":");
  if (at == std::string::npos)
    return 0;
  return std::stoull(r.out.substr(at + 14));
}

} // namespace joy::test
