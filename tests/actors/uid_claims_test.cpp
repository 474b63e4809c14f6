// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

// Plugin uids claimed across daemons, with plain folders for homes;
// tests/nodes/sandbox_test.cpp checks two real root daemons.

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "actors/sandbox/uid_claims.hpp"
#include "runtime/errc.hpp"
#include "tests/support/temp_dir.hpp"

namespace fs = std::filesystem;

using joy::uid_claims;

namespace {

constexpr uid_t first = 200000;
constexpr uid_t count = 65536;

/// A plugin's work dir in a home of its own; owned by root (0) until its
/// first start, as the installer leaves it.
std::string work_dir(const joy::test::temp_dir& tmp, const std::string& home,
                     const std::string& plugin) {
  auto dir = tmp.path() / home / "work" / plugin;
  fs::create_directories(dir);
  return dir.string();
}

uid_t claim(uid_claims& claims, const std::string& dir, uid_t owner = 0,
            std::vector<bool> taken = {}) {
  auto uid = claims.claim(dir, owner, first, count, taken);
  REQUIRE(uid);
  return *uid;
}

} // namespace

TEST_CASE("plugins of two homes get uids of their own from the same range",
          "[actors][sandbox]") {
  joy::test::temp_dir tmp;
  uid_claims claims{(tmp.path() / "claims").string()};
  auto a = claim(claims, work_dir(tmp, "a", "hello"));
  auto b = claim(claims, work_dir(tmp, "b", "hello"));
  auto c = claim(claims, work_dir(tmp, "a", "demo"));
  CHECK(a == first);
  CHECK(b == first + 1);
  CHECK(c == first + 2);
  // Another daemon's view of the same folder (another instance) agrees.
  uid_claims again{claims.dir()};
  CHECK(claim(again, work_dir(tmp, "b", "demo")) == first + 3);
}

TEST_CASE("a plugin keeps its uid from one start to the next",
          "[actors][sandbox]") {
  joy::test::temp_dir tmp;
  uid_claims claims{(tmp.path() / "claims").string()};
  auto dir = work_dir(tmp, "a", "hello");
  auto uid = claim(claims, dir);
  claim(claims, work_dir(tmp, "b", "hello"));
  // Its work dir is its own now.
  CHECK(claim(claims, dir, uid) == uid);
  // Spelled another way, the same folder is the same claim.
  CHECK(claim(claims, dir + "/../hello", uid) == uid);
}

TEST_CASE("a uid is free again once the work dir it was given to is gone",
          "[actors][sandbox]") {
  joy::test::temp_dir tmp;
  uid_claims claims{(tmp.path() / "claims").string()};
  auto gone = work_dir(tmp, "a", "hello");
  CHECK(claim(claims, gone) == first);
  CHECK(claim(claims, work_dir(tmp, "a", "demo")) == first + 1);
  fs::remove_all(gone);
  CHECK(claim(claims, work_dir(tmp, "b", "hello")) == first);
}

TEST_CASE("uids owned by a home's older work dirs are not claimed for others",
          "[actors][sandbox]") {
  joy::test::temp_dir tmp;
  uid_claims claims{(tmp.path() / "claims").string()};
  std::vector<bool> taken(count, false);
  taken[0] = taken[1] = true;
  CHECK(claim(claims, work_dir(tmp, "a", "new"), 0, taken) == first + 2);
}

TEST_CASE("a work dir whose uid another plugin holds is refused with both "
          "named",
          "[actors][sandbox]") {
  joy::test::temp_dir tmp;
  uid_claims claims{(tmp.path() / "claims").string()};
  auto holder = work_dir(tmp, "b", "hello");
  REQUIRE(claim(claims, holder) == first);
  // From before claims: the same uid given out by another daemon.
  auto old = work_dir(tmp, "a", "hello");
  auto r = claims.claim(old, first, first, count, {});
  REQUIRE_FALSE(r);
  CHECK(joy::code_of(r.error()) == joy::errc::failed_precondition);
  auto what = joy::message_of(r.error());
  CHECK_THAT(what, Catch::Contains(old));
  CHECK_THAT(what, Catch::Contains(holder));
  CHECK_THAT(what, Catch::Contains("uninstall"));
}

TEST_CASE("a used-up range and an unusable claims folder are clear errors",
          "[actors][sandbox]") {
  joy::test::temp_dir tmp;
  uid_claims claims{(tmp.path() / "claims").string()};
  REQUIRE(claims.claim(work_dir(tmp, "a", "x"), 0, first, 2, {}));
  REQUIRE(claims.claim(work_dir(tmp, "a", "y"), 0, first, 2, {}));
  auto full = claims.claim(work_dir(tmp, "a", "z"), 0, first, 2, {});
  REQUIRE_FALSE(full);
  CHECK(joy::code_of(full.error()) == joy::errc::unavailable);
  joy::test::write_file(tmp.path() / "file", "not a folder");
  uid_claims broken{(tmp.path() / "file").string()};
  auto r = broken.claim(work_dir(tmp, "a", "x"), 0, first, count, {});
  REQUIRE_FALSE(r);
  CHECK(joy::code_of(r.error()) == joy::errc::io_error);
  CHECK_THAT(joy::message_of(r.error()), Catch::Contains("plugin uids"));
}

TEST_CASE("a claims folder that is a symlink or writable by others is "
          "refused",
          "[actors][sandbox]") {
  joy::test::temp_dir tmp;
  auto real = tmp.path() / "elsewhere";
  fs::create_directories(real);
  fs::create_symlink(real, tmp.path() / "claims");
  uid_claims linked{(tmp.path() / "claims").string()};
  auto r = linked.claim(work_dir(tmp, "a", "x"), 0, first, count, {});
  REQUIRE_FALSE(r);
  CHECK(joy::code_of(r.error()) == joy::errc::io_error);
  CHECK(fs::is_empty(real)); // nothing was made through the link
  auto open = tmp.path() / "open";
  fs::create_directories(open);
  fs::permissions(open, fs::perms::group_write, fs::perm_options::add);
  uid_claims shared{open.string()};
  auto s = shared.claim(work_dir(tmp, "a", "x"), 0, first, count, {});
  REQUIRE_FALSE(s);
  CHECK_THAT(joy::message_of(s.error()), Catch::Contains("alone"));
}

TEST_CASE("a plugin reinstalled in the same place, or reached through a "
          "symlinked home, keeps its one uid",
          "[actors][sandbox]") {
  joy::test::temp_dir tmp;
  uid_claims claims{(tmp.path() / "claims").string()};
  auto gone = work_dir(tmp, "a", "old");
  CHECK(claim(claims, gone) == first);
  auto dir = work_dir(tmp, "a", "hello");
  CHECK(claim(claims, dir) == first + 1);
  // Uninstalled and installed again: the work dir is new (root's), and a
  // lower uid has lapsed meanwhile; the plugin still gets its own.
  fs::remove_all(gone);
  fs::remove_all(dir);
  fs::create_directories(dir);
  CHECK(claim(claims, dir) == first + 1);
  // The same home spelled through a symlink.
  fs::create_symlink(tmp.path() / "a", tmp.path() / "alias");
  CHECK(
    claim(claims, (tmp.path() / "alias" / "work" / "hello").string(), first + 1)
    == first + 1);
}
