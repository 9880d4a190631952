// The heap of bpftsim's executables: a size-class allocator behind the global operator new and
// delete (size_class_heap.cpp), linked into the CLI, the tests and bench_explore (not into
// sanitizer builds, whose allocator finds heap bugs, nor into benchmarks that count glibc's
// blocks). A run builds and tears down a kernel of a few hundred small objects; glibc's malloc
// and free were a seventh of an in-process run. Here a block of up to kMaxSmall bytes comes from
// a per-thread free list of its class (16-byte steps), carved from one reserved address range
// (one sub-range per class, so the class of a pointer is its offset in the range: no header);
// larger blocks, and every block once the range is exhausted or could not be reserved, are
// glibc's. Blocks are never returned to the system: freed blocks stay on the freeing thread's
// lists (a block may migrate between threads), and a thread's lists go to a shared pool when it
// exits. Nothing here can change a result: the simulator never orders by address.
#pragma once

#include <cstddef>

namespace bpftsim::sim::heap {

inline constexpr std::size_t kStep = 16;
inline constexpr std::size_t kClasses = 32;
inline constexpr std::size_t kMaxSmall = kStep * kClasses;  // 512 bytes

// Whether `p` is a block of this heap (false for glibc's blocks).
bool owns(const void* p);
// The size of the class `p` belongs to; 0 when !owns(p).
std::size_t block_size(const void* p);

}  // namespace bpftsim::sim::heap
