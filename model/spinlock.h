// Spin locks as the BPF timer code uses them: the element's bpf_spin_lock taken with interrupts
// off (kernel/bpf/helpers.c __bpf_spin_lock_irqsave) and the hash table's bucket raw spinlocks
// (kernel/bpf/hashtab.c htab_lock_bucket). Acquire and release are separate steps; a contended
// acquire blocks (spins) naming the owner, so a wait-for cycle through locks is a deadlock.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "sim/co.h"
#include "sim/context.h"

namespace bpftsim::model {

class Kernel;

struct KLock {
  const char* kind = "spinlock";  // "bpf_spin_lock", "htab_bucket", ...
  std::uint64_t id = 0;           // an address or (map, bucket) id, for traces and cycles
  sim::Context* owner = nullptr;
  std::uint8_t* word = nullptr;  // the lock word in map memory, if it lives there
  // Contexts spinning on it; made at the first contention (most locks never see one: 8 bytes
  // per lock instead of a WaitQueue's 24).
  std::unique_ptr<sim::WaitQueue> waiters;
};

// Disables interrupts (irqsave), then spins until the lock is free.
sim::Co<void> spin_lock_irqsave(Kernel& k, sim::Context& ctx, KLock& lock);
// Releases and restores interrupts; ends with a step.
sim::Co<void> spin_unlock_irqrestore(Kernel& k, sim::Context& ctx, KLock& lock);

}  // namespace bpftsim::model
