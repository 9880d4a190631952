#include "sim/simulator.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "sim/assert.h"
#include "sim/fifo.h"
#include "sim/hash.h"

namespace bpftsim::sim {

namespace {
thread_local Simulator* g_running = nullptr;

// Finished contexts are reused unless AddressSanitizer must see a finished context freed (the
// same switch as the coroutine frame pool, sim/co.h).
constexpr bool kPoolContexts = BPFTSIM_CO_FRAME_POOL != 0;

const std::uint64_t kSoftirqSite = hash_bytes("softirq");

// Finished contexts, emptied (no frame, no body), with the map nodes that held them: shared by
// the simulators of one thread, one after the other (an explorer's runs), bounded.
constexpr std::size_t kMaxPooledContexts = 4096;
std::vector<std::map<std::uint32_t, std::unique_ptr<Context>>::node_type>& context_pool() {
  thread_local std::vector<std::map<std::uint32_t, std::unique_ptr<Context>>::node_type> pool;
  return pool;
}

}  // namespace

void assert_fail(const char* file, int line, const char* expr, const std::string& msg) {
  Simulator* sim = Simulator::running();
  if (sim) {
    std::fprintf(stderr,
                 "bpftsim: internal error: %s (assertion '%s' at %s:%d) [seed %llu, step %llu, "
                 "t=%lld ns]\n",
                 msg.c_str(), expr, file, line, static_cast<unsigned long long>(sim->config().seed),
                 static_cast<unsigned long long>(sim->steps()), static_cast<long long>(sim->now()));
  } else {
    std::fprintf(stderr, "bpftsim: internal error: %s (assertion '%s' at %s:%d)\n", msg.c_str(),
                 expr, file, line);
  }
  std::fflush(stderr);
  std::abort();
}

const char* ctx_kind_name(CtxKind kind) {
  switch (kind) {
    case CtxKind::kTask:
      return "task";
    case CtxKind::kSoftirq:
      return "softirq";
    case CtxKind::kHardirq:
      return "hardirq";
    case CtxKind::kNmi:
      return "nmi";
  }
  return "?";
}

const char* run_status_name(RunStatus s) {
  switch (s) {
    case RunStatus::kQuiescent:
      return "quiescent";
    case RunStatus::kStopped:
      return "stopped";
    case RunStatus::kLimit:
      return "limit";
    case RunStatus::kDiverged:
      return "diverged";
  }
  return "?";
}

struct Simulator::Cpu {
  int id = 0;
  std::vector<Context*> stack;
  Fifo<Context*> runqueue;
  std::uint32_t softirq_pending = 0;
  bool ksoftirqd_active = false;  // pending softirqs are left to the ksoftirqd task
  int deferred = 0;               // boundaries a pending interrupt/softirq was deferred (land_max)
  // Softirqs may start at a boundary of this CPU (kernel: invoke_softirq on irq exit).
  bool softirq_due() const { return softirq_pending && !ksoftirqd_active; }
  Fifo<Context*> irqs;  // hardirq/NMI contexts waiting to interrupt this CPU
  std::unique_ptr<CpuEvent> boundary;
  std::string softirq_name;  // "softirq/N", the name of each softirq context here
};

struct Simulator::CpuEvent final : Event {
  int cpu;
  explicit CpuEvent(int c) : cpu(c) {}
  void fire(Simulator& sim) override { sim.cpu_boundary(cpu); }
  std::uint64_t tag() const override {
    return (std::uint64_t{1} << 32) | static_cast<unsigned>(cpu);
  }
};

struct Simulator::CallbackEvent final : Event {
  std::uint64_t tag_ = 0;
  std::function<void(Simulator&)> fn;
  std::list<CallbackEvent>::iterator self;
  void fire(Simulator& sim) override {
    auto f = std::move(fn);
    sim.callbacks_.erase(self);  // destroys this event (popped from the queue): only locals after
    f(sim);
  }
  std::uint64_t tag() const override { return tag_; }
};

// ---- Context ------------------------------------------------------------------------------------

TimeNs Context::now() const {
  return sim_->now();
}

std::uint64_t Context::step_key() const {
  if (key_state_ == 0) key_state_ = Hasher().u64(key_).value();
  return Hasher(key_state_).u64(steps_).value();
}

bool Context::StepAwaiter::await_suspend(std::coroutine_handle<> h) {
  ctx.resume_ = h;
  return ctx.sim_->end_step(ctx, cost);
}

void Context::BlockAwaiter::await_suspend(std::coroutine_handle<> h) {
  ctx.resume_ = h;
  ctx.sim_->block(ctx, wq, why);
}

void Context::reuse(std::uint32_t id, std::uint64_t key, CtxKind kind, int cpu,
                    std::string_view name) {
  id_ = id;
  key_ = key;
  key_state_ = 0;
  steps_ = 0;
  kind_ = kind;
  cpu_ = cpu;
  name_.assign(name);
  state_ = CtxState::kQueued;
  body_ = nullptr;
  root_ = Co<void>();
  resume_ = {};
  wait_ = WaitFor{};
  waiting_on_ = nullptr;
  irq_off_ = 0;
  bh_off_ = 0;
}

void Context::local_irq_enable() {
  SIM_ASSERT(irq_off_ > 0, "local_irq_enable without disable in {}", name_);
  --irq_off_;
}

void Context::local_bh_enable() {
  SIM_ASSERT(bh_off_ > 0, "local_bh_enable without disable in {}", name_);
  --bh_off_;
}

void Context::trace(TraceKey event, std::initializer_list<TraceArg> fields) const {
  sim_->emit(this, event, fields);
}

void WaitQueue::wake_all() {
  auto waiters = std::move(waiters_);
  waiters_.clear();
  for (Context* c : waiters)
    c->sim_->wake(*c);
}

// ---- Simulator ----------------------------------------------------------------------------------

Simulator::Simulator(SimConfig cfg, std::unique_ptr<Scheduler> scheduler)
    : cfg_(cfg),
      sched_(scheduler ? std::move(scheduler) : std::make_unique<SeededScheduler>(cfg.seed)),
      trace_(cfg.keep_trace, cfg.max_trace_records, cfg.trace_tail_only),
      data_prng_(SplitMix64(cfg.seed ^ 0x5eedda7a5eedda7aULL).next()) {
  SIM_ASSERT(cfg.cpus >= 1 && cfg.cpus <= 64, "cpus must be in 1..64, got {}", cfg.cpus);
  // A jitter decision has jitter_max_ns + 1 options, counted in 32 bits.
  SIM_ASSERT(cfg.jitter_max_ns >= 0 && cfg.jitter_max_ns < kMaxJitterNs,
             "jitter_max_ns must be in 0..{}, got {}", kMaxJitterNs - 1, cfg.jitter_max_ns);
  cpus_.reserve(static_cast<std::size_t>(cfg.cpus));
  for (int i = 0; i < cfg.cpus; ++i) {
    auto cpu = std::make_unique<Cpu>();
    cpu->id = i;
    cpu->boundary = std::make_unique<CpuEvent>(i);
    cpu->softirq_name = "softirq/" + std::to_string(i);
    cpus_.push_back(std::move(cpu));
  }
}

Simulator::~Simulator() {
  for (auto& cpu : cpus_)
    queue_.remove(*cpu->boundary);
  for (auto& cb : callbacks_)
    queue_.remove(cb);
  // Suspended coroutine chains are destroyed with their contexts.
  contexts_.clear();
}

Simulator* Simulator::running() {
  return g_running;
}

Context& Simulator::new_context(CtxKind kind, int cpu, std::string_view name, std::uint64_t parent,
                                std::uint64_t site) {
  const std::uint32_t id = next_ctx_id_++;
  const std::uint32_t ordinal = spawn_ordinals_.next(parent, site);
  const std::uint64_t key = Hasher().u64(parent).u64(site).u64(ordinal).value();
  Context* ctx;
  // Ids only grow, so the new context goes at the map's end (the hint makes that O(1)).
  auto& pool = context_pool();
  if (!pool.empty()) {
    ContextMap::node_type node = std::move(pool.back());
    pool.pop_back();
    node.key() = id;
    ctx = node.mapped().get();
    ctx->sim_ = this;  // made by another simulator of this thread, maybe
    ctx->reuse(id, key, kind, cpu, name);
    contexts_.insert(contexts_.end(), std::move(node));
  } else {
    ctx = new Context(*this, id, key, kind, cpu, std::string(name));
    contexts_.emplace_hint(contexts_.end(), id, std::unique_ptr<Context>(ctx));
  }
  Context& ref = *ctx;
  emit(&ref, "ctx_begin", {{"kind", ctx_kind_name(kind)}, {"name", ref.name()}});
  return ref;
}

Context& Simulator::spawn_task(int cpu, std::string name, Context::Body body, std::uint64_t site) {
  SIM_ASSERT(cpu >= 0 && cpu < ncpus(), "spawn_task on cpu {} of {}", cpu, ncpus());
  if (site == 0) site = hash_bytes(name);
  Context& ctx = new_context(CtxKind::kTask, cpu, name, current_ ? current_->key() : 0, site);
  ctx.body_ = std::move(body);
  ctx.root_ = ctx.body_(ctx);
  ctx.resume_ = ctx.root_.handle();
  ctx.state_ = CtxState::kQueued;
  cpus_[cpu]->runqueue.push_back(&ctx);
  kick(cpu);
  return ctx;
}

Context& Simulator::spawn_interrupt(int cpu, CtxKind kind, std::string name, Context::Body body,
                                    std::uint64_t site) {
  SIM_ASSERT(kind == CtxKind::kHardirq || kind == CtxKind::kNmi, "spawn_interrupt of a {}",
             ctx_kind_name(kind));
  SIM_ASSERT(cpu >= 0 && cpu < ncpus(), "spawn_interrupt on cpu {} of {}", cpu, ncpus());
  if (site == 0) site = hash_bytes(name);
  Context& ctx = new_context(kind, cpu, name, current_ ? current_->key() : 0, site);
  ctx.body_ = std::move(body);
  ctx.root_ = ctx.body_(ctx);
  ctx.resume_ = ctx.root_.handle();
  ctx.state_ = CtxState::kQueued;
  cpus_[cpu]->irqs.push_back(&ctx);
  Cpu& c = *cpus_[cpu];
  if (!c.boundary->queued()) {
    Context* top = c.stack.empty() ? nullptr : c.stack.back();
    if (top == nullptr || top->state_ == CtxState::kBlocked) queue_.push(*c.boundary, now_);
  }
  return ctx;
}

void Simulator::at(TimeNs t, std::uint64_t tag, std::function<void(Simulator&)> fn) {
  SIM_ASSERT(t >= now_, "event scheduled in the past: {} < {}", t, now_);
  CallbackEvent& ref = callbacks_.emplace_back();  // one allocation: the list node holds it
  ref.tag_ = tag;
  ref.fn = std::move(fn);
  ref.self = std::prev(callbacks_.end());
  queue_.push(ref, t);
}

void Simulator::schedule(Event& e, TimeNs t) {
  SIM_ASSERT(t >= now_, "event scheduled in the past: {} < {}", t, now_);
  queue_.remove(e);
  queue_.push(e, t);
}

void Simulator::cancel(Event& e) {
  queue_.remove(e);
}

void Simulator::set_softirq_handler(unsigned vec, std::string name, Context::Body handler) {
  SIM_ASSERT(vec < 32, "softirq vector {} out of range", vec);
  softirqs_[vec] = SoftirqVec{std::move(name), std::move(handler)};
}

void Simulator::raise_softirq(int cpu, unsigned vec) {
  SIM_ASSERT(vec < softirqs_.size() && softirqs_[vec].handler,
             "softirq {} raised without a handler", vec);
  cpus_[cpu]->softirq_pending |= 1u << vec;
  kick(cpu);
}

const std::vector<Context*>& Simulator::cpu_stack(int cpu) const {
  return cpus_[cpu]->stack;
}

Context* Simulator::context(std::uint32_t id) const {
  auto it = contexts_.find(id);
  return it == contexts_.end() ? nullptr : it->second.get();
}

void Simulator::emit(const Context* ctx, TraceKey event, std::initializer_list<TraceArg> fields) {
  trace_.emit(now_, ctx ? ctx->cpu() : -1, ctx ? ctx->id() : 0, event, fields);
}

void Simulator::report(Finding f, bool stop) {
  f.t_ns = now_;
  if (f.ctx == 0 && current_ != nullptr) {
    f.ctx = current_->id();
    f.context = current_->name();
    if (f.cpu < 0) f.cpu = current_->cpu();
  }
  if (finding_hook_) finding_hook_(f);
  TraceRecord r{
      now_, f.cpu, f.ctx, "finding", {{"kind", finding_kind_name(f.kind)}, {"message", f.message}}};
  for (const auto& [key, value] :
       {std::pair{"program", &f.program}, std::pair{"callback", &f.callback},
        std::pair{"map", &f.map}, std::pair{"key", &f.key}})
    if (!value->empty()) r.fields.emplace_back(key, *value);
  if (f.pc >= 0) r.fields.emplace_back("pc", f.pc);
  if (!f.source.empty()) r.fields.emplace_back("source", f.source);
  for (std::size_t i = 0; i < f.details.size(); ++i)
    r.fields.emplace_back(fmt::format("detail{}", i), f.details[i]);
  trace_.emit(std::move(r));
  findings_.push_back(std::move(f));
  if (stop) stopped_ = true;
}

void Simulator::stop_at_limit(Finding f) {
  report(std::move(f), true);
  stop_status_ = RunStatus::kLimit;
}

bool Simulator::has_blocked_contexts() const {
  for (const auto& [id, c] : contexts_)
    if (c->state_ == CtxState::kBlocked) return true;
  return false;
}

// Schedules a boundary now on an idle CPU, or on one whose top context is blocked but could take
// a pending softirq. A CPU in the middle of a step already has its boundary queued.
void Simulator::kick(int cpu) {
  Cpu& c = *cpus_[cpu];
  if (c.boundary->queued()) return;
  if (!c.stack.empty()) {
    Context* top = c.stack.back();
    if (top->state_ != CtxState::kBlocked) return;  // running a step: boundary comes anyway
    if (!(c.softirq_due() && top->interruptible())) return;
  }
  queue_.push(*c.boundary, now_);
}

void Simulator::cpu_boundary(int cpu) {
  Cpu& c = *cpus_[cpu];
  Context* top = c.stack.empty() ? nullptr : c.stack.back();
  if (!c.irqs.empty()) {
    Context* irq = c.irqs.front();
    const bool can =
        irq->kind() == CtxKind::kNmi || top == nullptr ||
        (top->kind() != CtxKind::kNmi && top->kind() != CtxKind::kHardirq && !top->irqs_disabled());
    if (can && defer_landing(c, top)) {
      resume(*top);  // the interrupt lands at a later boundary
      return;
    }
    if (can) {
      c.deferred = 0;
      c.irqs.pop_front();
      irq->state_ = CtxState::kReady;
      c.stack.push_back(irq);
      resume(*irq);
      return;
    }
  }
  if (c.softirq_due() && (top == nullptr || top->interruptible()) && !defer_landing(c, top)) {
    c.deferred = 0;
    const std::uint64_t parent = top ? top->key() : Hasher().str("idle").u64(cpu).value();
    Context& s = new_context(CtxKind::kSoftirq, cpu, c.softirq_name, parent, kSoftirqSite);
    s.root_ = do_softirq(s);
    s.resume_ = s.root_.handle();
    s.state_ = CtxState::kReady;
    c.stack.push_back(&s);
    resume(s);
    return;
  }
  if (top == nullptr) {
    if (c.runqueue.empty()) return;  // idle
    Context* next = c.runqueue.front();
    c.runqueue.pop_front();
    next->state_ = CtxState::kReady;
    c.stack.push_back(next);
    resume(*next);
    return;
  }
  if (top->state_ == CtxState::kBlocked) return;  // spinning; woken contexts get a new boundary
  resume(*top);
}

// An interrupt or softirq that could land here waits one more step of the running task when the
// scheduler says so, at most land_max boundaries in a row (a task that is blocked or done cannot
// take another step: the interrupt lands).
bool Simulator::defer_landing(Cpu& c, Context* top) {
  if (cfg_.land_max <= 0 || top == nullptr || top->state_ != CtxState::kReady ||
      c.deferred >= cfg_.land_max)
    return false;
  const std::uint64_t key = Hasher(str_state("land")).u64(top->step_key()).value();
  const bool defer = sched_->draw(DecisionKind::kLand, key, 2) == 1;
  trace_.emit(now_, c.id, 0, "sched_decision",
              {{"kind", decision_kind_name(DecisionKind::kLand)},
               {"options", 2},
               {"chosen", defer ? 1 : 0}});
  if (defer) ++c.deferred;
  return defer;
}

void Simulator::resume(Context& ctx) {
  ++steps_;
  ++ctx.steps_;
  if (steps_ > cfg_.max_steps) {
    report(Finding{.kind = FindingKind::kLiveness,
                   .message = fmt::format(
                       "step limit of {} reached (a runaway loop of timers or a livelock?){}",
                       cfg_.max_steps, cfg_.step_limit_hint),
                   .cpu = ctx.cpu(),
                   .details = {describe(ctx)}},
           true);
    stop_status_ = RunStatus::kLimit;
    return;
  }
  if (trace_.over_limit()) {
    report(Finding{.kind = FindingKind::kLiveness,
                   .message = fmt::format(
                       "trace record limit of {} records kept in memory reached at step {}{}",
                       cfg_.max_trace_records, steps_, cfg_.trace_limit_hint),
                   .cpu = ctx.cpu(),
                   .details = {describe(ctx)}},
           true);
    stop_status_ = RunStatus::kLimit;
    return;
  }
  current_ = &ctx;
  ctx.resume_.resume();
  current_ = nullptr;
  if (step_hook_) step_hook_(ctx);
  ctx.root_.rethrow_if_failed();
  if (ctx.root_.done()) finish(ctx);
}

void Simulator::finish(Context& ctx) {
  Cpu& c = *cpus_[ctx.cpu()];
  SIM_ASSERT(!c.stack.empty() && c.stack.back() == &ctx,
             "finishing context {} is not on top of cpu {}", ctx.name(), ctx.cpu());
  SIM_ASSERT(ctx.irq_off_ == 0 && ctx.bh_off_ == 0,
             "context {} finished with irqs/bh disabled ({}/{})", ctx.name(), ctx.irq_off_,
             ctx.bh_off_);
  c.stack.pop_back();
  ctx.state_ = CtxState::kDone;
  emit(&ctx, "ctx_end", {});
  {
    ContextMap::node_type node = contexts_.extract(ctx.id());
    if (kPoolContexts) {
      // What destroying the context would release, in the same order: its coroutine frame, then
      // its body (a lambda's captures).
      ctx.root_ = Co<void>();
      ctx.body_ = nullptr;
      if (context_pool().size() < kMaxPooledContexts) context_pool().push_back(std::move(node));
    }
  }
  // Whatever is next on this CPU (the interrupted context, another softirq, the next task).
  Context* top = c.stack.empty() ? nullptr : c.stack.back();
  if (c.boundary->queued()) return;
  if (top == nullptr && c.runqueue.empty() && c.irqs.empty() && !c.softirq_due() &&
      next_alone(now_)) {
    ++skipped_boundaries_;
    return;  // an idle boundary run() would fire next, alone: it would do nothing
  }
  if (top == nullptr || top->state_ != CtxState::kBlocked || !c.irqs.empty() ||
      (c.softirq_due() && top->interruptible()))
    queue_.push(*c.boundary, now_);
}

bool Simulator::next_alone(TimeNs t) const {
  if (!cfg_.coalesce_steps || !in_run_ || stopped_ || t > run_until_ || t > cfg_.max_time_ns ||
      sched_->divergence())
    return false;
  if (!observers_.empty() && observers_.begin()->first < t) return false;
  return queue_.empty() || queue_.top().time() > add_sat(t, cfg_.window_ns);
}

bool Simulator::end_step(Context& ctx, TimeNs cost) {
  SIM_ASSERT(cost >= 0, "negative step cost {}", cost);
  if (cfg_.jitter_max_ns > 0) {
    const auto extra =
        sched_->draw(DecisionKind::kJitter, Hasher(str_state("jitter")).u64(ctx.step_key()).value(),
                     static_cast<std::uint32_t>(cfg_.jitter_max_ns + 1));
    cost = add_sat(cost, static_cast<TimeNs>(extra));
  }
  Cpu& c = *cpus_[ctx.cpu()];
  SIM_ASSERT(!c.boundary->queued(), "cpu {} already has a boundary queued", ctx.cpu());
  const TimeNs end = add_sat(now_, cost);
  if (end == kTimeNever) {
    // A cost this large (costs near 2^63 ns, or an instruction count times insn_ns) would end
    // the step beyond the last representable time: the run ends at a limit, never wraps.
    report(Finding{.kind = FindingKind::kLiveness,
                   .message = fmt::format(
                       "virtual time overflow: a step of {} ns at t={} ns would end at or beyond "
                       "2^63-1 ns (a cost near 2^63, or work scheduled at the end of time)",
                       cost, now_),
                   .cpu = ctx.cpu(),
                   .details = {describe(ctx)}},
           true);
    stop_status_ = RunStatus::kLimit;
    return true;
  }
  // Step coalescing: when the boundary at `end` would be the next event, alone, and would resume
  // this context (no interrupt or softirq lands there, no limit is reached), its next step runs
  // at once: what resume() and run() would do in between, without the queue. Decisions are asked
  // in the same order with the same candidates, so the run and its trace are unchanged.
  if (c.irqs.empty() && !(c.softirq_due() && ctx.interruptible()) && steps_ < cfg_.max_steps &&
      !trace_.over_limit() && next_alone(end)) {
    SIM_ASSERT(!c.stack.empty() && c.stack.back() == &ctx, "step of {} not on top of cpu {}",
               ctx.name(), ctx.cpu());
    current_ = nullptr;
    if (step_hook_) step_hook_(ctx);  // the step ended at its start time, as in resume()
    now_ = end;
    ++steps_;
    ++ctx.steps_;
    ++inline_steps_;
    current_ = &ctx;
    return false;
  }
  queue_.push(*c.boundary, end);
  return true;
}

void Simulator::block(Context& ctx, WaitQueue& wq, WaitFor why) {
  ctx.state_ = CtxState::kBlocked;
  ctx.wait_ = std::move(why);
  ctx.waiting_on_ = &wq;
  wq.waiters_.push_back(&ctx);
  emit(&ctx, "block",
       {{"on", ctx.wait_.what},
        {"object", obj_ref(ctx.wait_.object_kind, ctx.wait_.object_id)},
        {"owner", ctx.wait_.owner ? static_cast<std::int64_t>(ctx.wait_.owner->id()) : 0}});
  check_deadlock_from(ctx);
  if (!stopped_) kick(ctx.cpu());
}

void Simulator::wake(Context& ctx) {
  if (ctx.state_ != CtxState::kBlocked) return;
  ctx.state_ = CtxState::kReady;
  ctx.waiting_on_ = nullptr;
  ctx.wait_ = WaitFor{};
  Cpu& c = *cpus_[ctx.cpu()];
  if (!c.stack.empty() && c.stack.back() == &ctx && !c.boundary->queued())
    queue_.push(*c.boundary, now_);
}

CycleEntry Simulator::cycle_entry(const Context& c) const {
  CycleEntry e{.cpu = c.cpu(), .ctx_kind = ctx_kind_name(c.kind()), .text = describe(c)};
  if (c.state_ == CtxState::kBlocked) {
    e.waits_in = c.wait_.what;
    e.object = c.wait_.object_kind;
  }
  return e;
}

std::string Simulator::describe(const Context& c) const {
  std::string s =
      fmt::format("{} (ctx {}, {} on cpu {})", c.name(), c.id(), ctx_kind_name(c.kind()), c.cpu());
  if (c.state_ == CtxState::kBlocked) {
    s += fmt::format(" waits in {} for {}", c.wait_.what,
                     object_name(c.wait_.object_kind, c.wait_.object_id));
    if (c.wait_.owner) s += fmt::format(" held/run by ctx {}", c.wait_.owner->id());
  }
  return s;
}

// Follows wait-for edges from a context that just blocked: a blocked context waits for the owner
// of what it waits on; a context interrupted by a nested one waits for that nested context. A
// path that returns to the start is a deadlock.
void Simulator::check_deadlock_from(Context& start) {
  std::vector<const Context*> path{&start};
  const Context* cur = start.wait_.owner;
  for (std::size_t guard = 0; cur && guard < 4 * contexts_.size() + 8; ++guard) {
    if (cur == &start) {
      Finding f{.kind = FindingKind::kDeadlock,
                .message = fmt::format("wait-for cycle of {} contexts", path.size()),
                .cpu = start.cpu()};
      for (const Context* c : path) {
        f.details.push_back(describe(*c));
        f.cycle.push_back(cycle_entry(*c));
      }
      report(std::move(f), true);
      return;
    }
    path.push_back(cur);
    if (cur->state_ == CtxState::kBlocked) {
      cur = cur->wait_.owner;
      continue;
    }
    const auto& stack = cpus_[cur->cpu()]->stack;
    const Context* above = nullptr;
    for (std::size_t i = 0; i + 1 < stack.size(); ++i)
      if (stack[i] == cur) above = stack[i + 1];
    cur = above;  // interrupted: waits for the context above it; else it can progress
  }
}

void Simulator::report_stuck_at_quiescence() {
  Finding f{.kind = FindingKind::kDeadlock, .message = "no event can wake the blocked contexts"};
  for (const auto& [id, c] : contexts_)
    if (c->state_ == CtxState::kBlocked) {
      f.cpu = c->cpu();
      f.details.push_back(describe(*c));
      f.cycle.push_back(cycle_entry(*c));
    }
  report(std::move(f), true);
}

// __do_softirq: handles the pending vectors, restarting while new ones are raised, at most
// kMaxSoftirqRestart rounds; what is still pending then goes to ksoftirqd, a task that waits its
// turn in the CPU's run queue like any other (so a timer storm cannot starve tasks forever).
Co<void> Simulator::do_softirq(Context& ctx) {
  Cpu& c = *cpus_[ctx.cpu()];
  for (int round = 0; c.softirq_pending && round < kMaxSoftirqRestart; ++round) {
    std::uint32_t pending = c.softirq_pending;
    c.softirq_pending = 0;
    for (unsigned vec = 0; pending; ++vec) {
      if (!(pending & (1u << vec))) continue;
      pending &= ~(1u << vec);
      co_await softirqs_[vec].handler(ctx);
    }
  }
  if (c.softirq_pending) wakeup_ksoftirqd(ctx.cpu());
}

void Simulator::wakeup_ksoftirqd(int cpu) {
  Cpu& c = *cpus_[cpu];
  if (c.ksoftirqd_active) return;
  c.ksoftirqd_active = true;
  spawn_task(cpu, fmt::format("ksoftirqd/{}", cpu), [this](Context& ctx) -> Co<void> {
    Cpu& cc = *cpus_[ctx.cpu()];
    ctx.local_bh_disable();
    std::uint32_t pending = cc.softirq_pending;
    cc.softirq_pending = 0;
    for (unsigned vec = 0; pending; ++vec) {
      if (!(pending & (1u << vec))) continue;
      pending &= ~(1u << vec);
      co_await softirqs_[vec].handler(ctx);
    }
    ctx.local_bh_enable();
    cc.ksoftirqd_active = false;
    if (cc.softirq_pending) wakeup_ksoftirqd(ctx.cpu());
  });
}

Candidate Simulator::cpu_candidate(int cpu) const {
  const Cpu& c = *cpus_[cpu];
  const Context* top = c.stack.empty() ? nullptr : c.stack.back();
  Hasher h(str_state("cpu"));
  h.u64(static_cast<std::uint64_t>(cpu));
  std::uint64_t owner = 0;
  if (top) {
    h.u64(top->step_key());
    owner = top->key();
  } else if (!c.irqs.empty()) {
    owner = c.irqs.front()->key();
  } else if (!c.runqueue.empty()) {
    owner = c.runqueue.front()->key();
  }
  h.u64(owner);
  return Candidate{h.value(), owner ? owner : h.value()};
}

Candidate Simulator::candidate(Event& e) const {
  if (auto* ce = dynamic_cast<CpuEvent*>(&e)) return cpu_candidate(ce->cpu);
  return Candidate{e.tag(), e.tag()};
}

void Simulator::observe_at(TimeNs at, std::function<void(Simulator&)> fn) {
  observers_.emplace(at, std::move(fn));
}

void Simulator::run_observers(TimeNs t, TimeNs until) {
  while (!observers_.empty()) {
    auto it = observers_.begin();
    // t == kTimeNever: the run is quiescent, its state final; every observer may read it.
    if (t != kTimeNever && (it->first >= t || it->first > until)) break;
    auto fn = std::move(it->second);
    observers_.erase(it);
    fn(*this);
  }
}

RunStatus Simulator::run(TimeNs until) {
  Simulator* outer = g_running;
  g_running = this;
  const bool outer_in_run = in_run_;
  const TimeNs outer_until = run_until_;
  in_run_ = true;
  run_until_ = until;
  RunStatus status = RunStatus::kQuiescent;
  std::vector<Event*> due;
  std::vector<Candidate> candidates;
  std::vector<std::uint64_t> sorted_keys;
  while (true) {
    if (stopped_) {
      status = stop_status_;
      break;
    }
    if (sched_->divergence()) {
      report(Finding{.kind = FindingKind::kReplayDivergence, .message = *sched_->divergence()},
             true);
      status = RunStatus::kDiverged;
      break;
    }
    if (queue_.empty()) {
      if (has_blocked_contexts()) {
        report_stuck_at_quiescence();
        status = RunStatus::kStopped;
      } else {
        run_observers(kTimeNever, kTimeNever);  // quiescent: the state is final
      }
      break;
    }
    const TimeNs t = queue_.top().time();
    run_observers(t, until);
    if (t > until) break;
    if (t > cfg_.max_time_ns) {
      report(Finding{.kind = FindingKind::kLiveness,
                     .message =
                         fmt::format("virtual time limit of {} ns reached with events pending{}",
                                     cfg_.max_time_ns, cfg_.time_limit_hint)},
             true);
      status = RunStatus::kLimit;
      break;
    }
    // The events due within the window (at most 64): which goes first is a decision. Its key is
    // the set of their stable keys (sorted, so the queue's sequence numbers do not enter it).
    due.clear();
    const TimeNs horizon = add_sat(t, cfg_.window_ns);
    for (auto it = queue_.begin(); it != queue_.end() && it->time() <= horizon && due.size() < 64;
         ++it)
      due.push_back(&*it);
    std::size_t pick = 0;
    if (due.size() > 1) {
      candidates.clear();
      for (Event* e : due)
        candidates.push_back(candidate(*e));
      // Events that share a tag (two callbacks at one instant with one tag) would be one
      // candidate to a replay: the nth of them (in queue order, stable under a given prefix)
      // gets n folded into its key.
      for (std::size_t i = candidates.size(); i-- > 1;) {  // from the back: earlier keys unchanged
        std::uint64_t same = 0;
        for (std::size_t j = 0; j < i; ++j)
          same += candidates[j].key == candidates[i].key ? 1 : 0;
        if (same > 0) candidates[i].key = Hasher().u64(candidates[i].key).u64(same).value();
      }
      sorted_keys.clear();
      for (const Candidate& cand : candidates)
        sorted_keys.push_back(cand.key);
      std::sort(sorted_keys.begin(), sorted_keys.end());
      Hasher key;
      key.str("tie");
      for (std::uint64_t k : sorted_keys)
        key.u64(k);
      pick = sched_->choose(DecisionKind::kTie, key.value(), candidates);
      trace_.emit(std::max(now_, t), -1, 0, "sched_decision",
                  {{"kind", decision_kind_name(DecisionKind::kTie)},
                   {"options", due.size()},
                   {"chosen", pick}});
    }
    Event* ev = due[pick];
    queue_.remove(*ev);
    now_ = std::max(now_, ev->time());
    ev->fire(*this);
  }
  g_running = outer;
  in_run_ = outer_in_run;
  run_until_ = outer_until;
  return status;
}

}  // namespace bpftsim::sim
