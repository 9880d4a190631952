// Engine throughput: expire-and-rearm events per second of the whole simulator with N armed BPF
// timers, next to a bare Boost.Intrusive multiset doing the same pop-min / insert in this binary.
//
//   BM_EngineExpireRearm/N      1 CPU, one ARRAY map of N {struct bpf_timer} values, each timer
//                               initialised, given a native callback and started by the model's
//                               helper bodies (k.timers.init/set_callback/start, run in one setup
//                               task per CPU), expiries spread kSpacingNs apart. The callback
//                               re-arms its own timer with the period N * kSpacingNs, so the timers
//                               keep their order and one expires every kSpacingNs of virtual time.
//                               Each expiry goes the whole engine path: clock event ->
//                               HRTIMER_SOFTIRQ context -> Hrtimers::run_softirq -> bpf_timer_cb ->
//                               native callback -> bpf_timer_start -> Hrtimers::start.
//   BM_Engine2CpuExpireRearm/N  the same with 2 CPUs: even slots armed on CPU 0, odd ones on
//                               CPU 1, so the CPUs take turns.
//   BM_BareRbtreeExpireRearm/N  N nodes keyed by (expires, seq) in a boost::intrusive::multiset
//                               (the hook and order of HrTimer): pop the first, add the period,
//                               take a new seq, insert.
//   BM_DigestOfExpiry           the trace digest alone: per event, a dependent chain of
//                               digest::mix over as many words as the records of one expiry fold
//                               (counted from an engine of 1,000 timers): the ceiling of the
//                               engine while an expiry emits the records it does.
//
// One iteration is kEventsPerIter expirations (engine: sim.run() over that much virtual time;
// the count is taken from the callbacks, so items_per_second is exact). The engine is built once
// per (N, CPUs) and reused by every repetition: building 1e6 timers costs seconds, and the state
// reached after any number of iterations is the same steady state. A fixed period keeps the
// timers in order, so in both trees every insert lands at the right end (the cache-friendliest
// pattern; the pop side walks all N nodes, which no cache holds at 1e6). The ratio reported in
// the README is bare items_per_second / engine items_per_second at the same N.
//
// Counters:
//   bytes_per_timer   heap footprint that setup leaves behind, per timer: every live allocation
//                     made while arming (malloc_usable_size + glibc's 8-byte chunk header), counted
//                     by the global operator new/delete of this binary; map values included.
//   allocs_per_timer  live heap blocks per timer left by setup.
//   decisions_per_timer  scheduler decisions recorded during setup, per timer: the decision log
//                     is kept for replay and is part of bytes_per_timer (2 CPUs arming in
//                     lockstep tie at every step boundary; 1 CPU never ties).
//   allocs_per_event  heap allocations per expire-and-rearm in the timed loop (transient ones:
//                     strings the model builds; coroutine frames and finished contexts come
//                     from pools).
//   heap_growth_per_event  live heap bytes added per expire-and-rearm (0 in a steady state).
//   trace_records_per_event  trace records emitted (and folded into the digest) per event.
//   steps_per_event   simulator steps (coroutine resumptions) per expire-and-rearm.
//   inline_steps_per_event  of those, steps that ran inline (step coalescing: their boundary
//                     would have been the next event, alone), not through the event queue.
//
//   build-bench-engine/tests/bench_engine --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true   (one command line)
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include <boost/intrusive/set.hpp>

#include "model/bpf_timer.h"
#include "model/errno.h"
#include "model/helpers.h"
#include "model/kernel.h"
#include "model/libbpf_loader.h"
#include "sim/simulator.h"
#include "sim/trace.h"

