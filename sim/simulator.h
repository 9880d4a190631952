// The Simulator: the virtual clock, the event queue, the CPUs and the scheduler.
//
// Each CPU runs a stack of contexts (a task at the bottom, a softirq nested above it) and a FIFO
// run queue of tasks waiting for the CPU (tasks are not preempted by tasks; BPF programs and the
// syscalls we model run with preemption disabled). When a context's step ends the CPU has a
// *boundary*: there a pending softirq starts if the top context allows it, else the top context
// runs its next step. Events due at the same instant are ordered by the scheduler (one recorded
// decision), so a run is determined by (scenario, seed) or (scenario, decision list).
//
// Findings (deadlock, liveness, and whatever the model reports: use-after-free, leak, ...) are
// collected here; a finding with stop=true ends the run cleanly at once.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/context.h"
#include "sim/count_table.h"
#include "sim/event_queue.h"
#include "sim/finding.h"
#include "sim/prng.h"
#include "sim/scheduler.h"
#include "sim/trace.h"

namespace bpftsim::sim {

// Exclusive upper bound of SimConfig::jitter_max_ns (a decision's option count is 32-bit).
inline constexpr TimeNs kMaxJitterNs = 0xffffffffLL;

struct SimConfig {
  std::uint64_t seed = 1;
  int cpus = 2;
  std::uint64_t max_steps = 20'000'000;   // liveness limit on executed steps
  TimeNs max_time_ns = 3600 * kNsPerSec;  // liveness limit on virtual time
  TimeNs jitter_max_ns = 0;               // each step's cost gets +[0, jitter_max_ns] (a decision)
  // The model's precision: events due within window_ns of the earliest one are unordered, and
  // which of them goes first is a decision (kTie). 0: only events due at the same instant are.
  // An event chosen ahead of earlier ones runs at its own time; the ones it overtook then run at
  // the current time (never in the past), so no event runs more than window_ns late.
  TimeNs window_ns = 0;
  // A raised softirq or interrupt lands at the first step boundary where it can (0), or, when
  // this is k > 0, a decision (kLand) at each of up to k boundaries of a running task may let
  // the task run one more step first.
  int land_max = 0;
  // Work queued with a CPU (Kernel::queue_work) may run on any CPU: a decision (kCpu).
  bool choose_work_cpu = false;
  bool keep_trace = true;  // keep records (the digest is always computed)
  // Step coalescing (Simulator::end_step): a step whose boundary would be the next event, alone,
  // runs its next step inline. Off, every boundary goes through the queue; tests compare both to
  // show it changes no run.
  bool coalesce_steps = true;
  // Trace records kept in memory: reaching it ends the run at a limit, unless only the tail of
  // the trace is wanted (then the oldest records are dropped).
  std::uint64_t max_trace_records = 2'000'000;
  bool trace_tail_only = false;
  // Appended to the message of the step / virtual time / trace record limit: how to raise it
  // (the tool knows its flags and scenario fields; the engine does not). Views of text that
  // outlives the simulator (the tool's literals): a run copies no string for them.
  std::string_view step_limit_hint;
  std::string_view time_limit_hint;
  std::string_view trace_limit_hint;
};

enum class RunStatus : std::uint8_t {
  kQuiescent,  // nothing left to run
  kStopped,    // a stopping finding (deadlock, fault, ...) ended the run
  kLimit,      // step, virtual time or trace record limit: a liveness finding was recorded
  kDiverged,   // a replayed decision list no longer fits the run
};
const char* run_status_name(RunStatus s);

class Simulator {
 public:
  explicit Simulator(SimConfig cfg, std::unique_ptr<Scheduler> scheduler = nullptr);
  ~Simulator();
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  const SimConfig& config() const { return cfg_; }
  TimeNs now() const { return now_; }
  int ncpus() const { return static_cast<int>(cpus_.size()); }
  std::uint64_t steps() const { return steps_; }
  Scheduler& scheduler() { return *sched_; }
  Trace& trace() { return trace_; }
  const Trace& trace() const { return trace_; }
  // The data PRNG (bpf_get_prandom_u32, model choices that are data, not scheduling): its own
  // stream derived from the seed, so replaying scheduling decisions leaves data unchanged.
  Prng& data_prng() { return data_prng_; }

  // A task queued on `cpu`'s run queue now; it starts when the CPU has nothing else to run.
  // `site` names the spawn site for the context's stable key (0: its name); the parent is the
  // running context (none for timeline events).
  Context& spawn_task(int cpu, std::string name, Context::Body body, std::uint64_t site = 0);
  // A hardirq or NMI context that interrupts `cpu` at its next step boundary (an NMI even when
  // interrupts are disabled there), runs to completion on top, then the interrupted context goes
  // on.
  Context& spawn_interrupt(int cpu, CtxKind kind, std::string name, Context::Body body,
                           std::uint64_t site = 0);
  // Calls fn at virtual time `at` (>= now). `tag` identifies it among simultaneous events.
  void at(TimeNs at, std::uint64_t tag, std::function<void(Simulator&)> fn);
  // An observer reads the state at virtual time `at`: after every event due at or before `at` and
  // before any later one (or when the run goes quiescent earlier: nothing changes after that). It
  // is not an event and takes no part in ties, so adding one never changes the run or its digest.
  // It must only read: no scheduling, no trace records, no state changes. Observers of one
  // instant run in the order they were added.
  void observe_at(TimeNs at, std::function<void(Simulator&)> fn);
  // Owner-managed events (clock event devices, ...).
  void schedule(Event& e, TimeNs at);
  void cancel(Event& e);

  // Softirq vectors: a handler runs in a softirq context on the raising CPU.
  void set_softirq_handler(unsigned vec, std::string name, Context::Body handler);
  void raise_softirq(int cpu, unsigned vec);

