// A count per key pair (a, b): how many times each was seen so far in a run. The scheduler counts
// the occurrences of a decision site, the simulator the contexts a parent spawned at one site.
// A flat table (open addressing, linear probing, at most half full) rather than a tree: a run
// sees a few dozen to a few hundred keys, and a node per new key was a tenth of a decision's or a
// spawn's cost. It is only looked up, never iterated, so its layout cannot change a result.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace bpftsim::sim {

class CountTable {
 public:
  // The count of (a, b) before this call; counts this call.
  std::uint32_t next(std::uint64_t a, std::uint64_t b);
  // Empties the table and keeps its room, unless it has more than max_slots (then it is left as
  // it is and the call returns false). Emptying is a new epoch, not a pass over the slots.
  bool reset(std::size_t max_slots);

 private:
  struct Slot {
    std::uint64_t a = 0;
    std::uint64_t b = 0;
    std::uint32_t count = 0;
    std::uint32_t epoch = 0;  // a slot of an earlier epoch than the table's is empty
  };
  bool live(const Slot& s) const { return s.epoch == epoch_; }
  static std::size_t home(std::uint64_t a, std::uint64_t b, std::size_t mask);
  void grow();
  std::vector<Slot> slots_;
  std::size_t used_ = 0;
  std::size_t last_ = 0;  // the slot of the last key counted (a run often counts one key again)
  std::uint32_t epoch_ = 1;
};

}  // namespace bpftsim::sim
