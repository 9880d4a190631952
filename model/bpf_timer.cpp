#include "model/bpf_timer.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>

#include <cstring>

#include "model/bpf_async.h"
#include "model/errno.h"
#include "model/kernel.h"
#include "model/uapi.h"
#include "sim/assert.h"
#include "sim/hash.h"

namespace bpftsim::model {

namespace {
using timer_word::kMaxClocks;
using timer_word::load;
using timer_word::store;
}  // namespace

// Chunk c < kMaxChunkShift holds kFirstChunk << c entries, starting at kFirstChunk * (2^c - 1);
// the ones after hold kFirstChunk << kMaxChunkShift each.
BpfHrtimer& BpfHrtimerTable::slot(std::size_t i) const {
  constexpr std::size_t kGeometric = kFirstChunk * ((std::size_t{1} << kMaxChunkShift) - 1);
  constexpr std::size_t kBig = kFirstChunk << kMaxChunkShift;
  if (i >= kGeometric) {
    const std::size_t r = i - kGeometric;
    return chunks_[kMaxChunkShift + r / kBig][r % kBig];
  }
  const std::size_t c = static_cast<std::size_t>(std::bit_width(i / kFirstChunk + 1)) - 1;
  return chunks_[c][i - kFirstChunk * ((std::size_t{1} << c) - 1)];
}

BpfHrtimer& BpfHrtimerTable::add(ObjId obj) {
  SIM_ASSERT(size_ == 0 || obj > slot(size_ - 1).obj(), "bpf_hrtimer {} added after {}", obj,
             slot(size_ - 1).obj());
  const std::size_t i = size_;
  if (i == capacity_) {
    const std::size_t n = kFirstChunk << std::min(chunks_.size(), kMaxChunkShift);
    chunks_.push_back(std::make_unique<BpfHrtimer[]>(n));
    capacity_ += n;
  }
  ++size_;
  BpfHrtimer& t = slot(i);
  t.timer.owner = obj;
  return t;
}

BpfHrtimer* BpfHrtimerTable::find(ObjId obj) {
  if (size_ == 0) return nullptr;
  // The last chunk whose first entry's id is <= obj (every chunk has a first entry: add makes
  // one only when it needs it), then the entry within it.
  std::size_t lo = 0, hi = chunks_.size();  // chunks [0, lo) start at or below obj
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (chunks_[mid][0].obj() <= obj)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == 0) return nullptr;
  const std::size_t c = lo - 1;
  constexpr std::size_t kGeometric = kFirstChunk * ((std::size_t{1} << kMaxChunkShift) - 1);
  const std::size_t start =
      c < kMaxChunkShift ? kFirstChunk * ((std::size_t{1} << c) - 1)
                         : kGeometric + (c - kMaxChunkShift) * (kFirstChunk << kMaxChunkShift);
  const std::size_t n = std::min(kFirstChunk << std::min(c, kMaxChunkShift), size_ - start);
  BpfHrtimer* chunk = chunks_[c].get();
  // Timers made one after the other (a map's worth armed in a loop) have consecutive ids: try
  // the entry at the id's distance from the chunk's first before searching.
  if (const ObjId guess = obj - chunk[0].obj(); guess < n && chunk[guess].obj() == obj)
    return &chunk[guess];
  lo = 0;
  hi = n;  // entries [0, lo) of the chunk have ids below obj
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (chunk[mid].obj() < obj)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < n && chunk[lo].obj() == obj ? &chunk[lo] : nullptr;
}

const BpfHrtimer* BpfHrtimerTable::find(ObjId obj) const {
  return const_cast<BpfHrtimerTable*>(this)->find(obj);
}

BpfHrtimer& BpfHrtimerTable::at(ObjId obj) {
  BpfHrtimer* t = find(obj);
  SIM_ASSERT(t != nullptr, "no bpf_hrtimer with this id");
  return *t;
}

