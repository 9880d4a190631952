// High-resolution timers: kernel/time/hrtimer.c (v5.15) for soft-mode timers.
//
// Each CPU has soft clock bases for CLOCK_MONOTONIC, CLOCK_REALTIME and CLOCK_BOOTTIME. A queued
// timer sits in one base's tree ordered by (expiry, enqueue order): equal expiries run FIFO. When
// the earliest expiry of a CPU passes, its clock event raises HRTIMER_SOFTIRQ on that CPU;
// hrtimer_run_softirq then runs the expired timers of each base in order, one at a time, with
// base->running set while the callback runs (__run_hrtimer).
//   hrtimer_start:         re-queues a queued timer; a timer whose callback is running stays on
//                          its base (switch_hrtimer_base cannot move it); else the local CPU.
//                          HRTIMER_MODE_PINNED (BPF_F_TIMER_CPU_PIN) asks for the local CPU; the
//                          model never moves an unpinned timer away from it either (the nohz
//                          target selection of get_nohz_timer_target is not modelled), so pinning
//                          shows only in the trace.
// A timer has a soft expiry (when it may run) and a hard one (its place in the tree, and when
// the interrupt is programmed), equal except for an absolute expiry below zero (see start()).
//   hrtimer_try_to_cancel: 0 not queued nor running, 1 dequeued, -1 callback running.
//   hrtimer_cancel:        loops on try_to_cancel, spinning while the callback runs.
// A relative CLOCK_REALTIME timer is a CLOCK_MONOTONIC timer (__hrtimer_init).
// Every base operation is one step; the timer's owning object is checked for use-after-free.
// The CPU base lock (cpu_base->lock, a raw spinlock taken with interrupts off) is implied by that:
// a base operation is atomic. It becomes visible only when a hook runs inside an operation
// (model/bpf_trace.h): a program on tracepoint hrtimer_start or hrtimer_cancel runs with the lock
// held, as trace_hrtimer_start/trace_hrtimer_cancel in enqueue_hrtimer/__remove_hrtimer do, and a
// base operation it (or another CPU) starts on that base spins on the lock; the holder's own
// context re-taking it is the self-deadlock of reference 2.1. Hooks: functions
// hrtimer_start_range_ns, hrtimer_try_to_cancel, hrtimer_cancel (fentry/fexit/kprobe, outside the
// lock); tracepoints hrtimer_start (args: hrtimer, mode), hrtimer_cancel (hrtimer; also when
// hrtimer_start re-queues and when an expiring timer is dequeued, as __remove_hrtimer traces it),
// under the lock; hrtimer_expire_entry (hrtimer, now) and hrtimer_expire_exit (hrtimer), outside
// it. An hrtimer pointer is the owner's object id.
#pragma once

#include <boost/intrusive/set.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "model/slab.h"
#include "model/uapi.h"
#include "sim/simulator.h"

namespace bpftsim::model {

class Kernel;

enum HrtimerRestart : int { kHrtimerNoRestart = 0, kHrtimerRestart = 1 };

struct HrTimer : boost::intrusive::set_base_hook<boost::intrusive::optimize_size<true>> {
  using Function = std::function<sim::Co<int>(sim::Context&, HrTimer&)>;

  ObjId owner = 0;                 // object that embeds this hrtimer (checked for use-after-free)
  sim::TimeNs expires_ns = 0;      // hard expiry (node.expires): tree order, interrupt
  sim::TimeNs softexpires_ns = 0;  // soft expiry (_softexpires): runs once the base is past it
  std::uint64_t seq = 0;           // enqueue order, for FIFO on equal expiry
  std::int16_t cpu = -1;           // CPU whose base holds it (or held it last)
  std::uint8_t base_index = 0;     // 0 monotonic, 1 realtime, 2 boottime
  bool enqueued = false;
  std::uint8_t function = 0;  // index of its function among Hrtimers::add_function's
};
struct HrTimerOrder {
  bool operator()(const HrTimer& a, const HrTimer& b) const {
    return a.expires_ns != b.expires_ns ? a.expires_ns < b.expires_ns : a.seq < b.seq;
  }
};

// hrtimer_start_range_ns(timer, tim, 0, mode) after its ktime arithmetic: the soft and hard
// expiry (kTimeNever when saturated) and the mode bits.
struct HrtimerExpiry {
  sim::TimeNs soft = 0;
  sim::TimeNs hard = 0;
  bool abs = false;     // HRTIMER_MODE_ABS (else REL)
  bool pinned = false;  // HRTIMER_MODE_PINNED
};

class Hrtimers {
 public:
  static constexpr int kBases = 3;

