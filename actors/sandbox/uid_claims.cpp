// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/sandbox/uid_claims.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>

#include <dirent.h>
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

/// The work dir a claim in `dir` names, or "" when there is none.
std::string claimant(int dir, const std::string& name) {
  char buf[4096];
  auto n = ::readlinkat(dir, name.c_str(), buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string{};
}

/// A claim that names no existing work dir has lapsed.
bool lapsed(const std::string& work_dir) {
  struct stat st {};
  return work_dir.empty()
         || (::lstat(work_dir.c_str(), &st) != 0 && errno == ENOENT);
}

/// Whether two spellings name the same folder (a home reached through a
/// symlink is the same home).
bool same_folder(const std::string& a, const std::string& b) {
  if (a == b)
    return true;
  std::error_code ec;
  return fs::equivalent(a, b, ec) && !ec;
}

} // namespace

uid_claims::uid_claims(std::string dir) : dir_(std::move(dir)) {
  // Nothing here: a node without sandboxed plugins never needs the folder.
}

caf::expected<uid_t> uid_claims::claim(const std::string& work_dir, uid_t owner,
                                       uid_t first, uid_t count,
                                       const std::vector<bool>& taken) {
  // The folder itself must not be a symlink, and must be the daemon's and
  // writable by it alone: everything below happens relative to the fd
  // opened here, so a folder swapped afterwards changes nothing.
  std::error_code ec;
  fs::create_directories(fs::path{dir_}.parent_path(), ec);
  if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST)
    return sys_error("cannot keep plugin uids in " + dir_);
  unique_fd lock{
    ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)};
  if (!lock)
    return sys_error("cannot keep plugin uids in " + dir_);
  struct stat st {};
  if (::fstat(lock.get(), &st) != 0 || st.st_uid != ::geteuid()
      || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
    return make_error(errc::io_error,
                      "cannot keep plugin uids in " + dir_
                        + ": it must be the daemon's folder, writable by it "
                          "alone");
  while (::flock(lock.get(), LOCK_EX) != 0)
    if (errno != EINTR)
      return sys_error("cannot lock " + dir_);
  int dir = lock.get();
  auto me = fs::absolute(work_dir).lexically_normal().string();
  auto in_range = [&](uid_t u) { return u >= first && u - first < count; };
  // Claims `u` for this work dir unless a live claim is another's.
  auto try_claim = [&](uid_t u) -> caf::expected<bool> {
    auto name = std::to_string(u);
    auto held_by = claimant(dir, name);
    if (!held_by.empty() && same_folder(held_by, me))
      return true;
    if (!held_by.empty() && !lapsed(held_by))
      return false;
    if (::unlinkat(dir, name.c_str(), 0) != 0 && errno != ENOENT)
      return sys_error("cannot renew the claim " + dir_ + "/" + name);
    if (::symlinkat(me.c_str(), dir, name.c_str()) != 0)
      return sys_error("cannot claim uid " + name + " in " + dir_);
    return true;
  };
  if (in_range(owner)) {
    auto mine = try_claim(owner);
    if (!mine)
      return std::move(mine.error());
    if (*mine)
      return owner;
    return make_error(errc::failed_precondition,
                      work_dir + " belongs to uid " + std::to_string(owner)
                        + ", which another plugin on this machine holds now ("
                        + claimant(dir, std::to_string(owner))
                        + "); uninstall and install the plugin again");
  }
  // A claim that names this work dir already (a plugin reinstalled at the
  // same place) is its uid: one plugin never holds two.
  if (auto listing = ::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      listing >= 0) {
    std::unique_ptr<DIR, int (*)(DIR*)> d{::fdopendir(listing), ::closedir};
    if (!d)
      ::close(listing);
    std::optional<uid_t> found;
    while (d && !found) {
      auto* e = ::readdir(d.get());
      if (e == nullptr)
        break;
      char* end = nullptr;
      auto u = std::strtoul(e->d_name, &end, 10);
      if (end == e->d_name || *end != '\0' || !in_range(static_cast<uid_t>(u)))
        continue;
      auto held_by = claimant(dir, e->d_name);
      if (!held_by.empty() && same_folder(held_by, me))
        found = static_cast<uid_t>(u);
    }
    if (found)
      return *found;
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
