// A random timer workload for property tests: a generated list of operations (BPF programs doing
// timer and map helpers, user-space syscalls, pins, Ctrl-C) with times and CPUs, run on a
// Kernel of 1-4 CPUs with the case's own seed (SeededScheduler), then a full teardown (every
// process exits, every pin is unlinked) and a run to quiescence. run_workload() reports what a
// property judges: the run status, the findings, the invariants, what is still allocated.
//
// Maps (value = struct bpf_timer, key = u32 in [0, kKeys)): 0 ARRAY (kKeys entries), 1 HASH
// (prealloc), 2 HASH (BPF_F_NO_PREALLOC), 3 LRU_HASH; the hashes hold 2 entries, so the third key
// meets -E2BIG (hash) or an eviction (LRU).
//
// Two modes, following reference section 4:
//   kClean      the operations run one after the other (200 us apart, more than any operation,
//               RCU-deferred frees included, takes), and callbacks only re-arm themselves or
//               start other timers. That excludes, by construction, every known seed bug: no
//               bpf_timer_cancel can overlap a cancel_and_free of the same element (4.9), no
//               bpf_timer_init can overlap a uref drop (4.10), no callback frees its own or any
//               other element or cancels anything (4.3-UAF, 4.8, 4.8-free, 4.12 ABBA).
//   kKnownBugs  operations land in one 40 us window on random CPUs, and callbacks may also
//               cancel other timers, delete/update other elements, re-arm then free their own
//               element, or init other timers: every race of section 4 is reachable.
#pragma once

#include <rapidcheck.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "sim/simulator.h"

namespace bpftsim::prop {

inline constexpr int kMaps = 4;
inline constexpr std::uint32_t kKeys = 3;

enum class Mode : std::uint8_t { kClean, kKnownBugs };

// What a timer callback does (its target element is part of the callback's identity).
enum class CbKind : std::uint8_t {
  kPlain,          // returns
  kRearm,          // re-arms its own timer (bounded by the case's budget)
  kStartOther,     // starts the target's timer (same budget)
  kCancelOther,    // bpf_timer_cancel on the target (4.1, 4.8)          [known bugs only]
  kFreeOther,      // deletes (hash) / updates (array) the target (4.8-free, 4.12) [known bugs]
  kRearmFreeSelf,  // re-arms, then deletes/updates its own element (4.3-UAF)     [known bugs]
  kInitOther,      // bpf_timer_init on the target (4.16)                 [known bugs only]
  kCount,
};

enum class OpKind : std::uint8_t {
  kProg,        // a BPF program run (task context) doing `action`
  kUserUpdate,  // BPF_MAP_UPDATE_ELEM from a process holding a map fd
  kUserDelete,  // BPF_MAP_DELETE_ELEM
  kClose,       // close one map fd of a process
  kPin,         // BPF_OBJ_PIN of the map at slot `slot`
  kUnpin,       // unlink that pin
  kGetFdById,   // BPF_MAP_GET_FD_BY_ID into a process
  kExit,        // the process exits (Ctrl-C): every fd closed
};

enum class ProgAction : std::uint8_t {
  kArm,  // (hash: insert if missing) init + set_callback + start
  kInit,
  kSetCallback,
  kStart,
  kCancel,
  kUpdate,
  kDelete,
};

struct Op {
  sim::TimeNs offset_ns = 0;  // kClean: after the op's 200 us slot; kKnownBugs: in the window
  int cpu = 0;                // taken modulo the case's CPU count
  OpKind kind = OpKind::kProg;
  ProgAction action = ProgAction::kArm;
  int map = 0;
  std::uint32_t key = 0;
  int proc = 0;  // user ops: 0 the loader, 1 a second process ("bpftool")
  int slot = 0;  // pin path slot
  // The op's time is a range [t, t + range_ns]: where in it the op starts is a decision (kRange)
  // of the case's scheduler. 0: the op runs at t.
  sim::TimeNs range_ns = 0;
  std::uint64_t nsecs = 0;
  std::uint64_t clock = 1;
  CbKind cb = CbKind::kPlain;
  int cb_map = 0;
  std::uint32_t cb_key = 0;
};

struct Case {
  std::uint64_t seed = 1;
  int cpus = 1;
  int rearm_budget = 0;        // callback re-arms/starts allowed in the whole run
  sim::TimeNs cb_busy_ns = 0;  // extra time each callback spends (widens race windows)
  // The choice model's knobs (sim::SimConfig, model::CostModel); all 0 in gen_case's cases.
  sim::TimeNs window_ns = 0;         // events within W of each other are a tie decision
  int land_max = 0;                  // softirqs may be deferred up to this many boundaries
  sim::TimeNs rcu_gp_jitter_ns = 0;  // RCU grace periods up to this much longer (kGrace)
  sim::TimeNs expiry_jitter_ns = 0;  // timers expire up to this much later (kRange)
  std::vector<Op> ops;
};

// How a workload's schedule is chosen: by default a SeededScheduler of the case's seed; else the
// scheduler this makes (a replay of a recorded decision list, ...).
struct RunControl {
  std::function<std::unique_ptr<sim::Scheduler>()> make_scheduler;
};

struct Outcome {
  sim::RunStatus status = sim::RunStatus::kQuiescent;
  std::vector<sim::Finding> findings;
  std::vector<std::string> violations;         // invariant_violations(quiescent) at the end
  std::vector<std::string> midrun_violations;  // invariant_violations(false) at checkpoints
  std::size_t live_objects = 0;                // slab objects still allocated at the end
  std::size_t armed_timers = 0;
  int callbacks_run = 0;
  int helper_successes = 0;  // timer helper calls that returned >= 0
  std::uint64_t digest = 0;  // of the trace
  sim::DecisionList decisions;
  std::string divergence;  // the scheduler's divergence, if a strict replay stopped fitting
  std::string describe() const;
  bool has_finding(const std::string& kind) const;
};

// The properties a workload's outcome must have, shared by the RapidCheck properties and the
// fuzz harness (tests/fuzz/fuzz_model.cpp). kClean: quiescent, no findings, invariants intact,
// nothing armed or allocated after teardown. kKnownBugs: only the seed's catalogued findings
// (use_after_free, leak, deadlock); invariants hold except a freed timer still queued (4.3-UAF,
// which must then be reported once it expires); a run stops only at a deadlock. Returns what is
// broken, one line each; empty when every property holds.
std::vector<std::string> judge(const Outcome& o, Mode mode);

rc::Gen<Case> gen_case(Mode mode);
// Cases whose schedules are explored: ops given as time ranges, a window W > 0, softirq landing
// deferred, RCU grace periods and timer expiries jittered; the random scheduler of the case's
// seed decides all of it. In kClean mode the ranges stay inside each op's 200 us slot, so the
// clean properties still hold by construction, under every schedule.
rc::Gen<Case> gen_explore_case(Mode mode);
Outcome run_workload(const Case& c, Mode mode, const RunControl& control = {});

void showValue(const Op& op, std::ostream& os);
void showValue(const Case& c, std::ostream& os);

}  // namespace bpftsim::prop
