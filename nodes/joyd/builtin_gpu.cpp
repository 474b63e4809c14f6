// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "nodes/joyd/builtin_gpu.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "actors/node/installer.hpp"
#include "runtime/errc.hpp"
#include "runtime/unique_fd.hpp"

extern char** environ;

namespace fs = std::filesystem;

namespace joy {

/// nodes/gpu_host/plugin.json (generated: embed_text.cmake).
extern const char* const gpu_host_manifest;

namespace {

caf::error io_error(const std::string& what, const std::error_code& ec) {
  return make_error(errc::io_error, what + ": " + ec.message());
}

/// Writes `text` to `path` through a temporary sibling, unless it holds it.
caf::error write_if_changed(const fs::path& path, const std::string& text) {
  {
    std::ifstream in{path, std::ios::binary};
    std::stringstream old;
    old << in.rdbuf();
    if (in && old.str() == text)
      return caf::none;
  }
  auto tmp = path.string() + ".tmp";
  {
    std::ofstream out{tmp, std::ios::binary | std::ios::trunc};
    out << text;
    if (!out.flush())
      return make_error(errc::io_error, "cannot write " + tmp);
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec)
    return io_error("cannot write " + path.string(), ec);
  return caf::none;
}

/// Copies `from` over `to` (through a temporary sibling) when their sizes
/// or modification times differ.
caf::error copy_if_changed(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  auto from_size = fs::file_size(from, ec);
  if (ec)
    return make_error(errc::not_found, "no gpu host at " + from.string());
  auto from_time = fs::last_write_time(from, ec);
  std::error_code ec2, ec3;
  if (fs::file_size(to, ec2) == from_size && !ec2
      && fs::last_write_time(to, ec3) == from_time && !ec3)
    return caf::none;
  auto tmp = fs::path{to.string() + ".tmp"};
  fs::copy_file(from, tmp, fs::copy_options::overwrite_existing, ec);
  if (ec)
    return io_error("cannot copy " + from.string(), ec);
  fs::permissions(tmp, fs::perms{0755}, ec);
  fs::last_write_time(tmp, from_time, ec2);
  fs::rename(tmp, to, ec3);
  if (ec || ec2 || ec3)
    return io_error("cannot copy " + from.string() + " to " + to.string(),
                    ec    ? ec
                    : ec2 ? ec2
                          : ec3);
  return caf::none;
}

} // namespace

std::vector<gpu_device> probe_gpus(const std::string& host_binary) {
  if (::access(host_binary.c_str(), X_OK) != 0)
    return {};
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return {};
  unique_fd out{fds[0]};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  std::string arg0 = host_binary, arg1 = "--probe";
  char* argv[] = {arg0.data(), arg1.data(), nullptr};
  pid_t pid = -1;
  auto rc
    = ::posix_spawn(&pid, host_binary.c_str(), &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  if (rc != 0)
    return {};
  std::string text;
  char buf[512];
  pollfd p{out.get(), POLLIN, 0};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - std::chrono::steady_clock::now())
                  .count();
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0)
      break;
    auto n = ::read(out.get(), buf, sizeof(buf));
    if (n <= 0)
      break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  std::vector<gpu_device> found;
  std::istringstream in{text};
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields{line};
    gpu_device d;
    std::string index, memory;
    if (std::getline(fields, index, '\t') && std::getline(fields, memory, '\t')
        && std::getline(fields, d.compute_capability, '\t')
        && std::getline(fields, d.name)) {
      try {
        d.index = static_cast<uint32_t>(std::stoul(index));
        d.memory_bytes = std::stoull(memory);
      } catch (std::exception&) {
        continue;
      }
      found.push_back(std::move(d));
    }
  }
  return found;
}

caf::expected<plugin_record>
lay_out_gpu_service(const std::string& home, const std::string& host_binary) {
  auto dir = fs::path{home} / "builtin" / "gpu";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return io_error("cannot make " + dir.string(), ec);
  // Readable by the uid a sandboxed plugin runs as, like installed ones.
  fs::permissions(dir.parent_path(), fs::perms{0755}, ec);
  fs::permissions(dir, fs::perms{0755}, ec);
  if (auto err = write_if_changed(dir / "plugin.json", gpu_host_manifest))
    return err;
  fs::permissions(dir / "plugin.json", fs::perms{0644}, ec);
  if (auto err = copy_if_changed(host_binary, dir / "joy-gpu-host"))
    return err;
  return builtin_record(dir);
}

} // namespace joy