BpfTimerOps::BpfTimerOps(Kernel& k) : k_(k), hrtimer_running_(k.sim.ncpus(), nullptr) {}
BpfTimerOps::~BpfTimerOps() = default;

BpfTimers::BpfTimers(Kernel& k) : BpfTimerOps(k) {}
BpfTimers::~BpfTimers() = default;

std::size_t BpfTimerOps::live() const {
  std::size_t n = 0;
  all_.for_each([&](const BpfHrtimer& t) { n += k_.slab.live(t.obj()) ? 1 : 0; });
  return n;
}

BpfHrtimer* BpfTimerOps::decode(const sim::Context* ctx, std::uint64_t ptr, const char* where) {
  if (ptr == 0) return nullptr;
  if (ptr >= kBpfHrtimerPtrBase && (ptr - kBpfHrtimerPtrBase) % 256 == 0) {
    if (BpfHrtimer* t = all_.find((ptr - kBpfHrtimerPtrBase) / 256)) return t;
  }
  k_.sim.report(sim::Finding{.kind = sim::FindingKind::kWildPointer,
                             .message = fmt::format("{} dereferences timer pointer {:#x}, which is "
                                                    "no bpf_hrtimer (the kernel would crash here)",
                                                    where, ptr),
                             .cpu = ctx ? ctx->cpu() : -1,
                             .site = where,
                             .object = fmt::format("{:#x}", ptr)},
                true);
  return nullptr;
}

std::uint8_t* BpfTimerOps::timer_field(sim::Context& ctx, std::uint64_t timer_addr, BpfMap** map,
                                       const char* helper) {
  auto ref = k_.resolve(timer_addr);
  if (!ref || !ref->map->has_timer() ||
      ref->off != ref->map->value_off() + static_cast<std::uint32_t>(ref->map->def.timer_off)) {
    k_.program_fault(&ctx, fmt::format("{}: {:#x} is not the struct bpf_timer of a map value "
                                       "(the verifier would have rejected this program)",
                                       helper, timer_addr));
    return nullptr;
  }
  *map = ref->map;
  return ref->map->arena().elem(ref->elem) + ref->off;
}

BpfHrtimer& BpfTimerOps::alloc_timer(sim::Context& ctx, BpfMap& map, std::uint64_t timer_addr,
                                     std::uint64_t clockid) {
  // Named by its element, as the user knows it: "timer of map 1 (m) key 0".
  // (An array's key is its element's index; a hash element's key sits before its value.)
  const std::uint64_t value_addr = timer_addr - static_cast<std::uint64_t>(map.def.timer_off);
  std::string key;
  if (map.def.type == kBpfMapTypeArray) {
    if (auto ref = k_.resolve(value_addr)) key = std::to_string(ref->elem);
  } else {
    key = k_.key_text(map, map.callback_key(ctx, value_addr));
  }
  auto [prefix, added] = name_prefix_.try_emplace(map.id, 0);
  if (added)
    prefix->second =
        k_.slab.add_prefix(fmt::format("timer of map {} ({}) key ", map.id, map.name()));
  const ObjId obj =
      k_.slab.alloc_named(&ctx, ObjKind::kBpfHrtimer, prefix->second,
                          key.empty() ? std::string_view("?") : std::string_view(key));
  BpfHrtimer& t = all_.add(obj);
  t.map = &map;
  t.value_addr = value_addr;
  if (hr_function_ < 0)
    hr_function_ =
        k_.hrtimers.add_function([this](sim::Context& c, HrTimer& hr) { return timer_cb(c, hr); });
  k_.hrtimers.init(t.timer, static_cast<int>(clockid), obj,
                   static_cast<std::uint8_t>(hr_function_));
  return t;
}

