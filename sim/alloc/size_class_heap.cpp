// The global operator new and delete of bpftsim's executables: see size_class_heap.h.
#include "sim/alloc/size_class_heap.h"

#include <sys/mman.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>

namespace bpftsim::sim::heap {
namespace {

// Each class owns kClassSpan bytes of one reserved range (MAP_NORESERVE: pages cost memory only
// once touched); threads take kChunk bytes of a class's span at a time and carve them.
constexpr std::size_t kClassShift = 29;
constexpr std::size_t kClassSpan = std::size_t{1} << kClassShift;  // 512 MiB
constexpr std::size_t kRange = kClassSpan * kClasses;              // 16 GiB of address space
constexpr std::size_t kChunk = std::size_t{64} << 10;

struct Block {
  Block* next;
};

struct Range {
  char* base = nullptr;
  std::size_t size = 0;  // 0: nothing reserved, every block is glibc's
  std::atomic<std::size_t> used[kClasses] = {};
};

Range& range() {
  static Range* r = [] {
    static Range storage;
    void* p = mmap(nullptr, kRange, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p != MAP_FAILED) {
      storage.base = static_cast<char*>(p);
      storage.size = kRange;
    }
    return &storage;
  }();
  return *r;
}

// p's offset in the range: at least the range's size when p is not a block of it (below the
// range, the difference wraps to above its size; with nothing reserved, the size is 0).
std::uintptr_t offset_in(const Range& r, const void* p) {
  return reinterpret_cast<std::uintptr_t>(p) - reinterpret_cast<std::uintptr_t>(r.base);
}

// Blocks of threads that exited, by class, taken back by any thread whose list runs dry.
struct Orphans {
  std::mutex mu;
  Block* lists[kClasses] = {};
  std::atomic<bool> any{false};
};

Orphans& orphans() {
  static Orphans* o = new (std::malloc(sizeof(Orphans))) Orphans;  // never destroyed
  return *o;
}

void give_to_orphans(std::size_t c, Block* head) {
  if (head == nullptr) return;
  Block* tail = head;
  while (tail->next != nullptr)
    tail = tail->next;
  Orphans& o = orphans();
  std::lock_guard lock(o.mu);
  tail->next = o.lists[c];
  o.lists[c] = head;
  o.any.store(true, std::memory_order_release);
}

// Trivially destructible (constant-initialised, no TLS destructor): usable in any destructor
// that runs at thread exit, before or after Flusher's.
struct ThreadCache {
  Block* free[kClasses];
  char* bump[kClasses];
  char* bump_end[kClasses];
  bool dead;  // Flusher ran: this thread's blocks go straight to the orphans
};
thread_local ThreadCache t_cache{};

// At thread exit: the free lists and the uncarved rest of the chunks go to the orphans.
struct Flusher {
  bool armed = false;
  ~Flusher() {
    ThreadCache& tc = t_cache;
    for (std::size_t c = 0; c < kClasses; ++c) {
      const std::size_t size = (c + 1) * kStep;
      Block* head = tc.free[c];
      for (char* p = tc.bump[c]; p != nullptr && p + size <= tc.bump_end[c]; p += size) {
        auto* b = reinterpret_cast<Block*>(p);
        b->next = head;
        head = b;
      }
      give_to_orphans(c, head);
      tc.free[c] = nullptr;
      tc.bump[c] = tc.bump_end[c] = nullptr;
    }
    tc.dead = true;
  }
};
thread_local Flusher t_flusher;

void* system_alloc(std::size_t n) {
  void* p = std::malloc(n);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

[[gnu::noinline]] void* refill(std::size_t c, std::size_t n) {
  ThreadCache& tc = t_cache;
  if (tc.dead) return system_alloc(n);
  t_flusher.armed = true;  // its first use registers its destructor for this thread
  Orphans& o = orphans();
  if (o.any.load(std::memory_order_acquire)) {
    std::lock_guard lock(o.mu);
    if (Block* b = o.lists[c]) {
      o.lists[c] = nullptr;
      tc.free[c] = b->next;
      return b;
    }
  }
  const std::size_t size = (c + 1) * kStep;
  if (tc.bump[c] == nullptr || tc.bump[c] + size > tc.bump_end[c]) {
    Range& r = range();
    if (r.size == 0) return system_alloc(n);
    const std::size_t off = r.used[c].fetch_add(kChunk, std::memory_order_relaxed);
    if (off + kChunk > kClassSpan) return system_alloc(n);  // this class's span is used up
    tc.bump[c] = r.base + c * kClassSpan + off;
    tc.bump_end[c] = tc.bump[c] + kChunk;
  }
  void* p = tc.bump[c];
  tc.bump[c] += size;
  return p;
}

inline void* allocate(std::size_t n) {
  if (n == 0) n = 1;
  if (n > kMaxSmall) return system_alloc(n);
  const std::size_t c = (n - 1) / kStep;
  ThreadCache& tc = t_cache;
  if (Block* b = tc.free[c]) {
    tc.free[c] = b->next;
    return b;
  }
  return refill(c, n);
}

inline void release(void* p) {
  if (p == nullptr) return;
  const Range& r = range();
  const std::uintptr_t off = offset_in(r, p);
  if (off >= r.size) {
    std::free(p);
    return;
  }
  const std::size_t c = off >> kClassShift;
  auto* b = static_cast<Block*>(p);
  ThreadCache& tc = t_cache;
  if (tc.dead) {
    b->next = nullptr;
    give_to_orphans(c, b);
    return;
  }
  b->next = tc.free[c];
  tc.free[c] = b;
}

}  // namespace

bool owns(const void* p) {
  const Range& r = range();
  return offset_in(r, p) < r.size;
}

std::size_t block_size(const void* p) {
  const Range& r = range();
  const std::uintptr_t off = offset_in(r, p);
  return off < r.size ? ((off >> kClassShift) + 1) * kStep : 0;
}

}  // namespace bpftsim::sim::heap

// The replaceable global allocation functions ([new.delete]); the aligned forms stay the
// library's (aligned_alloc and free, which never see these blocks).
void* operator new(std::size_t n) {
  return bpftsim::sim::heap::allocate(n);
}
void* operator new[](std::size_t n) {
  return bpftsim::sim::heap::allocate(n);
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return bpftsim::sim::heap::allocate(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return bpftsim::sim::heap::allocate(n);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p) noexcept {
  bpftsim::sim::heap::release(p);
}
void operator delete[](void* p) noexcept {
  bpftsim::sim::heap::release(p);
}
void operator delete(void* p, std::size_t) noexcept {
  bpftsim::sim::heap::release(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  bpftsim::sim::heap::release(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  bpftsim::sim::heap::release(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  bpftsim::sim::heap::release(p);
}
