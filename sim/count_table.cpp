#include "sim/count_table.h"

#include <algorithm>

#include "sim/assert.h"

namespace bpftsim::sim {

std::size_t CountTable::home(std::uint64_t a, std::uint64_t b, std::size_t mask) {
  std::uint64_t h = (a * 0xff51afd7ed558ccdULL ^ b) * 0x9e3779b97f4a7c15ULL;
  h ^= h >> 29;
  return static_cast<std::size_t>(h) & mask;
}

void CountTable::grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(old.empty() ? 16 : 2 * old.size(), Slot{});
  const std::size_t mask = slots_.size() - 1;
  for (const Slot& o : old) {
    if (o.count == 0) continue;
    std::size_t i = home(o.a, o.b, mask);
    while (slots_[i].count != 0)
      i = (i + 1) & mask;
    slots_[i] = o;
  }
}

std::uint32_t CountTable::next(std::uint64_t a, std::uint64_t b) {
  if (last_ < slots_.size()) {
    Slot& s = slots_[last_];
    if (s.count != 0 && s.a == a && s.b == b) {
      SIM_ASSERT(s.count != 0xffffffffu, "key ({:x}, {:x}) counted 2^32 times", a, b);
      return s.count++;
    }
  }
  if (2 * (used_ + 1) > slots_.size()) grow();
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = home(a, b, mask);; i = (i + 1) & mask) {
    Slot& s = slots_[i];
    if (s.count == 0) {
      s = Slot{a, b, 1};
      ++used_;
      last_ = i;
      return 0;
    }
    if (s.a == a && s.b == b) {
      last_ = i;
      SIM_ASSERT(s.count != 0xffffffffu, "key ({:x}, {:x}) counted 2^32 times", a, b);
      return s.count++;
    }
  }
}

bool CountTable::reset(std::size_t max_slots) {
  if (slots_.size() > max_slots) return false;
  std::fill(slots_.begin(), slots_.end(), Slot{});
  used_ = 0;
  return true;
}

}  // namespace bpftsim::sim
