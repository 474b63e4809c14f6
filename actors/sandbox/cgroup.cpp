// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/sandbox/cgroup.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "runtime/errc.hpp"

namespace fs = std::filesystem;

namespace joy {

namespace {

/// v1 controllers, in the order of `dirs_`.
constexpr const char* v1_controllers[] = {"memory", "pids", "cpu"};
constexpr int v1_memory = 0;
constexpr int v1_pids = 1;
constexpr int v1_cpu = 2;

bool is_cgroupfs(const std::string& path) {
  struct statfs sf {};
  if (::statfs(path.c_str(), &sf) != 0)
    return false;
  return sf.f_type == CGROUP_SUPER_MAGIC || sf.f_type == CGROUP2_SUPER_MAGIC;
}

/// Writes `text` to a control file. On a real cgroupfs the file exists; on
/// a fake one it is created.
caf::error write_file(const std::string& path, const std::string& text,
                      bool real) {
  int fd = ::open(path.c_str(),
                  O_WRONLY | O_CLOEXEC | (real ? 0 : O_CREAT | O_TRUNC), 0644);
  if (fd < 0)
    return make_error(errc::io_error,
                      "cannot open " + path + ": " + std::strerror(errno));
  auto n = ::write(fd, text.data(), text.size());
  int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(text.size()))
    return make_error(errc::io_error, "cannot write '" + text + "' to " + path
                                        + ": " + std::strerror(err));
  return caf::none;
}

std::string read_file(const std::string& path) {
  std::ifstream in{path};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// The value after `key ` in a flat-keyed file such as memory.events.
uint64_t keyed_value(const std::string& text, const std::string& key) {
  std::istringstream in{text};
  std::string k;
  uint64_t v = 0;
  while (in >> k >> v)
    if (k == key)
      return v;
  return 0;
}

std::vector<int> pids_in(const std::string& procs) {
  std::vector<int> out;
  std::istringstream in{read_file(procs)};
  int pid = 0;
  while (in >> pid)
    out.push_back(pid);
  return out;
}

/// Removes a cgroup directory: rmdir on a real cgroupfs (its control files
/// go with it), a plain recursive removal on a fake one.
bool remove_dir(const std::string& dir, bool real) {
  if (dir.empty())
    return true;
  std::error_code ec;
  if (!real) {
    fs::remove_all(dir, ec);
    return !ec;
  }
  if (::rmdir(dir.c_str()) == 0 || errno == ENOENT)
    return true;
  return false;
}

/// The daemon's own path in controller `name` ("" for v2's unified line).
std::optional<std::string> own_path(const std::string& self_cgroup,
                                    const std::string& name) {
  std::istringstream in{read_file(self_cgroup)};
  std::string line;
  while (std::getline(in, line)) {
    auto a = line.find(':');
    auto b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos)
      continue;
    auto controllers = line.substr(a + 1, b - a - 1);
    auto path = line.substr(b + 1);
    if (name.empty()) {
      if (controllers.empty() && line.compare(0, a, "0") == 0)
        return path;
      continue;
    }
    std::istringstream list{controllers};
    std::string c;
    while (std::getline(list, c, ','))
      if (c == name)
        return path;
  }
  return std::nullopt;
}

/// A zombie counts as dead: its cgroups are of no use to it.
bool pid_alive(int pid) {
  if (::kill(pid, 0) != 0 && errno != EPERM)
    return false;
  auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  return close == std::string::npos || close + 2 >= stat.size()
         || stat[close + 2] != 'Z';
}

} // namespace

/// Cgroups that were still busy when their plugin died. Processes of a dead
/// pid namespace leave within moments, usually long before another plugin
/// starts (when buried ones are retried too), so a short-lived thread
/// retries them until they are gone, for up to 10 s.
class cgroup_graveyard : public std::enable_shared_from_this<cgroup_graveyard> {
public:
  explicit cgroup_graveyard(bool real) : real_(real) {
    // nop
  }

  void bury(std::string dir) {
    std::lock_guard<std::mutex> guard{mtx_};
    dirs_.push_back(std::move(dir));
    if (digging_)
      return;
    digging_ = true;
    std::thread{[self = shared_from_this()] { self->dig(); }}.detach();
  }

