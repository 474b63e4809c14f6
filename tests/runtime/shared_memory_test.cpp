// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "runtime/shared_memory.hpp"

using namespace joy;
using Catch::Matchers::Contains;

namespace {

constexpr std::size_t mib = std::size_t{1} << 20;

/// The fd of the block behind a buffer from a pool.
int fd_of(const buffer& b) {
  auto* o = dynamic_cast<const shm_origin*>(b.origin().get());
  REQUIRE(o != nullptr);
  return o->block().fd();
}

} // namespace

TEST_CASE("a pool block is sealed shared memory another mapping reads",
          "[runtime][shm]") {
  auto pool = shm_pool::make();
  auto out = pool->allocate(3 * mib + 5);
  REQUIRE(out);
  CHECK(out->shared());
  CHECK(out->size() == 3 * mib + 5);
  for (std::size_t i = 0; i < out->size(); ++i)
    out->data()[i] = static_cast<std::byte>(i * 7);
  auto b = std::move(*out).freeze();
  REQUIRE(b.size() == 3 * mib + 5);
  int seals = ::fcntl(fd_of(b), F_GET_SEALS);
  CHECK((seals & F_SEAL_SHRINK) != 0);
  CHECK((seals & F_SEAL_GROW) != 0);
  // What a receiving process does with the fd.
  auto mapped = shm_block::map(fd_of(b), 0, b.size());
  REQUIRE(mapped);
  CHECK(std::memcmp((*mapped)->data(), b.data(), b.size()) == 0);
  CHECK((*mapped)->fd() != fd_of(b)); // its own dup
}

TEST_CASE("a freed block is reused for a similar size and not for a much "
          "smaller one",
          "[runtime][shm]") {
  auto pool = shm_pool::make();
  const std::byte* first = nullptr;
  {
    auto b = std::move(*pool->allocate(8 * mib)).freeze();
    first = b.data();
    CHECK(pool->stats().blocks_in_use == 1);
  }
  CHECK(pool->stats().blocks_in_use == 0);
  CHECK(pool->stats().bytes_cached == 8 * mib);
  {
    auto again = pool->allocate(6 * mib);
    REQUIRE(again);
    CHECK(again->data() == first);
    CHECK(pool->stats().blocks_reused == 1);
  }
  auto small = pool->allocate(1 * mib);
  REQUIRE(small);
  CHECK(small->data() != first);
  CHECK(pool->stats().blocks_made == 2);
}

TEST_CASE("a freed block is reused only for the tenant it last served",
          "[runtime][shm]") {
  // Whoever got a block's fd may keep it: the block must not carry another
  // tenant's bytes later.
  auto pool = shm_pool::make();
  const std::byte* first = nullptr;
  {
    auto b = std::move(*pool->allocate(4 * mib, "one")).freeze();
    first = b.data();
    CHECK(pool->stats().bytes_in_use == 4 * mib);
  }
  CHECK(pool->stats().bytes_in_use == 0);
  {
    auto other = pool->allocate(4 * mib, "two");
    REQUIRE(other);
    CHECK(other->data() != first);
    CHECK(pool->stats().blocks_reused == 0);
  }
  auto same = pool->allocate(4 * mib, "one");
  REQUIRE(same);
  CHECK(same->data() == first);
  CHECK(pool->stats().blocks_reused == 1);
}

TEST_CASE("a block stays out of the pool while any copy of its buffer lives",
          "[runtime][shm]") {
  auto pool = shm_pool::make();
  auto b = std::move(*pool->allocate(mib)).freeze();
  auto copy = b;
  b = buffer{};
  CHECK(pool->stats().blocks_in_use == 1);
  copy = buffer{};
  CHECK(pool->stats().blocks_in_use == 0);
}

TEST_CASE("the pool caches at most its limit of free bytes", "[runtime][shm]") {
  shm_pool::options opts;
  opts.max_cached = 4 * mib;
  auto pool = shm_pool::make(opts);
  {
    auto a = std::move(*pool->allocate(2 * mib)).freeze();
    auto b = std::move(*pool->allocate(2 * mib)).freeze();
    auto c = std::move(*pool->allocate(2 * mib)).freeze();
  }
  CHECK(pool->stats().bytes_cached <= 4 * mib);
  { auto huge = std::move(*pool->allocate(8 * mib)).freeze(); }
  CHECK(pool->stats().bytes_cached <= 4 * mib);
}

