#include "model/hrtimer.h"

#include <fmt/format.h>

#include "model/kernel.h"
#include "sim/assert.h"

namespace bpftsim::model {

namespace {
int base_index_for(int clockid) {
  switch (clockid) {
    case kClockMonotonic:
    case kClockRealtime:  // relative REALTIME timers are MONOTONIC timers (__hrtimer_init)
      return 0;
    case kClockBoottime:
      return 2;
    default:
      return 0;
  }
}
const char* base_name(int index) {
  static const char* names[] = {"MONOTONIC_SOFT", "REALTIME_SOFT", "BOOTTIME_SOFT"};
  return names[index];
}
}  // namespace

// The per-CPU clock event device: fires at the earliest soft expiry and raises HRTIMER_SOFTIRQ.
struct Hrtimers::ClockEvent final : sim::Event {
  Kernel& k;
  int cpu;
  ClockEvent(Kernel& kernel, int c) : k(kernel), cpu(c) {}
  void fire(sim::Simulator& sim) override {
    sim.emit(nullptr, "hrtimer_interrupt", {{"cpu", cpu}});
    sim.raise_softirq(cpu, kHrtimerSoftirq);
  }
  std::uint64_t tag() const override {
    return (std::uint64_t{2} << 32) | static_cast<unsigned>(cpu);
  }
};

Hrtimers::Hrtimers(Kernel& k) : k_(k), cpus_(k.sim.ncpus()) {
  for (int cpu = 0; cpu < k.sim.ncpus(); ++cpu)
    cpus_[cpu].event = std::make_unique<ClockEvent>(k, cpu);
}

Hrtimers::~Hrtimers() {
  for (auto& c : cpus_) {
    k_.sim.cancel(*c.event);
    for (auto& b : c.bases)
      b.active.clear();
  }
}

std::uint8_t Hrtimers::add_function(HrTimer::Function fn) {
  SIM_ASSERT(functions_.size() < 256, "more than 256 hrtimer functions");
  functions_.push_back(std::move(fn));
  return static_cast<std::uint8_t>(functions_.size() - 1);
}

void Hrtimers::init(HrTimer& t, int clockid, ObjId owner, std::uint8_t function) {
  SIM_ASSERT(function < functions_.size(), "hrtimer function {} was not added", function);
  t.owner = owner;
  t.base_index = static_cast<std::uint8_t>(base_index_for(clockid));
  t.cpu = -1;
  t.expires_ns = 0;
  t.enqueued = false;
  t.function = function;
}

void Hrtimers::enqueue(HrTimer& t, int cpu, sim::TimeNs expires, sim::TimeNs softexpires) {
  SIM_ASSERT(cpu >= 0 && cpu <= INT16_MAX, "hrtimer on cpu {}", cpu);
  t.cpu = static_cast<std::int16_t>(cpu);
  t.expires_ns = expires;
  t.softexpires_ns = softexpires;
  t.seq = seq_++;
  t.enqueued = true;
  cpus_[cpu].bases[t.base_index].active.insert(t);
  reprogram(cpu);
}

bool Hrtimers::remove(HrTimer& t) {
  if (!t.enqueued) return false;
  auto& tree = base_of(t).active;
  tree.erase(tree.iterator_to(t));
  t.enqueued = false;
  reprogram(t.cpu);
  return true;
}

void Hrtimers::reprogram(int cpu) {
  sim::TimeNs next = sim::kTimeNever;
  for (const auto& b : cpus_[cpu].bases)
    if (!b.active.empty()) next = std::min(next, b.active.begin()->expires_ns);
  auto& ev = *cpus_[cpu].event;
  if (next == sim::kTimeNever) {
    k_.sim.cancel(ev);
    return;
  }
  const sim::TimeNs at = std::max(next, k_.sim.now());
  if (ev.queued() && ev.time() == at) return;
  k_.sim.schedule(ev, at);
}

bool Hrtimers::callback_running(const HrTimer& t) const {
  return t.cpu >= 0 && base_of(t).running == &t;
}

sim::Context* Hrtimers::running_context(const HrTimer& t) const {
  return callback_running(t) ? base_of(t).running_ctx : nullptr;
}

sim::Co<void> Hrtimers::lock_wait(sim::Context& ctx, int cpu) {
  CpuBase& c = cpus_[cpu];
  bool contended = false;
  while (c.lock_owner != nullptr) {
    if (!contended) {
      ctx.trace("lock_contended",
                {{"lock", sim::object_name("hrtimer_base", cpu)}, {"owner", c.lock_owner->id()}});
      contended = true;
    }
    co_await ctx.block(c.lock_waiters, sim::WaitFor{"raw_spin_lock", "hrtimer_base",
                                                    static_cast<std::uint64_t>(cpu), c.lock_owner});
    co_await ctx.step(k_.cost.spin_ns);
  }
}

bool Hrtimers::hooked(const char* tp) const {
  if (!k_.hooks.any()) return false;
  return k_.hooks.attached(HookKind::kTpBtf, tp) || k_.hooks.attached(HookKind::kRawTp, tp) ||
         k_.hooks.attached(HookKind::kTracepoint, tp);
}

sim::Co<void> Hrtimers::locked_tracepoint(sim::Context& ctx, int cpu, const char* tp,
                                          std::array<std::uint64_t, 5> args) {
  if (!hooked(tp)) co_return;
  co_await lock_wait(ctx, cpu);  // another CPU's hook may hold it since this operation's wait
  CpuBase& c = cpus_[cpu];
  c.lock_owner = &ctx;
  ctx.local_irq_disable();
  co_await k_.hooks.tracepoint(ctx, tp, args);
  ctx.local_irq_enable();
  c.lock_owner = nullptr;
  c.lock_waiters.wake_all();
}

namespace {
// enum hrtimer_mode bits: ABS 0, REL 1, PINNED 2, SOFT 4 (BPF timers are soft).
std::uint64_t mode_bits(const HrtimerExpiry& e) {
  return (e.abs ? 0u : 1u) | (e.pinned ? 2u : 0u) | 4u;
}
}  // namespace

sim::Co<void> Hrtimers::start(sim::Context& ctx, HrTimer& t, HrtimerExpiry e) {
  const std::array<std::uint64_t, 5> fargs{t.owner, static_cast<std::uint64_t>(e.hard), 0,
                                           mode_bits(e), 0};
  if (k_.hooks.any()) {
    co_await k_.hooks.function_entry(ctx, "hrtimer_start_range_ns", fargs);
  }
  // lock_hrtimer_base (the timer's base), then switch_hrtimer_base's target (this CPU's).
  const bool remote_base = t.cpu >= 0 && t.cpu != ctx.cpu();
  if (remote_base) co_await lock_wait(ctx, t.cpu);
  co_await lock_wait(ctx, ctx.cpu());
  k_.slab.access(&ctx, t.owner, "hrtimer_start");
  const int old_cpu = t.cpu;
  const bool was = remove(t);
  if (was && hooked("hrtimer_cancel")) {
    co_await locked_tracepoint(ctx, old_cpu, "hrtimer_cancel", {t.owner, 0, 0, 0, 0});
  }
  // A timer whose callback runs stays on that base; otherwise it moves to this CPU (pinned or
  // not: see hrtimer.h).
  const int cpu = callback_running(t) ? t.cpu : ctx.cpu();
  enqueue(t, cpu, e.hard, e.soft);
  if (!e.abs && !e.pinned) {
    ctx.trace("hrtimer_start", {{"hrtimer", t.owner},
                                {"expires", e.hard},
                                {"base_cpu", cpu},
                                {"base", base_name(t.base_index)},
                                {"requeued", was ? 1 : 0},
                                {"flow_out", t.seq + 1},
                                {"counter:armed_timers", armed()}});
  } else {
    // The seed's relative, unpinned start prints as it always did; the era flags add the mode
    // and the soft expiry.
    const char* mode = e.abs && e.pinned ? "abs|pinned" : (e.abs ? "abs" : "pinned");
    ctx.trace("hrtimer_start", {{"hrtimer", t.owner},
                                {"expires", e.hard},
                                {"softexpires", e.soft},
                                {"mode", mode},
                                {"base_cpu", cpu},
                                {"base", base_name(t.base_index)},
                                {"requeued", was ? 1 : 0},
                                {"flow_out", t.seq + 1},
                                {"counter:armed_timers", armed()}});
  }
  if (hooked("hrtimer_start")) {
    co_await locked_tracepoint(ctx, cpu, "hrtimer_start", {t.owner, mode_bits(e), 0, 0, 0});
  }
  co_await ctx.step(k_.cost.hrtimer_op_ns);
  if (k_.hooks.any()) {
    co_await k_.hooks.function_exit(ctx, "hrtimer_start_range_ns", fargs, 0);
  }
}

int Hrtimers::try_to_cancel_now(sim::Context& ctx, HrTimer& t) {
  k_.slab.access(&ctx, t.owner, "hrtimer_try_to_cancel");
  if (callback_running(t)) return -1;
  const int ret = remove(t) ? 1 : 0;
  if (ret == 1)
    ctx.trace("hrtimer_cancel", {{"hrtimer", t.owner}, {"counter:armed_timers", armed()}});
  return ret;
}

sim::Co<int> Hrtimers::try_to_cancel(sim::Context& ctx, HrTimer& t) {
  const std::array<std::uint64_t, 5> fargs{t.owner, 0, 0, 0, 0};
  if (k_.hooks.any()) {
    co_await k_.hooks.function_entry(ctx, "hrtimer_try_to_cancel", fargs);
  }
  if (t.cpu >= 0) co_await lock_wait(ctx, t.cpu);
  const int ret = try_to_cancel_now(ctx, t);
  if (ret == 1 && hooked("hrtimer_cancel")) {
    co_await locked_tracepoint(ctx, t.cpu, "hrtimer_cancel", fargs);
  }
  co_await ctx.step(k_.cost.hrtimer_op_ns);
  if (k_.hooks.any()) {
    co_await k_.hooks.function_exit(ctx, "hrtimer_try_to_cancel", fargs, ret);
  }
  co_return ret;
}

// hrtimer_cancel: the check and the wait happen in one step, so the callback's end (which wakes
// the waiters) cannot fall between them (with a hook between them, the wait re-checks first).
sim::Co<int> Hrtimers::cancel(sim::Context& ctx, HrTimer& t) {
  const std::array<std::uint64_t, 5> fargs{t.owner, 0, 0, 0, 0};
  if (k_.hooks.any()) {
    co_await k_.hooks.function_entry(ctx, "hrtimer_cancel", fargs);
  }
  for (;;) {
    if (k_.hooks.any()) {
      co_await k_.hooks.function_entry(ctx, "hrtimer_try_to_cancel", fargs);
    }
    if (t.cpu >= 0) co_await lock_wait(ctx, t.cpu);
    const int ret = try_to_cancel_now(ctx, t);
    if (ret == 1 && hooked("hrtimer_cancel")) {
      co_await locked_tracepoint(ctx, t.cpu, "hrtimer_cancel", fargs);
    }
    if (ret >= 0) {
      co_await ctx.step(k_.cost.hrtimer_op_ns);
      if (k_.hooks.any()) {
        co_await k_.hooks.function_exit(ctx, "hrtimer_try_to_cancel", fargs, ret);
        co_await k_.hooks.function_exit(ctx, "hrtimer_cancel", fargs, ret);
      }
      co_return ret;
    }
    if (k_.hooks.any()) {
      co_await k_.hooks.function_exit(ctx, "hrtimer_try_to_cancel", fargs, ret);
    }
    if (!callback_running(t)) continue;
    ClockBase& b = base_of(t);
    co_await ctx.block(b.running_waiters,
                       sim::WaitFor{"hrtimer_cancel", "hrtimer", t.owner, b.running_ctx});
    co_await ctx.step(k_.cost.spin_ns);
  }
}

sim::Co<void> Hrtimers::run_softirq(sim::Context& ctx) {
  const int cpu = ctx.cpu();
  const sim::TimeNs basenow = ctx.now();
  for (int bi = 0; bi < kBases; ++bi) {
    ClockBase& b = cpus_[cpu].bases[bi];
    while (!b.active.empty()) {
      co_await lock_wait(ctx, cpu);
      if (b.active.empty()) break;
      HrTimer& t = *b.active.begin();
      // __hrtimer_run_queues: in hard-expiry order, up to the first whose soft expiry is ahead.
      if (t.softexpires_ns > basenow) break;
      // __run_hrtimer: dequeue, mark running, drop the base lock, call the function.
      const bool alive = k_.slab.access(&ctx, t.owner, "__run_hrtimer");
      remove(t);
      if (!alive) continue;  // reported; the freed timer's function is not called
      b.running = &t;
      b.running_ctx = &ctx;
      if (hooked("hrtimer_cancel")) {
        co_await locked_tracepoint(ctx, cpu, "hrtimer_cancel", {t.owner, 0, 0, 0, 0});
      }
      // Trace conventions (sim/trace_render.h): the expiry is a slice, the arrow from the
      // hrtimer_start of this enqueue (seq) ends here.
      const sim::TraceName slice{"hrtimer", ' ', t.owner, false};  // "hrtimer <owner>"
      ctx.trace("hrtimer_expire_entry", {{"hrtimer", t.owner},
                                         {"now", basenow},
                                         {"slice_begin", slice},
                                         {"flow_in", t.seq + 1},
                                         {"counter:armed_timers", armed()}});
      if (k_.hooks.any()) {
        co_await k_.hooks.tracepoint(ctx, "hrtimer_expire_entry",
                                     {t.owner, static_cast<std::uint64_t>(basenow), 0, 0, 0});
      }
      co_await ctx.step(k_.cost.hrtimer_op_ns);
      const ObjId owner = t.owner;
      const int restart = co_await functions_[t.function](ctx, t);
      if (k_.hooks.any()) {
        co_await k_.hooks.tracepoint(ctx, "hrtimer_expire_exit", {owner, 0, 0, 0, 0});
      }
      // After a NORESTART callback the kernel does not touch the timer again (it may be freed).
      if (restart == kHrtimerRestart && k_.slab.access(&ctx, t.owner, "__run_hrtimer restart") &&
          !t.enqueued)
        enqueue(t, cpu, t.expires_ns, t.softexpires_ns);
      b.running = nullptr;
      b.running_ctx = nullptr;
      ctx.trace("hrtimer_expire_exit",
                {{"hrtimer", t.owner}, {"slice_end", slice}, {"counter:armed_timers", armed()}});
      b.running_waiters.wake_all();
      co_await ctx.step(k_.cost.hrtimer_op_ns);
    }
  }
  reprogram(cpu);
}

std::size_t Hrtimers::armed() const {
  std::size_t n = 0;
  for (const auto& c : cpus_)
    for (const auto& b : c.bases)
      n += b.active.size();
  return n;
}

std::size_t Hrtimers::armed_on(int cpu) const {
  std::size_t n = 0;
  for (const auto& b : cpus_[cpu].bases)
    n += b.active.size();
  return n;
}

void Hrtimers::for_each_queued(const std::function<void(const HrTimer&)>& fn) const {
  for (const auto& c : cpus_)
    for (const auto& b : c.bases)
      for (const auto& t : b.active)
        fn(t);
}

void Hrtimers::check_invariants() const {
  for (int cpu = 0; cpu < static_cast<int>(cpus_.size()); ++cpu) {
    for (int bi = 0; bi < kBases; ++bi) {
      const ClockBase& b = cpus_[cpu].bases[bi];
      const HrTimer* prev = nullptr;
      for (const auto& t : b.active) {
        SIM_ASSERT(t.enqueued && t.cpu == cpu && t.base_index == bi,
                   "hrtimer {} in base cpu{}/{} but says cpu{}/{} enqueued={}", t.owner, cpu, bi,
                   t.cpu, t.base_index, t.enqueued);
        SIM_ASSERT(!prev || !HrTimerOrder{}(t, *prev), "hrtimer base cpu{}/{} out of order", cpu,
                   bi);
        prev = &t;
      }
      SIM_ASSERT(b.running == nullptr || b.running_ctx != nullptr,
                 "base cpu{}/{} running without a context", cpu, bi);
    }
  }
}

}  // namespace bpftsim::model