  /// Tries every buried directory once more; returns how many are left.
  std::size_t retry() {
    std::lock_guard<std::mutex> guard{mtx_};
    return retry_locked();
  }

private:
  std::size_t retry_locked() {
    auto keep = std::remove_if(dirs_.begin(), dirs_.end(), [this](auto& d) {
      return remove_dir(d, real_);
    });
    dirs_.erase(keep, dirs_.end());
    return dirs_.size();
  }

  void dig() {
    for (int i = 0;; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds{20});
      // Checked and cleared under one lock, so that a bury() meanwhile
      // either is retried here or starts a thread of its own.
      std::lock_guard<std::mutex> guard{mtx_};
      if (retry_locked() == 0 || i == 499) {
        digging_ = false;
        return;
      }
    }
  }

  bool real_;
  std::mutex mtx_;
  std::vector<std::string> dirs_;
  bool digging_ = false;
};

// -- plugin_cgroup ------------------------------------------------------------

plugin_cgroup::plugin_cgroup(cgroup_version version,
                             std::vector<std::string> dirs, bool real,
                             std::shared_ptr<cgroup_graveyard> graveyard)
  : version_(version),
    dirs_(std::move(dirs)),
    real_(real),
    graveyard_(std::move(graveyard)) {
  // nop
}

plugin_cgroup::~plugin_cgroup() {
  if (removed_)
    return;
  kill_all();
  remove();
}

std::string plugin_cgroup::file(const char* controller,
                                const char* name) const {
  if (version_ == cgroup_version::v2)
    return dirs_[0] + "/" + name;
  for (std::size_t i = 0; i < std::size(v1_controllers); ++i)
    if (std::strcmp(v1_controllers[i], controller) == 0)
      return dirs_[i].empty() ? std::string{} : dirs_[i] + "/" + name;
  return {};
}

std::vector<std::string> plugin_cgroup::procs_files() const {
  std::vector<std::string> out;
  for (auto& d : dirs_)
    if (!d.empty())
      out.push_back(d + "/cgroup.procs");
  return out;
}

uint64_t plugin_cgroup::oom_kills() const {
  if (version_ == cgroup_version::v2)
    return keyed_value(read_file(file("memory", "memory.events")), "oom_kill");
  auto f = file("memory", "memory.oom_control");
  return f.empty() ? 0 : keyed_value(read_file(f), "oom_kill");
}

uint64_t plugin_cgroup::memory_bytes() const {
  auto f = version_ == cgroup_version::v2
             ? file("memory", "memory.current")
             : file("memory", "memory.usage_in_bytes");
  if (f.empty())
    return 0;
  std::istringstream in{read_file(f)};
  uint64_t v = 0;
  in >> v;
  return v;
}

void plugin_cgroup::kill_all() noexcept {
  if (dirs_.empty() || removed_)
    return;
  if (version_ == cgroup_version::v2 && real_
      && !write_file(dirs_[0] + "/cgroup.kill", "1", true))
    return;
  // The pids controller (or any other) lists every process. Forks racing
  // with us are caught on the next round; a bounded number of rounds,
  // because a fork bomb under pids.max runs out of pids first.
  std::string procs;
  for (auto& f : procs_files()) {
    procs = f;
    if (version_ == cgroup_version::v1 && f.find("/pids/") != std::string::npos)
      break;
  }
  for (int round = 0; round < 64 && !procs.empty(); ++round) {
    auto pids = pids_in(procs);
    if (pids.empty())
      return;
    // A pid read from the list may be gone and reused by the time we
    // signal it: pin each with a pidfd, then signal only those the list
    // still names (a pid reused since is not in this cgroup).
    std::vector<std::pair<int, int>> pinned;
    for (int pid : pids) {
      int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
      if (fd >= 0)
        pinned.emplace_back(pid, fd);
    }
    auto still = pids_in(procs);
    for (auto& [pid, fd] : pinned) {
      if (std::find(still.begin(), still.end(), pid) != still.end())
        ::syscall(SYS_pidfd_send_signal, fd, SIGKILL, nullptr, 0);
      ::close(fd);
    }
  }
}

bool plugin_cgroup::remove_now() noexcept {
  if (removed_)
    return true;
  bool all = true;
  for (auto& d : dirs_)
    all = remove_dir(d, real_) && all;
  removed_ = all;
  return all;
}

bool plugin_cgroup::remove() noexcept {
  if (remove_now())
    return true;
  if (graveyard_) {
    // Its last processes are still on their way out; the graveyard retries
    // (removing what is gone already is no error).
    for (auto& d : dirs_)
      graveyard_->bury(d);
    removed_ = true;
  }
  return false;
}