  explicit Hrtimers(Kernel& k);
  ~Hrtimers();

  // A timer function, kept here once for all the timers that run it (an HrTimer names it by the
  // index returned, not by a std::function of its own: 1 byte per timer instead of 32).
  std::uint8_t add_function(HrTimer::Function fn);
  // hrtimer_init(timer, clockid, HRTIMER_MODE_REL_SOFT); `function` from add_function.
  void init(HrTimer& t, int clockid, ObjId owner, std::uint8_t function);

  sim::Co<void> start(sim::Context& ctx, HrTimer& t, HrtimerExpiry e);
  sim::Co<int> try_to_cancel(sim::Context& ctx, HrTimer& t);
  sim::Co<int> cancel(sim::Context& ctx, HrTimer& t);

  bool callback_running(const HrTimer& t) const;
  sim::Context* running_context(const HrTimer& t) const;
  std::size_t armed() const;
  std::size_t armed_on(int cpu) const;

  // HRTIMER_SOFTIRQ handler body (hrtimer_run_softirq).
  sim::Co<void> run_softirq(sim::Context& ctx);

  // Invariants: every queued timer is in the base its fields name, flagged enqueued, in order.
  void check_invariants() const;
  // Visits every queued timer (ascending CPU, base, expiry, seq).
  void for_each_queued(const std::function<void(const HrTimer&)>& fn) const;

 private:
  using Tree = boost::intrusive::multiset<HrTimer, boost::intrusive::compare<HrTimerOrder>,
                                          boost::intrusive::constant_time_size<true>>;
  struct ClockBase {
    Tree active;
    HrTimer* running = nullptr;
    sim::Context* running_ctx = nullptr;
    sim::WaitQueue running_waiters;  // hrtimer_cancel spinning for the running callback
  };
  struct ClockEvent;
  struct CpuBase {
    std::array<ClockBase, kBases> bases;
    std::unique_ptr<ClockEvent> event;
    // cpu_base->lock: held only while a hook runs inside a base operation (see lock_wait).
    sim::Context* lock_owner = nullptr;
    sim::WaitQueue lock_waiters;
  };

  ClockBase& base_of(const HrTimer& t) { return cpus_[t.cpu].bases[t.base_index]; }
  const ClockBase& base_of(const HrTimer& t) const { return cpus_[t.cpu].bases[t.base_index]; }
  void enqueue(HrTimer& t, int cpu, sim::TimeNs expires, sim::TimeNs softexpires);
  bool remove(HrTimer& t);
  int try_to_cancel_now(sim::Context& ctx, HrTimer& t);
  void reprogram(int cpu);
  // raw_spin_lock(&cpu_base->lock) of `cpu`: spins while another context (or, nested, this
  // one) holds it. Free, it costs nothing: see the header comment.
  sim::Co<void> lock_wait(sim::Context& ctx, int cpu);
  // Tracepoint `tp` hit inside a base operation: its programs run with `cpu`'s base lock held.
  // Callers test hooked(tp) first, so that a tracepoint nothing is attached to (the common
  // case) costs no coroutine.
  bool hooked(const char* tp) const;
  sim::Co<void> locked_tracepoint(sim::Context& ctx, int cpu, const char* tp,
                                  std::array<std::uint64_t, 5> args);

  Kernel& k_;
  std::vector<CpuBase> cpus_;
  std::vector<HrTimer::Function> functions_;
  std::uint64_t seq_ = 0;
};

}  // namespace bpftsim::model
