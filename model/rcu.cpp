#include "model/rcu.h"

#include <algorithm>

#include "model/kernel.h"
#include "sim/assert.h"
#include "sim/hash.h"

namespace bpftsim::model {

Rcu::Rcu(Kernel& k) : k_(k), nesting_(k.sim.ncpus(), 0), ready_(k.sim.ncpus()) {}

void Rcu::read_lock(const sim::Context& ctx) {
  ++nesting_[ctx.cpu()];
}

void Rcu::read_unlock(const sim::Context& ctx) {
  const int cpu = ctx.cpu();
  SIM_ASSERT(nesting_[cpu] > 0, "rcu_read_unlock without lock on cpu {}", cpu);
  if (--nesting_[cpu] == 0 && (holdouts_ & (1ULL << cpu))) {
    holdouts_ &= ~(1ULL << cpu);
    maybe_complete();
  }
}

void Rcu::call_rcu(const sim::Context& ctx, std::string what, Callback cb) {
  k_.sim.emit(&ctx, "call_rcu", {{"what", what}});
  Pending p{ctx.cpu(), std::move(what), std::move(cb), ++queued_};
  outstanding_.insert(p.seq);
  if (gp_active_) {
    next_.push_back(std::move(p));
  } else {
    current_.push_back(std::move(p));
    start_gp();
  }
}

void Rcu::start_gp() {
  gp_active_ = true;
  gp_start_ = k_.sim.now();
  ++gp_seq_;
  holdouts_ = 0;
  for (int cpu = 0; cpu < static_cast<int>(nesting_.size()); ++cpu)
    if (nesting_[cpu] > 0) holdouts_ |= 1ULL << cpu;
  k_.sim.emit(nullptr, "rcu_gp_start",
              {{"gp", gp_seq_}, {"holdouts", static_cast<std::uint64_t>(holdouts_)}});
  maybe_complete();
}

void Rcu::maybe_complete() {
  if (!gp_active_ || holdouts_ != 0 || completion_scheduled_) return;
  completion_scheduled_ = true;
  sim::TimeNs at = std::max(k_.sim.now(), sim::add_sat(gp_start_, k_.cost.rcu_gp_min_ns));
  if (k_.cost.rcu_gp_jitter_ns > 0)
    at = sim::add_sat(
        at, k_.sim.scheduler().draw(sim::DecisionKind::kGrace,
                                    sim::Hasher().str("rcu_gp").u64(gp_seq_).value(),
                                    static_cast<std::uint32_t>(k_.cost.rcu_gp_jitter_ns + 1)));
  k_.sim.at(at, 0x52435500u, [this](sim::Simulator&) { complete_gp(); });
}

void Rcu::complete_gp() {
  completion_scheduled_ = false;
  gp_active_ = false;
  ++completed_;
  k_.sim.emit(nullptr, "rcu_gp_end", {{"gp", gp_seq_}, {"callbacks", current_.size()}});
  std::uint64_t cpus = 0;
  for (auto& p : current_) {
    cpus |= 1ULL << p.cpu;
    ready_[p.cpu].push_back(std::move(p));
    ++ready_total_;
  }
  current_.clear();
  for (int cpu = 0; cpu < static_cast<int>(ready_.size()); ++cpu)
    if (cpus & (1ULL << cpu)) k_.sim.raise_softirq(cpu, kRcuSoftirq);
  if (!next_.empty()) {
    current_ = std::move(next_);
    next_.clear();
    start_gp();
  }
}

sim::Co<void> Rcu::softirq(sim::Context& ctx) {
  sim::Fifo<Pending>& q = ready_[ctx.cpu()];
  while (!q.empty()) {
    Pending p = std::move(q.front());
    q.pop_front();
    --ready_total_;
    ctx.trace("rcu_invoke_callback", {{"what", p.what}});
    co_await p.cb(ctx);
    outstanding_.erase(p.seq);
    barrier_waiters_.wake_all();
  }
}

sim::Co<void> Rcu::barrier(sim::Context& ctx) {
  const std::uint64_t upto = queued_;
  if (outstanding_.empty() || *outstanding_.begin() > upto) co_return;
  ctx.trace("rcu_barrier", {{"pending", outstanding_.size()}});
  while (!outstanding_.empty() && *outstanding_.begin() <= upto) {
    co_await ctx.block(barrier_waiters_,
                       sim::WaitFor{"rcu_barrier", "rcu_callbacks", upto, nullptr});
    co_await ctx.step(k_.cost.spin_ns);
  }
  ctx.trace("rcu_barrier_done", {});
}

}  // namespace bpftsim::model