  // Contexts on `cpu`, bottom first (the last one is running or blocked on top).
  const std::vector<Context*>& cpu_stack(int cpu) const;
  Context* current() const { return current_; }
  // The live context with this id, or nullptr once it finished.
  Context* context(std::uint32_t id) const;

  // Emits a trace record for `ctx` (cpu and id taken from it; nullptr: no CPU).
  void emit(const Context* ctx, TraceKey event, std::initializer_list<TraceArg> fields);

  // Records a finding (stop: end the run cleanly). A finding reported while a context runs is
  // placed there (ctx, context name, CPU) and passed through the finding hook (the model adds the
  // BPF program, callback, map and key) before it is recorded and traced.
  void report(Finding f, bool stop);
  void set_finding_hook(std::function<void(Finding&)> hook) { finding_hook_ = std::move(hook); }
  // Called after every step of every context, with that context (watches of values: the step
  // that changed one is the change's place). It only reads, like an observer.
  void set_step_hook(std::function<void(const Context&)> hook) { step_hook_ = std::move(hook); }
  // Reports `f` and ends the run with status kLimit (a resource limit of the model was reached).
  void stop_at_limit(Finding f);
  const std::vector<Finding>& findings() const { return findings_; }
  bool stopped() const { return stopped_; }

  // Runs until quiescent, stopped, a limit, or virtual time `until` (events after it stay queued).
  RunStatus run(TimeNs until = kTimeNever);
  bool quiescent() const { return queue_.empty() && !stopped_; }
  // Time of the earliest queued event (kTimeNever when none).
  TimeNs next_event_time() { return queue_.empty() ? kTimeNever : queue_.top().time(); }
  bool has_blocked_contexts() const;

  static Simulator* running();  // the simulator whose run() is on the stack, for assertions

  // Steps that ran inline (step coalescing: their boundary would have been the next event, alone)
  // and idle boundaries that were not queued for the same reason.
  std::uint64_t inline_steps() const { return inline_steps_; }
  std::uint64_t skipped_boundaries() const { return skipped_boundaries_; }

 private:
  friend class Context;
  friend class WaitQueue;
  struct Cpu;
  struct CpuEvent;
  struct CallbackEvent;

  void cpu_boundary(int cpu);
  void kick(int cpu);
  void resume(Context& ctx);
  void finish(Context& ctx);
  // Ends ctx's step; false when its next step runs at once, inline (see next_alone).
  bool end_step(Context& ctx, TimeNs cost);
  // True when an event at `t` pushed now would be the next one run() fires, with no decision:
  // run() is on the stack and would go on (not stopped, no divergence, t within its bound and
  // the time limit), no observer is due before t, and no queued event is due within the window
  // of t (it would tie). Such an event can be handled inline instead of through the queue; the
  // run, its decisions and its trace stay the same.
  bool next_alone(TimeNs t) const;
  void block(Context& ctx, WaitQueue& wq, WaitFor why);
  void wake(Context& ctx);
  Context& new_context(CtxKind kind, int cpu, std::string_view name, std::uint64_t parent,
                       std::uint64_t site);
  Co<void> do_softirq(Context& ctx);
  void wakeup_ksoftirqd(int cpu);
  static constexpr int kMaxSoftirqRestart = 10;  // MAX_SOFTIRQ_RESTART (kernel/softirq.c)
  void check_deadlock_from(Context& ctx);
  // The stable candidate a CPU's boundary event stands for (the step it ends or starts).
  Candidate cpu_candidate(int cpu) const;
  Candidate candidate(Event& e) const;
  // A raised interrupt/softirq may be deferred at this boundary (SimConfig::land_max).
  bool defer_landing(Cpu& c, Context* top);
  // Runs the observers due before an event at `t` (time < t) that are not past `until`.
  void run_observers(TimeNs t, TimeNs until);
  void report_stuck_at_quiescence();
  std::string describe(const Context& c) const;
  CycleEntry cycle_entry(const Context& c) const;  // one context of a wait-for cycle

  SimConfig cfg_;
  std::unique_ptr<Scheduler> sched_;
  Trace trace_;
  Prng data_prng_;
  EventQueue queue_;
  std::multimap<TimeNs, std::function<void(Simulator&)>> observers_;
  TimeNs now_ = 0;
  std::uint64_t steps_ = 0;
  std::vector<std::unique_ptr<Cpu>> cpus_;
  using ContextMap = std::map<std::uint32_t, std::unique_ptr<Context>>;
  ContextMap contexts_;  // live contexts by id
  // Finished contexts with their map nodes are reused by new_context (a softirq per expiry
  // allocates nothing) from a pool of the thread, so that a run after the first on a thread (an
  // explorer's) makes no Context either. Off under AddressSanitizer (a finished context must
  // stay freed there). See context_pool() in simulator.cpp.
  std::uint32_t next_ctx_id_ = 1;
  CountTable spawn_ordinals_;  // (parent, site) -> contexts spawned so far
  struct SoftirqVec {
    std::string name;
    Context::Body handler;
  };
  std::array<SoftirqVec, 32> softirqs_;  // by vector; no handler: not set
  std::list<CallbackEvent> callbacks_;
  Context* current_ = nullptr;
  std::vector<Finding> findings_;
  std::function<void(Finding&)> finding_hook_;
  std::function<void(const Context&)> step_hook_;
  bool stopped_ = false;
  RunStatus stop_status_ = RunStatus::kStopped;
  std::uint64_t inline_steps_ = 0;
  std::uint64_t skipped_boundaries_ = 0;
  bool in_run_ = false;            // run() is on the stack
  TimeNs run_until_ = kTimeNever;  // its bound
};

}  // namespace bpftsim::sim
