// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

/// @file
/// A plugin's stdout and stderr reach its log through the node, never as a
/// file the plugin holds: it writes into a pipe, and `log_drain` appends
/// what comes out to `<logs>/<name>.log` on the kj thread. So the plugin can
/// neither truncate nor rewrite its log, and its output is capped: while the
/// log is over its hard cap (rotation has not caught up yet), output is
/// dropped and counted, and one line says how much once there is room.
#pragma once

#include <cstdint>
#include <string>

#include <kj/async-unix.h>
#include <kj/async.h>

#include "runtime/unique_fd.hpp"

namespace joy {

class log_drain {
public:
  /// Reads `pipe` (non-blocking) into `path`, appending while the file is
  /// under `cap` bytes.
  log_drain(kj::UnixEventPort& port, unique_fd pipe, std::string path,
            uint64_t cap);

  /// Completes when every writer has closed the pipe.
  kj::Promise<void> run();

  /// Appends what the pipe holds now (the plugin exited: all of its output
  /// is there).
  void flush() {
    drain();
  }

  /// Output dropped so far (bytes).
  uint64_t dropped() const noexcept {
    return dropped_;
  }

private:
  /// Reads what is there; false at end of file.
  bool drain();
  void append(const char* data, std::size_t size);
  /// Writes to the file; returns how much was written (all, but on error).
  std::size_t write_all(const char* data, std::size_t size);

  unique_fd pipe_;
  std::string path_;
  uint64_t cap_;
  unique_fd file_;
  uint64_t dropped_ = 0;
  uint64_t dropped_reported_ = 0;
  kj::UnixEventPort::FdObserver observer_;
};

} // namespace joy
