// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/sandbox/sandbox_policy.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

namespace fs = std::filesystem;

namespace joy {

namespace {

/// Top-level system paths a program needs to run; on merged-/usr systems
/// most are symlinks into /usr and are recreated as such.
constexpr const char* system_paths[]
  = {"/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"};

/// The part of /etc a plugin may see: the dynamic linker, time zone, users
/// and groups (names only: no shadow), TLS roots, MIME types.
constexpr const char* etc_paths[]
  = {"/etc/ld.so.cache",    "/etc/ld.so.conf",    "/etc/ld.so.conf.d",
     "/etc/localtime",      "/etc/nsswitch.conf", "/etc/passwd",
     "/etc/group",          "/etc/ssl",           "/etc/ca-certificates",
     "/etc/alternatives",   "/etc/mime.types",    "/etc/os-release",
     "/etc/debian_version", "/etc/gai.conf"};

/// Name resolution, only for plugins with the network.
constexpr const char* etc_network_paths[]
  = {"/etc/hosts", "/etc/host.conf", "/etc/resolv.conf"};

} // namespace

sandbox_policy make_sandbox_policy(const sandbox_settings& settings,
                                   const plugin_manifest& manifest,
                                   std::string code_dir, std::string work_dir,
                                   bool daemon_is_root) {
  sandbox_policy p;
  p.enabled = settings.enabled;
  p.code_dir = std::move(code_dir);
  p.work_dir = std::move(work_dir);
  p.open_files = settings.open_files;
  auto& r = manifest.resources;
  p.limits.memory_bytes
    = r.memory_bytes > 0 ? r.memory_bytes : settings.memory_bytes;
  p.limits.pids = r.pids > 0 ? r.pids : settings.pids;
  p.limits.cpus = r.cpus > 0 ? r.cpus : settings.cpus;
  p.disk_bytes = r.disk_bytes > 0 ? r.disk_bytes : settings.disk_bytes;
  if (!settings.enabled)
    return p;
  if (daemon_is_root) {
    p.uid = settings.uid;
    p.uid_count = std::max<uid_t>(1, settings.uid_count);
  }
  p.network = manifest.sandbox.network;
  p.landlock = settings.landlock;
  return p;
}

std::vector<std::string> gpu_device_nodes(const std::vector<uint32_t>& indices,
                                          bool all, const std::string& dev) {
  std::vector<std::string> out;
  std::error_code ec;
  auto add = [&](const std::string& name) {
    auto path = dev + "/" + name;
    if (fs::exists(path, ec))
      out.push_back(std::move(path));
  };
  // What CUDA opens besides the device itself: the control node, unified
  // memory and (for some drivers) modesetting.
  for (auto* name :
       {"nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset"})
    add(name);
  if (all) {
    for (auto& e : fs::directory_iterator(dev, ec)) {
      auto name = e.path().filename().string();
      if (name.size() > 6 && name.rfind("nvidia", 0) == 0
          && std::all_of(name.begin() + 6, name.end(),
                         [](char c) { return c >= '0' && c <= '9'; }))
        out.push_back(e.path().string());
    }
    std::sort(out.begin(), out.end());
  } else {
    for (auto i : indices)
      add("nvidia" + std::to_string(i));
  }
  return out;
}

std::vector<std::string> bwrap_arguments(const sandbox_policy& policy,
                                         const sandbox_sources& src) {
  std::vector<std::string> a{"--unshare-all",
                             "--unshare-user",
                             "--disable-userns",
                             "--die-with-parent",
                             "--new-session",
                             "--hostname",
                             "plugin"};
  if (policy.network)
    a.emplace_back("--share-net");
  // Both tmpfs capped: --size applies to the next --tmpfs only, and /dev's
  // own tmpfs is bubblewrap's, so /dev/shm gets one of its own.
  auto size = std::to_string(policy.disk_bytes);
  a.insert(a.end(), {"--proc", "/proc", "--dev", "/dev", "--size", size,
                     "--tmpfs", "/dev/shm", "--size", size, "--tmpfs", "/tmp"});
  // A plugin given GPUs gets their device nodes, and the topology CUDA
  // reads (PCI and NUMA placement) from /sys, read-only.
  for (auto& d : policy.devices)
    a.insert(a.end(), {"--dev-bind-try", d, d});
  if (!policy.devices.empty())
    a.insert(a.end(), {"--ro-bind-try", "/sys", "/sys"});
  std::error_code ec;
  auto add_path = [&](const char* path) {
    auto st = fs::symlink_status(path, ec);
    if (ec || !fs::exists(st))
      return;
    if (fs::is_symlink(st)) {
      auto target = fs::read_symlink(path, ec);
      if (!ec)
        a.insert(a.end(), {"--symlink", target.string(), path});
      return;
    }
    a.insert(a.end(), {"--ro-bind", path, path});
  };
  for (auto* p : system_paths)
    add_path(p);
  for (auto* p : etc_paths)
    add_path(p);
  if (policy.network)
    for (auto* p : etc_network_paths)
      add_path(p);
  // The plugin's folders at their real paths, so that paths in logs and
  // messages mean the same inside and out.
  a.insert(a.end(),
           {"--ro-bind", src.code_dir, policy.code_dir, "--bind", src.work_dir,
            policy.work_dir, "--ro-bind", src.joy_exec, inner_exec_path});
  if (!src.runtime.empty())
    a.insert(a.end(), {"--ro-bind", src.runtime, inner_runtime_path});
  a.insert(a.end(),
           {"--setenv", "HOME", policy.work_dir, "--chdir", policy.code_dir,
            "--seccomp", std::to_string(src.seccomp_fd), "--"});
  return a;
}

std::vector<std::string> landlock_read_only(const sandbox_policy& policy) {
  // The system paths that are directories (merged-/usr symlinks lead into
  // /usr), then what else a plugin reads.
  std::vector<std::string> out;
  for (auto* p : system_paths) {
    std::error_code ec;
    if (!fs::is_symlink(p, ec) && fs::is_directory(p, ec))
      out.emplace_back(p);
  }
  out.insert(out.end(), {"/etc", "/proc", "/run/joy"});
  if (!policy.devices.empty())
    out.emplace_back("/sys");
  out.push_back(policy.code_dir);
  return out;
}

std::vector<std::string> landlock_read_write(const sandbox_policy& policy) {
  return {policy.work_dir, "/tmp", "/dev/shm"};
}

std::vector<std::string> landlock_files_only(const sandbox_policy&) {
  return {"/dev"};
}

} // namespace joy