// bpf_timer_init(timer, map, flags)
sim::Co<std::int64_t> BpfTimers::init(sim::Context& ctx, std::uint64_t timer_addr,
                                      std::uint64_t map_addr, std::uint64_t flags) {
  co_await ctx.step(k_.cost.helper_ns);
  if (ctx.kind() == sim::CtxKind::kNmi) co_return -kEOPNOTSUPP;
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
  KLock& lock = k_.timer_lock(timer_addr, field);
  co_await spin_lock_irqsave(k_, ctx, lock);
  const bool publish_first = k_.profile.init_checks_usercnt_after_publish;
  std::int64_t ret = 0;
  if (load(field) != 0) {
    ret = -kEBUSY;
  } else if (!publish_first && map->usercnt == 0) {
    ret = -kEPERM;  // seed: checked before the allocation and the publish (reference 4.10)
  }
  ctx.trace("bpf_timer_init_check", {{"map", map->id}, {"usercnt", map->usercnt}, {"ret", ret}});
  co_await ctx.step(k_.cost.refcnt_ns);
  if (ret == 0) {
    if (k_.faults.should_fail(FaultSite::kBpfTimerInitKmalloc)) {
      ret = -kENOMEM;
      co_await ctx.step(k_.cost.alloc_ns);
    } else {
      BpfHrtimer& t = alloc_timer(ctx, *map, timer_addr, clockid);
      const ObjId obj = t.obj();
      co_await ctx.step(k_.cost.alloc_ns);
      // Publish the pointer (a plain store in the seed, WRITE_ONCE after 2.8).
      store(field, bpf_hrtimer_ptr(obj));
      ctx.trace("bpf_timer_publish", {{"timer", obj}, {"map", map->id}});
      co_await ctx.step(k_.cost.refcnt_ns);
      if (publish_first) {
        // 2.8: smp_mb() then read usercnt; pairs with the full barrier of the uref drop, so
        // either map_release_uref sees the pointer or this sees usercnt == 0.
        if (map->usercnt == 0) {
          store(field, 0);
          k_.slab.free(&ctx, obj, "bpf_timer_init (usercnt 0 after publish)");
          ret = -kEPERM;
        }
        ctx.trace("bpf_timer_init_recheck",
                  {{"map", map->id}, {"usercnt", map->usercnt}, {"ret", ret}});
        co_await ctx.step(k_.cost.refcnt_ns);
      }
    }
  }
  co_await spin_unlock_irqrestore(k_, ctx, lock);
  co_return ret;
}

// bpf_timer_set_callback(timer, callback_fn) with the caller's prog as hidden argument
sim::Co<std::int64_t> BpfTimers::set_callback(sim::Context& ctx, std::uint64_t timer_addr,
                                              std::uint64_t callback_fn, BpfProg& prog) {
  co_await ctx.step(k_.cost.helper_ns);
  if (ctx.kind() == sim::CtxKind::kNmi) co_return -kEOPNOTSUPP;
  BpfMap* map = nullptr;
  std::uint8_t* field = timer_field(ctx, timer_addr, &map, "bpf_timer_set_callback");
  if (!field) co_return -kEINVAL;
  if (!prog.owns_callback(callback_fn)) {
    k_.program_fault(&ctx, fmt::format("bpf_timer_set_callback: {:#x} is no subprogram of {}",
                                       callback_fn, prog.name));
    co_return -kEINVAL;
  }
  KLock& lock = k_.timer_lock(timer_addr, field);
  co_await spin_lock_irqsave(k_, ctx, lock);
  std::int64_t ret = 0;
  BpfHrtimer* t = decode(&ctx, load(field), "bpf_timer_set_callback");
  if (!t) {
    ret = -kEINVAL;
  } else if (!k_.slab.access(&ctx, t->obj(), "bpf_timer_set_callback")) {
    ret = -kEINVAL;
  } else if (t->map->usercnt == 0) {
    ret = -kEPERM;
  } else {
    BpfProg* prev = t->prog;
    if (prev != &prog) {
      const int r = k_.sys.prog_inc_not_zero(&ctx, prog);
      if (r < 0) {
        ret = r;
      } else {
        t->prog = &prog;
        co_await ctx.step(k_.cost.refcnt_ns);
        if (prev) co_await k_.sys.prog_put(ctx, *prev);
      }
    }
    if (ret == 0) {
      t->callback_fn = callback_fn;
      ctx.trace(
          "bpf_timer_set_callback_done",
          {{"timer", t->obj()}, {"prog", prog.id}, {"callback", prog.callback_name(callback_fn)}});
    }
  }
  co_await ctx.step(k_.cost.refcnt_ns);
  co_await spin_unlock_irqrestore(k_, ctx, lock);
  co_return ret;
}

