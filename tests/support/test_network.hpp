// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// Separate network hosts on one machine for cluster tests: network
/// namespaces joined by veth pairs to a bridge in a namespace of their own
/// (the switch). Nothing touches the machine's own network.
///
/// Names carry this process's pid (`jt<pid>-...`), so parallel runs never
/// meet; namespaces left by test processes that died are swept when a new
/// network is made; everything is removed on destruction.
///
/// ```
/// std::string why;
/// auto net = test_network::make(3, why);
/// if (!net) { WARN("skipped: " << why); return; }
/// run(net->in(1, {"ip", "addr"}));
/// net->cut(2);   // host 2 hears and reaches nothing
/// net->heal(2);
/// ```
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace joy::test {

class test_network {
public:
  /// Makes `hosts` hosts with addresses 10.77.0.1, 10.77.0.2, ... on one
  /// switch; nullptr (with `why`) where the machine forbids namespaces.
  static std::unique_ptr<test_network> make(int hosts, std::string& why);

  ~test_network();

  test_network(const test_network&) = delete;
  test_network& operator=(const test_network&) = delete;

  /// The namespace of host `i`.
  std::string ns(int i) const;

  /// The address of host `i`.
  std::string ip(int i) const;

  /// `argv` run inside host `i` (prefixed with `ip netns exec`).
  std::vector<std::string> in(int i, std::vector<std::string> argv) const;

  /// Host `i` is cut off both ways (its switch port goes down), and back.
  void cut(int i);
  void heal(int i);

  /// One way: what host `from` sends to host `to` is dropped (a blackhole
  /// route on `from`); what `to` sends still arrives. And back.
  void drop(int from, int to);
  void undrop(int from, int to);

  /// Bytes the switch received from host `i` so far.
  uint64_t bytes_from(int i) const;

private:
  test_network(std::string prefix, int hosts);

  std::string prefix_;
  int hosts_;
};

} // namespace joy::test
