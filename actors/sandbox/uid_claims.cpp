// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/sandbox/uid_claims.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/errc.hpp"
#include "runtime/unique_fd.hpp"

namespace joy {

namespace fs = std::filesystem;

namespace {

caf::error sys_error(const std::string& what) {
  return make_error(errc::io_error, what + ": " + std::strerror(errno));
}

/// The work dir a claim names, or "" when there is none.
std::string claimant(const std::string& link) {
  char buf[4096];
  auto n = ::readlink(link.c_str(), buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string{};
}

/// A claim that names no existing work dir has lapsed.
bool lapsed(const std::string& work_dir) {
  struct stat st {};
  return work_dir.empty()
         || (::lstat(work_dir.c_str(), &st) != 0 && errno == ENOENT);
}

} // namespace

uid_claims::uid_claims(std::string dir) : dir_(std::move(dir)) {
  // Nothing here: a node without sandboxed plugins never needs the folder.
}

caf::expected<uid_t> uid_claims::claim(const std::string& work_dir, uid_t owner,
                                       uid_t first, uid_t count,
                                       const std::vector<bool>& taken) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  unique_fd lock{::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (!lock)
    return sys_error("cannot keep plugin uids in " + dir_);
  struct stat st {};
  if (::fstat(lock.get(), &st) != 0 || st.st_uid != ::geteuid())
    return make_error(errc::io_error, "cannot keep plugin uids in " + dir_
                                        + ": it must be the daemon's folder");
  ::fchmod(lock.get(), 0700);
  while (::flock(lock.get(), LOCK_EX) != 0)
    if (errno != EINTR)
      return sys_error("cannot lock " + dir_);
  auto me = fs::absolute(work_dir).lexically_normal().string();
  auto link_of = [&](uid_t u) { return dir_ + "/" + std::to_string(u); };
  // Claims `u` for this work dir unless a live claim is another's.
  auto try_claim = [&](uid_t u) -> caf::expected<bool> {
    auto link = link_of(u);
    auto held_by = claimant(link);
    if (held_by == me)
      return true;
    if (!held_by.empty() && !lapsed(held_by))
      return false;
    if (::unlink(link.c_str()) != 0 && errno != ENOENT)
      return sys_error("cannot renew the claim " + link);
    if (::symlink(me.c_str(), link.c_str()) != 0)
      return sys_error("cannot claim uid " + std::to_string(u) + " in " + dir_);
    return true;
  };
  auto in_range = [&](uid_t u) { return u >= first && u - first < count; };
  if (in_range(owner)) {
    auto mine = try_claim(owner);
    if (!mine)
      return std::move(mine.error());
    if (*mine)
      return owner;
    return make_error(errc::failed_precondition,
                      work_dir + " belongs to uid " + std::to_string(owner)
                        + ", which another plugin on this machine holds now ("
                        + claimant(link_of(owner))
                        + "); uninstall and install the plugin again");
  }
  for (uid_t i = 0; i < count; ++i) {
    if (i < taken.size() && taken[i])
      continue;
    auto mine = try_claim(first + i);
    if (!mine)
      return std::move(mine.error());
    if (*mine)
      return first + i;
  }
  return make_error(errc::unavailable, "every plugin uid from "
                                         + std::to_string(first)
                                         + " is taken on this machine");
}

} // namespace joy