HrtimerExpiry BpfTimerOps::expiry_of(sim::Context& ctx, std::uint64_t nsecs, std::uint64_t flags) {
  // ns_to_ktime: the u64 is a signed ktime. hrtimer_start_range_ns (HRTIMER_MODE_REL) adds it
  // to the clock with ktime_add_safe, which saturates a sum that overflows or falls below
  // either operand: any nsecs >= 2^63 (negative) or past the end of time expires never
  // (KTIME_MAX, the model's kTimeNever). HRTIMER_MODE_ABS takes the value as it is for the
  // soft expiry; hrtimer_set_expires_range_ns's ktime_add_safe(tim, 0) saturates the hard one
  // when it is negative, so such a timer programs no interrupt and runs only when the softirq
  // runs its clock base for another timer.
  const auto tim = static_cast<std::int64_t>(nsecs);
  const bool abs = (flags & kBpfFTimerAbs) != 0;
  HrtimerExpiry e;
  if (abs) {
    e.soft = tim;
    e.hard = tim < 0 ? sim::kTimeNever : tim;
  } else {
    e.soft = e.hard = tim < 0 ? sim::kTimeNever : sim::add_sat(ctx.now(), tim);
  }
  if (k_.cost.expiry_jitter_ns > 0 && e.hard != sim::kTimeNever && e.soft == e.hard &&
      e.hard >= ctx.now()) {
    const std::uint32_t extra = ctx.sim().scheduler().draw(
        sim::DecisionKind::kRange,
        sim::Hasher(sim::str_state("expiry")).u64(ctx.step_key()).value(),
        static_cast<std::uint32_t>(k_.cost.expiry_jitter_ns + 1));
    e.soft = e.hard = sim::add_sat(e.hard, extra);
  }
  e.abs = abs;
  e.pinned = (flags & kBpfFTimerCpuPin) != 0;
  return e;
}

// bpf_timer_start(timer, nsecs, flags)
sim::Co<std::int64_t> BpfTimers::start(sim::Context& ctx, std::uint64_t timer_addr,
                                       std::uint64_t nsecs, std::uint64_t flags) {
  co_await ctx.step(k_.cost.helper_ns);
  if (ctx.kind() == sim::CtxKind::kNmi) co_return -kEOPNOTSUPP;
  // Seed: any flag is -EINVAL; v6.4 (2.6) takes BPF_F_TIMER_ABS, v6.7 (2.7) BPF_F_TIMER_CPU_PIN;
  // any other bit stays -EINVAL.
  std::uint64_t known = 0;
  if (k_.profile.timer_start_abs) known |= kBpfFTimerAbs;
  if (k_.profile.timer_start_cpu_pin) known |= kBpfFTimerCpuPin;
  if ((flags & ~known) != 0) co_return -kEINVAL;
  BpfMap* map = nullptr;
  std::uint8_t* field = timer_field(ctx, timer_addr, &map, "bpf_timer_start");
  if (!field) co_return -kEINVAL;
  KLock& lock = k_.timer_lock(timer_addr, field);
  co_await spin_lock_irqsave(k_, ctx, lock);
  std::int64_t ret = 0;
  BpfHrtimer* t = decode(&ctx, load(field), "bpf_timer_start");
  if (!t || !k_.slab.access(&ctx, t->obj(), "bpf_timer_start") || !t->prog) {
    ret = -kEINVAL;
  } else {
    const HrtimerExpiry e = expiry_of(ctx, nsecs, flags);
    co_await k_.hrtimers.start(ctx, t->timer, e);
  }
  co_await spin_unlock_irqrestore(k_, ctx, lock);
  co_return ret;
}

