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
    if (!live(o)) continue;
    std::size_t i = home(o.a, o.b, mask);
    while (live(slots_[i]))
      i = (i + 1) & mask;
    slots_[i] = o;
  }
}

std::uint32_t CountTable::next(std::uint64_t a, std::uint64_t b) {
  const auto holds = [&](const Slot& s) { return live(s) && s.a == a && s.b == b; };
  if (last_ >= slots_.size() || !holds(slots_[last_])) {
    if (2 * (used_ + 1) > slots_.size()) grow();
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = home(a, b, mask);
    while (live(slots_[i]) && !holds(slots_[i]))
      i = (i + 1) & mask;
    if (!live(slots_[i])) {
      slots_[i] = Slot{a, b, 0, epoch_};
      ++used_;
    }
    last_ = i;
  }
  Slot& s = slots_[last_];
  SIM_ASSERT(s.count != 0xffffffffu, "key ({:x}, {:x}) counted 2^32 times", a, b);
  return s.count++;
}

bool CountTable::reset(std::size_t max_slots) {
  if (slots_.size() > max_slots) return false;
  if (++epoch_ == 0) {  // after 2^32 - 1 resets: every slot back to epoch 0, the table's to 1
    std::fill(slots_.begin(), slots_.end(), Slot{});
    epoch_ = 1;
  }
  used_ = 0;
  return true;
}

}  // namespace bpftsim::sim