// -- cgroup_tree --------------------------------------------------------------

caf::expected<std::shared_ptr<cgroup_tree>>
cgroup_tree::open(const std::string& fs_root, const std::string& self_cgroup) {
  std::shared_ptr<cgroup_tree> tree{new cgroup_tree};
  tree->root_ = fs_root;
  auto tag = "joy." + std::to_string(::getpid());
  std::error_code ec;
  if (fs::exists(fs_root + "/cgroup.controllers", ec)) {
    tree->version_ = cgroup_version::v2;
    tree->real_ = is_cgroupfs(fs_root);
    auto own = own_path(self_cgroup, "");
    if (!own)
      return make_error(errc::unavailable,
                        "no cgroup v2 entry in " + self_cgroup);
    auto base = fs_root + (*own == "/" ? "" : *own);
    // v2 lets a cgroup delegate controllers only while no process sits in
    // it ("no internal processes"): the daemon moves into a leaf first.
    auto leaf = base + "/" + tag + ".daemon";
    auto mine = base + "/" + tag;
    for (auto& d : {leaf, mine})
      if (::mkdir(d.c_str(), 0755) != 0 && errno != EEXIST)
        return make_error(errc::io_error, "cannot create cgroup " + d + ": "
                                            + std::strerror(errno));
    auto self = std::to_string(::getpid());
    if (tree->real_) {
      if (auto err = write_file(leaf + "/cgroup.procs", self, true))
        return err;
    }
    // One controller at a time: a single write of all three fails whole
    // when one of them is not delegated. memory and pids are required,
    // cpu is not.
    for (auto& d : {base, mine})
      for (auto* c : {"+memory", "+pids", "+cpu"})
        if (auto err
            = write_file(d + "/cgroup.subtree_control", c, tree->real_);
            err && std::string{c} != "+cpu")
          return err;
    tree->bases_ = {base};
    tree->own_ = {mine};
    tree->graveyard_ = std::make_shared<cgroup_graveyard>(tree->real_);
    return tree;
  }
  tree->version_ = cgroup_version::v1;
  bool any = false;
  for (auto* c : v1_controllers) {
    auto mount = fs_root + "/" + c;
    auto own = own_path(self_cgroup, c);
    if (!own || !fs::is_directory(mount, ec)) {
      tree->bases_.emplace_back();
      tree->own_.emplace_back();
      continue;
    }
    tree->real_ = tree->real_ || is_cgroupfs(mount);
    auto base = mount + (*own == "/" ? "" : *own);
    auto mine = base + "/" + tag;
    if (::mkdir(mine.c_str(), 0755) != 0 && errno != EEXIST)
      return make_error(errc::io_error, "cannot create cgroup " + mine + ": "
                                          + std::strerror(errno));
    tree->bases_.push_back(base);
    tree->own_.push_back(mine);
    any = true;
  }
  if (!any)
    return make_error(errc::unavailable,
                      "no cgroup hierarchy with memory, pids or cpu under "
                        + fs_root);
  tree->graveyard_ = std::make_shared<cgroup_graveyard>(tree->real_);
  return tree;
}

