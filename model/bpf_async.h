// BPF timers, the lock-free design of kernel/bpf/helpers.c in v7.0 (reference 2.20-2.22: the
// "timer_nolock" series, "bpf: Enable bpf_timer and bpf_wq in any context" and its follow-ups).
//
//   struct bpf_async_kern   only the pointer to the struct bpf_async_cb (bytes 0-7 of the map
//                           value's struct bpf_timer); no bpf_spin_lock any more
//   struct bpf_async_cb     refcnt (1 = the map's reference), prog + callback_fn updated with
//                           xchg, an irq_work with its command list (async_cmds)
//   bpf_timer_init          allocate, cmpxchg(NULL -> cb): the loser frees its object, -EBUSY
//   bpf_timer_start         2.21: refcount_inc_not_zero (-ENOENT while being freed), the
//                           temporary reference held across hrtimer_start; in a context that
//                           must defer, a START command to the cb's irq_work instead
//   bpf_timer_cancel        synchronous only: -EOPNOTSUPP where it would have to defer
//   bpf_timer_cancel_async  (kfunc, 2.21) hrtimer_try_to_cancel, or a deferred CANCEL
//                           (-ECANCELED); never waits
//   bpf_async_cancel_and_free  xchg(pointer, NULL), hrtimer_try_to_cancel (never waits), drop
//                           the map's reference; the last reference frees after a grace period
//                           (call_rcu_tasks_trace), where 2.21 cancels again and retries after
//                           another grace period while the callback still runs
//   bpf_async_irq_worker    runs the queued commands in an irq_work (hardirq) on the CPU that
//                           queued them
//
// What the profile switches here (KernelProfile, model/profile.h):
//   2.20 timer_nolock       this unit instead of BpfTimers, as in an intermediate revision of the
//                           series: bpf_timer_start holds no reference across hrtimer_start and
//                           the delayed free does not cancel again (reference 4.15: a start that
//                           races with the last put arms a timer on memory about to be freed);
//                           no deferral: NMI still -EOPNOTSUPP for the four helpers
//   2.21 timer_any_context  the merged form: temporary reference, re-cancel and retry in the
//                           delayed free, NMI ops deferred to irq_work, bpf_timer_cancel_async
//   2.22 timer_defer_irqs_off  defer also in hardirq and with IRQs disabled; the per-CPU
//                           async_cb_running recursion guard (-EDEADLK); the prog reference
//                           dropped at cancel_and_free
// The model's one RCU flavour stands for RCU-tasks-trace (and the RCU grace period implied
// after it): BPF program runs and softirqs are its read-side sections.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "model/bpf_timer.h"

namespace bpftsim::model {

class BpfAsync final : public BpfTimerOps {
 public:
  enum Op : int { kStart = 1, kCancel = 2 };

  explicit BpfAsync(Kernel& k);
  ~BpfAsync() override;

  sim::Co<std::int64_t> init(sim::Context& ctx, std::uint64_t timer_addr, std::uint64_t map_addr,
                             std::uint64_t flags) override;
  sim::Co<std::int64_t> set_callback(sim::Context& ctx, std::uint64_t timer_addr,
                                     std::uint64_t callback_fn, BpfProg& prog) override;
  sim::Co<std::int64_t> start(sim::Context& ctx, std::uint64_t timer_addr, std::uint64_t nsecs,
                              std::uint64_t flags) override;
  sim::Co<std::int64_t> cancel(sim::Context& ctx, std::uint64_t timer_addr) override;
  sim::Co<std::int64_t> cancel_async(sim::Context& ctx, std::uint64_t timer_addr) override;
  sim::Co<void> cancel_and_free(sim::Context& ctx, std::uint64_t timer_addr) override;

 private:
  // Whether an op from `ctx` goes through the irq_work (defer_timer_wq_op).
  bool must_defer(const sim::Context& ctx) const;
  // bpf_async_schedule_op: queue `op` on cb's irq_work; the command owns one reference of cb
  // (the caller's). 0, or -EDEADLK (2.22: this CPU runs cb's commands now; the caller keeps its
  // reference).
  int schedule_op(sim::Context& ctx, BpfHrtimer& cb, Op op, HrtimerExpiry e);
  sim::Co<void> irq_worker(sim::Context& ctx, BpfHrtimer& cb);
  // refcount_dec_and_test: the last reference frees cb after a grace period.
  sim::Co<void> put(sim::Context& ctx, BpfHrtimer& cb);
  void free_after_gp(sim::Context& ctx, BpfHrtimer& cb);
  // Resets prog and callback_fn (xchg), putting the prog reference.
  sim::Co<void> drop_prog(sim::Context& ctx, BpfHrtimer& cb);

  std::vector<BpfHrtimer*> async_cb_running_;  // 2.22, per CPU
  // Each bpf_async_cb's irq_work command list (llist async_cmds), oldest first, by object id;
  // only while commands wait (kept here, not in every BpfHrtimer).
  struct AsyncCmd {
    Op op = kStart;
    HrtimerExpiry expiry;
  };
  std::map<ObjId, std::vector<AsyncCmd>> async_cmds_;
};

}  // namespace bpftsim::model
