// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "runtime/shared_memory.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>

#include "runtime/allocator.hpp"
#include "runtime/errc.hpp"

namespace joy {

namespace {

caf::error sys_error(const char* what, std::size_t size) {
  int e = errno;
  return make_error(e == ENOMEM || e == ENOSPC ? errc::too_large
                                               : errc::internal,
                    std::string{what} + " for " + std::to_string(size)
                      + " bytes of shared memory failed: " + std::strerror(e));
}

} // namespace

// -- shm_block ----------------------------------------------------------------

caf::expected<std::shared_ptr<shm_block>> shm_block::create(std::size_t size) {
  if (size == 0)
    return make_error(errc::invalid_argument,
                      "a shared-memory block cannot be empty");
  int fd = ::memfd_create("joy-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0)
    return sys_error("memfd_create", size);
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    auto err = sys_error("ftruncate", size);
    ::close(fd);
    return err;
  }
  // The receiver refuses blocks that could shrink under its reads.
  if (::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)
      != 0) {
    auto err = sys_error("sealing", size);
    ::close(fd);
    return err;
  }
  // Pre-faulted: whoever fills the block pays no page faults.
  void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_POPULATE, fd, 0);
  if (base == MAP_FAILED) {
    auto err = sys_error("mmap", size);
    ::close(fd);
    return err;
  }
  return std::shared_ptr<shm_block>{
    new shm_block{fd, static_cast<std::byte*>(base), size}};
}

caf::expected<std::shared_ptr<const shm_block>>
shm_block::map(int fd, uint64_t offset, uint64_t size) {
  int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0 || (seals & F_SEAL_SHRINK) == 0)
    return make_error(errc::protocol_error,
                      "a shared-memory block arrived that is not a memfd "
                      "sealed against shrinking");
  struct stat st;
  if (::fstat(fd, &st) != 0 || st.st_size <= 0)
    return make_error(errc::protocol_error,
                      "a shared-memory block arrived that cannot be sized");
  auto total = static_cast<uint64_t>(st.st_size);
  if (offset > total || size > total - offset)
    return make_error(errc::protocol_error,
                      "a shared-memory slice of " + std::to_string(size)
                        + " bytes at offset " + std::to_string(offset)
                        + " lies outside its block of " + std::to_string(total)
                        + " bytes");
  int own = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (own < 0)
    return sys_error("dup", total);
  void* base
    = ::mmap(nullptr, total, PROT_READ, MAP_SHARED | MAP_POPULATE, own, 0);
  if (base == MAP_FAILED) {
    auto err = sys_error("mmap", total);
    ::close(own);
    return err;
  }
  return std::shared_ptr<const shm_block>{
    new shm_block{own, static_cast<std::byte*>(base), total}};
}

shm_block::~shm_block() {
  ::munmap(base_, size_);
  ::close(fd_);
}

// -- shm_mapping_cache --------------------------------------------------------

caf::expected<std::shared_ptr<const shm_block>>
shm_mapping_cache::map(int fd, uint64_t offset, uint64_t size) {
  struct stat st;
  if (::fstat(fd, &st) != 0)
    return make_error(errc::protocol_error,
                      "a shared-memory block arrived that cannot be sized");
  auto dev = static_cast<uint64_t>(st.st_dev);
  auto ino = static_cast<uint64_t>(st.st_ino);
  std::vector<std::shared_ptr<const shm_block>> evicted; // unmapped unlocked
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto i = entries_.begin(); i != entries_.end(); ++i) {
    if (i->dev != dev || i->ino != ino)
      continue;
    // Sealed against growing and shrinking: the size we mapped still holds.
    auto total = static_cast<uint64_t>(i->block->size());
    if (offset > total || size > total - offset)
      return make_error(errc::protocol_error,
                        "a shared-memory slice of " + std::to_string(size)
                          + " bytes at offset " + std::to_string(offset)
                          + " lies outside its block of "
                          + std::to_string(total) + " bytes");
    auto hit = std::move(*i);
    entries_.erase(i);
    entries_.push_back(std::move(hit));
    return entries_.back().block;
  }
  auto block = shm_block::map(fd, offset, size);
  if (!block)
    return block;
  entries_.push_back(entry{dev, ino, *block});
  std::size_t bytes = 0;
  for (auto& e : entries_)
    bytes += e.block->size();
  while (entries_.size() > 1
         && (entries_.size() > max_blocks_ || bytes > max_bytes_)) {
    bytes -= entries_.front().block->size();
    evicted.push_back(std::move(entries_.front().block));
    entries_.erase(entries_.begin());
  }
  return block;
}

std::size_t shm_mapping_cache::size() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return entries_.size();
}

// -- writable_buffer ----------------------------------------------------------