sim::Co<void> BpfTimers::drop_prog_refcnt(sim::Context& ctx, BpfHrtimer& t) {
  BpfProg* prog = t.prog;
  if (!prog) co_return;
  t.prog = nullptr;
  t.callback_fn = 0;
  ctx.trace("bpf_timer_drop_prog", {{"timer", t.obj()}, {"prog", prog->id}});
  co_await k_.sys.prog_put(ctx, *prog);
}

// bpf_timer_cancel(timer)
sim::Co<std::int64_t> BpfTimers::cancel(sim::Context& ctx, std::uint64_t timer_addr) {
  co_await ctx.step(k_.cost.helper_ns);
  if (ctx.kind() == sim::CtxKind::kNmi) co_return -kEOPNOTSUPP;
  BpfMap* map = nullptr;
  std::uint8_t* field = timer_field(ctx, timer_addr, &map, "bpf_timer_cancel");
  if (!field) co_return -kEINVAL;
  // 2.9: the whole cancel is an RCU read-side section, so a concurrent cancel_and_free's
  // kfree_rcu cannot reclaim `t` before the hrtimer_cancel below is done with it.
  const bool rcu_protected = k_.profile.cancel_and_free_kfree_rcu;
  if (rcu_protected) k_.rcu.read_lock(ctx);
  KLock& lock = k_.timer_lock(timer_addr, field);
  co_await spin_lock_irqsave(k_, ctx, lock);
  std::int64_t ret = 0;
  bool counted = false;
  BpfHrtimer* t = decode(&ctx, load(field), "bpf_timer_cancel");
  BpfHrtimer* cur_t = hrtimer_running_[ctx.cpu()];
  if (!t) {
    ret = -kEINVAL;
  } else if (cur_t == t) {
    // Only the running callback itself could wait for itself: refuse instead of deadlocking.
    ret = -kEDEADLK;
  } else {
    k_.slab.access(&ctx, t->obj(), "bpf_timer_cancel");
    ret = co_await cancelling_enter(ctx, *t, cur_t, &counted);
    if (ret == 0) co_await drop_prog_refcnt(ctx, *t);
  }
  co_await spin_unlock_irqrestore(k_, ctx, lock);
  // Seed: `t` is used after the lock is dropped with nothing keeping it alive (fixed in v6.8).
  if (ret == 0) ret = co_await k_.hrtimers.cancel(ctx, t->timer);
  if (counted) co_await cancelling_exit(ctx, *t);
  if (rcu_protected) k_.rcu.read_unlock(ctx);
  co_return ret;
}

// 2.11 (v6.10): a callback cancelling another timer announces it (atomic_inc + smp_mb), then
// refuses if some other callback is already waiting to cancel *it*: of two callbacks cancelling
// each other at least one sees the other's increment. Both designs (the rework kept it).
sim::Co<std::int64_t> BpfTimerOps::cancelling_enter(sim::Context& ctx, BpfHrtimer& t,
                                                    const BpfHrtimer* running, bool* counted) {
  if (!k_.profile.cancelling_counters || running == nullptr) co_return 0;
  ++t.cancelling;
  *counted = true;
  ctx.trace("bpf_timer_cancelling", {{"timer", t.obj()}, {"cancelling", int{t.cancelling}}});
  co_await ctx.step(k_.cost.refcnt_ns);
  const std::int64_t ret = running->cancelling != 0 ? -kEDEADLK : 0;
  co_await ctx.step(k_.cost.refcnt_ns);
  co_return ret;
}

