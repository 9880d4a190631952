// RCU: kernel/rcu/tree.c reduced to what the timer subsystem depends on. Read-side sections are
// counted per CPU (softirq contexts, BPF program runs, explicit rcu_read_lock regions). A grace
// period that starts at time t ends once every CPU that was inside a read-side section at t has
// left all of its sections, and no sooner than CostModel::rcu_gp_min_ns after t. Callbacks queued
// with call_rcu() run after the next full grace period, in RCU_SOFTIRQ on the CPU that queued them.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "sim/fifo.h"
#include "sim/simulator.h"

namespace bpftsim::model {

class Kernel;

inline constexpr unsigned kHrtimerSoftirq = 8;  // HRTIMER_SOFTIRQ
inline constexpr unsigned kRcuSoftirq = 9;      // RCU_SOFTIRQ

class Rcu {
 public:
  using Callback = std::function<sim::Co<void>(sim::Context&)>;

  explicit Rcu(Kernel& k);

  void read_lock(const sim::Context& ctx);
  void read_unlock(const sim::Context& ctx);
  int nesting(int cpu) const { return nesting_[cpu]; }

  // Queues `cb` to run after a grace period (call_rcu / kfree_rcu).
  void call_rcu(const sim::Context& ctx, std::string what, Callback cb);
  // rcu_barrier: waits (spinning in the model) until every callback queued before the call has
  // run to its end. Returns at once when none is pending, as the kernel's does when no CPU has
  // callbacks queued.
  sim::Co<void> barrier(sim::Context& ctx);

  std::uint64_t completed() const { return completed_; }
  bool idle() const { return !gp_active_ && next_.empty(); }
  std::size_t pending() const { return current_.size() + next_.size() + ready_total_; }

  // RCU_SOFTIRQ handler body: runs this CPU's ready callbacks.
  sim::Co<void> softirq(sim::Context& ctx);

 private:
  struct Pending {
    int cpu;
    std::string what;
    Callback cb;
    std::uint64_t seq = 0;  // order of call_rcu (rcu_barrier waits for those before it)
  };
  void start_gp();
  void maybe_complete();
  void complete_gp();

  Kernel& k_;
  std::vector<int> nesting_;
  std::uint64_t holdouts_ = 0;  // CPUs still inside a section that began before the GP
  bool gp_active_ = false;
  bool completion_scheduled_ = false;
  sim::TimeNs gp_start_ = 0;
  std::uint64_t gp_seq_ = 0;
  std::uint64_t completed_ = 0;
  std::vector<Pending> current_;  // waiting for the GP in progress
  std::vector<Pending> next_;     // queued during it: wait for the following one
  // Per CPU, run by RCU_SOFTIRQ in order (a CPU that never runs a callback allocates nothing).
  std::vector<sim::Fifo<Pending>> ready_;
  std::size_t ready_total_ = 0;
  std::uint64_t queued_ = 0;             // call_rcu calls so far
  std::set<std::uint64_t> outstanding_;  // seqs of callbacks not yet run to their end
  sim::WaitQueue barrier_waiters_;
};

}  // namespace bpftsim::model
