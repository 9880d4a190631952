// Kernel profiles: which kernel's timer semantics the model follows. A profile is a kernel
// version (an era) plus, optionally, single changes on top of it. Each change is one switch here,
// honoured at the place in the model that the kernel changed, so a later era is the seed plus
// switches, never a copy of the model:
//   - the seed, "v5.15" (the commit series "bpf: Introduce bpf timers."), is the default;
//   - each version (kernel_versions()) is the seed plus every change of
//     ../shared/reference/bpf-timer.md sections 0.2 and 2 up to it that the model implements;
//   - "v5.15+2.9", "v6.1+2.9": a version plus single changes (a backport, or a fix tried alone),
//     by their reference section (or name, for a change without one).
// The canonical name of a profile: the latest version whose changes the profile holds (the one
// named when several versions hold the same changes), then "+<id>" for each further change in
// the order of profile_changes(). So "v5.15+2.1" is "v5.16", "v6.8+2.9" is "v6.8" and
// "v5.15+2.9+2.8" is "v5.15+2.8+2.9". Switches exist only together with the model code that
// honours them and tests that show what they change.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "sim/time.h"

namespace bpftsim::model {

struct KernelProfile {
  std::string name = "v5.15";     // canonical (see above)
  std::string version = "v5.15";  // the era it is built on
  // 2.1 "bpf: Forbid bpf_ktime_get_coarse_ns and bpf_timer_* in tracing progs" (v5.16): the
  // verifier refuses kprobe, tracepoint, perf_event and raw_tracepoint programs that use a map
  // holding a bpf_timer (honoured by the verifier, model/verifier.*).
  bool tracing_progs_no_timer = false;
  // 2.2 "bpf: Fix crash due to incorrect copy_map_value" (v5.17): a value with both a
  // bpf_spin_lock and a bpf_timer has both skipped by copies (the seed skipped only the lock).
  bool copy_skips_lock_and_timer = false;
  // "bpf: Add bpf_loop helper" (v5.17): the helper exists; before it, a program calling it is
  // refused at load ("unknown func bpf_loop#181"; helpers::helper_in_profile).
  bool has_bpf_loop = false;
  // 2.4 "bpf: Optimize call_rcu in non-preallocated hash map" (v6.1, the bpf_mem_alloc series):
  // a no-prealloc hash element replaced or deleted is freed at once, its timer cancelled and
  // freed by that update or delete (under the bucket lock, or after it with 2.14), instead of by
  // an RCU callback one grace period later. A map-internal change, not a timer fix.
  bool htab_noprealloc_free_at_once = false;
  // 2.6 "bpf: Add support for absolute value BPF timers" (v6.4): bpf_timer_start takes
  // BPF_F_TIMER_ABS (bit 0), the expiry an absolute time on the timer's clock; before it any
  // flag is -EINVAL.
  bool timer_start_abs = false;
  // 2.7 "bpf: Add ability to pin bpf timer to calling CPU" (v6.7): bpf_timer_start takes
  // BPF_F_TIMER_CPU_PIN (bit 1), the timer armed on the calling CPU's base.
  bool timer_start_cpu_pin = false;
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
  // timer callback, cancel_and_free defers the cancel and the free to a worker on an unbound
  // workqueue (any CPU); inline or deferred, the free is a kfree_rcu, as in the kernel where
  // 2.12 landed on top of 2.9.
  bool defer_free_in_callback = false;
  // 2.14 "bpf: Call free_htab_elem() after htab_unlock_bucket()" (v6.13, CVE-2024-56592): a hash
  // delete unlinks the element under the bucket lock and frees it (releasing its timer with
  // cancel_and_free, which may wait for a running callback) after the unlock. An update still
  // frees the old element's timer under the lock.
  bool htab_delete_frees_after_unlock = false;
  // "bpf: Allow calling static subprogs while holding a bpf_spin_lock" (v6.9): the verifier lets a
  // program call a static subprogram inside a bpf_spin_lock section (walking it with the lock
  // held); a global one is still refused (model/verifier.*, rule spin_lock_call). Before it,
  // every bpf-to-bpf call under the lock is refused.
  bool static_subprog_calls_under_lock = false;
  // 2.20 "timer_nolock" series part 1 (v7.0): the lock-free timer unit (model/bpf_async.h)
  // instead of the bpf_spin_lock one (model/bpf_timer.h), as in the series' intermediate
  // revision: bpf_timer_start holds no temporary reference across hrtimer_start and the delayed
  // free does not cancel again (the use-after-free of reference 4.15); NMI still -EOPNOTSUPP.
  bool timer_nolock = false;
  // 2.21 "bpf: Enable bpf_timer and bpf_wq in any context" (v7.0), as merged: the temporary
  // reference (-ENOENT while being freed), the re-cancel and retry after the grace period, NMI
  // ops deferred to the cb's irq_work, the bpf_timer_cancel_async kfunc, and tracing programs
  // may use timers again (the verifier's tracing_timer rule of 2.1 lifted).
  bool timer_any_context = false;
  // 2.22 the v7.0-cycle follow-ups: ops deferred also in hardirq and with IRQs disabled
  // (bpf_timer_cancel there -> -EOPNOTSUPP), the per-CPU recursion guard (-EDEADLK), the prog
  // reference dropped at cancel_and_free.
  bool timer_defer_irqs_off = false;
};

// One change a profile can hold: a fix of reference section 2 (it closes races: scenarios name
// it in "closed_by") or a feature (a flag, a helper).
struct ProfileFix {
  std::string id;     // reference section, e.g. "2.8" ("bpf_loop" for the helper)
  std::string title;  // the commit title and its kernel version
  bool KernelProfile::*flag;
  std::vector<std::string> requires_fixes = {};  // changes it was written on top of
  bool feature = false;                          // a feature, not a fix
};
// Every change, in the order the kernel got them (the order of a canonical name).
const std::vector<ProfileFix>& profile_changes();
// The fixes only (what "closed_by" may name).
const std::vector<ProfileFix>& profile_fixes();

// A kernel version: the changes it adds to the previous one, and what of it the model leaves out.
struct KernelVersion {
  std::string name;               // "v6.8"
  std::vector<std::string> adds;  // change ids
  std::string not_modelled;       // changes of that version the model does not implement
};
const std::vector<KernelVersion>& kernel_versions();

const KernelProfile& default_profile();
// A version ("v5.15", also "seed", ..., "v7.0"), optionally followed by "+<change id>" for each
// further change, in any order; a change named twice, or already in the version, counts once.
// A change whose prerequisites (requires_fixes) the profile lacks is refused.
std::optional<KernelProfile> profile_by_name(const std::string& name, std::string* error = nullptr);
// Every version, then the seed with each single change (and its prerequisites), canonical names
// ("v5.15+2.1" is "v5.16", so it is not repeated).
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
  // Bounded nondeterminism (scheduler decisions, 0 = none): an RCU grace period lasts up to this
  // much longer than it must (kGrace), and an hrtimer armed by bpf_timer_start expires up to this
  // much later than asked (kRange).
  sim::TimeNs rcu_gp_jitter_ns = 0;
  sim::TimeNs expiry_jitter_ns = 0;
};

}  // namespace bpftsim::model