cgroup_tree::~cgroup_tree() {
  // Plugins are gone by now; give their last processes a moment to leave
  // their cgroups.
  for (int i = 0; i < 50 && graveyard_ && graveyard_->retry() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  // On v2 the daemon's own leaf stays while it runs; a later daemon's
  // sweep removes it.
  for (auto& d : own_)
    remove_dir(d, real_);
}

uint64_t cgroup_tree::memory_limit() const {
  auto base
    = version_ == cgroup_version::v2 ? bases_.front() : bases_[v1_memory];
  auto* name
    = version_ == cgroup_version::v2 ? "memory.max" : "memory.limit_in_bytes";
  auto least = std::numeric_limits<uint64_t>::max();
  if (base.empty())
    return least;
  // From the daemon's cgroup up to the hierarchy's root; "max" (v2) and
  // missing files set no limit.
  for (fs::path dir = base;; dir = dir.parent_path()) {
    auto text = read_file((dir / name).string());
    if (!text.empty() && std::isdigit(static_cast<unsigned char>(text[0])))
      least = std::min<uint64_t>(least, std::stoull(text));
    if (dir.string().size() <= root_.size() || dir == dir.parent_path())
      return least;
  }
}

std::string cgroup_tree::describe() const {
  if (version_ == cgroup_version::v2)
    return "cgroup v2 (memory, pids, cpu)";
  std::string list;
  for (std::size_t i = 0; i < own_.size(); ++i)
    if (!own_[i].empty())
      list += (list.empty() ? "" : ", ") + std::string{v1_controllers[i]};
  return "cgroup v1 (" + list + ")";
}

caf::expected<std::unique_ptr<plugin_cgroup>>
cgroup_tree::create(const std::string& name, const cgroup_limits& limits) {
  graveyard_->retry();
  auto leaf = name + "." + std::to_string(++next_);
  std::vector<std::string> dirs;
  for (auto& mine : own_) {
    if (mine.empty()) {
      dirs.emplace_back();
      continue;
    }
    auto d = mine + "/" + leaf;
    if (::mkdir(d.c_str(), 0755) != 0)
      return make_error(errc::io_error, "cannot create cgroup " + d + ": "
                                          + std::strerror(errno));
    dirs.push_back(d);
  }
  auto cg = std::make_unique<plugin_cgroup>(version_, dirs, real_, graveyard_);
  auto set = [&](const std::string& dir, const char* file,
                 const std::string& value) -> caf::error {
    if (dir.empty())
      return caf::none;
    return write_file(dir + "/" + file, value, real_);
  };
  constexpr uint64_t period_us = 100000;
  auto quota = static_cast<uint64_t>(std::llround(limits.cpus * period_us));
  caf::error err;
  if (version_ == cgroup_version::v2) {
    auto& d = dirs[0];
    if (!err && limits.memory_bytes > 0)
      err = set(d, "memory.max", std::to_string(limits.memory_bytes));
    if (!err && limits.memory_bytes > 0) {
      // No swap: the limit is the limit. Absent without swap accounting.
      if (!real_ || fs::exists(d + "/memory.swap.max"))
        err = set(d, "memory.swap.max", "0");
    }
    if (!err && limits.pids > 0)
      err = set(d, "pids.max", std::to_string(limits.pids));
    if (!err && quota > 0)
      err = set(d, "cpu.max",
                std::to_string(quota) + " " + std::to_string(period_us));
  } else {
    if (!err && limits.memory_bytes > 0)
      err = set(dirs[v1_memory], "memory.limit_in_bytes",
                std::to_string(limits.memory_bytes));
    // Memory plus swap at the same limit: no spilling into the host's
    // swap. Absent without swap accounting.
    if (!err && limits.memory_bytes > 0 && !dirs[v1_memory].empty()
        && (!real_
            || fs::exists(dirs[v1_memory] + "/memory.memsw.limit_in_bytes")))
      err = set(dirs[v1_memory], "memory.memsw.limit_in_bytes",
                std::to_string(limits.memory_bytes));
    if (!err && limits.pids > 0)
      err = set(dirs[v1_pids], "pids.max", std::to_string(limits.pids));
    if (!err && quota > 0) {
      err = set(dirs[v1_cpu], "cpu.cfs_period_us", std::to_string(period_us));
      if (!err)
        err = set(dirs[v1_cpu], "cpu.cfs_quota_us", std::to_string(quota));
    }
  }
  if (err)
    return err; // `cg` removes the directories
  return cg;
}

int cgroup_tree::sweep() {
  int removed = 0;
  std::error_code ec;
  for (auto& base : bases_) {
    if (base.empty())
      continue;
    for (auto& entry : fs::directory_iterator{base, ec}) {
      auto name = entry.path().filename().string();
      if (name.rfind("joy.", 0) != 0 || !entry.is_directory(ec))
        continue;
      auto rest = name.substr(4);
      auto dot = rest.find('.');
      int pid = std::atoi(rest.substr(0, dot).c_str());
      if (pid <= 0 || pid == ::getpid() || pid_alive(pid))
        continue;
      // Plugins of a dead daemon died with it (PDEATHSIG); their cgroups
      // are empty and only need removing.
      for (auto& child : fs::directory_iterator{entry.path(), ec}) {
        if (child.is_directory(ec)) {
          plugin_cgroup cg{version_, {child.path().string()}, real_};
          cg.kill_all();
          if (cg.remove())
            ++removed;
        }
      }
      if (remove_dir(entry.path().string(), real_))
        ++removed;
    }
  }
  return removed;
}

} // namespace joy
