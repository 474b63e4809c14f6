// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// The sandbox's parts without a sandbox: cgroups against a fake cgroupfs
// (plain directories, for both hierarchies), the seccomp programs, the
// policy and bubblewrap's command line. tests/nodes/sandbox_test.cpp runs
// the real thing.

#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "actors/sandbox/cgroup.hpp"
#include "actors/sandbox/sandbox_policy.hpp"
#include "actors/sandbox/seccomp_filter.hpp"
#include "runtime/errc.hpp"
#include "tests/support/temp_dir.hpp"

namespace fs = std::filesystem;

namespace {

using joy::test::read_file;
using joy::test::write_file;

bool contains(const std::vector<std::string>& xs, const std::string& x) {
  return std::find(xs.begin(), xs.end(), x) != xs.end();
}

/// Index of `x` in `xs`, or -1.
long index_of(const std::vector<std::string>& xs, const std::string& x) {
  auto i = std::find(xs.begin(), xs.end(), x);
  return i == xs.end() ? -1 : static_cast<long>(i - xs.begin());
}

std::string tag() {
  return "joy." + std::to_string(::getpid());
}

} // namespace

TEST_CASE("a v1 cgroup gets its limits in each controller and reports OOM "
          "kills",
          "[actors][sandbox]") {
  joy::test::temp_dir dir;
  auto root = dir / "cg";
  for (auto c : {"memory", "pids", "cpu"})
    fs::create_directories(root / c);
  fs::create_directories(root / "memory" / "svc" / "a");
  write_file(dir / "self", "9:name=systemd:/\n8:pids:/\n4:memory:/svc/a\n"
                           "1:cpu,cpuacct:/\n0::/\n");
  auto tree = joy::cgroup_tree::open(root.string(), (dir / "self").string());
  REQUIRE(tree);
  CHECK((*tree)->version() == joy::cgroup_version::v1);
  CHECK((*tree)->describe() == "cgroup v1 (memory, pids, cpu)");
  joy::cgroup_limits limits;
  limits.memory_bytes = 64 << 20;
  limits.pids = 32;
  limits.cpus = 0.5;
  auto cg = (*tree)->create("hello", limits);
  REQUIRE(cg);
  auto mem = root / "memory" / "svc" / "a" / tag() / "hello.1";
  auto pids = root / "pids" / tag() / "hello.1";
  auto cpu = root / "cpu" / tag() / "hello.1";
  CHECK(read_file(mem / "memory.limit_in_bytes") == "67108864");
  CHECK(read_file(mem / "memory.memsw.limit_in_bytes") == "67108864");
  CHECK(read_file(pids / "pids.max") == "32");
  CHECK(read_file(cpu / "cpu.cfs_period_us") == "100000");
  CHECK(read_file(cpu / "cpu.cfs_quota_us") == "50000");
  auto procs = (*cg)->procs_files();
  CHECK(procs.size() == 3);
  CHECK(contains(procs, (pids / "cgroup.procs").string()));
  CHECK((*cg)->oom_kills() == 0);
  write_file(mem / "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n"
                                         "oom_kill 2\n");
  CHECK((*cg)->oom_kills() == 2);
  write_file(mem / "memory.usage_in_bytes", "12345\n");
  CHECK((*cg)->memory_bytes() == 12345);
  CHECK((*cg)->remove());
  CHECK_FALSE(fs::exists(mem));
  CHECK_FALSE(fs::exists(pids));
  // A second plugin gets a directory of its own.
  auto cg2 = (*tree)->create("hello", limits);
  REQUIRE(cg2);
  CHECK(fs::exists(root / "pids" / tag() / "hello.2"));
  cg2->reset();
  CHECK_FALSE(fs::exists(root / "pids" / tag() / "hello.2"));
  tree->reset();
  CHECK_FALSE(fs::exists(root / "pids" / tag()));
}

TEST_CASE("a v2 cgroup is made under a delegated subtree with every limit in "
          "one directory",
          "[actors][sandbox]") {
  joy::test::temp_dir dir;
  auto root = dir / "cg";
  write_file(root / "cgroup.controllers", "cpuset cpu io memory pids\n");
  fs::create_directories(root / "svc");
  write_file(dir / "self", "0::/svc\n");
  auto tree = joy::cgroup_tree::open(root.string(), (dir / "self").string());
  REQUIRE(tree);
  CHECK((*tree)->version() == joy::cgroup_version::v2);
  // The daemon moves to a leaf so that its own cgroup may delegate.
  CHECK(fs::is_directory(root / "svc" / (tag() + ".daemon")));
  // One controller per write (a fake file keeps the last one).
  CHECK(read_file(root / "svc" / "cgroup.subtree_control") == "+cpu");
  CHECK(read_file(root / "svc" / tag() / "cgroup.subtree_control") == "+cpu");
  joy::cgroup_limits limits;
  limits.memory_bytes = 1 << 30;
  limits.pids = 128;
  limits.cpus = 1.5;
  auto cg = (*tree)->create("demo", limits);
  REQUIRE(cg);
  auto d = root / "svc" / tag() / "demo.1";
  CHECK(read_file(d / "memory.max") == "1073741824");
  CHECK(read_file(d / "memory.swap.max") == "0");
  CHECK(read_file(d / "pids.max") == "128");
  CHECK(read_file(d / "cpu.max") == "150000 100000");
  CHECK((*cg)->procs_files()
        == std::vector<std::string>{(d / "cgroup.procs").string()});
  write_file(d / "memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n");
  CHECK((*cg)->oom_kills() == 1);
}