// ---- Heap accounting ----------------------------------------------------------------------------
// The benchmark is single-threaded: relaxed load + store (no locked RMW) keeps the counting cheap
// enough not to distort the timed loop, and is not a data race in the language's sense.
namespace {
struct HeapCounters {
  std::atomic<std::uint64_t> allocs{0};
  std::atomic<std::uint64_t> frees{0};
  std::atomic<std::int64_t> live_bytes{0};
};
HeapCounters g_heap;

constexpr std::int64_t kChunkHeader = 8;  // glibc malloc: size word in front of every chunk

void note_alloc(void* p) {
  g_heap.allocs.store(g_heap.allocs.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  g_heap.live_bytes.store(g_heap.live_bytes.load(std::memory_order_relaxed) +
                              static_cast<std::int64_t>(malloc_usable_size(p)) + kChunkHeader,
                          std::memory_order_relaxed);
}
void note_free(void* p) {
  g_heap.frees.store(g_heap.frees.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  g_heap.live_bytes.store(g_heap.live_bytes.load(std::memory_order_relaxed) -
                              static_cast<std::int64_t>(malloc_usable_size(p)) - kChunkHeader,
                          std::memory_order_relaxed);
}

void* counted_alloc(std::size_t n, std::size_t align) {
  if (n == 0) n = 1;
  void* p = align <= alignof(std::max_align_t)
                ? std::malloc(n)
                : std::aligned_alloc(align, (n + align - 1) & ~(align - 1));
  if (p == nullptr) throw std::bad_alloc();
  note_alloc(p);
  return p;
}
void counted_free(void* p) {
  if (p == nullptr) return;
  note_free(p);
  std::free(p);
}

struct HeapMark {
  std::uint64_t allocs;
  std::uint64_t frees;
  std::int64_t live_bytes;
  static HeapMark now() {
    return {g_heap.allocs.load(std::memory_order_relaxed),
            g_heap.frees.load(std::memory_order_relaxed),
            g_heap.live_bytes.load(std::memory_order_relaxed)};
  }
};
}  // namespace

void* operator new(std::size_t n) {
  return counted_alloc(n, 0);
}
void* operator new[](std::size_t n) {
  return counted_alloc(n, 0);
}
void* operator new(std::size_t n, std::align_val_t a) {
  return counted_alloc(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return counted_alloc(n, static_cast<std::size_t>(a));
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_alloc(n, 0);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_alloc(n, 0);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p) noexcept {
  counted_free(p);
}
void operator delete[](void* p) noexcept {
  counted_free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  counted_free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  counted_free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  counted_free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  counted_free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  counted_free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  counted_free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  counted_free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  counted_free(p);
}

namespace {

namespace model = bpftsim::model;
namespace sim = bpftsim::sim;
using sim::TimeNs;

constexpr TimeNs kSpacingNs = 1000;  // virtual time between consecutive expiries (>> handling)
constexpr int kEventsPerIter = 256;  // expire-and-rearm events per benchmark iteration

[[noreturn]] void bench_die(const std::string& what) {
  std::fprintf(stderr, "bench_engine: %s\n", what.c_str());
  std::exit(1);
}

// ---- The engine ---------------------------------------------------------------------------------

class EngineFixture {
 public:
  EngineFixture(std::int64_t n, int cpus) : n_(n), cpus_(cpus) {
    const HeapMark before = HeapMark::now();
    sim::SimConfig cfg;
    cfg.seed = 1;
    cfg.cpus = cpus;
    cfg.keep_trace = false;
    cfg.max_steps = UINT64_MAX;
    cfg.max_time_ns = sim::kTimeNever;
    sim_ = std::make_unique<sim::Simulator>(cfg);
    k_ = std::make_unique<model::Kernel>(*sim_);

    model::MapDef d;
    d.name = "bench";
    d.type = model::kBpfMapTypeArray;
    d.key_size = 4;
    d.value_size = 16;  // struct { struct bpf_timer t; }
    d.max_entries = static_cast<std::uint32_t>(n);
    d.timer_off = 0;
    int err = 0;
    map_ = k_->create_map(nullptr, d, &err);
    if (map_ == nullptr) bench_die("create_map failed: " + std::to_string(err));

    const TimeNs period = n * kSpacingNs;
    prog_ = k_->create_native_prog(
        "rearm",
        [](model::ProgRun&, std::array<std::uint64_t, 5>) -> sim::Co<std::int64_t> { co_return 0; },
        {{"cb",
          [this, period](model::ProgRun& r,
                         std::array<std::uint64_t, 5> a) -> sim::Co<std::int64_t> {
            ++expired_;
            const std::int64_t ret =
                co_await r.k.timers.start(r.ctx, model::helpers::timer_of(*map_, a[2]),
                                          static_cast<std::uint64_t>(period), 0);
            if (ret != 0) ++errors_;
            co_return 0;
          }}},
        {map_});

    // Setup finishes well before the first expiry (it costs a few hundred virtual ns per timer).
    first_expiry_ns_ = (n + 1) * kSpacingNs;
    for (int cpu = 0; cpu < cpus; ++cpu)
      sim_->spawn_task(cpu, "arm",
                       [this, cpu](sim::Context& c) -> sim::Co<void> { co_await arm(c, cpu); });
    horizon_ns_ = first_expiry_ns_ - 1;
    sim_->run(horizon_ns_);
    if (armed_ != n || errors_ != 0 || !sim_->findings().empty() ||
        k_->armed_timers() != static_cast<std::size_t>(n))
      bench_die("setup failed: armed " + std::to_string(armed_) + " of " + std::to_string(n) +
                ", " + std::to_string(errors_) + " helper errors, " +
                std::to_string(sim_->findings().size()) + " findings");
    const HeapMark after = HeapMark::now();
    bytes_per_timer_ =
        static_cast<double>(after.live_bytes - before.live_bytes) / static_cast<double>(n);
    decisions_per_timer_ =
        static_cast<double>(sim_->scheduler().decisions().size()) / static_cast<double>(n);
    allocs_per_timer_ = (static_cast<double>(after.allocs - before.allocs) -
                         static_cast<double>(after.frees - before.frees)) /
                        static_cast<double>(n);
  }

  // Advances virtual time by `events` spacings; returns the expirations that happened.
  std::int64_t advance(int events) {
    const std::int64_t start = expired_;
    horizon_ns_ += events * kSpacingNs;
    const sim::RunStatus st = sim_->run(horizon_ns_);
    if (st != sim::RunStatus::kQuiescent || errors_ != 0)
      bench_die(std::string("run ended ") + sim::run_status_name(st) + ", " +
                std::to_string(errors_) + " helper errors");
    return expired_ - start;
  }

  std::int64_t n() const { return n_; }
  int cpus() const { return cpus_; }
  double bytes_per_timer() const { return bytes_per_timer_; }
  double allocs_per_timer() const { return allocs_per_timer_; }
  double decisions_per_timer() const { return decisions_per_timer_; }
  std::uint64_t steps() const { return sim_->steps(); }
  std::uint64_t inline_steps() const { return sim_->inline_steps(); }
  std::uint64_t trace_records() const { return sim_->trace().count(); }
  std::size_t armed() const { return k_->armed_timers(); }
  sim::Simulator& simulator() { return *sim_; }

 private:
  // bpf_timer_init, bpf_timer_set_callback, bpf_timer_start on the slots i = cpu (mod CPUs),
  // slot i expiring at first_expiry_ns_ + i * kSpacingNs: the CPUs take turns.
  sim::Co<void> arm(sim::Context& c, int cpu) {
    const std::uint64_t cb = prog_->callback(0);
    for (std::int64_t i = cpu; i < n_; i += cpus_) {
      const std::uint64_t timer =
          model::helpers::timer_of(*map_, map_->arena().addr(static_cast<std::uint32_t>(i)));
      std::int64_t r =
          co_await k_->timers.init(c, timer, map_->handle_addr, model::kClockMonotonic);
      if (r == 0) r = co_await k_->timers.set_callback(c, timer, cb, *prog_);
      const TimeNs expires = first_expiry_ns_ + i * kSpacingNs;
      if (r == 0)
        r = co_await k_->timers.start(c, timer, static_cast<std::uint64_t>(expires - c.now()), 0);
      if (r != 0) ++errors_;
      ++armed_;
    }
  }

  std::int64_t n_;
  int cpus_;
  std::unique_ptr<sim::Simulator> sim_;
  std::unique_ptr<model::Kernel> k_;
  model::BpfMap* map_ = nullptr;
  model::NativeProg* prog_ = nullptr;
  TimeNs first_expiry_ns_ = 0;
  TimeNs horizon_ns_ = 0;  // virtual time simulated so far (sim.now() is the last event's time)
  std::int64_t armed_ = 0;
  std::int64_t expired_ = 0;
  std::int64_t errors_ = 0;
  double bytes_per_timer_ = 0;
  double allocs_per_timer_ = 0;
  double decisions_per_timer_ = 0;
};

// One engine at a time (1e6 timers take a few hundred MB); rebuilt when N or CPUs change.
EngineFixture& engine_for(std::int64_t n, int cpus) {
  static std::unique_ptr<EngineFixture> engine;
  if (!engine || engine->n() != n || engine->cpus() != cpus) {
    engine.reset();
    engine = std::make_unique<EngineFixture>(n, cpus);
  }
  return *engine;
}

void run_engine(benchmark::State& state, int cpus) {
  EngineFixture& e = engine_for(state.range(0), cpus);
  const std::uint64_t steps0 = e.steps();
  const std::uint64_t inline0 = e.inline_steps();
  const std::uint64_t records0 = e.trace_records();
  const HeapMark heap0 = HeapMark::now();
  std::int64_t events = 0;
  for (auto _ : state)
    events += e.advance(kEventsPerIter);
  const HeapMark heap1 = HeapMark::now();
  if (events == 0 ||
      e.armed() + static_cast<std::size_t>(e.cpus()) < static_cast<std::size_t>(e.n()))
    bench_die("engine lost timers: " + std::to_string(e.armed()) + " armed of " +
              std::to_string(e.n()));
  state.SetItemsProcessed(events);
  state.counters["bytes_per_timer"] = e.bytes_per_timer();
  state.counters["allocs_per_timer"] = e.allocs_per_timer();
  state.counters["decisions_per_timer"] = e.decisions_per_timer();
  state.counters["allocs_per_event"] =
      static_cast<double>(heap1.allocs - heap0.allocs) / static_cast<double>(events);
  state.counters["heap_growth_per_event"] =
      static_cast<double>(heap1.live_bytes - heap0.live_bytes) / static_cast<double>(events);
  state.counters["trace_records_per_event"] =
      static_cast<double>(e.trace_records() - records0) / static_cast<double>(events);
  state.counters["steps_per_event"] =
      static_cast<double>(e.steps() - steps0) / static_cast<double>(events);
  state.counters["inline_steps_per_event"] =
      static_cast<double>(e.inline_steps() - inline0) / static_cast<double>(events);
}

void BM_EngineExpireRearm(benchmark::State& state) {
  run_engine(state, 1);
}
void BM_Engine2CpuExpireRearm(benchmark::State& state) {
  run_engine(state, 2);
}

// ---- The bare tree ------------------------------------------------------------------------------

struct BareTimer : boost::intrusive::set_base_hook<boost::intrusive::optimize_size<true>> {
  TimeNs expires_ns = 0;
  std::uint64_t seq = 0;
};
struct BareOrder {
  bool operator()(const BareTimer& a, const BareTimer& b) const {
    return a.expires_ns != b.expires_ns ? a.expires_ns < b.expires_ns : a.seq < b.seq;
  }
};
using BareTree = boost::intrusive::multiset<BareTimer, boost::intrusive::compare<BareOrder>,
                                            boost::intrusive::constant_time_size<true>>;

class BareFixture {
 public:
  explicit BareFixture(std::int64_t n) : n_(n), period_(n * kSpacingNs) {
    const HeapMark before = HeapMark::now();
    nodes_ = std::make_unique<BareTimer[]>(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) {
      nodes_[i].expires_ns = (n + 1 + i) * kSpacingNs;
      nodes_[i].seq = seq_++;
      tree_.insert(nodes_[i]);
    }
    const HeapMark after = HeapMark::now();
    bytes_per_timer_ =
        static_cast<double>(after.live_bytes - before.live_bytes) / static_cast<double>(n);
  }
  ~BareFixture() { tree_.clear(); }
  BareFixture(const BareFixture&) = delete;
  BareFixture& operator=(const BareFixture&) = delete;

  void expire_rearm(int events) {
    for (int i = 0; i < events; ++i) {
      BareTimer& t = *tree_.begin();
      tree_.erase(tree_.begin());
      t.expires_ns += period_;
      t.seq = seq_++;
      tree_.insert(t);
    }
  }
  std::int64_t n() const { return n_; }
  double bytes_per_timer() const { return bytes_per_timer_; }
  const BareTree& tree() const { return tree_; }

 private:
  std::int64_t n_;
  TimeNs period_;
  std::unique_ptr<BareTimer[]> nodes_;
  BareTree tree_;
  std::uint64_t seq_ = 0;
  double bytes_per_timer_ = 0;
};

BareFixture& bare_for(std::int64_t n) {
  static std::unique_ptr<BareFixture> bare;
  if (!bare || bare->n() != n) {
    bare.reset();
    bare = std::make_unique<BareFixture>(n);
  }
  return *bare;
}

void BM_BareRbtreeExpireRearm(benchmark::State& state) {
  BareFixture& b = bare_for(state.range(0));
  std::int64_t events = 0;
  for (auto _ : state) {
    b.expire_rearm(kEventsPerIter);
    events += kEventsPerIter;
    benchmark::DoNotOptimize(&*b.tree().begin());
  }
  state.SetItemsProcessed(events);
  state.counters["bytes_per_timer"] = b.bytes_per_timer();
}

// ---- The digest's part of an expiry -------------------------------------------------------------

// The words the trace digest folds for one expire-and-rearm, counted from the records an engine
// of 1,000 timers emits over kEventsPerIter events (sim/trace.cpp's fold, traces/README.md: three
// words a record, two an integer field, three an object name, a string its key word plus one
// word of up to 7 bytes or a length word and 8 bytes a word).
struct ExpiryDigestShape {
  double records_per_event = 0;
  double words_per_event = 0;
};

ExpiryDigestShape expiry_digest_shape() {
  EngineFixture e(1'000, 1);
  std::uint64_t records = 0;
  std::uint64_t words = 0;
  e.simulator().trace().set_observer([&](const sim::TraceView& v) {
    ++records;
    words += 3;
    for (std::size_t i = 0; i < v.nargs; ++i) {
      const sim::TraceArg& a = v.args[i];
      switch (a.kind) {
        case sim::TraceArg::Kind::kInt:
          words += 2;
          break;
        case sim::TraceArg::Kind::kStr:
          words += 1 + (a.s.size() <= 7 ? 1 : 1 + (a.s.size() + 7) / 8);
          break;
        case sim::TraceArg::Kind::kName:
          words += 3;
          break;
      }
    }
  });
  const std::int64_t events = e.advance(kEventsPerIter);
  e.simulator().trace().set_observer(nullptr);
  if (events != kEventsPerIter) bench_die("digest shape: " + std::to_string(events) + " events");
  return {static_cast<double>(records) / static_cast<double>(events),
          static_cast<double>(words) / static_cast<double>(events)};
}

// The digest alone: per event, a dependent chain of digest::mix over as many words as an expiry
// folds (its latency, a multiply and two xors and a shift per word, cannot overlap with itself).
// No engine can expire and re-arm faster than it folds the records that say so, so this is the
// ceiling of BM_EngineExpireRearm while every expiry emits the records it does now.
void BM_DigestOfExpiry(benchmark::State& state) {
  static const ExpiryDigestShape shape = expiry_digest_shape();
  const auto per_event = static_cast<std::size_t>(shape.words_per_event + 0.5);
  std::vector<std::uint64_t> words(per_event * kEventsPerIter);
  for (std::size_t i = 0; i < words.size(); ++i)
    words[i] = (i + 1) * 0x9e3779b97f4a7c15ULL;
  std::uint64_t h = sim::Trace::kDigestSeed;
  std::int64_t events = 0;
  for (auto _ : state) {
    for (const std::uint64_t w : words)
      h = sim::digest::mix(h, w);
    benchmark::DoNotOptimize(h);
    events += kEventsPerIter;
  }
  state.SetItemsProcessed(events);
  state.counters["trace_records_per_event"] = shape.records_per_event;
  state.counters["digest_words_per_event"] = shape.words_per_event;
}

void timer_counts(benchmark::internal::Benchmark* b) {
  for (std::int64_t n : {1'000, 10'000, 100'000, 1'000'000})
    b->Arg(n);
}

BENCHMARK(BM_EngineExpireRearm)->Apply(timer_counts)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Engine2CpuExpireRearm)->Apply(timer_counts)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_BareRbtreeExpireRearm)->Apply(timer_counts)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_DigestOfExpiry)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
