// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/sandbox/landlock.hpp"

#include <fcntl.h>
#include <linux/landlock.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace joy::landlock {

namespace {

// Rights newer than Debian 12's header (linux-libc-dev 6.1).
constexpr uint64_t access_fs_refer = 1ULL << 13;    // ABI 2
constexpr uint64_t access_fs_truncate = 1ULL << 14; // ABI 3
constexpr uint64_t access_net_bind_tcp = 1ULL << 0; // ABI 4
constexpr uint64_t access_net_connect_tcp = 1ULL << 1;

/// Scopes (ABI 6): no connecting to abstract unix sockets, and no signals,
/// outside the sandbox's own Landlock domain.
constexpr uint64_t scope_abstract_unix_socket = 1ULL << 0;
constexpr uint64_t scope_signal = 1ULL << 1;

/// The ruleset attribute as of ABI 6 (the header's lacks the net and scope
/// fields).
struct ruleset_attr_v6 {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;
  uint64_t scoped;
};

constexpr uint64_t read_rights = LANDLOCK_ACCESS_FS_EXECUTE
                                 | LANDLOCK_ACCESS_FS_READ_FILE
                                 | LANDLOCK_ACCESS_FS_READ_DIR;

uint64_t fs_rights(int abi) {
  uint64_t all = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE
                 | LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR
                 | LANDLOCK_ACCESS_FS_REMOVE_DIR
                 | LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_CHAR
                 | LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG
                 | LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO
                 | LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM;
  if (abi >= 2)
    all |= access_fs_refer;
  if (abi >= 3)
    all |= access_fs_truncate;
  return all;
}

int add_path(int ruleset_fd, const std::string& path, uint64_t rights) {
  int fd = ::open(path.c_str(), O_PATH | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? 0 : errno;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode)) {
    // Directory-only rights are invalid on a file.
    rights &= LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE
              | LANDLOCK_ACCESS_FS_READ_FILE | access_fs_truncate;
  }
  landlock_path_beneath_attr attr{};
  attr.allowed_access = rights;
  attr.parent_fd = fd;
  int rc = static_cast<int>(::syscall(SYS_landlock_add_rule, ruleset_fd,
                                      LANDLOCK_RULE_PATH_BENEATH, &attr, 0));
  int err = rc == 0 ? 0 : errno;
  ::close(fd);
  return err;
}

} // namespace

int abi_version() noexcept {
  long abi = ::syscall(SYS_landlock_create_ruleset, nullptr, 0,
                       LANDLOCK_CREATE_RULESET_VERSION);
  return abi < 0 ? 0 : static_cast<int>(abi);
}

int restrict_self(const ruleset& rules) noexcept {
  int abi = abi_version();
  if (abi <= 0)
    return ENOSYS;
  ruleset_attr_v6 attr{};
  attr.handled_access_fs = fs_rights(abi);
  // Handling TCP with no rule for it denies all of it; a plugin that asked
  // for the network leaves TCP unhandled.
  if (abi >= 4 && !rules.tcp)
    attr.handled_access_net = access_net_bind_tcp | access_net_connect_tcp;
  // A plugin with the network shares the host's network namespace, and with
  // it the host's abstract unix sockets: scope them (and signals) away.
  if (abi >= 6)
    attr.scoped = scope_abstract_unix_socket | scope_signal;
  auto size = abi >= 6   ? sizeof(ruleset_attr_v6)
              : abi >= 4 ? 2 * sizeof(uint64_t)
                         : sizeof(uint64_t);
  int fd
    = static_cast<int>(::syscall(SYS_landlock_create_ruleset, &attr, size, 0));
  if (fd < 0)
    return errno;
  int err = 0;
  for (auto& p : rules.read_only)
    if (err == 0)
      err = add_path(fd, p, read_rights & attr.handled_access_fs);
  for (auto& p : rules.read_write)
    if (err == 0)
      err = add_path(fd, p, attr.handled_access_fs);
  auto file_rights
    = (read_rights | LANDLOCK_ACCESS_FS_WRITE_FILE | access_fs_truncate)
      & attr.handled_access_fs & ~LANDLOCK_ACCESS_FS_EXECUTE;
  for (auto& p : rules.files_only)
    if (err == 0)
      err = add_path(fd, p, file_rights);
  if (err == 0 && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    err = errno;
  if (err == 0 && ::syscall(SYS_landlock_restrict_self, fd, 0) != 0)
    err = errno;
  ::close(fd);
  return err;
}

} // namespace joy::landlock
