// Contexts and the awaitables that cut kernel code paths into steps.
//
// A Context is one flow of kernel execution on a CPU: a task (a syscall, a BPF program run by the
// timeline), a softirq (HRTIMER_SOFTIRQ, RCU callbacks) nested above whatever it interrupted, or a
// hardirq. Its body is a Co<void>. It advances by steps:
//   co_await ctx.step(cost_ns)   ends a step: everything since the previous step happened at its
//                                start time (its linearization point); the CPU is busy for cost_ns.
//   co_await ctx.block(wq, why)  spins until the wait queue is woken; the CPU stays busy but can
//                                still take softirqs at this point if the context allows them.
// A blocked context names the context whose progress it waits for (lock owner, running callback):
// the simulator follows these edges to report a deadlock as a wait-for cycle.
#pragma once

#include <coroutine>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/co.h"
#include "sim/hash.h"
#include "sim/time.h"
#include "sim/trace.h"

namespace bpftsim::sim {

class Simulator;
class Context;

enum class CtxKind : std::uint8_t { kTask, kSoftirq, kHardirq, kNmi };
const char* ctx_kind_name(CtxKind kind);

enum class CtxState : std::uint8_t { kQueued, kReady, kBlocked, kDone };

// Trivially destructible on purpose: it travels through co_await expressions, where GCC 12 is
// unreliable with temporaries that own memory.
struct WaitFor {
  const char* what = "";         // "bpf_spin_lock", "hrtimer_cancel", ... (static strings)
  const char* object_kind = "";  // "bpf_hrtimer", "bucket", ...
  std::uint64_t object_id = 0;
  Context* owner = nullptr;  // whose progress ends the wait; nullptr if unknown
};

class WaitQueue {
 public:
  // Makes every waiter ready again (it re-checks its condition in its next step).
  void wake_all();
  bool empty() const { return waiters_.empty(); }
  std::size_t size() const { return waiters_.size(); }

 private:
  friend class Simulator;
  std::vector<Context*> waiters_;  // in blocking order
};

class Context {
 public:
  using Body = std::function<Co<void>(Context&)>;

  std::uint32_t id() const { return id_; }
  // Stable identity across schedules of one scenario: the spawn site plus the ordinal of this
  // context among the parent's children of that site (ids are sequential and shift when the
  // schedule changes; keys do not). Decisions and run files name contexts by key.
  std::uint64_t key() const { return key_; }
  // Steps this context has started; (key, steps) names its current step.
  std::uint64_t steps() const { return steps_; }
  std::uint64_t step_key() const;
  CtxKind kind() const { return kind_; }
  int cpu() const { return cpu_; }
  const std::string& name() const { return name_; }
  CtxState state() const { return state_; }
  Simulator& sim() const { return *sim_; }
  TimeNs now() const;
  const WaitFor& waiting_for() const { return wait_; }

  struct StepAwaiter {
    Context& ctx;
    TimeNs cost;
    bool await_ready() const noexcept { return false; }
    // false: the step's boundary came at once with nothing else due (Simulator::end_step), so
    // the coroutine goes on with its next step without suspending.
    bool await_suspend(std::coroutine_handle<> h);
    void await_resume() const noexcept {}
  };
  struct BlockAwaiter {
    Context& ctx;
    WaitQueue& wq;
    WaitFor why;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h);
    void await_resume() const noexcept {}
  };
  StepAwaiter step(TimeNs cost_ns) { return StepAwaiter{*this, cost_ns}; }
  BlockAwaiter block(WaitQueue& wq, WaitFor why) { return BlockAwaiter{*this, wq, why}; }

  // Interrupt state. A softirq can start on this context's CPU at a step boundary only when the
  // top context is a task with interrupts and bottom halves enabled.
  void local_irq_disable() { ++irq_off_; }
  void local_irq_enable();
  void local_bh_disable() { ++bh_off_; }
  void local_bh_enable();
  bool irqs_disabled() const { return irq_off_ > 0; }
  bool bh_disabled() const { return bh_off_ > 0; }
  bool interruptible() const { return kind_ == CtxKind::kTask && irq_off_ == 0 && bh_off_ == 0; }

  void trace(TraceKey event, std::initializer_list<TraceArg> fields) const;

 private:
  friend class Simulator;
  friend class WaitQueue;
  Context(Simulator& sim, std::uint32_t id, std::uint64_t key, CtxKind kind, int cpu,
          std::string name)
      : sim_(&sim), id_(id), key_(key), kind_(kind), cpu_(cpu), name_(std::move(name)) {}
  // A finished context taken from the simulator's pool for a new one: every field as a new
  // Context would have it (its name keeps its buffer's capacity).
  void reuse(std::uint32_t id, std::uint64_t key, CtxKind kind, int cpu, std::string_view name);

  Simulator* sim_;
  std::uint32_t id_;
  std::uint64_t key_;
  // Hasher().u64(key_), made by the first step_key() (0: not yet; a state that happens to be 0 is
  // only recomputed each time): a context that asks no decision (most softirqs) never hashes it.
  mutable std::uint64_t key_state_ = 0;
  std::uint64_t steps_ = 0;
  CtxKind kind_;
  int cpu_;
  std::string name_;
  CtxState state_ = CtxState::kQueued;
  Body body_;  // kept alive: a lambda coroutine's captures live in the lambda object
  Co<void> root_;
  std::coroutine_handle<> resume_;
  WaitFor wait_;
  WaitQueue* waiting_on_ = nullptr;
  int irq_off_ = 0;
  int bh_off_ = 0;
};

}  // namespace bpftsim::sim
