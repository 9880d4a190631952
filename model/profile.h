// Kernel profiles: which version's timer semantics the model follows. The seed, "v5.15" (the
// commit series "bpf: Introduce bpf timers."), is the default. Each later fix of
// ../shared/reference/bpf-timer.md section 2 becomes one switch here, honoured at the place in the
// model that the fix changed, so a later profile is the seed plus switches, never a copy of the
// model. A switch is added together with the model code that honours it and its tests.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "sim/time.h"

namespace bpftsim::model {

struct KernelProfile {
  std::string name = "v5.15";
  std::string description = "seed: bpf: Introduce bpf timers (Linux v5.15)";
};

const KernelProfile& default_profile();
std::optional<KernelProfile> profile_by_name(const std::string& name);
std::vector<std::string> profile_names();

// Virtual costs of kernel steps, in ns. A scenario may override any of them.
struct CostModel {
  sim::TimeNs insn_ns = 1;           // one BPF instruction
  sim::TimeNs helper_ns = 20;        // helper entry (argument checks up to the first shared access)
  sim::TimeNs lock_ns = 10;          // a spin lock acquire or release
  sim::TimeNs spin_ns = 10;          // one more turn of a wait loop after a wake-up
  sim::TimeNs hrtimer_op_ns = 40;    // one operation on an hrtimer clock base
  sim::TimeNs alloc_ns = 60;         // kmalloc / kfree
  sim::TimeNs map_op_ns = 30;        // a map operation's own work (hash, copy)
  sim::TimeNs syscall_ns = 200;      // syscall entry / exit
  sim::TimeNs softirq_ns = 50;       // softirq entry
  sim::TimeNs refcnt_ns = 5;         // an atomic refcount change
  sim::TimeNs rcu_gp_min_ns = 5000;  // shortest RCU grace period
};

}  // namespace bpftsim::model
