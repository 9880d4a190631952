#include "model/bpf_async.h"

#include <fmt/format.h>

#include <cstring>

#include "model/errno.h"
#include "model/kernel.h"
#include "model/uapi.h"
#include "sim/assert.h"

namespace bpftsim::model {

namespace {
using timer_word::kMaxClocks;
using timer_word::load;
using timer_word::store;
const char* op_name(int op) {
  return op == BpfAsync::kStart ? "START" : "CANCEL";
}
}  // namespace

BpfAsync::BpfAsync(Kernel& k) : BpfTimerOps(k), async_cb_running_(k.sim.ncpus(), nullptr) {}
BpfAsync::~BpfAsync() = default;

bool BpfAsync::must_defer(const sim::Context& ctx) const {
  if (!k_.profile.timer_any_context) return false;  // 2.20: nothing is deferred
  if (ctx.kind() == sim::CtxKind::kNmi) return true;
  // 2.22: the synchronous path takes hrtimer base locks with irqsave and may wait.
  return k_.profile.timer_defer_irqs_off &&
         (ctx.kind() == sim::CtxKind::kHardirq || ctx.irqs_disabled());
}

int BpfAsync::schedule_op(sim::Context& ctx, BpfHrtimer& cb, Op op, HrtimerExpiry e) {
  if (k_.profile.timer_defer_irqs_off && async_cb_running_[ctx.cpu()] == &cb) {
    ctx.trace("bpf_async_recursion", {{"timer", cb.obj()}, {"op", op_name(op)}});
    return -kEDEADLK;
  }
  async_cmds_[cb.obj()].push_back(AsyncCmd{op, e});
  ctx.trace("bpf_async_queue", {{"timer", cb.obj()}, {"op", op_name(op)}, {"cpu", ctx.cpu()}});
  if (!cb.irq_work_queued) {
    // irq_work_queue: a self-interrupt on this CPU, taken once interrupts are enabled here.
    cb.irq_work_queued = true;
    BpfHrtimer* p = &cb;
    k_.sim.spawn_interrupt(
        ctx.cpu(), sim::CtxKind::kHardirq,
        fmt::format("irq_work bpf_async_irq_worker {}", cb.obj()),
        [this, p](sim::Context& c) -> sim::Co<void> { co_await irq_worker(c, *p); });
  }
  return 0;
}

sim::Co<void> BpfAsync::irq_worker(sim::Context& ctx, BpfHrtimer& cb) {
  cb.irq_work_queued = false;  // irq_work clears its pending bit before running
  std::vector<AsyncCmd> cmds;
  if (auto it = async_cmds_.find(cb.obj()); it != async_cmds_.end()) {
    cmds.swap(it->second);  // llist_del_all, taken oldest first
    async_cmds_.erase(it);
  }
  ctx.trace("bpf_async_irq_worker", {{"timer", cb.obj()}, {"cmds", cmds.size()}});
  co_await ctx.step(k_.cost.softirq_ns);
  const int cpu = ctx.cpu();
  BpfHrtimer* outer = async_cb_running_[cpu];
  if (k_.profile.timer_defer_irqs_off) async_cb_running_[cpu] = &cb;
  for (const AsyncCmd& c : cmds) {
    ctx.trace("bpf_async_cmd", {{"timer", cb.obj()}, {"op", op_name(c.op)}});
    if (c.op == kStart) {
      co_await k_.hrtimers.start(ctx, cb.timer, c.expiry);
    } else {
      co_await k_.hrtimers.try_to_cancel(ctx, cb.timer);
    }
    co_await put(ctx, cb);  // the command's reference
  }
  async_cb_running_[cpu] = outer;
}

sim::Co<void> BpfAsync::put(sim::Context& ctx, BpfHrtimer& cb) {
  // refcount_dec_and_test: the decrement and the test are one atomic step.
  const bool last = --cb.refcnt == 0;
  ctx.trace("bpf_async_put", {{"timer", cb.obj()}, {"refcnt", cb.refcnt}});
  if (cb.refcnt < 0) k_.refcount_underflow(&ctx, cb.obj(), "bpf_async_cb refcnt");
  if (last) free_after_gp(ctx, cb);
  co_await ctx.step(k_.cost.refcnt_ns);
}

void BpfAsync::free_after_gp(sim::Context& ctx, BpfHrtimer& cb) {
  BpfHrtimer* p = &cb;
  k_.rcu.call_rcu(ctx, fmt::format("bpf_async_cb_rcu_tasks_trace_free {}", cb.obj()),
                  [this, p](sim::Context& c) -> sim::Co<void> {
                    if (k_.profile.timer_any_context) {
                      // 2.21: a start that won the race may have armed it since; a callback still
                      // running
                      // (-1) gets another grace period.
                      const int r = co_await k_.hrtimers.try_to_cancel(c, p->timer);
                      if (r < 0) {
                        c.trace("bpf_async_free_retry", {{"timer", p->obj()}});
                        free_after_gp(c, *p);
                        co_return;
                      }
                    }
                    if (p->prog) {
                      BpfProg* prog = p->prog;
                      p->prog = nullptr;
                      p->callback_fn = 0;
                      c.trace("bpf_timer_drop_prog", {{"timer", p->obj()}, {"prog", prog->id}});
                      co_await k_.sys.prog_put(c, *prog);
                    }
                    k_.slab.free(&c, p->obj(), "bpf_async_cb_rcu_tasks_trace_free (kfree_nolock)");
                    co_await c.step(k_.cost.alloc_ns);
                  });
}

sim::Co<void> BpfAsync::drop_prog(sim::Context& ctx, BpfHrtimer& cb) {
  BpfProg* prog = cb.prog;  // xchg(&cb->prog, NULL)
  cb.prog = nullptr;
  cb.callback_fn = 0;
  if (!prog) co_return;
  ctx.trace("bpf_timer_drop_prog", {{"timer", cb.obj()}, {"prog", prog->id}});
  co_await k_.sys.prog_put(ctx, *prog);
}

// bpf_timer_init(timer, map, flags)
sim::Co<std::int64_t> BpfAsync::init(sim::Context& ctx, std::uint64_t timer_addr,
                                     std::uint64_t map_addr, std::uint64_t flags) {
  co_await ctx.step(k_.cost.helper_ns);
  if (!k_.profile.timer_any_context && ctx.kind() == sim::CtxKind::kNmi) co_return -kEOPNOTSUPP;
  const std::uint64_t clockid = flags & (kMaxClocks - 1);
  if (flags >= kMaxClocks ||
      (clockid != kClockMonotonic && clockid != kClockRealtime && clockid != kClockBoottime))
    co_return -kEINVAL;
  BpfMap* map = nullptr;
  std::uint8_t* field = timer_field(ctx, timer_addr, &map, "bpf_timer_init");
  if (!field) co_return -kEINVAL;
  if (k_.map_by_addr(map_addr) != map) {
    k_.program_fault(&ctx,
                     "bpf_timer_init: map argument is not the map holding the timer "
                     "(the verifier's map_uid check would reject this program)");
    co_return -kEINVAL;
  }
  std::int64_t ret = load(field) != 0 ? -kEBUSY : 0;
  ctx.trace("bpf_timer_init_check", {{"map", map->id}, {"usercnt", map->usercnt}, {"ret", ret}});
  co_await ctx.step(k_.cost.refcnt_ns);
  if (ret != 0) co_return ret;
  if (k_.faults.should_fail(FaultSite::kBpfTimerInitKmalloc)) {
    co_await ctx.step(k_.cost.alloc_ns);
    co_return -kENOMEM;
  }
  BpfHrtimer& cb = alloc_timer(ctx, *map, timer_addr, clockid);
  cb.refcnt = 1;  // the map's
  co_await ctx.step(k_.cost.alloc_ns);
  // cmpxchg(&async->cb, NULL, cb): the loser of two concurrent inits frees its object.
  if (load(field) != 0) {
    k_.slab.free(&ctx, cb.obj(), "bpf_timer_init (lost cmpxchg)");
    ctx.trace("bpf_async_init_lost", {{"timer", cb.obj()}, {"map", map->id}});
    co_await ctx.step(k_.cost.alloc_ns);
    co_return -kEBUSY;
  }
  store(field, bpf_hrtimer_ptr(cb.obj()));
  ctx.trace("bpf_timer_publish", {{"timer", cb.obj()}, {"map", map->id}});
  co_await ctx.step(k_.cost.refcnt_ns);
  // smp_mb(), then usercnt: pairs with map_release_uref as 2.8 does.
  if (map->usercnt == 0) ret = -kEPERM;
  ctx.trace("bpf_timer_init_recheck", {{"map", map->id}, {"usercnt", map->usercnt}, {"ret", ret}});
  co_await ctx.step(k_.cost.refcnt_ns);
  if (ret != 0) co_await cancel_and_free(ctx, timer_addr);
  co_return ret;
}

// bpf_timer_set_callback(timer, callback_fn): bpf_async_update_prog_callback, lock-free.
sim::Co<std::int64_t> BpfAsync::set_callback(sim::Context& ctx, std::uint64_t timer_addr,
                                             std::uint64_t callback_fn, BpfProg& prog) {
  co_await ctx.step(k_.cost.helper_ns);
  if (!k_.profile.timer_any_context && ctx.kind() == sim::CtxKind::kNmi) co_return -kEOPNOTSUPP;
  BpfMap* map = nullptr;
  std::uint8_t* field = timer_field(ctx, timer_addr, &map, "bpf_timer_set_callback");
  if (!field) co_return -kEINVAL;
  if (!prog.owns_callback(callback_fn)) {
    k_.program_fault(&ctx, fmt::format("bpf_timer_set_callback: {:#x} is no subprogram of {}",
                                       callback_fn, prog.name));
    co_return -kEINVAL;
  }
  BpfHrtimer* cb = decode(&ctx, load(field), "bpf_timer_set_callback");
  if (!cb || !k_.slab.access(&ctx, cb->obj(), "bpf_timer_set_callback")) co_return -kEINVAL;
  const int r = k_.sys.prog_inc_not_zero(&ctx, prog);
  if (r < 0) co_return r;
  co_await ctx.step(k_.cost.refcnt_ns);
  BpfProg* prev = cb->prog;  // xchg(&cb->prog, prog)
  cb->prog = &prog;
  cb->callback_fn = callback_fn;
  ctx.trace(
      "bpf_timer_set_callback_done",
      {{"timer", cb->obj()}, {"prog", prog.id}, {"callback", prog.callback_name(callback_fn)}});
  co_await ctx.step(k_.cost.refcnt_ns);
  if (prev) co_await k_.sys.prog_put(ctx, *prev);
  co_return 0;
}

// bpf_timer_start(timer, nsecs, flags)
sim::Co<std::int64_t> BpfAsync::start(sim::Context& ctx, std::uint64_t timer_addr,
                                      std::uint64_t nsecs, std::uint64_t flags) {
  co_await ctx.step(k_.cost.helper_ns);
  if (!k_.profile.timer_any_context && ctx.kind() == sim::CtxKind::kNmi) co_return -kEOPNOTSUPP;
  std::uint64_t known = 0;
  if (k_.profile.timer_start_abs) known |= kBpfFTimerAbs;
  if (k_.profile.timer_start_cpu_pin) known |= kBpfFTimerCpuPin;
  if ((flags & ~known) != 0) co_return -kEINVAL;
  BpfMap* map = nullptr;
  std::uint8_t* field = timer_field(ctx, timer_addr, &map, "bpf_timer_start");
  if (!field) co_return -kEINVAL;
  BpfHrtimer* cb = decode(&ctx, load(field), "bpf_timer_start");
  if (!cb || !k_.slab.access(&ctx, cb->obj(), "bpf_timer_start") || !cb->prog) co_return -kEINVAL;
  ctx.trace("bpf_timer_start_read", {{"timer", cb->obj()}});
  co_await ctx.step(k_.cost.refcnt_ns);
  const bool hold = k_.profile.timer_any_context;
  if (hold) {
    // refcount_inc_not_zero: a cb whose last reference is gone is being freed.
    if (cb->refcnt == 0) {
      ctx.trace("bpf_async_get_failed", {{"timer", cb->obj()}});
      co_return -kENOENT;
    }
    ++cb->refcnt;
  }
  ctx.trace("bpf_timer_start_arm", {{"timer", cb->obj()}, {"refcnt", cb->refcnt}});
  co_await ctx.step(k_.cost.refcnt_ns);
  const HrtimerExpiry e = expiry_of(ctx, nsecs, flags);
  if (must_defer(ctx)) {
    const int r = schedule_op(ctx, *cb, kStart, e);  // the command takes our reference
    if (r < 0) co_await put(ctx, *cb);
    co_return r;
  }
  co_await k_.hrtimers.start(ctx, cb->timer, e);
  if (hold) co_await put(ctx, *cb);
  co_return 0;
}

// bpf_timer_cancel(timer): synchronous, may wait for the callback.
sim::Co<std::int64_t> BpfAsync::cancel(sim::Context& ctx, std::uint64_t timer_addr) {
  co_await ctx.step(k_.cost.helper_ns);
  if (ctx.kind() == sim::CtxKind::kNmi || must_defer(ctx)) co_return -kEOPNOTSUPP;
  BpfMap* map = nullptr;
  std::uint8_t* field = timer_field(ctx, timer_addr, &map, "bpf_timer_cancel");
  if (!field) co_return -kEINVAL;
  k_.rcu.read_lock(ctx);  // cb is freed after a grace period
  std::int64_t ret = 0;
  bool counted = false;
  BpfHrtimer* cb = decode(&ctx, load(field), "bpf_timer_cancel");
  BpfHrtimer* cur = hrtimer_running_[ctx.cpu()];
  if (!cb) {
    ret = -kEINVAL;
  } else if (cur == cb) {
    ret = -kEDEADLK;
  } else {
    k_.slab.access(&ctx, cb->obj(), "bpf_timer_cancel");
    ret = co_await cancelling_enter(ctx, *cb, cur, &counted);  // 2.11, kept by the rework
    if (ret == 0) co_await drop_prog(ctx, *cb);
  }
  co_await ctx.step(k_.cost.refcnt_ns);
  if (ret == 0) ret = co_await k_.hrtimers.cancel(ctx, cb->timer);
  if (counted) co_await cancelling_exit(ctx, *cb);
  k_.rcu.read_unlock(ctx);
  co_return ret;
}

// bpf_timer_cancel_async(timer) (kfunc, 2.21): never waits.
sim::Co<std::int64_t> BpfAsync::cancel_async(sim::Context& ctx, std::uint64_t timer_addr) {
  co_await ctx.step(k_.cost.helper_ns);
  BpfMap* map = nullptr;
  std::uint8_t* field = timer_field(ctx, timer_addr, &map, "bpf_timer_cancel_async");
  if (!field) co_return -kEINVAL;
  BpfHrtimer* cb = decode(&ctx, load(field), "bpf_timer_cancel_async");
  if (!cb || !k_.slab.access(&ctx, cb->obj(), "bpf_timer_cancel_async")) co_return -kEINVAL;
  if (cb->refcnt == 0) {
    ctx.trace("bpf_async_get_failed", {{"timer", cb->obj()}});
    co_return -kENOENT;
  }
  ++cb->refcnt;
  co_await ctx.step(k_.cost.refcnt_ns);
  if (must_defer(ctx)) {
    const int r = schedule_op(ctx, *cb, kCancel, HrtimerExpiry{});
    if (r < 0) {
      co_await put(ctx, *cb);
      co_return r;
    }
    co_return -kECANCELED;
  }
  const int r = co_await k_.hrtimers.try_to_cancel(ctx, cb->timer);
  co_await put(ctx, *cb);
  co_return r;
}

// bpf_async_cancel_and_free(val + timer_off), from map code: never waits.
sim::Co<void> BpfAsync::cancel_and_free(sim::Context& ctx, std::uint64_t timer_addr) {
  auto ref = k_.resolve(timer_addr);
  SIM_ASSERT(ref.has_value(), "cancel_and_free on unmapped address {:#x}", timer_addr);
  std::uint8_t* field = ref->map->arena().elem(ref->elem) + ref->off;
  const std::uint64_t ptr = load(field);  // xchg(&async->cb, NULL)
  store(field, 0);
  ctx.trace("bpf_timer_cancel_and_free", {{"map", ref->map->id}, {"initialized", ptr ? 1 : 0}});
  co_await ctx.step(k_.cost.refcnt_ns);
  if (ptr == 0) co_return;
  BpfHrtimer* cb = decode(&ctx, ptr, "bpf_timer_cancel_and_free");
  if (!cb) co_return;
  k_.slab.access(&ctx, cb->obj(), "bpf_timer_cancel_and_free");
  if (k_.profile.timer_defer_irqs_off) co_await drop_prog(ctx, *cb);  // 2.22 (5000a097f82c)
  if (must_defer(ctx) && schedule_op(ctx, *cb, kCancel, HrtimerExpiry{}) == 0)
    co_return;  // the command holds the map's reference
  co_await k_.hrtimers.try_to_cancel(ctx, cb->timer);
  co_await put(ctx, *cb);
}

}  // namespace bpftsim::model
