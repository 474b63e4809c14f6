// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// hello: the smallest useful Joy plugin, written with the C++ SDK.
//
//   joy install build/examples/hello
//   joy call hello echo '"hi"'      # "hi"
//   joy call hello add 2 3          # 5
//   joy call hello slow 1.5 '"done"' # "done", after 1.5 s

// --(doc-hello-begin)--
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
  // Runs in the plugin's actor: other calls wait until it returns.
  hello.exports.add("slow",
                    [](double seconds, joy::value result) {
                      std::this_thread::sleep_for(
                        std::chrono::duration<double>{seconds});
                      return result;
                    },
                    {"seconds", "result"});
  return joy::run_plugin(argc, argv, std::move(hello));
}
// --(doc-hello-end)--
