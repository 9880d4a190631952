// Unit tests of the size-class heap behind this binary's operator new/delete
// (sim/alloc/size_class_heap.h). Not built into the sanitizer configuration, which keeps the
// sanitizers' allocator.
#if BPFTSIM_SIZE_CLASS_HEAP
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "sim/alloc/size_class_heap.h"

namespace heap = bpftsim::sim::heap;

TEST_CASE("heap: small blocks come from their class, large ones from glibc", "[heap]") {
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{16}, std::size_t{17},
                        std::size_t{100}, std::size_t{511}, heap::kMaxSmall}) {
    CAPTURE(n);
    void* p = ::operator new(n);
    REQUIRE(heap::owns(p));
    const std::size_t want =
        n == 0 ? heap::kStep : (n + heap::kStep - 1) / heap::kStep * heap::kStep;
    CHECK(heap::block_size(p) == want);
    CHECK(reinterpret_cast<std::uintptr_t>(p) % alignof(std::max_align_t) == 0);
    std::memset(p, 0xa5, n);  // the whole request is usable
    ::operator delete(p);
  }
  void* big = ::operator new(heap::kMaxSmall + 1);
  CHECK_FALSE(heap::owns(big));
  CHECK(heap::block_size(big) == 0);
  ::operator delete(big);
  int on_stack = 0;
  CHECK_FALSE(heap::owns(&on_stack));
}

TEST_CASE("heap: live blocks are distinct, freed blocks are reused by their class", "[heap]") {
  std::vector<void*> live;
  std::set<std::uintptr_t> seen;
  for (int i = 0; i < 5000; ++i) {
    void* p = ::operator new(48);
    std::memset(p, i & 0xff, 48);
    CHECK(seen.insert(reinterpret_cast<std::uintptr_t>(p)).second);
    live.push_back(p);
  }
  // No two live blocks overlap: each still holds its own fill.
  for (int i = 0; i < 5000; ++i)
    CHECK(static_cast<unsigned char*>(live[static_cast<std::size_t>(i)])[47] == (i & 0xff));
  void* last = live.back();
  ::operator delete(last);
  live.pop_back();
  void* again = ::operator new(40);  // the same class (48 bytes): the block just freed
  CHECK(again == last);
  void* other = ::operator new(64);  // another class: not that block
  CHECK(other != last);
  ::operator delete(again);
  ::operator delete(other);
  for (void* p : live)
    ::operator delete(p);
}

TEST_CASE("heap: blocks cross threads, and an exiting thread's blocks are taken back", "[heap]") {
  // A block allocated here and freed by another thread, blocks allocated there and freed here.
  std::vector<std::string*> made_there;
  auto* mine = new std::string(100, 'x');
  std::thread t([&] {
    delete mine;
    for (int i = 0; i < 1000; ++i)
      made_there.push_back(new std::string(200, static_cast<char>('a' + i % 26)));
  });
  t.join();
  for (std::size_t i = 0; i < made_there.size(); ++i) {
    CHECK(made_there[i]->size() == 200);
    CHECK((*made_there[i])[199] == static_cast<char>('a' + i % 26));
    delete made_there[i];
  }
  // Threads that allocate and exit, many times over: what each leaves behind (its free lists and
  // the uncarved rest of its chunks) is taken back by later threads, so the address range in use
  // stays bounded rather than growing by a chunk per class per thread.
  std::set<std::uintptr_t> blocks;
  for (int round = 0; round < 64; ++round) {
    std::thread w([&] {
      void* p = ::operator new(300);
      blocks.insert(reinterpret_cast<std::uintptr_t>(p));
      ::operator delete(p);
    });
    w.join();
  }
  CHECK(blocks.size() < 64);
}
#endif