TEST_CASE("the daemon's memory limit is the least set on its cgroup or above",
          "[actors][sandbox]") {
  joy::test::temp_dir dir;
  auto root = dir / "cg";
  write_file(root / "cgroup.controllers", "cpuset cpu io memory pids\n");
  fs::create_directories(root / "slice" / "svc");
  write_file(dir / "self", "0::/slice/svc\n");
  auto tree = joy::cgroup_tree::open(root.string(), (dir / "self").string());
  REQUIRE(tree);
  CHECK((*tree)->memory_limit() == std::numeric_limits<uint64_t>::max());
  write_file(root / "slice" / "svc" / "memory.max", "max\n");
  write_file(root / "slice" / "memory.max", "4294967296\n");
  CHECK((*tree)->memory_limit() == uint64_t{4} << 30);
  write_file(root / "slice" / "svc" / "memory.max", "1073741824\n");
  CHECK((*tree)->memory_limit() == uint64_t{1} << 30);
}

TEST_CASE("cgroups left by a daemon that died are swept, the live ones kept",
          "[actors][sandbox]") {
  joy::test::temp_dir dir;
  auto root = dir / "cg";
  for (auto c : {"memory", "pids", "cpu"})
    fs::create_directories(root / c);
  write_file(dir / "self", "8:pids:/\n4:memory:/\n1:cpu:/\n");
  // pid_max is at most 2^22: this daemon cannot be alive.
  auto dead = root / "pids" / "joy.9999999";
  fs::create_directories(dead / "hello.1");
  auto tree = joy::cgroup_tree::open(root.string(), (dir / "self").string());
  REQUIRE(tree);
  auto cg = (*tree)->create("live", {});
  REQUIRE(cg);
  CHECK((*tree)->sweep() >= 2);
  CHECK_FALSE(fs::exists(dead));
  CHECK(fs::exists(root / "pids" / tag() / "live.1"));
}

TEST_CASE("a machine without a cgroup hierarchy is told apart",
          "[actors][sandbox]") {
  joy::test::temp_dir dir;
  write_file(dir / "self", "0::/\n");
  auto tree = joy::cgroup_tree::open((dir / "nothing").string(),
                                     (dir / "self").string());
  REQUIRE_FALSE(tree);
  CHECK(joy::code_of(tree.error()) == joy::errc::unavailable);
}

TEST_CASE("the seccomp programs build, and the network one differs",
          "[actors][sandbox]") {
  auto local = joy::build_seccomp_filter(joy::seccomp_options{false});
  auto network = joy::build_seccomp_filter(joy::seccomp_options{true});
  REQUIRE(local);
  REQUIRE(network);
  // BPF instructions are 8 bytes each.
  CHECK(local->size() % 8 == 0);
  CHECK(local->size() > 8 * 50);
  CHECK(*local != *network);
}

TEST_CASE("a plugin's policy takes its manifest's resources over the node's "
          "defaults",
          "[actors][sandbox]") {
  joy::sandbox_settings settings;
  joy::plugin_manifest m;
  m.resources.memory_bytes = 64 << 20;
  m.resources.cpus = 0.5;
  m.sandbox.network = true;
  auto p = joy::make_sandbox_policy(settings, m, "/p/code", "/p/work", true);
  CHECK(p.enabled);
  CHECK(p.uid == 200000);
  CHECK(p.uid_count == 65536);
  CHECK(p.network);
  CHECK(p.limits.memory_bytes == 64 << 20);
  CHECK(p.limits.cpus == 0.5);
  CHECK(p.limits.pids == settings.pids);
  CHECK(p.disk_bytes == settings.disk_bytes);
  // Not root: nothing to drop to.
  auto q = joy::make_sandbox_policy(settings, m, "/p/code", "/p/work", false);
  CHECK(q.uid == -1);
  settings.enabled = false;
  auto none = joy::make_sandbox_policy(settings, m, "/p/code", "/p/work", true);
  CHECK_FALSE(none.enabled);
  CHECK(none.uid == -1);
  CHECK_FALSE(none.network);
}

