// Kernel profiles: which version's timer semantics the model follows. The seed, "v5.15" (the
// commit series "bpf: Introduce bpf timers."), is the default. Each later fix of
// ../shared/reference/bpf-timer.md section 2 is one switch here, honoured at the place in the
// model that the fix changed, so a later profile is the seed plus switches, never a copy of the
// model. A profile name is the seed followed by the fixes switched on, by their reference section:
// "v5.15+2.2+2.8+2.9". Switches exist only together with the model code that honours them and
// tests that show the race they close.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "sim/time.h"

namespace bpftsim::model {

struct KernelProfile {
  std::string name = "v5.15";
  // 2.2 "bpf: Fix crash due to incorrect copy_map_value" (v5.17): a value with both a
  // bpf_spin_lock and a bpf_timer has both skipped by copies (the seed skipped only the lock).
  bool copy_skips_lock_and_timer = false;
  // 2.8 "bpf: Check map->usercnt after timer->timer is assigned" (v6.7): init publishes the
  // pointer, then reads usercnt; 0 -> unpublish, free, -EPERM.
  bool init_checks_usercnt_after_publish = false;
  // 2.9 "bpf: Fix racing between bpf_timer_cancel_and_free and bpf_timer_cancel" (v6.8,
  // CVE-2024-26737): cancel_and_free frees with kfree_rcu; bpf_timer_cancel runs under
  // rcu_read_lock.
  bool cancel_and_free_kfree_rcu = false;
  // 2.11 "bpf: Fail bpf_timer_cancel when callback is being cancelled" (v6.10, CVE-2024-42239):
  // per-timer `cancelling` counters; a callback cancelling a timer whose callback is cancelling
  // it gets -EDEADLK instead of spinning forever.
  bool cancelling_counters = false;
  // 2.12 "bpf: Defer work in bpf_timer_cancel_and_free" (v6.10, CVE-2024-41045): from inside any
  // timer callback, cancel_and_free defers the cancel and the free to a worker; inline or
  // deferred, the free is a kfree_rcu, as in the kernel where 2.12 landed on top of 2.9.
  bool defer_free_in_callback = false;
};

struct ProfileFix {
  std::string id;     // reference section, e.g. "2.8"
  std::string title;  // the commit title
  bool KernelProfile::*flag;
  std::vector<std::string> requires_fixes = {};  // fixes it was written on top of
};
const std::vector<ProfileFix>& profile_fixes();

const KernelProfile& default_profile();
// "v5.15" or "seed", optionally followed by "+<fix id>" for each switched-on fix, in any order;
// a fix named twice counts once. The profile's name is canonical: "v5.15" and its fixes in the
// order of profile_fixes(). A fix whose prerequisites (requires_fixes) are not named is refused.
std::optional<KernelProfile> profile_by_name(const std::string& name, std::string* error = nullptr);
std::vector<std::string>
profile_names();  // the seed and each fix on top of it (with its prerequisites)

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
  // Bounded nondeterminism (scheduler decisions, 0 = none): an RCU grace period lasts up to this
  // much longer than it must (kGrace), and an hrtimer armed by bpf_timer_start expires up to this
  // much later than asked (kRange).
  sim::TimeNs rcu_gp_jitter_ns = 0;
  sim::TimeNs expiry_jitter_ns = 0;
};

}  // namespace bpftsim::model
