// Every return code of the four bpf_timer helpers on the v5.15 profile (reference 1.2, 1.4 and
// the return-value matrix of 4.17), one test per (helper, code), plus the order of the checks
// where two errors apply at once, and the map-side codes that timers touch (array delete, map
// creation). Each test asserts the exact value the program saw and the "bpf_helper" trace record
// carrying the same value, then tears the process down and requires nothing left allocated.
#include <catch2/catch.hpp>

#include <string>
#include <variant>

#include "tests/unit/world.h"

using namespace bpftsim;
using namespace bpftsim::testing;
namespace h = bpftsim::model::helpers;
using model::kEBUSY;
using model::kEDEADLK;
using model::kEINVAL;
using model::kENOENT;
using model::kENOMEM;
using model::kEOPNOTSUPP;
using model::kEPERM;

namespace {

constexpr std::int64_t kUnset = 12345;  // a value no helper returns
constexpr TimeNs kSec = 1'000'000'000;

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
          std::get<std::string>(*f) == "bpf_timer_lock")
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

// ---- bpf_timer_init
// ------------------------------------------------------------------------------

TEST_CASE("bpf_timer_init returns 0 for each accepted clock on each timer map type", "[errors]") {
  const std::uint64_t clock = GENERATE(as<std::uint64_t>{}, 0, 1, 7);
  struct Kind {
    std::uint32_t type;
    std::uint32_t flags;
  };
  const Kind kind = GENERATE(Kind{model::kBpfMapTypeArray, 0}, Kind{model::kBpfMapTypeHash, 0},
                             Kind{model::kBpfMapTypeHash, model::kBpfFNoPrealloc},
                             Kind{model::kBpfMapTypeLruHash, 0});
  CAPTURE(clock, kind.type, kind.flags);
  World w(1);
  BpfMap* m = w.map(kind.type, 4, 16, 0, kind.flags);
  REQUIRE(m != nullptr);
  std::int64_t upd = kUnset, ret = kUnset;
  NativeProg* p = w.prog("init",
                         [&](ProgRun& r, auto) -> Co<std::int64_t> {
                           upd = co_await h::map_update(r, *m, h::u32_key(2),
                                                        std::vector<std::uint8_t>(16, 0), 0);
                           const std::uint64_t v = co_await h::map_lookup(r, *m, h::u32_key(2));
                           ret = co_await h::timer_init(r, h::timer_of(*m, v), *m, clock);
                           co_return 0;
                         },
                         {}, {m});
  w.run_at(0, 0, p);
  w.exit_at(100'000, 0);
  run_and_require_clean(w);
  CHECK(upd == 0);
  CHECK(ret == 0);
  CHECK(helper_rets(w, "bpf_timer_init") == std::vector<std::int64_t>{0});
}

TEST_CASE("bpf_timer_init returns -EOPNOTSUPP in NMI", "[errors]") {
  World w(1);
  BpfMap* arr = w.array(1);
  std::int64_t ret = kUnset, again = kUnset;
  NativeProg* p = w.prog("init",
                         [&](ProgRun& r, auto) -> Co<std::int64_t> {
                           const std::uint64_t t = co_await array_timer(r, *arr, 0);
                           const std::int64_t x =
                               co_await h::timer_init(r, t, *arr, model::kClockMonotonic);
                           (ret == kUnset ? ret : again) = x;
                           co_return 0;
                         },
                         {}, {arr});
  nmi_at(w, 0, 0, p);
  w.run_at(10'000, 0, p);  // the NMI left the timer uninitialized: a task's init succeeds
  w.exit_at(100'000, 0);
  run_and_require_clean(w);
  CHECK(ret == -kEOPNOTSUPP);
  CHECK(again == 0);
  CHECK(helper_rets(w, "bpf_timer_init") == std::vector<std::int64_t>{-kEOPNOTSUPP, 0});
}

namespace {
// One bpf_timer_init on array[0] with `flags` from a task; returns what the program saw, after a
// clean teardown, and checks the helper's trace record carries the same value.
std::int64_t init_once(std::uint64_t flags) {
  World w(1);
  BpfMap* arr = w.array(1);
  std::int64_t ret = kUnset;
  NativeProg* p = w.prog("init",
                         [&](ProgRun& r, auto) -> Co<std::int64_t> {
                           const std::uint64_t t = co_await array_timer(r, *arr, 0);
                           ret = co_await h::timer_init(r, t, *arr, flags);
                           co_return 0;
                         },
                         {}, {arr});
  w.run_at(0, 0, p);
  w.exit_at(100'000, 0);
  run_and_require_clean(w);
  CHECK(helper_rets(w, "bpf_timer_init") == std::vector<std::int64_t>{ret});
  if (ret != 0) CHECK(w.events("bpf_timer_publish") == 0);
  return ret;
}
}  // namespace

TEST_CASE("bpf_timer_init returns -EINVAL for flags >= MAX_CLOCKS", "[errors]") {
  const std::uint64_t flags = GENERATE(as<std::uint64_t>{}, 16, 17, 0x100, 1u << 31, ~0ULL);
  CAPTURE(flags);
  CHECK(init_once(flags) == -kEINVAL);
}

TEST_CASE("bpf_timer_init returns -EINVAL for clock ids other than 0, 1 and 7", "[errors]") {
  const std::uint64_t clock = GENERATE(as<std::uint64_t>{}, 2, 3, 4, 5, 6, 8, 9, 11, 15);
  CAPTURE(clock);
  CHECK(init_once(clock) == -kEINVAL);
}

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

TEST_CASE("bpf_timer_init returns -EPERM once the map has no user references", "[errors]") {
  // Reference 1.8 "pinned prog, unpinned map": the program keeps the map alive (refcnt) but its
  // only fd is closed (usercnt 0).
  World w(1);
  BpfMap* arr = w.array(1);
  std::int64_t ret = kUnset;
  std::int64_t usercnt_seen = -1;
  NativeProg* p = w.prog("init",
                         [&](ProgRun& r, auto) -> Co<std::int64_t> {
                           usercnt_seen = arr->usercnt;
                           const std::uint64_t t = co_await array_timer(r, *arr, 0);
                           ret = co_await h::timer_init(r, t, *arr, 1);
                           co_return 0;
                         },
                         {}, {arr});
  w.close_at(0, 0, arr);
  w.run_at(10'000, 0, p);
  w.exit_at(100'000, 0);
  run_and_require_clean(w);
  CHECK(usercnt_seen == 0);
  CHECK(ret == -kEPERM);
  CHECK(helper_rets(w, "bpf_timer_init") == std::vector<std::int64_t>{-kEPERM});
  CHECK(w.events("bpf_timer_publish") == 0);
}

TEST_CASE("bpf_timer_init returns -ENOMEM when the allocation fails", "[errors]") {
  World w(1);
  BpfMap* arr = w.array(1);
  std::vector<std::int64_t> rets;
  NativeProg* p = w.prog("init",
                         [&](ProgRun& r, auto) -> Co<std::int64_t> {
                           const std::uint64_t t = co_await array_timer(r, *arr, 0);
                           const std::int64_t a = co_await h::timer_init(r, t, *arr, 1);
                           rets.push_back(a);
                           // Nothing was published: the next init allocates and succeeds.
                           const std::int64_t b = co_await h::timer_init(r, t, *arr, 1);
                           rets.push_back(b);
                           co_return 0;
                         },
                         {}, {arr});
  w.k.faults.fail_next(model::FaultSite::kBpfTimerInitKmalloc);
  w.run_at(0, 0, p);
  w.exit_at(100'000, 0);
  run_and_require_clean(w);
  CHECK(rets == std::vector<std::int64_t>{-kENOMEM, 0});
  CHECK(helper_rets(w, "bpf_timer_init") == std::vector<std::int64_t>{-kENOMEM, 0});
  CHECK(w.events("bpf_timer_publish") == 1);
}

// ---- bpf_timer_set_callback
// ----------------------------------------------------------------------

TEST_CASE("bpf_timer_set_callback returns 0 and holds one prog reference", "[errors]") {
  World w(1);
  BpfMap* arr = w.array(1);
  std::vector<std::int64_t> rets;
  std::int64_t refcnt_before = -1, refcnt_after = -1;
  NativeProg* p = nullptr;
  p = w.prog("set_callback",
             [&](ProgRun& r, auto) -> Co<std::int64_t> {
               const std::uint64_t t = co_await array_timer(r, *arr, 0);
               rets.push_back(co_await h::timer_init(r, t, *arr, 1));
               refcnt_before = p->refcnt;
               rets.push_back(co_await h::timer_set_callback(r, t, p->callback(0)));
               rets.push_back(co_await h::timer_set_callback(r, t, p->callback(1)));
               refcnt_after = p->refcnt;
               co_return 0;
             },
             {{"cb0", [](ProgRun&, auto) -> Co<std::int64_t> { co_return 0; }},
              {"cb1", [](ProgRun&, auto) -> Co<std::int64_t> { co_return 0; }}},
             {arr});
  w.run_at(0, 0, p);
  w.exit_at(100'000, 0);
  run_and_require_clean(w);
  CHECK(rets == std::vector<std::int64_t>{0, 0, 0});
  CHECK(helper_rets(w, "bpf_timer_set_callback") == std::vector<std::int64_t>{0, 0});
  CHECK(refcnt_after == refcnt_before + 1);  // exactly one reference per timer (1.4 step 5)
}

TEST_CASE("bpf_timer_set_callback returns -EOPNOTSUPP in NMI", "[errors]") {
  World w(1);
  BpfMap* arr = w.array(1);
  std::int64_t init = kUnset, ret = kUnset, start = kUnset;
  int fired = 0;
  NativeProg* setup = w.prog("setup",
                             [&](ProgRun& r, auto) -> Co<std::int64_t> {
                               const std::uint64_t t = co_await array_timer(r, *arr, 0);
                               init = co_await h::timer_init(r, t, *arr, 1);
                               co_return 0;
                             },
                             {}, {arr});
  NativeProg* p = nullptr;
  p = w.prog("nmi set_callback",
             [&](ProgRun& r, auto) -> Co<std::int64_t> {
               const std::uint64_t t = co_await array_timer(r, *arr, 0);
               ret = co_await h::timer_set_callback(r, t, p->callback(0));
               start = co_await h::timer_start(r, t, 100, 0);  // also refused in NMI
               co_return 0;
             },
             {{"cb",
               [&](ProgRun&, auto) -> Co<std::int64_t> {
                 ++fired;
                 co_return 0;
               }}},
             {arr});
  w.run_at(0, 0, setup);
  nmi_at(w, 10'000, 0, p);
  w.exit_at(100'000, 0);
  run_and_require_clean(w);
  CHECK(init == 0);
  CHECK(ret == -kEOPNOTSUPP);
  CHECK(start == -kEOPNOTSUPP);
  CHECK(fired == 0);
  CHECK(helper_rets(w, "bpf_timer_set_callback") == std::vector<std::int64_t>{-kEOPNOTSUPP});
  CHECK(w.events("bpf_timer_set_callback_done") == 0);
}

TEST_CASE("bpf_timer_set_callback returns -EINVAL on an uninitialized timer", "[errors]") {
  World w(1);
  BpfMap* arr = w.array(1);
  std::int64_t ret = kUnset;
  std::int64_t refcnt_before = -1, refcnt_after = -1;
  NativeProg* p = nullptr;
  p = w.prog("set_callback",
             [&](ProgRun& r, auto) -> Co<std::int64_t> {
               refcnt_before = p->refcnt;
               const std::uint64_t t = co_await array_timer(r, *arr, 0);
               ret = co_await h::timer_set_callback(r, t, p->callback(0));
               refcnt_after = p->refcnt;
               co_return 0;
             },
             {{"cb", [](ProgRun&, auto) -> Co<std::int64_t> { co_return 0; }}}, {arr});
  w.run_at(0, 0, p);
  w.exit_at(100'000, 0);
  run_and_require_clean(w);
  CHECK(ret == -kEINVAL);
  CHECK(refcnt_after == refcnt_before);
  CHECK(helper_rets(w, "bpf_timer_set_callback") == std::vector<std::int64_t>{-kEINVAL});
}

// Scenario 4.4: map_release_uref waits (on CPU1) for a running callback of slot 0 (on CPU0); the
// other slots' timers are still initialized while usercnt is already 0, so the callback sees the
// usercnt checks of init and set_callback in action.
TEST_CASE("bpf_timer_set_callback returns -EPERM while usercnt is 0 (and init -EBUSY first)",
          "[errors]") {
  World w(2);
  BpfMap* arr = w.array(3);
  std::vector<std::int64_t> setup_rets;
  std::int64_t set_cb = kUnset, init_busy = kUnset, init_perm = kUnset, start = kUnset;
  std::int64_t usercnt_seen = -1;
  NativeProg* p = nullptr;
  p = w.prog(
      "setup",
      [&](ProgRun& r, auto) -> Co<std::int64_t> {
        for (std::uint32_t i = 0; i < 2; ++i) {
          const std::uint64_t t = co_await array_timer(r, *arr, i);
          setup_rets.push_back(co_await h::timer_init(r, t, *arr, 1));
          setup_rets.push_back(co_await h::timer_set_callback(r, t, p->callback(0)));
        }
        const std::uint64_t t = co_await array_timer(r, *arr, 0);
        setup_rets.push_back(co_await h::timer_start(r, t, 1000, 0));
        co_return 0;
      },
      {{"cb",
        [&](ProgRun& r, auto) -> Co<std::int64_t> {
          co_await r.ctx.step(20'000);  // a long callback: the close on CPU1 happens meanwhile
          usercnt_seen = arr->usercnt;
          const std::uint64_t t1 = co_await array_timer(r, *arr, 1);
          set_cb = co_await h::timer_set_callback(r, t1, p->callback(0));
          init_busy = co_await h::timer_init(r, t1, *arr, 1);
          start = co_await h::timer_start(r, t1, kSec, 0);  // start does not check usercnt
          const std::uint64_t t2 = co_await array_timer(r, *arr, 2);
          init_perm = co_await h::timer_init(r, t2, *arr, 1);
          co_return 0;
        }}},
      {arr});
  w.run_at(0, 0, p);
  w.close_at(6'000, 1, arr);
  w.exit_at(200'000, 1);
  run_and_require_clean(w);
  CHECK(setup_rets == std::vector<std::int64_t>{0, 0, 0, 0, 0});
  CHECK(usercnt_seen == 0);
  CHECK(set_cb == -kEPERM);
  CHECK(init_busy == -kEBUSY);
  CHECK(start == 0);  // slot 1 still holds its callback: start only checks the prog
  CHECK(init_perm == -kEPERM);
  CHECK(helper_rets(w, "bpf_timer_set_callback") == std::vector<std::int64_t>{0, 0, -kEPERM});
  CHECK(helper_rets(w, "bpf_timer_init") == std::vector<std::int64_t>{0, 0, -kEBUSY, -kEPERM});
}

// bpf_prog_inc_not_zero fails once the program's refcnt reached zero. The honest way to run a
// program whose refcnt is zero: its fd is closed, its timer held the last reference, and the
// callback updates its own array slot (cancel_and_free drops that reference while the callback
// still runs, protected by RCU as in scenario 4.3). Then it calls set_callback on another timer.
TEST_CASE("bpf_timer_set_callback returns -ENOENT when the prog's refcnt is already zero",
          "[errors]") {
  World w(1);
  BpfMap* arr = w.array(2);
  std::vector<std::int64_t> setup_rets;
  std::int64_t update = kUnset, set_cb = kUnset, start = kUnset;
  std::int64_t refcnt_seen = -1;
  int fired = 0;
  NativeProg* p = nullptr;
  p = w.prog("setup",
             [&](ProgRun& r, auto) -> Co<std::int64_t> {
               const std::uint64_t t0 = co_await array_timer(r, *arr, 0);
               const std::uint64_t t1 = co_await array_timer(r, *arr, 1);
               setup_rets.push_back(co_await h::timer_init(r, t0, *arr, 1));
               setup_rets.push_back(co_await h::timer_init(r, t1, *arr, 1));
               setup_rets.push_back(co_await h::timer_set_callback(r, t0, p->callback(0)));
               setup_rets.push_back(co_await h::timer_start(r, t0, 5000, 0));
               co_return 0;
             },
             {{"cb",
               [&](ProgRun& r, auto) -> Co<std::int64_t> {
                 ++fired;
                 update = co_await h::map_update(r, *arr, h::u32_key(0),
                                                 std::vector<std::uint8_t>(16, 0), 0);
                 refcnt_seen = p->refcnt;
                 const std::uint64_t t1 = co_await array_timer(r, *arr, 1);
                 set_cb = co_await h::timer_set_callback(r, t1, p->callback(0));
                 start = co_await h::timer_start(r, t1, 100, 0);  // no callback was installed
                 co_return 0;
               }}},
             {arr});
  w.run_at(0, 0, p);
  w.task_at(2000, 0, "close prog fd", [&](Context& c) -> Co<void> {
    (void)co_await w.k.sys.close(c, w.proc, w.prog_fds.at(p));
  });
  w.exit_at(100'000, 0);
  run_and_require_clean(w);
  CHECK(setup_rets == std::vector<std::int64_t>{0, 0, 0, 0});
  CHECK(fired == 1);
  CHECK(update == 0);
  CHECK(refcnt_seen == 0);
  CHECK(set_cb == -kENOENT);
  CHECK(start == -kEINVAL);
  CHECK(helper_rets(w, "bpf_timer_set_callback") == std::vector<std::int64_t>{0, -kENOENT});
}

// ---- bpf_timer_start
// -----------------------------------------------------------------------------

TEST_CASE("bpf_timer_start returns 0 and the callback fires once after nsecs", "[errors]") {
  World w(1);
  BpfMap* arr = w.array(1);
  std::vector<std::int64_t> rets;
  std::vector<TimeNs> fired_at;
  TimeNs started_at = -1;
  NativeProg* p = nullptr;
  p = w.prog("start",
             [&](ProgRun& r, auto) -> Co<std::int64_t> {
               const std::uint64_t t = co_await array_timer(r, *arr, 0);
               rets.push_back(co_await h::timer_init(r, t, *arr, 1));
               rets.push_back(co_await h::timer_set_callback(r, t, p->callback(0)));
               started_at = r.ctx.now();
               rets.push_back(co_await h::timer_start(r, t, 3000, 0));
               co_return 0;
             },
             {{"cb",
               [&](ProgRun& r, auto) -> Co<std::int64_t> {
                 fired_at.push_back(r.ctx.now());
                 co_return 0;
               }}},
             {arr});
  w.run_at(0, 0, p);
  w.exit_at(100'000, 0);
  run_and_require_clean(w);
  CHECK(rets == std::vector<std::int64_t>{0, 0, 0});
  CHECK(helper_rets(w, "bpf_timer_start") == std::vector<std::int64_t>{0});
  REQUIRE(fired_at.size() == 1);
  CHECK(fired_at[0] >= started_at + 3000);
}

TEST_CASE("bpf_timer_start returns -EOPNOTSUPP in NMI", "[errors]") {
  World w(1);
  BpfMap* arr = w.array(1);
  std::vector<std::int64_t> setup_rets;
  std::int64_t ret = kUnset;
  int fired = 0;
  NativeProg* p = nullptr;
  p = w.prog("setup",
             [&](ProgRun& r, auto) -> Co<std::int64_t> {
               const std::uint64_t t = co_await array_timer(r, *arr, 0);
               setup_rets.push_back(co_await h::timer_init(r, t, *arr, 1));
               setup_rets.push_back(co_await h::timer_set_callback(r, t, p->callback(0)));
               co_return 0;
             },
             {{"cb",
               [&](ProgRun&, auto) -> Co<std::int64_t> {
                 ++fired;
                 co_return 0;
               }}},
             {arr});
  NativeProg* q = w.prog("nmi start",
                         [&](ProgRun& r, auto) -> Co<std::int64_t> {
                           const std::uint64_t t = co_await array_timer(r, *arr, 0);
                           ret = co_await h::timer_start(r, t, 100, 0);
                           co_return 0;
                         },
                         {}, {arr});
  w.run_at(0, 0, p);
  nmi_at(w, 10'000, 0, q);
  w.exit_at(100'000, 0);
  run_and_require_clean(w);
  CHECK(setup_rets == std::vector<std::int64_t>{0, 0});
  CHECK(ret == -kEOPNOTSUPP);
  CHECK(fired == 0);
  CHECK(helper_rets(w, "bpf_timer_start") == std::vector<std::int64_t>{-kEOPNOTSUPP});
}

TEST_CASE("bpf_timer_start returns -EINVAL for any non-zero flags (seed)", "[errors]") {
  const std::uint64_t flags = GENERATE(as<std::uint64_t>{}, 1, 2, 3, 0x80, ~0ULL);
  CAPTURE(flags);
  World w(1);
  BpfMap* arr = w.array(1);
  std::vector<std::int64_t> rets;
  int fired = 0;
  NativeProg* p = nullptr;
  p = w.prog("start",
             [&](ProgRun& r, auto) -> Co<std::int64_t> {
               const std::uint64_t t = co_await array_timer(r, *arr, 0);
               rets.push_back(co_await h::timer_init(r, t, *arr, 1));
               rets.push_back(co_await h::timer_set_callback(r, t, p->callback(0)));
               rets.push_back(co_await h::timer_start(r, t, 100, flags));
               co_return 0;
             },
             {{"cb",
               [&](ProgRun&, auto) -> Co<std::int64_t> {
                 ++fired;
                 co_return 0;
               }}},
             {arr});
  w.run_at(0, 0, p);
  w.exit_at(100'000, 0);
  run_and_require_clean(w);
  CHECK(rets == std::vector<std::int64_t>{0, 0, -kEINVAL});
  CHECK(fired == 0);
  CHECK(helper_rets(w, "bpf_timer_start") == std::vector<std::int64_t>{-kEINVAL});
}

TEST_CASE("bpf_timer_start returns -EINVAL on an uninitialized timer", "[errors]") {
  World w(1);
  BpfMap* arr = w.array(1);
  std::int64_t ret = kUnset;
  NativeProg* p = w.prog("start",
                         [&](ProgRun& r, auto) -> Co<std::int64_t> {
                           const std::uint64_t t = co_await array_timer(r, *arr, 0);
                           ret = co_await h::timer_start(r, t, 100, 0);
                           co_return 0;
                         },
                         {}, {arr});
  w.run_at(0, 0, p);
  w.exit_at(100'000, 0);
  run_and_require_clean(w);
  CHECK(ret == -kEINVAL);
  CHECK(helper_rets(w, "bpf_timer_start") == std::vector<std::int64_t>{-kEINVAL});
}

TEST_CASE("bpf_timer_start returns -EINVAL when no callback was ever set", "[errors]") {
  World w(1);
  BpfMap* arr = w.array(1);
  std::vector<std::int64_t> rets;
  NativeProg* p = w.prog("start",
                         [&](ProgRun& r, auto) -> Co<std::int64_t> {
                           const std::uint64_t t = co_await array_timer(r, *arr, 0);
                           rets.push_back(co_await h::timer_init(r, t, *arr, 1));
                           rets.push_back(co_await h::timer_start(r, t, 100, 0));
                           co_return 0;
                         },
                         {}, {arr});
  w.run_at(0, 0, p);
  w.exit_at(100'000, 0);
  run_and_require_clean(w);
  CHECK(rets == std::vector<std::int64_t>{0, -kEINVAL});
  CHECK(helper_rets(w, "bpf_timer_start") == std::vector<std::int64_t>{-kEINVAL});
}

TEST_CASE("bpf_timer_start returns -EINVAL after a cancel dropped the callback", "[errors]") {
  World w(1);
  BpfMap* arr = w.array(1);
  std::vector<std::int64_t> rets;
  int fired = 0;
  NativeProg* p = nullptr;
  p = w.prog("start cancel start",
             [&](ProgRun& r, auto) -> Co<std::int64_t> {
               const std::uint64_t t = co_await array_timer(r, *arr, 0);
               rets.push_back(co_await h::timer_init(r, t, *arr, 1));
               rets.push_back(co_await h::timer_set_callback(r, t, p->callback(0)));
               rets.push_back(co_await h::timer_start(r, t, kSec, 0));
               rets.push_back(co_await h::timer_cancel(r, t));
               rets.push_back(co_await h::timer_start(r, t, 100, 0));
               // Cancel is not a disable (4.7): set_callback again and start works.
               rets.push_back(co_await h::timer_set_callback(r, t, p->callback(0)));
               rets.push_back(co_await h::timer_start(r, t, 200, 0));
               co_return 0;
             },
             {{"cb",
               [&](ProgRun&, auto) -> Co<std::int64_t> {
                 ++fired;
                 co_return 0;
               }}},
             {arr});
  w.run_at(0, 0, p);
  w.exit_at(100'000, 0);
  run_and_require_clean(w);
  CHECK(rets == std::vector<std::int64_t>{0, 0, 0, 1, -kEINVAL, 0, 0});
  CHECK(helper_rets(w, "bpf_timer_start") == std::vector<std::int64_t>{0, -kEINVAL, 0});
  CHECK(fired == 1);
}

// ---- bpf_timer_cancel
// ----------------------------------------------------------------------------

TEST_CASE("bpf_timer_cancel returns -EOPNOTSUPP in NMI and leaves the timer armed", "[errors]") {
  World w(1);
  BpfMap* arr = w.array(1);
  std::vector<std::int64_t> setup_rets;
  std::int64_t ret = kUnset;
  int fired = 0;
  NativeProg* p = nullptr;
  p = w.prog("setup",
             [&](ProgRun& r, auto) -> Co<std::int64_t> {
               const std::uint64_t t = co_await array_timer(r, *arr, 0);
               setup_rets.push_back(co_await h::timer_init(r, t, *arr, 1));
               setup_rets.push_back(co_await h::timer_set_callback(r, t, p->callback(0)));
               setup_rets.push_back(co_await h::timer_start(r, t, 50'000, 0));
               co_return 0;
             },
             {{"cb",
               [&](ProgRun&, auto) -> Co<std::int64_t> {
                 ++fired;
                 co_return 0;
               }}},
             {arr});
  NativeProg* q = w.prog("nmi cancel",
                         [&](ProgRun& r, auto) -> Co<std::int64_t> {
                           const std::uint64_t t = co_await array_timer(r, *arr, 0);
                           ret = co_await h::timer_cancel(r, t);
                           co_return 0;
                         },
                         {}, {arr});
  w.run_at(0, 0, p);
  nmi_at(w, 10'000, 0, q);
  w.exit_at(200'000, 0);
  run_and_require_clean(w);
  CHECK(setup_rets == std::vector<std::int64_t>{0, 0, 0});
  CHECK(ret == -kEOPNOTSUPP);
  CHECK(fired == 1);
  CHECK(helper_rets(w, "bpf_timer_cancel") == std::vector<std::int64_t>{-kEOPNOTSUPP});
}

TEST_CASE("bpf_timer_cancel returns -EINVAL on an uninitialized timer", "[errors]") {
  World w(1);
  BpfMap* arr = w.array(1);
  std::int64_t ret = kUnset;
  NativeProg* p = w.prog("cancel",
                         [&](ProgRun& r, auto) -> Co<std::int64_t> {
                           const std::uint64_t t = co_await array_timer(r, *arr, 0);
                           ret = co_await h::timer_cancel(r, t);
                           co_return 0;
                         },
                         {}, {arr});
  w.run_at(0, 0, p);
  w.exit_at(100'000, 0);
  run_and_require_clean(w);
  CHECK(ret == -kEINVAL);
  CHECK(helper_rets(w, "bpf_timer_cancel") == std::vector<std::int64_t>{-kEINVAL});
}

TEST_CASE("bpf_timer_cancel returns -EDEADLK from the timer's own callback", "[errors]") {
  // Scenario 4.2: the prog reference is not dropped and a re-arm made before the cancel stays.
  World w(1);
  BpfMap* arr = w.array(1);
  std::vector<std::int64_t> setup_rets, cb_rets;
  int fired = 0;
  NativeProg* p = nullptr;
  p = w.prog("setup",
             [&](ProgRun& r, auto) -> Co<std::int64_t> {
               const std::uint64_t t = co_await array_timer(r, *arr, 0);
               setup_rets.push_back(co_await h::timer_init(r, t, *arr, 1));
               setup_rets.push_back(co_await h::timer_set_callback(r, t, p->callback(0)));
               setup_rets.push_back(co_await h::timer_start(r, t, 1000, 0));
               co_return 0;
             },
             {{"cb",
               [&](ProgRun& r, std::array<std::uint64_t, 5> a) -> Co<std::int64_t> {
                 ++fired;
                 if (fired == 1) {
                   const std::uint64_t t = h::timer_of(*arr, a[2]);
                   cb_rets.push_back(co_await h::timer_start(r, t, 1000, 0));
                   cb_rets.push_back(co_await h::timer_cancel(r, t));
                 }
                 co_return 0;
               }}},
             {arr});
  w.run_at(0, 0, p);
  w.exit_at(100'000, 0);
  run_and_require_clean(w);
  CHECK(setup_rets == std::vector<std::int64_t>{0, 0, 0});
  CHECK(cb_rets == std::vector<std::int64_t>{0, -kEDEADLK});
  CHECK(fired == 2);
  CHECK(helper_rets(w, "bpf_timer_cancel") == std::vector<std::int64_t>{-kEDEADLK});
  CHECK(w.events("bpf_timer_drop_prog") == 1);  // only at the process exit's uref release
}

TEST_CASE("bpf_timer_cancel returns -EDEADLK from a hardirq interrupting the callback",
          "[errors]") {
  // Scenario 4.13: hrtimer_running is per CPU, so an interrupt on the callback's CPU is "the
  // callback" too.
  World w(1);
  BpfMap* arr = w.array(1);
  std::vector<std::int64_t> setup_rets;
  std::int64_t ret = kUnset;
  int fired = 0;
  NativeProg* p = nullptr;
  p = w.prog("setup",
             [&](ProgRun& r, auto) -> Co<std::int64_t> {
               const std::uint64_t t = co_await array_timer(r, *arr, 0);
               setup_rets.push_back(co_await h::timer_init(r, t, *arr, 1));
               setup_rets.push_back(co_await h::timer_set_callback(r, t, p->callback(0)));
               setup_rets.push_back(co_await h::timer_start(r, t, 1000, 0));
               co_return 0;
             },
             {{"cb",
               [&](ProgRun& r, auto) -> Co<std::int64_t> {
                 ++fired;
                 co_await r.ctx.step(20'000);
                 co_return 0;
               }}},
             {arr});
  NativeProg* q = w.prog("irq cancel",
                         [&](ProgRun& r, auto) -> Co<std::int64_t> {
                           const std::uint64_t t = co_await array_timer(r, *arr, 0);
                           ret = co_await h::timer_cancel(r, t);
                           co_return 0;
                         },
                         {}, {arr});
  w.run_at(0, 0, p);
  w.sim.at(10'000, 0x400000u, [&](sim::Simulator& s) {
    s.spawn_interrupt(0, sim::CtxKind::kHardirq, "irq",
                      [&](Context& c) -> Co<void> { (void)co_await w.k.run_prog(c, *q, {}); });
  });
  w.exit_at(100'000, 0);
  run_and_require_clean(w);
  CHECK(setup_rets == std::vector<std::int64_t>{0, 0, 0});
  CHECK(fired == 1);
  CHECK(ret == -kEDEADLK);
  CHECK(helper_rets(w, "bpf_timer_cancel") == std::vector<std::int64_t>{-kEDEADLK});
}

TEST_CASE("bpf_timer_cancel returns 0 when the timer was not queued", "[errors]") {
  World w(1);
  BpfMap* arr = w.array(1);
  std::vector<std::int64_t> rets;
  std::int64_t refcnt_before = -1, refcnt_after = -1;
  NativeProg* p = nullptr;
  p = w.prog("cancel idle",
             [&](ProgRun& r, auto) -> Co<std::int64_t> {
               const std::uint64_t t = co_await array_timer(r, *arr, 0);
               rets.push_back(co_await h::timer_init(r, t, *arr, 1));
               rets.push_back(co_await h::timer_cancel(r, t));  // initialized, no callback
               refcnt_before = p->refcnt;
               rets.push_back(co_await h::timer_set_callback(r, t, p->callback(0)));
               rets.push_back(co_await h::timer_cancel(r, t));  // callback set, not armed
               refcnt_after = p->refcnt;
               co_return 0;
             },
             {{"cb", [](ProgRun&, auto) -> Co<std::int64_t> { co_return 0; }}}, {arr});
  w.run_at(0, 0, p);
  w.exit_at(100'000, 0);
  run_and_require_clean(w);
  CHECK(rets == std::vector<std::int64_t>{0, 0, 0, 0});
  CHECK(refcnt_after == refcnt_before);  // the cancel dropped the reference set_callback took
  CHECK(helper_rets(w, "bpf_timer_cancel") == std::vector<std::int64_t>{0, 0});
}

TEST_CASE("bpf_timer_cancel returns 1 when the timer was queued, and it never fires", "[errors]") {
  World w(1);
  BpfMap* arr = w.array(1);
  std::vector<std::int64_t> rets;
  int fired = 0;
  NativeProg* p = nullptr;
  p = w.prog("cancel armed",
             [&](ProgRun& r, auto) -> Co<std::int64_t> {
               const std::uint64_t t = co_await array_timer(r, *arr, 0);
               rets.push_back(co_await h::timer_init(r, t, *arr, 1));
               rets.push_back(co_await h::timer_set_callback(r, t, p->callback(0)));
               rets.push_back(co_await h::timer_start(r, t, 5000, 0));
               rets.push_back(co_await h::timer_cancel(r, t));
               co_return 0;
             },
             {{"cb",
               [&](ProgRun&, auto) -> Co<std::int64_t> {
                 ++fired;
                 co_return 0;
               }}},
             {arr});
  w.run_at(0, 0, p);
  w.exit_at(100'000, 0);
  run_and_require_clean(w);
  CHECK(rets == std::vector<std::int64_t>{0, 0, 0, 1});
  CHECK(fired == 0);
  CHECK(helper_rets(w, "bpf_timer_cancel") == std::vector<std::int64_t>{1});
}

// ---- order of the checks where two errors apply ------------------------------------------------

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

TEST_CASE("order: set_callback checks initialization before usercnt (-EINVAL, not -EPERM)",
          "[errors]") {
  World w(1);
  BpfMap* arr = w.array(1);
  std::int64_t ret = kUnset;
  NativeProg* p = nullptr;
  p = w.prog("set_callback",
             [&](ProgRun& r, auto) -> Co<std::int64_t> {
               const std::uint64_t t = co_await array_timer(r, *arr, 0);
               ret = co_await h::timer_set_callback(r, t, p->callback(0));
               co_return 0;
             },
             {{"cb", [](ProgRun&, auto) -> Co<std::int64_t> { co_return 0; }}}, {arr});
  w.close_at(0, 0, arr);
  w.run_at(10'000, 0, p);
  w.exit_at(100'000, 0);
  run_and_require_clean(w);
  CHECK(ret == -kEINVAL);
  CHECK(helper_rets(w, "bpf_timer_set_callback") == std::vector<std::int64_t>{-kEINVAL});
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

TEST_CASE("order: cancel checks initialization before self (-EINVAL after own slot update)",
          "[errors]") {
  // Scenario 4.3 (array): the callback updates its own slot, which frees its timer; its own
  // cancel then finds NULL (-EINVAL), not itself (-EDEADLK), and start finds NULL too.
  World w(1);
  BpfMap* arr = w.array(1);
  std::vector<std::int64_t> setup_rets, cb_rets;
  NativeProg* p = nullptr;
  p = w.prog("setup",
             [&](ProgRun& r, auto) -> Co<std::int64_t> {
               const std::uint64_t t = co_await array_timer(r, *arr, 0);
               setup_rets.push_back(co_await h::timer_init(r, t, *arr, 1));
               setup_rets.push_back(co_await h::timer_set_callback(r, t, p->callback(0)));
               setup_rets.push_back(co_await h::timer_start(r, t, 1000, 0));
               co_return 0;
             },
             {{"cb",
               [&](ProgRun& r, std::array<std::uint64_t, 5> a) -> Co<std::int64_t> {
                 const std::uint64_t t = h::timer_of(*arr, a[2]);
                 cb_rets.push_back(co_await h::timer_cancel(r, t));
                 cb_rets.push_back(co_await h::map_update(r, *arr, h::u32_key(0),
                                                          std::vector<std::uint8_t>(16, 0), 0));
                 cb_rets.push_back(co_await h::timer_cancel(r, t));
                 cb_rets.push_back(co_await h::timer_start(r, t, 100, 0));
                 co_return 0;
               }}},
             {arr});
  w.run_at(0, 0, p);
  w.exit_at(100'000, 0);
  run_and_require_clean(w);
  CHECK(setup_rets == std::vector<std::int64_t>{0, 0, 0});
  CHECK(cb_rets == std::vector<std::int64_t>{-kEDEADLK, 0, -kEINVAL, -kEINVAL});
  CHECK(helper_rets(w, "bpf_timer_cancel") == std::vector<std::int64_t>{-kEDEADLK, -kEINVAL});
}

// ---- map-side codes
// ------------------------------------------------------------------------------

TEST_CASE("array delete returns -EINVAL (BPF and syscall) and leaves the timer running",
          "[errors]") {
  World w(2);
  BpfMap* arr = w.array(1);
  std::vector<std::int64_t> rets;
  int sys_ret = 12345;
  int fired = 0;
  NativeProg* p = nullptr;
  p = w.prog("delete",
             [&](ProgRun& r, auto) -> Co<std::int64_t> {
               const std::uint64_t t = co_await array_timer(r, *arr, 0);
               rets.push_back(co_await h::timer_init(r, t, *arr, 1));
               rets.push_back(co_await h::timer_set_callback(r, t, p->callback(0)));
               rets.push_back(co_await h::timer_start(r, t, 50'000, 0));
               rets.push_back(co_await h::map_delete(r, *arr, h::u32_key(0)));
               co_return 0;
             },
             {{"cb",
               [&](ProgRun&, auto) -> Co<std::int64_t> {
                 ++fired;
                 co_return 0;
               }}},
             {arr});
  w.run_at(0, 0, p);
  w.task_at(10'000, 1, "sys delete", [&](Context& c) -> Co<void> {
    sys_ret = co_await w.k.sys.map_delete_elem(c, w.proc, w.fds.at(arr), h::u32_key(0));
  });
  w.exit_at(200'000, 0);
  run_and_require_clean(w);
  CHECK(rets == std::vector<std::int64_t>{0, 0, 0, -kEINVAL});
  CHECK(sys_ret == -kEINVAL);
  CHECK(fired == 1);
  CHECK(helper_rets(w, "bpf_map_delete_elem") == std::vector<std::int64_t>{-kEINVAL});
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
