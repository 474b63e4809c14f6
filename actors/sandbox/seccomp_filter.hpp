// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// The seccomp filter of sandboxed plugins, built in the daemon with
/// libseccomp (DESIGN §7) and handed to bubblewrap as a BPF program
/// (`bwrap --seccomp FD`), so that the plugin never runs unfiltered.
///
/// It allows by default and denies, with an errno the plugin can see, what a
/// plugin has no business doing: tracing other processes, new namespaces and
/// mounts, bpf, keyrings, io_uring, kernel modules, perf, userfaultfd, and
/// sockets of any family but AF_UNIX (plus AF_INET/AF_INET6/AF_NETLINK when
/// the manifest asks for the network). Syscalls of any other architecture
/// (x32, i386 through `int 0x80`) kill the process.
#pragma once

#include <cstdint>
#include <vector>

#include <caf/expected.hpp>

namespace joy {

struct seccomp_options {
  /// Allow AF_INET, AF_INET6 and AF_NETLINK sockets.
  bool network = false;
};

/// The filter as a BPF program (struct sock_filter[]), ready for
/// `bwrap --seccomp`. Errors: internal (libseccomp refused a rule).
caf::expected<std::vector<uint8_t>> build_seccomp_filter(seccomp_options opts);

} // namespace joy