sim::Co<void> BpfTimerOps::cancelling_exit(sim::Context& ctx, BpfHrtimer& t) {
  --t.cancelling;
  co_await ctx.step(k_.cost.refcnt_ns);
}

const BpfTimerOps::CallbackText& BpfTimerOps::callback_text(const BpfProg& prog, std::uint64_t fn) {
  auto [it, fresh] = callback_text_.try_emplace({prog.id, fn});
  if (fresh) {
    it->second.name = prog.callback_name(fn);
    it->second.slice = "bpf_timer_cb " + it->second.name;
  }
  return it->second;
}

// bpf_timer_cb: the hrtimer function of every bpf_hrtimer.
sim::Co<int> BpfTimerOps::timer_cb(sim::Context& ctx, HrTimer& hr) {
  BpfHrtimer& t = all_.at(hr.owner);
  BpfMap* map = t.map;
  const std::uint64_t value = t.value_addr;
  const std::uint64_t fn = t.callback_fn;  // rcu_dereference_check(t->callback_fn, ...)
  if (!fn) {
    ctx.trace("bpf_timer_cb_no_callback", {{"timer", t.obj()}});
    co_await ctx.step(k_.cost.helper_ns);
    co_return kHrtimerNoRestart;
  }
  BpfProg* prog = k_.prog_by_id(bpf_func_code_token(fn));
  SIM_ASSERT(prog != nullptr, "timer {} callback {:#x} names no program", t.obj(), fn);
  // The program image is RCU-protected: this softirq is a read-side section, so a program whose
  // last reference was just dropped is still there; the allocator checks that.
  k_.slab.access(&ctx, prog->obj, "bpf_timer_cb (program image)");
  const int cpu = ctx.cpu();
  hrtimer_running_[cpu] = &t;
  const std::uint64_t key = map->callback_key(ctx, value);
  const ObjId obj = t.obj();
  const CallbackText& text = callback_text(*prog, fn);
  ctx.trace("bpf_timer_cb", {{"timer", t.obj()},
                             {"map", map->id},
                             {"prog", prog->id},
                             {"callback", text.name},
                             {"slice_begin", text.slice}});
  co_await ctx.step(k_.cost.helper_ns);
  Kernel::BpfFrame frame{prog->name, text.name, map->def.name, {}};
  k_.set_frame_key(frame, *map, key);
  k_.push_bpf_frame(ctx, std::move(frame));
  co_await prog->run_callback(ctx, fn, {map->handle_addr, key, value, 0, 0});
  k_.pop_bpf_frame(ctx);
  hrtimer_running_[cpu] = nullptr;
  ctx.trace("bpf_timer_cb_exit", {{"timer", obj}, {"slice_end", text.slice}});
  // `t` may be freed by now (the callback deleted its own element): not touched again.
  co_await ctx.step(k_.cost.helper_ns);
  co_return kHrtimerNoRestart;
}

// bpf_timer_delete_work (2.12): cancel, waiting for a running callback, then kfree_rcu.
sim::Co<void> BpfTimers::delete_work(sim::Context& ctx, BpfHrtimer& t) {
  co_await k_.hrtimers.cancel(ctx, t.timer);
  const ObjId obj = t.obj();
  k_.rcu.call_rcu(ctx, fmt::format("kfree_rcu bpf_hrtimer {}", obj),
                  [this, obj](sim::Context& c) -> sim::Co<void> {
                    k_.slab.free(&c, obj, "bpf_timer_delete_work (kfree_rcu)");
                    co_await c.step(k_.cost.alloc_ns);
                  });
  co_await ctx.step(k_.cost.alloc_ns);
}

