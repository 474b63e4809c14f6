// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// hello: the smallest useful Joy plugin, written with the C++ SDK.
//
//   joy install build/examples/hello
//   joy call hello echo '"hi"'      # "hi"
//   joy call hello add 2 3          # 5
//   joy call hello slow 1.5 '"done"' # "done", after 1.5 s of progress
//   joy call hello nap 30 --timeout 1   # gives up after 1 s, and so does
//                                       # the plugin (slow's progress would
//                                       # renew the deadline)

// --(doc-hello-begin)--
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <thread>

#include "runtime/plugin.hpp"

int main(int argc, char** argv) {
  joy::plugin hello{"hello"};
  hello.exports.add("echo", [](joy::value x) { return x; }, {"value"});
  hello.exports.add("add",
                    [](int64_t a, int64_t b) -> caf::expected<int64_t> {
                      int64_t sum;
                      if (__builtin_add_overflow(a, b, &sum))
                        return joy::make_error(
                          joy::errc::invalid_argument,
                          "add: the sum does not fit in 64 bits");
                      return sum;
                    },
                    {"a", "b"});
  // Runs in the plugin's actor: other calls wait until it returns. It
  // reports progress (which keeps the caller's deadline alive) and stops
  // early when the caller gives up (a deadline passed, Ctrl-C).
  hello.exports.add(
    "slow",
    [](joy::context& ctx, double seconds,
       joy::value result) -> caf::expected<joy::value> {
      using clock = std::chrono::steady_clock;
      auto start = clock::now();
      auto total = std::chrono::duration<double>{seconds};
      auto last_report = start;
      for (;;) {
        auto done = clock::now() - start;
        if (done >= total)
          return result;
        if (ctx.cancelled())
          return joy::make_error(joy::errc::cancelled,
                                 "slow: the caller gave up");
        if (clock::now() - last_report > std::chrono::milliseconds{200}) {
          ctx.progress(done / total, "working");
          last_report = clock::now();
        }
        std::this_thread::sleep_for(std::min<clock::duration>(
          std::chrono::duration_cast<clock::duration>(total - done),
          std::chrono::milliseconds{20}));
      }
    },
    {"seconds", "result"});
  // Sleeps without a word of progress, but stops as soon as the caller
  // gives up.
  hello.exports.add(
    "nap",
    [](joy::context& ctx, double seconds) -> caf::expected<bool> {
      auto end
        = std::chrono::steady_clock::now()
          + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::duration<double>{seconds});
      while (std::chrono::steady_clock::now() < end) {
        if (ctx.cancelled())
          return joy::make_error(joy::errc::cancelled,
                                 "nap: the caller gave up");
        std::this_thread::sleep_for(std::chrono::milliseconds{10});
      }
      return true;
    },
    {"seconds"});
  return joy::run_plugin(argc, argv, std::move(hello));
}
// --(doc-hello-end)--