TEST_CASE("bubblewrap's command line unshares everything and binds only the "
          "plugin's folders and system paths",
          "[actors][sandbox]") {
  joy::sandbox_policy p;
  p.enabled = true;
  p.code_dir = "/h/plugins/x/1.0";
  p.work_dir = "/h/work/x";
  p.disk_bytes = 8 << 20;
  joy::sandbox_sources src{"/stage/code", "/stage/work", "/stage/joy-exec", 5};
  auto a = joy::bwrap_arguments(p, src);
  for (auto flag : {"--unshare-all", "--unshare-user", "--disable-userns",
                    "--die-with-parent", "--new-session"})
    CHECK(contains(a, flag));
  CHECK_FALSE(contains(a, "--share-net"));
  CHECK_FALSE(contains(a, "/etc/resolv.conf"));
  CHECK_FALSE(contains(a, "/etc/shadow"));
  CHECK_FALSE(contains(a, "/etc"));
  CHECK_FALSE(contains(a, "/home"));
  CHECK_FALSE(contains(a, "/root"));
  // Both writable tmpfs are capped.
  for (auto dir : {"/tmp", "/dev/shm"}) {
    INFO(dir);
    auto at = index_of(a, dir);
    REQUIRE(at >= 3);
    CHECK(a[at - 1] == "--tmpfs");
    CHECK(a[at - 2] == "8388608");
    CHECK(a[at - 3] == "--size");
  }
  auto code = index_of(a, "/stage/code");
  REQUIRE(code > 0);
  CHECK(a[code - 1] == "--ro-bind");
  CHECK(a[code + 1] == p.code_dir);
  auto work = index_of(a, "/stage/work");
  REQUIRE(work > 0);
  CHECK(a[work - 1] == "--bind");
  CHECK(a[work + 1] == p.work_dir);
  CHECK(a[index_of(a, "--seccomp") + 1] == "5");
  CHECK(a.back() == "--");
  // Only a plugin with a runtime (a Python script) gets one, read-only.
  CHECK_FALSE(contains(a, joy::inner_runtime_path));
  src.runtime = "/stage/runtime";
  auto r = joy::bwrap_arguments(p, src);
  auto runtime = index_of(r, "/stage/runtime");
  REQUIRE(runtime > 0);
  CHECK(r[runtime - 1] == "--ro-bind");
  CHECK(r[runtime + 1] == joy::inner_runtime_path);
  src.runtime.clear();
  p.network = true;
  auto b = joy::bwrap_arguments(p, src);
  CHECK(contains(b, "--share-net"));
  if (fs::exists("/etc/resolv.conf") && !fs::is_symlink("/etc/resolv.conf"))
    CHECK(contains(b, "/etc/resolv.conf"));
}

TEST_CASE("a plugin given GPUs sees their device nodes and /sys, and no "
          "other GPU",
          "[actors][sandbox]") {
  joy::test::temp_dir dev;
  for (auto name : {"nvidiactl", "nvidia-uvm", "nvidia0", "nvidia1", "nvidia12",
                    "nvidia-modeset", "null"})
    write_file(dev.path() / name, "");
  auto at = [&](const char* name) { return (dev.path() / name).string(); };
  // Device 1 alone: its node and the driver's shared ones.
  auto one = joy::gpu_device_nodes({1}, false, dev.path().string());
  std::sort(one.begin(), one.end());
  CHECK(one
        == std::vector<std::string>{at("nvidia-modeset"), at("nvidia-uvm"),
                                    at("nvidia1"), at("nvidiactl")});
  // Every GPU (the gpu service); devices that do not exist are left out.
  auto all = joy::gpu_device_nodes({}, true, dev.path().string());
  CHECK(contains(all, at("nvidia0")));
  CHECK(contains(all, at("nvidia12")));
  CHECK_FALSE(contains(all, at("null")));
  CHECK(joy::gpu_device_nodes({7}, false, dev.path().string()).size() == 3);
  joy::sandbox_policy p;
  p.enabled = true;
  p.code_dir = "/h/plugins/x/1.0";
  p.work_dir = "/h/work/x";
  joy::sandbox_sources src{"/stage/code", "/stage/work", "/stage/joy-exec", 5};
  auto plain = joy::bwrap_arguments(p, src);
  CHECK_FALSE(contains(plain, "--dev-bind-try"));
  CHECK_FALSE(contains(plain, "/sys"));
  CHECK_FALSE(contains(joy::landlock_read_only(p), "/sys"));
  p.devices = one;
  auto a = joy::bwrap_arguments(p, src);
  for (auto& d : one) {
    auto i = index_of(a, d);
    REQUIRE(i > 0);
    CHECK(a[i - 1] == "--dev-bind-try");
    CHECK(a[i + 1] == d);
  }
  // After bubblewrap's own /dev, or they would be hidden under it.
  CHECK(index_of(a, "--dev") < index_of(a, "--dev-bind-try"));
  auto sys = index_of(a, "/sys");
  REQUIRE(sys > 0);
  CHECK(a[sys - 1] == "--ro-bind-try");
  CHECK(contains(joy::landlock_read_only(p), "/sys"));
}
