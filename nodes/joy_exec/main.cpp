// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// joy-exec: the tiny helper joyd posix_spawns for every plugin (DESIGN §7).
// It does what must happen inside the child, then execs the plugin:
//
//   joy-exec --parent <pid> --cwd <dir> -- <executable> [args...]
//
// joyd has already placed the plugin's socket at fd 3, stdin on /dev/null
// and stdout/stderr on the plugin's log. Here: arm PDEATHSIG (a killed daemon
// leaves no plugin behind), close every other fd, enter the plugin's folder.
// The sandbox steps (uid drop, rlimits, seccomp) join here later.

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

[[noreturn]] void die(const char* what, const char* detail) {
  std::fprintf(stderr, "joy-exec: %s%s%s\n", what, detail ? ": " : "",
               detail ? detail : "");
  _exit(127);
}

} // namespace

int main(int argc, char** argv) {
  long parent = -1;
  const char* cwd = nullptr;
  int i = 1;
  for (; i < argc; ++i) {
    if (std::strcmp(argv[i], "--parent") == 0 && i + 1 < argc) {
      parent = std::strtol(argv[++i], nullptr, 10);
    } else if (std::strcmp(argv[i], "--cwd") == 0 && i + 1 < argc) {
      cwd = argv[++i];
    } else if (std::strcmp(argv[i], "--") == 0) {
      ++i;
      break;
    } else {
      die("usage: joy-exec --parent PID --cwd DIR -- EXECUTABLE [ARGS...]",
          argv[i]);
    }
  }
  if (i >= argc)
    die("no executable given", nullptr);
  // Die with the daemon. PDEATHSIG follows the thread that spawned us, which
  // is the daemon's long-lived spawner thread.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
    die("prctl(PR_SET_PDEATHSIG)", std::strerror(errno));
  // The daemon may have died before PDEATHSIG was armed.
  if (parent > 0 && ::getppid() != parent)
    _exit(127);
  // Nothing but stdio and the plugin's socket crosses into the plugin.
  if (::close_range(4, ~0U, 0) != 0)
    die("close_range", std::strerror(errno));
  if (cwd != nullptr && ::chdir(cwd) != 0)
    die("chdir", std::strerror(errno));
  ::execv(argv[i], argv + i);
  die("cannot execute plugin", std::strerror(errno));
}
