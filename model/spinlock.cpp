#include "model/spinlock.h"

#include <fmt/format.h>

#include "model/kernel.h"
#include "sim/assert.h"

namespace bpftsim::model {

sim::Co<void> spin_lock_irqsave(Kernel& k, sim::Context& ctx, KLock& lock) {
  ctx.local_irq_disable();
  bool contended = false;
  while (lock.owner != nullptr) {
    // Held by this very context (a program attached inside the holder's critical section
    // re-taking it): the wait below is a wait-for cycle of one context, reported as a deadlock.
    if (!contended) {
      ctx.trace("lock_contended",
                {{"lock", sim::obj_ref(lock.kind, lock.id)}, {"owner", lock.owner->id()}});
      contended = true;
    }
    if (!lock.waiters) lock.waiters = std::make_unique<sim::WaitQueue>();
    co_await ctx.block(*lock.waiters, sim::WaitFor{"spin_lock", lock.kind, lock.id, lock.owner});
    co_await ctx.step(k.cost.spin_ns);
  }
  lock.owner = &ctx;
  if (lock.word) *lock.word = 1;
  const sim::TraceName name = sim::obj_ref(lock.kind, lock.id);
  ctx.trace("lock_acquire", {{"lock", name}, {"slice_begin", name}});
  co_await ctx.step(k.cost.lock_ns);
}

sim::Co<void> spin_unlock_irqrestore(Kernel& k, sim::Context& ctx, KLock& lock) {
  SIM_ASSERT(lock.owner == &ctx, "{}#{:x} released by {} which does not hold it", lock.kind,
             lock.id, ctx.name());
  lock.owner = nullptr;
  if (lock.word) *lock.word = 0;
  const sim::TraceName name = sim::obj_ref(lock.kind, lock.id);
  ctx.trace("lock_release", {{"lock", name}, {"slice_end", name}});
  if (lock.waiters) lock.waiters->wake_all();
  ctx.local_irq_enable();
  co_await ctx.step(k.cost.lock_ns);
}

}  // namespace bpftsim::model
