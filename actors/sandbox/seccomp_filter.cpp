// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/sandbox/seccomp_filter.hpp"

#include <linux/netlink.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "runtime/errc.hpp"
#include "runtime/unique_fd.hpp"

namespace joy {

namespace {

/// Denied with EPERM: what the kernel answers an unprivileged caller.
constexpr const char* denied_syscalls[] = {
  // other processes
  "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
  // namespaces and mounts
  "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "move_mount",
  "open_tree", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
  "name_to_handle_at", "open_by_handle_at",
  // kernel attack surface
  "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
  "io_uring_setup", "io_uring_enter", "io_uring_register", "kexec_load",
  "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot",
  "swapon", "swapoff", "acct", "syslog", "quotactl", "settimeofday",
  "clock_settime", "clock_adjtime", "adjtimex", "vhangup", "iopl", "ioperm",
  "lookup_dcookie", "fanotify_init", "personality"};

/// Families a plugin may open sockets of.
bool allowed_family(int family, bool network) {
  if (family == AF_UNIX)
    return true;
  return network
         && (family == AF_INET || family == AF_INET6 || family == AF_NETLINK);
}

struct ctx_deleter {
  void operator()(scmp_filter_ctx* ctx) const {
    seccomp_release(*ctx);
    delete ctx;
  }
};

caf::error rule_failed(const char* what, int rc) {
  return make_error(errc::internal, std::string{"seccomp rule for "} + what
                                      + ": " + std::strerror(-rc));
}

} // namespace

caf::expected<std::vector<uint8_t>> build_seccomp_filter(seccomp_options opts) {
  scmp_filter_ctx raw = seccomp_init(SCMP_ACT_ALLOW);
  if (raw == nullptr)
    return make_error(errc::internal, "seccomp_init failed");
  std::unique_ptr<scmp_filter_ctx, ctx_deleter> ctx{new scmp_filter_ctx{raw}};
  // Only the native architecture: a syscall of any other (x32, i386 through
  // int 0x80) kills the whole process, not only its thread.
  int rc
    = seccomp_attr_set(raw, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  if (rc != 0)
    return rule_failed("other architectures", rc);
  for (auto* name : denied_syscalls) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR)
      continue; // unknown to this libseccomp: the kernel lacks it too
    if ((rc = seccomp_rule_add(raw, SCMP_ACT_ERRNO(EPERM), nr, 0)) != 0)
      return rule_failed(name, rc);
  }
  // New namespaces through clone(), one rule per flag; clone3 hides its
  // flags in memory, so it answers ENOSYS and libc falls back to clone.
  for (uint64_t flag : {CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER,
                        CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP}) {
    if ((rc = seccomp_rule_add(raw, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                               SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)))
        != 0)
      return rule_failed("clone", rc);
  }
  if ((rc = seccomp_rule_add(raw, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0))
      != 0)
    return rule_failed("clone3", rc);
  // Faking terminal input into whoever reads the same tty.
  if ((rc = seccomp_rule_add(raw, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
                             SCMP_A1(SCMP_CMP_MASKED_EQ, 0xFFFFFFFFu,
                                     static_cast<uint64_t>(TIOCSTI))))
      != 0)
    return rule_failed("ioctl", rc);
  // Socket families: deny by default.
  for (int nr : {SCMP_SYS(socket), SCMP_SYS(socketpair)}) {
    for (int family = 0; family < AF_MAX; ++family) {
      if (allowed_family(family, opts.network))
        continue;
      if ((rc = seccomp_rule_add(
             raw, SCMP_ACT_ERRNO(EAFNOSUPPORT), nr, 1,
             SCMP_A0(SCMP_CMP_EQ, static_cast<uint64_t>(family))))
          != 0)
        return rule_failed("socket", rc);
    }
    if ((rc = seccomp_rule_add(
           raw, SCMP_ACT_ERRNO(EAFNOSUPPORT), nr, 1,
           SCMP_A0(SCMP_CMP_GE, static_cast<uint64_t>(AF_MAX))))
        != 0)
      return rule_failed("socket", rc);
  }
  // With the network, netlink is for routes only (what getaddrinfo needs):
  // sock_diag would list every socket of the host's network namespace,
  // abstract unix names included.
  if (opts.network) {
    for (int nr : {SCMP_SYS(socket), SCMP_SYS(socketpair)})
      if ((rc = seccomp_rule_add(
             raw, SCMP_ACT_ERRNO(EAFNOSUPPORT), nr, 2,
             SCMP_A0(SCMP_CMP_EQ, static_cast<uint64_t>(AF_NETLINK)),
             SCMP_A2(SCMP_CMP_NE, static_cast<uint64_t>(NETLINK_ROUTE))))
          != 0)
        return rule_failed("netlink", rc);
  }
  // Export through a memfd: libseccomp writes to an fd only.
  unique_fd out{::memfd_create("joy-seccomp", MFD_CLOEXEC)};
  if (!out)
    return make_error(errc::internal,
                      std::string{"memfd_create: "} + std::strerror(errno));
  if ((rc = seccomp_export_bpf(raw, out.get())) != 0)
    return rule_failed("export", rc);
  auto size = ::lseek(out.get(), 0, SEEK_END);
  std::vector<uint8_t> bpf(static_cast<std::size_t>(size));
  if (size <= 0 || ::pread(out.get(), bpf.data(), bpf.size(), 0) != size)
    return make_error(errc::internal, "cannot read the exported filter");
  return bpf;
}

} // namespace joy
