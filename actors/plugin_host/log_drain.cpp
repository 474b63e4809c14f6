// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "actors/plugin_host/log_drain.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "runtime/log.hpp"

namespace joy {

log_drain::log_drain(kj::UnixEventPort& port, unique_fd pipe, std::string path,
                     uint64_t cap)
  : pipe_(std::move(pipe)),
    path_(std::move(path)),
    cap_(cap),
    observer_(port, pipe_.get(), kj::UnixEventPort::FdObserver::OBSERVE_READ) {
  // nop
}

kj::Promise<void> log_drain::run() {
  if (!drain())
    return kj::READY_NOW;
  return observer_.whenBecomesReadable().then([this] { return run(); });
}

bool log_drain::drain() {
  char buf[65536];
  for (;;) {
    auto n = ::read(pipe_.get(), buf, sizeof(buf));
    if (n > 0) {
      append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    // EAGAIN: more later; 0 (or an error): every writer is gone.
    return n < 0 && errno == EAGAIN;
  }
}

void log_drain::append(const char* data, std::size_t size) {
  // Reopened when rotation or a user removed it; the log lives in memory
  // or on a local disk, so these calls do not wait on the network.
  struct stat at_path {};
  struct stat ours {};
  bool gone
    = ::stat(path_.c_str(), &at_path) != 0
      || (file_ && ::fstat(file_.get(), &ours) == 0
          && (ours.st_ino != at_path.st_ino || ours.st_dev != at_path.st_dev));
  if (!file_ || gone) {
    file_.reset(
      ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!file_) {
      dropped_ += size;
      return;
    }
    ::fstat(file_.get(), &at_path);
  }
  // Output dropped before is reported in the log, ahead of what fits now;
  // the report counts against the cap too, which is what the disk holds.
  std::string notice;
  if (dropped_ > dropped_reported_)
    notice = format_log_line(
      log_level::warning, "joy",
      std::to_string(dropped_ - dropped_reported_)
        + " bytes of the plugin's output dropped: its log was full");
  auto current = static_cast<uint64_t>(at_path.st_size);
  if (current + notice.size() + size > cap_) {
    dropped_ += size;
    return;
  }
  if (!notice.empty()) {
    write_all(notice.data(), notice.size());
    dropped_reported_ = dropped_;
  }
  dropped_ += size - write_all(data, size);
}

std::size_t log_drain::write_all(const char* data, std::size_t size) {
  std::size_t done = 0;
  while (done < size) {
    auto n = ::write(file_.get(), data + done, size - done);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  return done;
}

} // namespace joy