caf::expected<writable_buffer> writable_buffer::on_heap(std::size_t size) {
  writable_buffer result;
  if (size == 0)
    return result;
  if (size >= heap_mmap_threshold) {
    // malloc would map this afresh too, and the writer would then fault it
    // in a page at a time: on a VM each fault is a trip to the hypervisor,
    // and a 256 MiB stream spent more time there than copying (B7b on one
    // node). Mapped pre-faulted, the pages come in one go.
    void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (base == MAP_FAILED)
      return make_error(errc::too_large,
                        "cannot allocate " + std::to_string(size) + " bytes");
    result.data_ = static_cast<std::byte*>(base);
    result.size_ = size;
    result.owner_
      = std::shared_ptr<void>{base, [size](void* p) { ::munmap(p, size); }};
    return result;
  }
  std::shared_ptr<std::byte[]> mem{new (std::nothrow) std::byte[size]};
  if (!mem)
    return make_error(errc::too_large,
                      "cannot allocate " + std::to_string(size) + " bytes");
  result.data_ = mem.get();
  result.size_ = size;
  result.owner_ = std::move(mem);
  return result;
}

buffer writable_buffer::freeze() && {
  buffer result;
  if (size_ == 0)
    result = buffer{};
  else if (origin_)
    result = buffer::in(std::move(origin_), data_, size_);
  else
    result = buffer::adopt(std::move(owner_), data_, size_);
  data_ = nullptr;
  size_ = 0;
  return result;
}

// -- shm_pool -----------------------------------------------------------------

/// A block lent out: it goes back to the pool when the last buffer, and the
/// last remote holder of its capability, let go.
class shm_pool::lease final : public shm_origin {
public:
  lease(std::shared_ptr<shm_pool> pool, std::shared_ptr<shm_block> block,
        std::string tenant)
    : pool_(std::move(pool)),
      block_(std::move(block)),
      tenant_(std::move(tenant)) {
    // nop
  }

  ~lease() override {
    pool_->give_back(std::move(block_), std::move(tenant_));
  }

  const shm_block& block() const noexcept override {
    return *block_;
  }

private:
  std::shared_ptr<shm_pool> pool_;
  std::shared_ptr<shm_block> block_;
  std::string tenant_;
};

std::shared_ptr<shm_pool> shm_pool::make(options opts) {
  if (opts.granularity == 0)
    opts.granularity = 4096;
  return std::shared_ptr<shm_pool>{new shm_pool{opts}};
}

caf::expected<writable_buffer> shm_pool::allocate(std::size_t size,
                                                  const std::string& tenant) {
  if (size == 0)
    return writable_buffer{};
  std::shared_ptr<shm_block> block;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto best = free_.end();
    for (auto i = free_.begin(); i != free_.end(); ++i) {
      auto n = i->block->size();
      if (i->tenant == tenant && n >= size && n / 2 <= size
          && (best == free_.end() || n < best->block->size()))
        best = i;
    }
    if (best != free_.end()) {
      block = std::move(best->block);
      free_.erase(best);
      stats_.bytes_cached -= block->size();
      ++stats_.blocks_reused;
    }
  }
  bool made_here = !block;
  if (made_here) {
    // Outside the lock: making and pre-faulting a block takes a while.
    auto rounded
      = (size + opts_.granularity - 1) / opts_.granularity * opts_.granularity;
    auto made = shm_block::create(rounded);
    if (!made)
      return std::move(made.error());
    block = std::move(*made);
  }
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stats_.blocks_made += made_here ? 1 : 0;
    ++stats_.blocks_in_use;
    stats_.bytes_in_use += block->size();
  }
  writable_buffer result;
  result.data_ = block->data();
  result.size_ = size;
  result.origin_ = std::make_shared<lease>(shared_from_this(), block, tenant);
  return result;
}

caf::expected<buffer> shm_pool::copy_of(const buffer& src) {
  if (!src.readable())
    return make_error(errc::invalid_argument,
                      "cannot copy bytes that are not in this process");
  auto out = allocate(src.size());
  if (!out)
    return std::move(out.error());
  if (src.size() > 0)
    std::memcpy(out->data(), src.data(), src.size());
  return std::move(*out).freeze();
}

void shm_pool::give_back(std::shared_ptr<shm_block> block, std::string tenant) {
  // Unmapped after the lock is released (declared before the guard).
  std::vector<free_block> evicted;
  std::lock_guard<std::mutex> guard{mtx_};
  --stats_.blocks_in_use;
  stats_.bytes_in_use -= block->size();
  if (block->size() > opts_.max_cached)
    return; // unmapped as `block` goes
  stats_.bytes_cached += block->size();
  free_.push_back(free_block{std::move(block), std::move(tenant)});
  // Oldest first out, until the cache fits again.
  while (stats_.bytes_cached > opts_.max_cached) {
    stats_.bytes_cached -= free_.front().block->size();
    evicted.push_back(std::move(free_.front()));
    free_.erase(free_.begin());
  }
}

shm_pool::counters shm_pool::stats() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return stats_;
}

} // namespace joy
