// What the error-code scenarios (scenarios/errors/*.json, the one catalogue of helper return
// codes) cannot reach: the model's own bookkeeping behind a code. The "bpf_helper" trace record
// carries exactly the value the program saw; checks that must come before the timer lock take no
// lock (NMI, bad flags and clocks); a refused init never reaches the allocation's fault site; and
// map creation refuses timers in map types and flags that cannot hold one (a scenario with such
// a map is bad input, never an expectation).
#include <catch2/catch.hpp>

#include <string>
#include <variant>

#include "tests/unit/world.h"

using namespace bpftsim;
using namespace bpftsim::testing;
namespace h = bpftsim::model::helpers;
using model::kEBUSY;
using model::kEINVAL;
using model::kEOPNOTSUPP;
using model::kEPERM;

namespace {

constexpr std::int64_t kUnset = 12345;  // a value no helper returns

// The ret field of every "bpf_helper" record of `helper`, in trace order.
std::vector<std::int64_t> helper_rets(const World& w, const std::string& helper) {
  std::vector<std::int64_t> out;
  for (const auto& r : w.sim.trace().records()) {
    if (r.event != "bpf_helper") continue;
    const auto* f = r.field("helper");
    if (f && std::holds_alternative<std::string>(*f) && std::get<std::string>(*f) == helper)
      out.push_back(r.int_field("ret"));
  }
  return out;
}

// bpf_timer element locks taken by context `ctx_id` (to show a check happened before the lock).
std::size_t timer_locks_taken_by(const World& w, std::uint32_t ctx_id) {
  std::size_t n = 0;
  for (const auto& r : w.sim.trace().records()) {
    if (r.event != "lock_acquire" || r.ctx != ctx_id) continue;
    const auto* f = r.field("lock");
    n += (f && std::holds_alternative<std::string>(*f) &&
          std::get<std::string>(*f).rfind("bpf_timer_lock#", 0) == 0)
             ? 1
             : 0;
  }
  return n;
}

// The context id of the first "bpf_prog_run" record of program `prog`.
std::uint32_t ctx_of_run(const World& w, std::uint32_t prog) {
  for (const auto& r : w.sim.trace().records())
    if (r.event == "bpf_prog_run" && r.int_field("prog") == prog) return r.ctx;
  return 0;
}

// The struct bpf_timer of array element `index`, looked up the way a program does.
Co<std::uint64_t> array_timer(ProgRun& r, BpfMap& m, std::uint32_t index) {
  const std::uint64_t v = co_await h::map_lookup(r, m, h::u32_key(index));
  co_return h::timer_of(m, v);
}

// Runs program `p` in an NMI on `cpu` at time t.
void nmi_at(World& w, TimeNs t, int cpu, model::BpfProg* p) {
  w.sim.at(t, 0x300000u + static_cast<unsigned>(cpu), [&w, cpu, p](sim::Simulator& s) {
    s.spawn_interrupt(cpu, sim::CtxKind::kNmi, "nmi " + p->name,
                      [&w, p](Context& c) -> Co<void> { (void)co_await w.k.run_prog(c, *p, {}); });
  });
}

// Runs to quiescence (the test has scheduled a process exit) and requires a clean teardown:
// no findings, nothing leaked, nothing left allocated, refcounts balanced.
void run_and_require_clean(World& w) {
  const sim::RunStatus st = w.run();
  INFO(w.findings_text());
  REQUIRE(st == sim::RunStatus::kQuiescent);
  CHECK(w.sim.findings().empty());
  w.k.check_quiescence();
  CHECK(w.sim.findings().empty());
  CHECK(w.k.slab.live_count() == 0);
  CHECK(w.k.invariant_violations(true).empty());
  CHECK(w.k.armed_timers() == 0);
}

}  // namespace