// bpf_timer_cancel_and_free(val + timer_off)
sim::Co<void> BpfTimers::cancel_and_free(sim::Context& ctx, std::uint64_t timer_addr) {
  auto ref = k_.resolve(timer_addr);
  SIM_ASSERT(ref.has_value(), "cancel_and_free on unmapped address {:#x}", timer_addr);
  std::uint8_t* field = ref->map->arena().elem(ref->elem) + ref->off;
  // Lockless fast path: nothing to do for an uninitialized timer.
  const std::uint64_t peek = load(field);
  ctx.trace("bpf_timer_cancel_and_free", {{"map", ref->map->id}, {"initialized", peek ? 1 : 0}});
  co_await ctx.step(k_.cost.refcnt_ns);
  if (peek == 0) co_return;
  KLock& lock = k_.timer_lock(timer_addr, field);
  co_await spin_lock_irqsave(k_, ctx, lock);
  BpfHrtimer* t = decode(&ctx, load(field), "bpf_timer_cancel_and_free");
  if (!t) {
    co_await spin_unlock_irqrestore(k_, ctx, lock);
    co_return;
  }
  k_.slab.access(&ctx, t->obj(), "bpf_timer_cancel_and_free");
  co_await drop_prog_refcnt(ctx, *t);
  store(field, 0);
  co_await ctx.step(k_.cost.refcnt_ns);
  co_await spin_unlock_irqrestore(k_, ctx, lock);
  if (k_.profile.defer_free_in_callback) {
    // 2.12: from any timer callback, waiting is unsafe (another callback may wait for this one,
    // or this is the timer's own callback which may have re-armed it): hand the cancel and the
    // free to a worker (bpf_timer_delete_work), which waits in process context. The kernel
    // queues it on system_unbound_wq: it may run on any CPU (divergence 9 of issue 11).
    if (hrtimer_running_[ctx.cpu()] != nullptr) {
      BpfHrtimer* victim = t;
      k_.queue_work_unbound(
          ctx.cpu(), fmt::format("bpf_timer_delete_work {}", t->obj()),
          [this, victim](sim::Context& c) -> sim::Co<void> { co_await delete_work(c, *victim); });
      co_return;
    }
    co_await delete_work(ctx, *t);
    co_return;
  }
  // From the timer's own callback hrtimer_cancel would wait for itself forever: skip it (the
  // seed does not notice that the callback may have re-armed the timer).
  if (hrtimer_running_[ctx.cpu()] != t) co_await k_.hrtimers.cancel(ctx, t->timer);
  if (k_.profile.cancel_and_free_kfree_rcu) {
    // 2.9: kfree_rcu -- reclaimed after a grace period, once concurrent cancels are done.
    const ObjId obj = t->obj();
    k_.rcu.call_rcu(ctx, fmt::format("kfree_rcu bpf_hrtimer {}", obj),
                    [this, obj](sim::Context& c) -> sim::Co<void> {
                      k_.slab.free(&c, obj, "bpf_timer_cancel_and_free (kfree_rcu)");
                      co_await c.step(k_.cost.alloc_ns);
                    });
  } else {
    k_.slab.free(&ctx, t->obj(), "bpf_timer_cancel_and_free");
  }
  co_await ctx.step(k_.cost.alloc_ns);
}

std::unique_ptr<BpfTimerOps> make_bpf_timers(Kernel& k, const KernelProfile& profile) {
  if (profile.timer_nolock) return std::make_unique<BpfAsync>(k);
  return std::make_unique<BpfTimers>(k);
}

sim::Co<std::int64_t> BpfTimers::cancel_async(sim::Context& ctx, std::uint64_t) {
  // The loader refuses the kfunc before 2.21, which needs 2.20 (the lock-free unit).
  SIM_ASSERT(false, "bpf_timer_cancel_async reached the bpf_spin_lock timer unit (profile {})",
             k_.profile.name);
  co_await ctx.step(0);
  co_return -kEINVAL;
}

}  // namespace bpftsim::model