TEST_CASE("a large heap buffer copies into the pool unchanged",
          "[runtime][shm]") {
  auto pool = shm_pool::make();
  std::string text(5 * mib, 'x');
  text[12345] = 'y';
  auto heap = buffer::take(std::string{text});
  CHECK(heap.origin() == nullptr);
  auto shared = pool->copy_of(heap);
  REQUIRE(shared);
  CHECK(dynamic_cast<const shm_origin*>(shared->origin().get()) != nullptr);
  CHECK(*shared == heap);
}

TEST_CASE("mapping refuses what a hostile sender could truncate or overrun",
          "[runtime][shm]") {
  SECTION("an unsealed memfd") {
    int fd = ::memfd_create("joy-test", MFD_CLOEXEC);
    REQUIRE(fd >= 0);
    REQUIRE(::ftruncate(fd, 4096) == 0);
    auto m = shm_block::map(fd, 0, 4096);
    REQUIRE(!m);
    CHECK(code_of(m.error()) == errc::protocol_error);
    CHECK_THAT(message_of(m.error()), Contains("sealed"));
    ::close(fd);
  }
  SECTION("a file that is not a memfd") {
    int fd = ::open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    CHECK(!shm_block::map(fd, 0, 16));
    ::close(fd);
  }
  SECTION("a slice past the end of its block") {
    auto block = shm_block::create(mib);
    REQUIRE(block);
    auto m = shm_block::map((*block)->fd(), mib - 10, 11);
    REQUIRE(!m);
    CHECK_THAT(message_of(m.error()), Contains("outside its block"));
    CHECK(!shm_block::map((*block)->fd(), ~uint64_t{0}, 2));
    CHECK(shm_block::map((*block)->fd(), mib - 10, 10));
  }
}

TEST_CASE("heap writable buffers freeze into plain buffers", "[runtime][shm]") {
  auto w = writable_buffer::on_heap(100);
  REQUIRE(w);
  CHECK(!w->shared());
  std::memset(w->data(), 1, 100);
  auto b = std::move(*w).freeze();
  CHECK(b.size() == 100);
  CHECK(b.origin() == nullptr);
  CHECK(b.readable());
}

TEST_CASE("a large heap buffer comes pre-faulted and is unmapped when its "
          "last holder lets go",
          "[runtime][shm]") {
  constexpr std::size_t size = std::size_t{40} << 20;
  auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> resident(size / page);
  auto w = writable_buffer::on_heap(size);
  REQUIRE(w);
  auto* base = w->data();
  // Every page is in before the writer touches one.
  REQUIRE(::mincore(base, size, resident.data()) == 0);
  CHECK(std::all_of(resident.begin(), resident.end(),
                    [](unsigned char r) { return (r & 1) != 0; }));
  std::memset(base, 5, size);
  auto b = std::move(*w).freeze();
  auto copy = b;
  b = buffer{};
  CHECK(copy.data()[size - 1] == std::byte{5});
  REQUIRE(::mincore(base, size, resident.data()) == 0);
  copy = buffer{};
  // Gone with the last holder: mincore refuses unmapped memory.
  CHECK(::mincore(base, size, resident.data()) == -1);
  CHECK(errno == ENOMEM);
}

TEST_CASE("a block received again maps from the cache, within its bounds",
          "[runtime][shm]") {
  shm_mapping_cache cache{4 * mib, 2};
  auto a = shm_block::create(2 * mib);
  auto b = shm_block::create(2 * mib);
  auto c = shm_block::create(2 * mib);
  REQUIRE((a && b && c));
  auto first = cache.map((*a)->fd(), 0, 100);
  REQUIRE(first);
  // Another fd of the same memfd (as each message brings) hits the cache.
  int again = ::dup((*a)->fd());
  auto second = cache.map(again, 10, 100);
  ::close(again);
  REQUIRE(second);
  CHECK(first->get() == second->get());
  // A cached block still refuses slices outside it.
  CHECK(!cache.map((*a)->fd(), 2 * mib - 1, 2));
  REQUIRE(cache.map((*b)->fd(), 0, 1));
  REQUIRE(cache.map((*c)->fd(), 0, 1));
  CHECK(cache.size() == 2); // a went first
  auto third = cache.map((*a)->fd(), 0, 100);
  REQUIRE(third);
  CHECK(third->get() != first->get());
}
