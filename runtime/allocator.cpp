// Joy — an actor-model runtime for ImJoy-style plugins.
// SPDX-License-Identifier: MIT

#include "runtime/allocator.hpp"

#if JOY_WITH_MIMALLOC
#include <mimalloc.h>
#else
#include <malloc.h>
#endif

namespace joy {

void tune_allocator() {
#if JOY_WITH_MIMALLOC
  // Freed pages go back to the kernel after a second instead of 25 ms, for
  // the reason glibc's heap is kept below: fetching them again costs a
  // fault per page here, and calls that come a few times a second would
  // pay it every time. (This reference to mimalloc is also what links it
  // into the programs that call this function, and only into them.)
  mi_option_set(mi_option_decommit_delay, 1000);
#else
  // Setting any of these also stops glibc's own adjustment of the mmap
  // threshold, so all three are set.
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  mallopt(M_TOP_PAD, 512 << 10);
  mallopt(M_MMAP_THRESHOLD, static_cast<int>(heap_mmap_threshold));
#endif
}

} // namespace joy
