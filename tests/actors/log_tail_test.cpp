// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include <catch2/catch.hpp>

#include <string>

#include "actors/node/log_tail.hpp"
#include "tests/support/temp_dir.hpp"

namespace {

std::string tail_of(joy::test::temp_dir& dir, const std::string& text,
                    uint64_t lines) {
  auto log = dir.path() / "x.log";
  joy::test::write_file(log, text);
  auto out = joy::tail_lines(log, lines);
  REQUIRE(out);
  return *out;
}

} // namespace

TEST_CASE("the tail of a log is its last lines as written",
          "[actors][log_tail]") {
  joy::test::temp_dir dir;
  CHECK(tail_of(dir, "", 3).empty());
  CHECK(tail_of(dir, "a\nb\nc\n", 2) == "b\nc\n");
  CHECK(tail_of(dir, "a\nb\nc", 1) == "c");
  CHECK(tail_of(dir, "a\nb\nc", 10) == "a\nb\nc");
  CHECK(tail_of(dir, "a\n\nc\n", 2) == "\nc\n");
  CHECK(tail_of(dir, "a\nb\n", 0).empty());
  auto missing = joy::tail_lines(dir.path() / "none.log", 5);
  REQUIRE(missing);
  CHECK(missing->empty());
}

TEST_CASE("the tail of a large log reads its end only, and a line that starts "
          "where reading starts is whole",
          "[actors][log_tail]") {
  joy::test::temp_dir dir;
  // 1 line asked: 64 KiB read. The last line is exactly that long, after a
  // newline, so it starts where reading starts.
  std::string last(64 * 1024 - 1, 'z');
  auto text = std::string(100 * 1024, 'a') + "\n" + last + "\n";
  CHECK(tail_of(dir, text, 1) == last + "\n");
  // A last line longer than what is read shows cut, not empty.
  std::string huge(2 << 20, 'h');
  auto cut = tail_of(dir, "x\n" + huge + "\n", 1);
  CHECK(cut.size() == (64u << 10));
  CHECK(cut.back() == '\n');
  CHECK(cut.front() == 'h');
}
