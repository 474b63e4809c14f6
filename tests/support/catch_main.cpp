// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// The one Catch2 main of every test binary. Before running tests it sweeps
// what killed earlier runs left behind (see temp_dir.hpp).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <csignal>

#include "tests/support/temp_dir.hpp"

int main(int argc, char* argv[]) {
  // Writes to a peer that died must fail with EPIPE, not kill the test.
  std::signal(SIGPIPE, SIG_IGN);
  joy::test::sweep_leftovers();
  return Catch::Session().run(argc, argv);
}