TEST_CASE("bpf_timer_init returns -EBUSY when the timer is already initialized", "[errors]") {
  World w(1);
  BpfMap* arr = w.array(1);
  std::vector<std::int64_t> rets;
  NativeProg* p =
      w.prog("init twice",
             [&](ProgRun& r, auto) -> Co<std::int64_t> {
               const std::uint64_t t = co_await array_timer(r, *arr, 0);
               const std::int64_t a = co_await h::timer_init(r, t, *arr, model::kClockMonotonic);
               rets.push_back(a);
               const std::int64_t b = co_await h::timer_init(r, t, *arr, model::kClockBoottime);
               rets.push_back(b);
               co_return 0;
             },
             {}, {arr});
  w.run_at(0, 0, p);
  w.exit_at(100'000, 0);
  run_and_require_clean(w);
  CHECK(rets == std::vector<std::int64_t>{0, -kEBUSY});
  CHECK(helper_rets(w, "bpf_timer_init") == std::vector<std::int64_t>{0, -kEBUSY});
  CHECK(w.events("bpf_timer_publish") == 1);
}

TEST_CASE("order: in NMI, bad flags still give -EOPNOTSUPP (init, start)", "[errors]") {
  World w(1);
  BpfMap* arr = w.array(1);
  std::int64_t init = kUnset, start = kUnset, cancel = kUnset;
  NativeProg* q = w.prog("nmi bad flags",
                         [&](ProgRun& r, auto) -> Co<std::int64_t> {
                           const std::uint64_t t = co_await array_timer(r, *arr, 0);
                           init = co_await h::timer_init(r, t, *arr, 16);
                           start = co_await h::timer_start(r, t, 100, 1);
                           cancel = co_await h::timer_cancel(r, t);  // uninitialized too
                           co_return 0;
                         },
                         {}, {arr});
  nmi_at(w, 0, 0, q);
  w.exit_at(100'000, 0);
  run_and_require_clean(w);
  CHECK(init == -kEOPNOTSUPP);
  CHECK(start == -kEOPNOTSUPP);
  CHECK(cancel == -kEOPNOTSUPP);
  CHECK(timer_locks_taken_by(w, ctx_of_run(w, q->id)) == 0);
}

TEST_CASE("order: flags are checked before the lock (-EINVAL, not -EBUSY or -EPERM)", "[errors]") {
  World w(1);
  BpfMap* arr = w.array(2);
  std::vector<std::int64_t> rets;
  std::int64_t after_close_init = kUnset, after_close_clock = kUnset;
  NativeProg* p =
      w.prog("bad flags",
             [&](ProgRun& r, auto) -> Co<std::int64_t> {
               const std::uint64_t t = co_await array_timer(r, *arr, 0);
               rets.push_back(co_await h::timer_init(r, t, *arr, 1));
               rets.push_back(co_await h::timer_init(r, t, *arr, 16));  // initialized: not -EBUSY
               rets.push_back(co_await h::timer_init(r, t, *arr, 3));   // bad clock: not -EBUSY
               co_return 0;
             },
             {}, {arr});
  NativeProg* q = w.prog("bad flags, no uref",
                         [&](ProgRun& r, auto) -> Co<std::int64_t> {
                           const std::uint64_t t = co_await array_timer(r, *arr, 1);
                           after_close_init =
                               co_await h::timer_init(r, t, *arr, 0x11);  // usercnt 0: not -EPERM
                           after_close_clock = co_await h::timer_init(r, t, *arr, 2);
                           co_return 0;
                         },
                         {}, {arr});
  NativeProg* s = w.prog("start bad flags",
                         [&](ProgRun& r, auto) -> Co<std::int64_t> {
                           const std::uint64_t t = co_await array_timer(r, *arr, 0);
                           (void)co_await h::timer_start(r, t, 100, 1);
                           co_return 0;
                         },
                         {}, {arr});
  w.run_at(0, 0, p);
  w.run_at(5'000, 0, s);
  w.close_at(10'000, 0, arr);
  w.run_at(20'000, 0, q);
  w.exit_at(100'000, 0);
  run_and_require_clean(w);
  CHECK(rets == std::vector<std::int64_t>{0, -kEINVAL, -kEINVAL});
  CHECK(after_close_init == -kEINVAL);
  CHECK(after_close_clock == -kEINVAL);
  CHECK(helper_rets(w, "bpf_timer_init") ==
        std::vector<std::int64_t>{0, -kEINVAL, -kEINVAL, -kEINVAL, -kEINVAL});
  CHECK(helper_rets(w, "bpf_timer_start") == std::vector<std::int64_t>{-kEINVAL});
  // The refused calls never took the element lock: the validation precedes it.
  CHECK(timer_locks_taken_by(w, ctx_of_run(w, q->id)) == 0);
  CHECK(timer_locks_taken_by(w, ctx_of_run(w, s->id)) == 0);
  CHECK(timer_locks_taken_by(w, ctx_of_run(w, p->id)) == 1);  // only the good init
}

TEST_CASE("order: init checks usercnt before allocating (-EPERM, the fault site untouched)",
          "[errors]") {
  World w(1);
  BpfMap* arr = w.array(1);
  std::int64_t ret = kUnset;
  NativeProg* p = w.prog("init",
                         [&](ProgRun& r, auto) -> Co<std::int64_t> {
                           const std::uint64_t t = co_await array_timer(r, *arr, 0);
                           ret = co_await h::timer_init(r, t, *arr, 1);
                           co_return 0;
                         },
                         {}, {arr});
  w.k.faults.fail_next(model::FaultSite::kBpfTimerInitKmalloc);
  w.close_at(0, 0, arr);
  w.run_at(10'000, 0, p);
  w.exit_at(100'000, 0);
  run_and_require_clean(w);
  CHECK(ret == -kEPERM);  // v6.7+ would report -ENOMEM here (4.17)
  CHECK(w.k.faults.should_fail(
      model::FaultSite::kBpfTimerInitKmalloc));  // the allocation was never tried
}

TEST_CASE("map creation with a timer in an unsupported map type returns -EOPNOTSUPP", "[errors]") {
  // Per-CPU variants (5 PERCPU_HASH, 6 PERCPU_ARRAY, 10 LRU_PERCPU_HASH), map-in-map outers,
  // and any other type: only ARRAY, HASH and LRU_HASH may hold a bpf_timer (1.5).
  const std::uint32_t type = GENERATE(as<std::uint32_t>{}, 5, 6, 10, model::kBpfMapTypeArrayOfMaps,
                                      model::kBpfMapTypeHashOfMaps, 3, 27);
  CAPTURE(type);
  sim::Simulator s(sim::SimConfig{});
  model::Kernel k(s);
  model::MapDef d;
  d.name = "bad";
  d.type = type;
  d.key_size = 4;
  d.value_size = 16;
  d.max_entries = 4;
  d.timer_off = 0;
  int err = 0;
  CHECK(k.create_map(nullptr, d, &err) == nullptr);
  CHECK(err == -kEOPNOTSUPP);
  CHECK(k.maps().empty());
  CHECK(k.slab.live_count() == 0);
}

TEST_CASE("map creation with a timer and BPF_F_RDONLY_PROG returns -EACCES", "[errors]") {
  sim::Simulator s(sim::SimConfig{});
  model::Kernel k(s);
  model::MapDef d;
  d.name = "rdonly";
  d.type = model::kBpfMapTypeArray;
  d.value_size = 16;
  d.max_entries = 1;
  d.map_flags = model::kBpfFRdonlyProg;
  d.timer_off = 0;
  int err = 0;
  CHECK(k.create_map(nullptr, d, &err) == nullptr);
  CHECK(err == -model::kEACCES);
  d.map_flags = 0;
  CHECK(k.create_map(nullptr, d, &err) != nullptr);
  CHECK(err == 0);
}

// map_check_btf (kernel/bpf/syscall.c): for a value holding a bpf_timer, BPF_F_RDONLY_PROG is
// checked (-EACCES) before the map type (-EOPNOTSUPP). Divergence 5 of issue 11.
TEST_CASE("map_check_btf order: BPF_F_RDONLY_PROG (-EACCES) before the map type (-EOPNOTSUPP)",
          "[errors]") {
  sim::Simulator s(sim::SimConfig{});
  model::Kernel k(s);
  model::MapDef d;
  d.name = "rdonly_of_maps";
  d.type = model::kBpfMapTypeArrayOfMaps;  // cannot hold a timer
  d.key_size = 4;
  d.value_size = 16;
  d.max_entries = 1;
  d.map_flags = model::kBpfFRdonlyProg;
  d.timer_off = 0;
  int err = 0;
  CHECK(k.create_map(nullptr, d, &err) == nullptr);
  CHECK(err == -model::kEACCES);
  d.map_flags = 0;
  CHECK(k.create_map(nullptr, d, &err) == nullptr);
  CHECK(err == -model::kEOPNOTSUPP);
  CHECK(k.maps().empty());
  CHECK(k.slab.live_count() == 0);
}
