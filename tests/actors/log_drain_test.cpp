// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include <kj/async-io.h>

#include "actors/plugin_host/log_drain.hpp"
#include "tests/support/temp_dir.hpp"

using namespace joy;

namespace {

/// A drain over a pipe the test writes into, as a plugin writes its output.
struct drain_fixture {
  kj::AsyncIoContext io = kj::setupAsyncIo();
  test::temp_dir dir;
  std::string path = (dir.path() / "plugin.log").string();
  unique_fd writer;
  std::unique_ptr<log_drain> drain;

  explicit drain_fixture(uint64_t cap) {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
    writer.reset(fds[1]);
    drain = std::make_unique<log_drain>(io.unixEventPort, unique_fd{fds[0]},
                                        path, cap);
  }

  /// The plugin writes `n` bytes; the drain takes them.
  void output(std::size_t n) {
    std::string line(n - 1, 'x');
    line += '\n';
    REQUIRE(::write(writer.get(), line.data(), n) == static_cast<ssize_t>(n));
    drain->flush();
  }

  uint64_t size() const {
    return std::filesystem::file_size(path);
  }
};

} // namespace

TEST_CASE("a plugin's log never grows past its cap, the report of dropped "
          "output included",
          "[actors][log_drain]") {
  drain_fixture fx{1000};
  fx.output(900);
  CHECK(fx.size() == 900);
  fx.output(200); // does not fit: dropped
  CHECK(fx.size() == 900);
  CHECK(fx.drain->dropped() == 200);
  // 90 bytes would fit alone, but not after the report of the 200 dropped.
  fx.output(90);
  CHECK(fx.size() <= 1000);
  CHECK(fx.drain->dropped() == 290);
}

TEST_CASE("dropped output is reported in the log once there is room",
          "[actors][log_drain]") {
  drain_fixture fx{4096};
  fx.output(4000);
  fx.output(200); // dropped
  // Rotation moved the log away: the drain starts a new one, and says what
  // it dropped before the output that fits.
  std::filesystem::rename(fx.path, fx.path + ".1");
  fx.output(10);
  auto text = test::read_file(fx.path);
  CHECK(text.find("200 bytes of the plugin's output dropped")
        != std::string::npos);
  CHECK(text.substr(text.size() - 10) == std::string(9, 'x') + "\n");
  CHECK(fx.size() <= 4096);
}
