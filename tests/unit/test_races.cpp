// The race catalogue of ../shared/reference/bpf-timer.md section 4, on the seed (v5.15) profile:
// each TEST_CASE builds the situation with native programs (C++ stand-ins for bytecode calling the
// same helper entry points) and asserts the outcome the reference states for the seed.
// Where a race needs a narrow interleaving, the test searches seeds with step-cost jitter (a
// fixed, deterministic list of seeds) and asserts that the outcome appears, and what it is.
#include <catch2/catch.hpp>

#include <algorithm>
#include <optional>

#include "tests/unit/world.h"

using namespace bpftsim;
using namespace bpftsim::testing;
namespace h = bpftsim::model::helpers;
using model::kClockMonotonic;
using model::kEBUSY;
using model::kEDEADLK;
using model::kEINVAL;
using model::kEPERM;

namespace {

constexpr std::uint64_t kLong = 1ULL << 35;  // the selftests' "never fires during the test"

// Timing of one traced event of `ctx`-independent kind: the first record named `event` with
// field `key` == value, or -1.
TimeNs first_time(const World& w, const std::string& event) {
  for (const auto& r : w.sim.trace().records())
    if (r.event == event) return r.t_ns;
  return -1;
}

// A program that initialises the timer of map[key] (tolerating -EBUSY), sets callback #cb and
// starts it with `ns`. Results go to `rets` when given.
NativeProg::Entry arm(BpfMap* m, std::uint32_t key, NativeProg** self, std::size_t cb,
                      std::uint64_t ns, std::vector<std::int64_t>* rets = nullptr) {
  return [=](ProgRun& r, auto) -> Co<std::int64_t> {
    const auto v = co_await h::map_lookup(r, *m, h::u32_key(key));
    const auto t = h::timer_of(*m, v);
    const auto a = co_await h::timer_init(r, t, *m, kClockMonotonic);
    const auto b = co_await h::timer_set_callback(r, t, (*self)->callback(cb));
    const auto c = co_await h::timer_start(r, t, ns, 0);
    if (rets) *rets = {a, b, c};
    co_return 0;
  };
}

}  // namespace

TEST_CASE("4.1 cancel while the callback runs on another CPU waits for it and returns 0",
          "[race][4.1]") {
  World w(2);
  BpfMap* m = w.array(1);
  NativeProg* p = nullptr;
  TimeNs cb_end = -1, cancel_ret_at = -1;
  std::int64_t cancel_ret = 99, start_in_cb = 99;
  p = w.prog("arm", arm(m, 0, &p, 0, 1000),
             {{"long_cb",
               [&](ProgRun& r, std::array<std::uint64_t, 5> a) -> Co<std::int64_t> {
                 co_await r.ctx.step(5000);  // a long callback body
                 // IP-a: the concurrent cancel already dropped the prog: start is refused.
                 start_in_cb = co_await h::timer_start(r, h::timer_of(*m, a[2]), 100, 0);
                 cb_end = r.ctx.now();
                 co_return 0;
               }}},
             {m});
  NativeProg* c = w.prog("canceller",
                         [&](ProgRun& r, auto) -> Co<std::int64_t> {
                           const auto v = co_await h::map_lookup(r, *m, h::u32_key(0));
                           cancel_ret = co_await h::timer_cancel(r, h::timer_of(*m, v));
                           cancel_ret_at = r.ctx.now();
                           co_return 0;
                         },
                         {}, {m});
  w.run_at(0, 0, p);
  w.run_at(3000, 1, c);  // the callback started at ~1.4 us and runs for 5 us
  w.exit_at(50000, 1);
  w.run();
  INFO(w.findings_text());
  CHECK(start_in_cb == -kEINVAL);
  CHECK(cancel_ret == 0);
  CHECK(cancel_ret_at >= cb_end);  // cancel never returns while the callback runs
  CHECK(w.events("block") >= 1);   // hrtimer_cancel spun on the running callback
  CHECK(w.k.armed_timers() == 0);
  w.k.check_quiescence();
  CHECK(w.sim.findings().empty());
}

TEST_CASE("4.1 IP-a: the callback re-arms through set_callback during the cancel: cancel returns 1",
          "[race][4.1]") {
  World w(2);
  BpfMap* m = w.array(1);
  NativeProg* p = nullptr;
  std::int64_t cancel_ret = 99;
  std::vector<std::int64_t> in_cb;
  std::int64_t refcnt_after = -1;
  p = w.prog("arm", arm(m, 0, &p, 0, 1000),
             {{"cb",
               [&](ProgRun& r, std::array<std::uint64_t, 5> a) -> Co<std::int64_t> {
                 co_await r.ctx.step(5000);
                 const auto t = h::timer_of(*m, a[2]);
                 in_cb.push_back(co_await h::timer_start(r, t, 100, 0));
                 in_cb.push_back(co_await h::timer_set_callback(r, t, p->callback(0)));
                 in_cb.push_back(co_await h::timer_start(r, t, 100000, 0));
                 co_return 0;
               }}},
             {m});
  NativeProg* c = w.prog("canceller",
                         [&](ProgRun& r, auto) -> Co<std::int64_t> {
                           const auto v = co_await h::map_lookup(r, *m, h::u32_key(0));
                           cancel_ret = co_await h::timer_cancel(r, h::timer_of(*m, v));
                           refcnt_after = p->refcnt;
                           co_return 0;
                         },
                         {}, {m});
  w.run_at(0, 0, p);
  w.run_at(3000, 1, c);
  w.exit_at(50000, 1);
  w.run();
  INFO(w.findings_text());
  CHECK(in_cb == std::vector<std::int64_t>{-kEINVAL, 0, 0});
  CHECK(cancel_ret == 1);  // the re-queued instance was removed
  // The timer holds a prog reference again although the cancel "succeeded": fd + timer.
  CHECK(refcnt_after == 2);
  w.k.check_quiescence();
  CHECK(w.sim.findings().empty());
}

TEST_CASE("4.1 IP-b: the callback re-armed before the cancel: cancel returns 1", "[race][4.1]") {
  World w(2);
  BpfMap* m = w.array(1);
  NativeProg* p = nullptr;
  std::int64_t cancel_ret = 99;
  p = w.prog("arm", arm(m, 0, &p, 0, 1000),
             {{"cb",
               [&](ProgRun& r, std::array<std::uint64_t, 5> a) -> Co<std::int64_t> {
                 (void)co_await h::timer_start(r, h::timer_of(*m, a[2]), 100000, 0);
                 co_await r.ctx.step(5000);
                 co_return 0;
               }}},
             {m});
  NativeProg* c = w.prog("canceller",
                         [&](ProgRun& r, auto) -> Co<std::int64_t> {
                           const auto v = co_await h::map_lookup(r, *m, h::u32_key(0));
                           cancel_ret = co_await h::timer_cancel(r, h::timer_of(*m, v));
                           co_return 0;
                         },
                         {}, {m});
  w.run_at(0, 0, p);
  w.run_at(3000, 1, c);
  w.exit_at(50000, 1);
  w.run();
  CHECK(cancel_ret == 1);
  CHECK(w.k.armed_timers() == 0);
}

TEST_CASE("4.2 a callback cancelling its own timer gets -EDEADLK and keeps its prog reference",
          "[race][4.2]") {
  World w(1);
  BpfMap* m = w.array(1);
  NativeProg* p = nullptr;
  std::int64_t self_cancel = 99;
  std::int64_t refcnt_in_cb = -1;
  std::size_t armed_after = 99;
  p = w.prog("arm", arm(m, 0, &p, 0, 1000),
             {{"cb",
               [&](ProgRun& r, std::array<std::uint64_t, 5> a) -> Co<std::int64_t> {
                 const auto t = h::timer_of(*m, a[2]);
                 (void)co_await h::timer_start(r, t, kLong, 0);  // re-armed first
                 self_cancel = co_await h::timer_cancel(r, t);
                 refcnt_in_cb = p->refcnt;
                 armed_after = r.k.armed_timers();
                 co_return 0;
               }}},
             {m});
  w.run_at(0, 0, p);
  w.exit_at(100000, 0);
  w.run();
  CHECK(self_cancel == -kEDEADLK);
  CHECK(refcnt_in_cb == 2);  // fd + the timer's reference, not dropped
  CHECK(armed_after == 1);   // the re-armed instance stays queued
  w.k.check_quiescence();
  CHECK(w.sim.findings().empty());
}

TEST_CASE("4.3 a callback deleting its own prealloc hash element: no deadlock, start -EINVAL",
          "[race][4.3]") {
  World w(1);
  BpfMap* m = w.map(model::kBpfMapTypeHash, 8, 24, 8);  // {u64 counter; struct bpf_timer}
  NativeProg* p = nullptr;
  std::int64_t del = 99, start_after = 99;
  p = w.prog("arm",
             [&](ProgRun& r, auto a) -> Co<std::int64_t> {
               (void)co_await h::map_update(r, *m, h::u32_key(2), std::vector<std::uint8_t>(24, 0),
                                            0);
               co_return co_await arm(m, 2, &p, 0, 1000)(r, a);
             },
             {{"cb",
               [&](ProgRun& r, std::array<std::uint64_t, 5> a) -> Co<std::int64_t> {
                 del = co_await h::map_delete(r, *m, h::u32_key(2));
                 start_after = co_await h::timer_start(r, h::timer_of(*m, a[2]), 1000, 0);
                 co_return 0;
               }}},
             {m});
  w.run_at(0, 0, p);
  w.exit_at(100000, 0);
  w.run();
  INFO(w.findings_text());
  CHECK(del == 0);
  CHECK(start_after == -kEINVAL);
  w.k.check_quiescence();
  CHECK(w.sim.findings().empty());
  CHECK(w.k.slab.live_count() == 0);
}

TEST_CASE("4.3-UAF re-arm then delete own element frees a queued hrtimer (use-after-free)",
          "[race][4.3]") {
  World w(1);
  BpfMap* m = w.map(model::kBpfMapTypeHash, 8, 24, 8);
  NativeProg* p = nullptr;
  p = w.prog("arm",
             [&](ProgRun& r, auto a) -> Co<std::int64_t> {
               (void)co_await h::map_update(r, *m, h::u32_key(2), std::vector<std::uint8_t>(24, 0),
                                            0);
               co_return co_await arm(m, 2, &p, 0, 1000)(r, a);
             },
             {{"cb",
               [&](ProgRun& r, std::array<std::uint64_t, 5> a) -> Co<std::int64_t> {
                 (void)co_await h::timer_start(r, h::timer_of(*m, a[2]), 2000, 0);  // re-arm
                 (void)co_await h::map_delete(r, *m, h::u32_key(2));  // skips hrtimer_cancel
                 co_return 0;
               }}},
             {m});
  w.run_at(0, 0, p);
  w.exit_at(100000, 0);
  w.run();
  REQUIRE(w.count("use_after_free") >= 1);
  const auto& f = *std::find_if(w.sim.findings().begin(), w.sim.findings().end(),
                                [](const sim::Finding& x) { return x.kind == "use_after_free"; });
  CHECK(f.message.find("__run_hrtimer") != std::string::npos);  // the freed timer expired
  REQUIRE(!f.details.empty());
  CHECK(f.details[0].find("free by bpf_timer_cancel_and_free") != std::string::npos);
}

TEST_CASE(
    "4.3 no-prealloc hash: after deleting its own element the callback can still arm the "
    "timer (seed bit 256); the RCU free cancels it one grace period later",
    "[race][4.3]") {
  World w(2);
  BpfMap* m = w.map(model::kBpfMapTypeHash, 8, 24, 8, model::kBpfFNoPrealloc);
  NativeProg* p = nullptr;
  std::int64_t del = 99, start_after = 99;
  int fired = 0;
  p = w.prog("arm",
             [&](ProgRun& r, auto a) -> Co<std::int64_t> {
               (void)co_await h::map_update(r, *m, h::u32_key(3), std::vector<std::uint8_t>(24, 0),
                                            0);
               co_return co_await arm(m, 3, &p, 0, 1000)(r, a);
             },
             {{"cb",
               [&](ProgRun& r, std::array<std::uint64_t, 5> a) -> Co<std::int64_t> {
                 ++fired;
                 del = co_await h::map_delete(r, *m, h::u32_key(3));
                 start_after = co_await h::timer_start(r, h::timer_of(*m, a[2]), kLong, 0);
                 co_return 0;
               }}},
             {m});
  w.run_at(0, 0, p);
  w.exit_at(1000000, 1);
  w.run();
  INFO(w.findings_text());
  CHECK(del == 0);
  CHECK(start_after == 0);
  CHECK(fired == 1);  // the 2^35 ns timer never fires: the RCU callback cancelled it
  CHECK(first_time(w, "rcu_invoke_callback") < 1000000);
  w.k.check_quiescence();
  CHECK(w.sim.findings().empty());
  CHECK(w.k.slab.live_count() == 0);
}

TEST_CASE("4.3 LRU: the callback's own inserts evict its element; cancel on it returns -EINVAL",
          "[race][4.3]") {
  World w(1);
  BpfMap* m = w.map(model::kBpfMapTypeLruHash, 4, 16, 0);
  NativeProg* p = nullptr;
  std::int64_t own_cancel = 99;
  std::uint32_t evicted_at = 0;
  p = w.prog(
      "arm",
      [&](ProgRun& r, auto a) -> Co<std::int64_t> {
        (void)co_await h::map_update(r, *m, h::u32_key(4), std::vector<std::uint8_t>(16, 0), 0);
        co_return co_await arm(m, 4, &p, 0, 0)(r, a);
      },
      {{"cb",
        [&](ProgRun& r, std::array<std::uint64_t, 5> a) -> Co<std::int64_t> {
          for (std::uint32_t i = 5; i < 100; ++i) {
            (void)co_await h::map_update(r, *m, h::u32_key(i), std::vector<std::uint8_t>(16, 0), 0);
            (void)co_await h::map_lookup(r, *m, h::u32_key(i));
            std::uint32_t key = 0;
            std::memcpy(&key, r.k.ptr(&r.ctx, a[1], 4, false, "key"), 4);
            if (key != 4) {
              evicted_at = i;
              break;
            }
          }
          own_cancel = co_await h::timer_cancel(r, h::timer_of(*m, a[2]));
          co_return 0;
        }}},
      {m});
  w.run_at(0, 0, p);
  w.exit_at(100000, 0);
  w.run();
  INFO(w.findings_text());
  CHECK(evicted_at > 4);
  CHECK(own_cancel == -kEINVAL);
  w.k.check_quiescence();
  CHECK(w.sim.findings().empty());
}

TEST_CASE("4.3 ARRAY: a callback updating its own slot frees its timer from inside the callback",
          "[race][4.3]") {
  World w(1);
  BpfMap* m = w.array(1);
  NativeProg* p = nullptr;
  std::int64_t upd = 99, start_after = 99;
  p = w.prog("arm", arm(m, 0, &p, 0, 1000),
             {{"cb",
               [&](ProgRun& r, std::array<std::uint64_t, 5> a) -> Co<std::int64_t> {
                 upd = co_await h::map_update(r, *m, h::u32_key(0),
                                              std::vector<std::uint8_t>(16, 0), 0);
                 start_after = co_await h::timer_start(r, h::timer_of(*m, a[2]), 1000, 0);
                 co_return 0;
               }}},
             {m});
  w.run_at(0, 0, p);
  w.exit_at(100000, 0);
  w.run();
  CHECK(upd == 0);
  CHECK(start_after == -kEINVAL);  // the slot's timer is uninitialized now
  w.k.check_quiescence();
  CHECK(w.sim.findings().empty());
}

TEST_CASE(
    "4.4 closing the last fd while a callback runs waits for it; the callback sees "
    "-EINVAL and -EPERM meanwhile",
    "[race][4.4]") {
  World w(2);
  BpfMap* m = w.array(2);
  NativeProg* p = nullptr;
  std::vector<std::int64_t> in_cb;
  TimeNs cb_end = -1, close_done = -1;
  int fired = 0;
  p = w.prog(
      "arm", arm(m, 0, &p, 0, 1000),
      {{"cb",
        [&](ProgRun& r, std::array<std::uint64_t, 5> a) -> Co<std::int64_t> {
          ++fired;
          co_await r.ctx.step(5000);
          in_cb.push_back(co_await h::timer_start(r, h::timer_of(*m, a[2]), 10, 0));
          in_cb.push_back(co_await h::timer_set_callback(r, h::timer_of(*m, a[2]), p->callback(0)));
          const auto other = co_await h::map_lookup(r, *m, h::u32_key(1));
          in_cb.push_back(co_await h::timer_init(r, h::timer_of(*m, other), *m, kClockMonotonic));
          cb_end = r.ctx.now();
          co_return 0;
        }}},
      {m});
  w.run_at(0, 0, p);
  w.task_at(3000, 1, "close", [&](Context& c) -> Co<void> {
    co_await w.k.sys.close(c, w.proc, w.fds.at(m));
    close_done = c.now();
  });
  w.exit_at(60000, 1);
  w.run();
  INFO(w.findings_text());
  CHECK(in_cb == std::vector<std::int64_t>{-kEINVAL, -kEINVAL, -kEPERM});
  CHECK(close_done >= cb_end);
  CHECK(fired == 1);
  w.k.check_quiescence();
  CHECK(w.sim.findings().empty());
  CHECK(w.k.slab.live_count() == 0);
}

TEST_CASE("4.5 Ctrl-C with self re-arming timers leaves nothing armed and nothing allocated",
          "[race][4.5]") {
  World w(2);
  BpfMap* a = w.array(4);
  BpfMap* hm = w.map(model::kBpfMapTypeHash, 16, 16, 0);
  NativeProg* p = nullptr;
  int fired = 0;
  auto rearm = [&](ProgRun& r, std::array<std::uint64_t, 5> args) -> Co<std::int64_t> {
    ++fired;
    BpfMap* mm = r.k.map_by_addr(args[0]);
    (void)co_await h::timer_start(r, h::timer_of(*mm, args[2]), 700, 0);
    co_return 0;
  };
  p = w.prog("arm",
             [&](ProgRun& r, auto args) -> Co<std::int64_t> {
               for (std::uint32_t i = 0; i < 4; ++i)
                 co_await arm(a, i, &p, 0, 500 + i)(r, args);
               for (std::uint32_t i = 0; i < 3; ++i) {
                 (void)co_await h::map_update(r, *hm, h::u32_key(i),
                                              std::vector<std::uint8_t>(16, 0), 0);
                 co_await arm(hm, i, &p, 0, 300 + i)(r, args);
               }
               co_return 0;
             },
             {{"rearm", rearm}}, {a, hm});
  w.run_at(0, 0, p);
  w.run_at(0, 1, p);
  w.exit_at(20000, 1);
  w.run();
  INFO(w.findings_text());
  CHECK(fired > 50);
  CHECK(w.k.armed_timers() == 0);
  w.k.check_quiescence();
  CHECK(w.sim.findings().empty());
  CHECK(w.k.slab.live_count() == 0);
  CHECK(w.k.invariant_violations(true).empty());
}

TEST_CASE("4.6 a pinned map keeps re-arming timers and their prog alive until unpinned",
          "[race][4.6]") {
  World w(2);
  BpfMap* m = w.array(1);
  NativeProg* p = nullptr;
  int fired = 0;
  p = w.prog("arm", arm(m, 0, &p, 0, 1000),
             {{"rearm",
               [&](ProgRun& r, std::array<std::uint64_t, 5> a) -> Co<std::int64_t> {
                 ++fired;
                 (void)co_await h::timer_start(r, h::timer_of(*m, a[2]), 1000, 0);
                 co_return 0;
               }}},
             {m});
  w.run_at(0, 0, p);
  w.task_at(500, 1, "pin", [&](Context& c) -> Co<void> {
    (void)co_await w.k.sys.obj_pin(c, w.proc, w.fds.at(m), "/sys/fs/bpf/m");
  });
  w.exit_at(2000, 1);
  w.run(100000);
  const int fired_pinned = fired;
  CHECK(fired_pinned > 50);
  CHECK(!p->freed);
  CHECK(p->refcnt == 1);  // only the timer holds the program now
  w.task_at(100000, 1, "unpin",
            [&](Context& c) -> Co<void> { (void)co_await w.k.sys.unlink(c, "/sys/fs/bpf/m"); });
  w.run();
  INFO(w.findings_text());
  CHECK(fired > fired_pinned);  // it ran until the RCU-deferred uref release
  CHECK(w.k.armed_timers() == 0);
  CHECK(p->freed);
  w.k.check_quiescence();
  CHECK(w.sim.findings().empty());
  CHECK(w.k.slab.live_count() == 0);
}

TEST_CASE(
    "4.7 a third CPU re-arms during the cancel: start -EINVAL, set_callback+start 0, the "
    "cancel dequeues it and returns 1",
    "[race][4.7]") {
  World w(3);
  BpfMap* m = w.array(1);
  NativeProg* p = nullptr;
  NativeProg* q = nullptr;
  std::int64_t cancel_ret = 99;
  std::vector<std::int64_t> third;
  p = w.prog("arm", arm(m, 0, &p, 0, 1000),
             {{"long_cb",
               [&](ProgRun& r, auto) -> Co<std::int64_t> {
                 co_await r.ctx.step(10000);
                 co_return 0;
               }}},
             {m});
  NativeProg* c = w.prog("canceller",
                         [&](ProgRun& r, auto) -> Co<std::int64_t> {
                           const auto v = co_await h::map_lookup(r, *m, h::u32_key(0));
                           cancel_ret = co_await h::timer_cancel(r, h::timer_of(*m, v));
                           co_return 0;
                         },
                         {}, {m});
  q = w.prog("third",
             [&](ProgRun& r, auto) -> Co<std::int64_t> {
               const auto t = h::timer_of(*m, co_await h::map_lookup(r, *m, h::u32_key(0)));
               third.push_back(co_await h::timer_start(r, t, 100000, 0));
               third.push_back(co_await h::timer_set_callback(r, t, q->callback(0)));
               third.push_back(co_await h::timer_start(r, t, 100000, 0));
               co_return 0;
             },
             {{"cb2", [](ProgRun&, auto) -> Co<std::int64_t> { co_return 0; }}}, {m});
  w.run_at(0, 0, p);
  w.run_at(3000, 1, c);
  w.run_at(5000, 2, q);
  w.run(30000);
  CHECK(third == std::vector<std::int64_t>{-kEINVAL, 0, 0});
  CHECK(cancel_ret == 1);
  CHECK(w.k.armed_timers() == 0);
  CHECK(q->refcnt == 2);  // fd + the timer: cancel is not a "disable"
  w.exit_at(40000, 0);
  w.run();
  w.k.check_quiescence();
  CHECK(w.sim.findings().empty());
}

TEST_CASE("4.8 two callbacks cancelling each other lock up both CPUs: a deadlock cycle",
          "[race][4.8]") {
  World w(2);
  BpfMap* m1 = w.array(1);
  BpfMap* m2 = w.array(1);
  NativeProg* p1 = nullptr;
  NativeProg* p2 = nullptr;
  auto cross = [&](BpfMap* other) {
    return [&, other](ProgRun& r, auto) -> Co<std::int64_t> {
      co_await r.ctx.step(100);
      const auto v = co_await h::map_lookup(r, *other, h::u32_key(0));
      (void)co_await h::timer_cancel(r, h::timer_of(*other, v));
      co_return 0;
    };
  };
  p1 = w.prog("timer1_prog", arm(m1, 0, &p1, 0, 1000), {{"timer_cb1", cross(m2)}}, {m1, m2});
  p2 = w.prog("timer2_prog", arm(m2, 0, &p2, 0, 1000), {{"timer_cb2", cross(m1)}}, {m1, m2});
  w.run_at(0, 0, p1);
  w.run_at(0, 1, p2);
  CHECK(w.run() == sim::RunStatus::kStopped);
  REQUIRE(w.count("deadlock") == 1);
  const sim::Finding& f = w.sim.findings().back();
  REQUIRE(f.details.size() == 2);
  for (const auto& d : f.details) {
    CHECK(d.find("softirq") != std::string::npos);
    CHECK(d.find("waits in hrtimer_cancel") != std::string::npos);
  }
}

namespace {
// 4.9 needs CPU0's bpf_timer_cancel to be delayed between dropping the element lock and calling
// hrtimer_cancel, while CPU1's cancel_and_free takes the lock, frees the timer and returns. On
// hardware that window is widened by an interrupt; here too: a second timer T2 of CPU0 expires
// while CPU0 holds the lock with interrupts off, so its (long) callback runs on CPU0 exactly at
// the unlock, and CPU1's update was spinning on the lock meanwhile. Probe runs learn the times.
struct CancelVsFree {
  std::int64_t cancel_ret = 99;
  std::unique_ptr<World> w;
};

CancelVsFree cancel_vs_free(TimeNs t2_delay, TimeNs update_at) {
  CancelVsFree out;
  out.w = std::make_unique<World>(2);
  World& w = *out.w;
  BpfMap* m = w.array(1);
  BpfMap* m2 = w.array(1);
  static NativeProg* p = nullptr;
  auto* res = &out.cancel_ret;
  p = w.prog("setup",
             [m, m2](ProgRun& r, auto a) -> Co<std::int64_t> {
               co_await arm(m, 0, &p, 0, kLong)(r, a);
               const auto t2 = h::timer_of(*m2, co_await h::map_lookup(r, *m2, h::u32_key(0)));
               (void)co_await h::timer_init(r, t2, *m2, kClockMonotonic);
               (void)co_await h::timer_set_callback(r, t2, p->callback(1));
               co_return 0;
             },
             {{"cb", [](ProgRun&, auto) -> Co<std::int64_t> { co_return 0; }},
              {"t2_long_cb",
               [](ProgRun& r, auto) -> Co<std::int64_t> {
                 co_await r.ctx.step(3000);
                 co_return 0;
               }}},
             {m, m2});
  NativeProg* c =
      w.prog("canceller",
             [m, m2, t2_delay, res](ProgRun& r, auto) -> Co<std::int64_t> {
               const auto t = h::timer_of(*m, co_await h::map_lookup(r, *m, h::u32_key(0)));
               const auto t2 = h::timer_of(*m2, co_await h::map_lookup(r, *m2, h::u32_key(0)));
               if (t2_delay >= 0) (void)co_await h::timer_start(r, t2, t2_delay, 0);
               r.ctx.trace("probe_cancel_begin", {});
               *res = co_await h::timer_cancel(r, t);
               co_return 0;
             },
             {}, {m, m2});
  w.run_at(0, 0, p);
  w.run_at(10000, 0, c);
  if (update_at >= 0)
    w.task_at(update_at, 1, "update", [&w, m](Context& cx) -> Co<void> {
      (void)co_await w.k.sys.map_update_elem(cx, w.proc, w.fds.at(m), h::u32_key(0),
                                             std::vector<std::uint8_t>(16, 0), 0);
    });
  w.exit_at(100000, 1);
  w.run();
  return out;
}

// Time of the first record `event` on `cpu` at or after `from` (lock records of the timer lock).
TimeNs time_of(const World& w, const std::string& event, int cpu, TimeNs from,
               const char* lock = "bpf_timer_lock") {
  for (const auto& r : w.sim.trace().records()) {
    if (r.event != event || r.cpu != cpu || r.t_ns < from) continue;
    const auto* l = r.field("lock");
    if (l && std::get<std::string>(*l) != lock) continue;
    return r.t_ns;
  }
  return -1;
}
}  // namespace

TEST_CASE("4.9 bpf_timer_cancel racing bpf_timer_cancel_and_free uses the freed bpf_hrtimer",
          "[race][4.9]") {
  // Probe 1 (T2 started far in the future, no update): when does CPU0's cancel hold the lock?
  TimeNs t2_started, acquire, release;
  {
    auto probe = cancel_vs_free(kLong, -1);
    const TimeNs begin = time_of(*probe.w, "probe_cancel_begin", 0, 10000, "");
    t2_started = time_of(*probe.w, "hrtimer_start", 0, 10000, "");
    acquire = time_of(*probe.w, "lock_acquire", 0, begin);
    release = time_of(*probe.w, "lock_release", 0, acquire);
    REQUIRE(probe.cancel_ret == 1);  // T was queued (armed for 2^35 ns)
  }
  REQUIRE(t2_started > 0);
  REQUIRE(release > acquire);
  // Probe 2: how long does a user-space update take to reach the element lock?
  TimeNs reach;
  {
    auto probe = cancel_vs_free(kLong, 50000);
    reach = time_of(*probe.w, "lock_acquire", 1, 50000) - 50000;
  }
  REQUIRE(reach > 0);
  // T2 expires while CPU0 holds the lock (irqs off), CPU1 reaches the lock meanwhile.
  auto run = cancel_vs_free(acquire + 1 - t2_started, acquire + 1 - reach);
  World& w = *run.w;
  INFO(w.findings_text());
  INFO("acquire " << acquire << " release " << release << " reach " << reach << "\n"
                  << w.trace_text(acquire - 300, release + 4000));
  REQUIRE(w.count("use_after_free") >= 1);
  const auto& f = *std::find_if(w.sim.findings().begin(), w.sim.findings().end(),
                                [](const sim::Finding& x) { return x.kind == "use_after_free"; });
  CHECK(f.message.find("hrtimer_try_to_cancel") != std::string::npos);
  REQUIRE(!f.details.empty());
  CHECK(f.details[0].find("free by bpf_timer_cancel_and_free") != std::string::npos);
}

TEST_CASE("4.10 bpf_timer_init racing the last close leaks an initialized bpf_hrtimer",
          "[race][4.10]") {
  // A first run learns when init reads usercnt; the second puts the close's usercnt drop and
  // its lockless read of the (still NULL) timer pointer inside init's window.
  auto build = [](World& w, TimeNs close_at, std::vector<std::int64_t>* rets) {
    BpfMap* m = w.array(1);
    static NativeProg* p = nullptr;
    p = w.prog("init", arm(m, 0, &p, 0, kLong, rets),
               {{"cb", [](ProgRun&, auto) -> Co<std::int64_t> { co_return 0; }}}, {m});
    w.run_at(1000, 0, p);
    if (close_at >= 0) w.close_at(close_at, 1, m);
    return m;
  };
  TimeNs check_at = -1, publish_at = -1;
  {
    World probe(2);
    build(probe, -1, nullptr);
    probe.run();
    check_at = first_time(probe, "bpf_timer_init_check");
    publish_at = first_time(probe, "bpf_timer_publish");
  }
  REQUIRE(check_at > 0);
  REQUIRE(publish_at > check_at);
  // close = syscall entry step, then the usercnt decrement: aim the decrement just after check.
  const TimeNs close_at = check_at + 1 - model::CostModel{}.syscall_ns;
  World w(2);
  std::vector<std::int64_t> rets;
  build(w, close_at, &rets);
  w.task_at(publish_at + 50000, 1, "exit",
            [&](Context& c) -> Co<void> { co_await w.k.sys.exit(c, w.proc); });
  w.run();
  INFO(w.findings_text());
  CHECK(rets.size() == 3);
  CHECK(rets[0] == 0);         // init succeeded after the uref was gone
  CHECK(rets[1] == -kEPERM);   // set_callback sees usercnt 0
  CHECK(rets[2] == -kEINVAL);  // start: no prog
  w.k.check_quiescence();
  REQUIRE(w.count("leak") == 1);
  CHECK(w.sim.findings().back().message.find("bpf_hrtimer") != std::string::npos);
}

TEST_CASE("4.11 a prog whose fds are closed lives on through its armed timer", "[race][4.11]") {
  World w(2);
  BpfMap* m = w.array(1);
  NativeProg* p = nullptr;
  int fired = 0;
  p = w.prog("arm", arm(m, 0, &p, 0, 20000),
             {{"cb",
               [&](ProgRun&, auto) -> Co<std::int64_t> {
                 ++fired;
                 co_return 0;
               }}},
             {m});
  w.run_at(0, 0, p);
  w.task_at(5000, 1, "close prog",
            [&](Context& c) -> Co<void> { co_await w.k.sys.close(c, w.proc, w.prog_fds.at(p)); });
  w.run(10000);
  CHECK(!p->freed);
  CHECK(p->refcnt == 1);  // the timer's reference
  w.run(30000);
  CHECK(fired == 1);  // the callback still ran
  w.exit_at(40000, 0);
  w.run();
  CHECK(p->freed);
  w.k.check_quiescence();
  CHECK(w.sim.findings().empty());
}

TEST_CASE(
    "4.11 a cancel dropping the last prog reference while bpf_timer_cb already loaded the "
    "callback: it runs once more, safely (RCU)",
    "[race][4.11]") {
  World w(2);
  BpfMap* m = w.array(1);
  NativeProg* p = nullptr;
  int fired = 0;
  std::int64_t cancel_ret = 99;
  p = w.prog("arm", arm(m, 0, &p, 0, 1000),
             {{"cb",
               [&](ProgRun& r, auto) -> Co<std::int64_t> {
                 ++fired;
                 co_await r.ctx.step(3000);
                 co_return 0;
               }}},
             {m});
  NativeProg* c = w.prog("canceller",
                         [&](ProgRun& r, auto) -> Co<std::int64_t> {
                           const auto v = co_await h::map_lookup(r, *m, h::u32_key(0));
                           cancel_ret = co_await h::timer_cancel(r, h::timer_of(*m, v));
                           co_return 0;
                         },
                         {}, {m});
  w.run_at(0, 0, p);
  w.task_at(500, 1, "close prog",
            [&](Context& cx) -> Co<void> { co_await w.k.sys.close(cx, w.proc, w.prog_fds.at(p)); });
  w.run_at(2000, 1, c);  // the callback is running: this drops p's last reference
  w.exit_at(50000, 1);
  w.run();
  INFO(w.findings_text());
  CHECK(fired == 1);
  CHECK(cancel_ret == 0);
  CHECK(p->freed);
  w.k.check_quiescence();
  CHECK(w.sim.findings().empty());  // in particular no use-after-free of the program
}

TEST_CASE("4.12 map updates on elements with timers", "[race][4.12]") {
  SECTION("ARRAY update frees the slot's timer, waiting for its callback on another CPU") {
    World w(2);
    BpfMap* m = w.array(1);
    NativeProg* p = nullptr;
    TimeNs cb_end = -1, upd_done = -1;
    p = w.prog("arm", arm(m, 0, &p, 0, 1000),
               {{"cb",
                 [&](ProgRun& r, auto) -> Co<std::int64_t> {
                   co_await r.ctx.step(5000);
                   cb_end = r.ctx.now();
                   co_return 0;
                 }}},
               {m});
    w.task_at(3000, 1, "update", [&](Context& c) -> Co<void> {
      (void)co_await w.k.sys.map_update_elem(c, w.proc, w.fds.at(m), h::u32_key(0),
                                             std::vector<std::uint8_t>(16, 0), 0);
      upd_done = c.now();
    });
    w.exit_at(50000, 0);
    w.run();
    CHECK(upd_done >= cb_end);
    w.k.check_quiescence();
    CHECK(w.sim.findings().empty());
  }
  SECTION("HASH BPF_F_LOCK update copies in place and leaves the timer running") {
    World w(1);
    // value {u32 lock; u32 pad; struct bpf_timer t; u64 data}
    BpfMap* m = w.map(model::kBpfMapTypeHash, 4, 32, 8, 0, 0);
    NativeProg* p = nullptr;
    int fired = 0;
    std::int64_t upd = 99;
    p = w.prog("arm",
               [&](ProgRun& r, auto a) -> Co<std::int64_t> {
                 (void)co_await h::map_update(r, *m, h::u32_key(1),
                                              std::vector<std::uint8_t>(32, 0), 0);
                 co_return co_await arm(m, 1, &p, 0, 10000)(r, a);
               },
               {{"cb",
                 [&](ProgRun&, auto) -> Co<std::int64_t> {
                   ++fired;
                   co_return 0;
                 }}},
               {m});
    w.run_at(0, 0, p);
    w.task_at(3000, 0, "update F_LOCK", [&](Context& c) -> Co<void> {
      upd = co_await w.k.sys.map_update_elem(c, w.proc, w.fds.at(m), h::u32_key(1),
                                             std::vector<std::uint8_t>(32, 7),
                                             model::kBpfExist | model::kBpfFLock);
    });
    w.exit_at(50000, 0);
    w.run();
    CHECK(upd == 0);
    CHECK(fired == 1);
  }
  SECTION("no-prealloc HASH update: the old element's timer can still fire until a grace period") {
    World w(2);
    BpfMap* m = w.map(model::kBpfMapTypeHash, 4, 16, 0, model::kBpfFNoPrealloc);
    NativeProg* p = nullptr;
    int fired = 0;
    p = w.prog("arm",
               [&](ProgRun& r, auto a) -> Co<std::int64_t> {
                 (void)co_await h::map_update(r, *m, h::u32_key(1),
                                              std::vector<std::uint8_t>(16, 0), 0);
                 co_return co_await arm(m, 1, &p, 0, 1000)(r, a);
               },
               {{"cb",
                 [&](ProgRun&, auto) -> Co<std::int64_t> {
                   ++fired;
                   co_return 0;
                 }}},
               {m});
    w.run_at(0, 0, p);
    w.task_at(500, 1, "update", [&](Context& c) -> Co<void> {
      (void)co_await w.k.sys.map_update_elem(c, w.proc, w.fds.at(m), h::u32_key(1),
                                             std::vector<std::uint8_t>(16, 0), 0);
    });
    w.exit_at(50000, 1);
    w.run();
    CHECK(fired == 1);  // the replaced element's timer fired after the update
    w.k.check_quiescence();
    CHECK(w.sim.findings().empty());
  }
  SECTION(
      "v5.15 copy_map_value: a value with a spin lock and a timer gets its timer bytes "
      "overwritten, and cancel_and_free dereferences the garbage (reference 2.2)") {
    World w(1);
    BpfMap* m = w.map(model::kBpfMapTypeArray, 1, 24, 0, 0, 16);  // {timer; lock}
    NativeProg* p = nullptr;
    p = w.prog("arm", arm(m, 0, &p, 0, kLong),
               {{"cb", [](ProgRun&, auto) -> Co<std::int64_t> { co_return 0; }}}, {m});
    w.run_at(0, 0, p);
    std::vector<std::uint8_t> garbage(24, 0);
    const std::uint64_t bad = 0xdeadcaf3;
    std::memcpy(garbage.data(), &bad, 8);
    w.task_at(5000, 0, "update", [&](Context& c) -> Co<void> {
      (void)co_await w.k.sys.map_update_elem(c, w.proc, w.fds.at(m), h::u32_key(0), garbage, 0);
    });
    w.run();
    CHECK(w.count("wild_pointer") == 1);
  }
  SECTION(
      "prealloc HASH update under the bucket lock waits for a callback that wants the same "
      "bucket: ABBA deadlock (inferred, reference 4.12)") {
    World w(2);
    BpfMap* m = w.map(model::kBpfMapTypeHash, 1, 16, 0);  // one bucket
    NativeProg* p = nullptr;
    p = w.prog("arm",
               [&](ProgRun& r, auto a) -> Co<std::int64_t> {
                 (void)co_await h::map_update(r, *m, h::u32_key(1),
                                              std::vector<std::uint8_t>(16, 0), 0);
                 co_return co_await arm(m, 1, &p, 0, 1000)(r, a);
               },
               {{"cb",
                 [&](ProgRun& r, auto) -> Co<std::int64_t> {
                   co_await r.ctx.step(3000);
                   (void)co_await h::map_delete(r, *m, h::u32_key(9));  // same bucket
                   co_return 0;
                 }}},
               {m});
    w.run_at(0, 0, p);
    w.task_at(2000, 1, "update", [&](Context& c) -> Co<void> {
      (void)co_await w.k.sys.map_update_elem(c, w.proc, w.fds.at(m), h::u32_key(1),
                                             std::vector<std::uint8_t>(16, 0), 0);
    });
    CHECK(w.run() == sim::RunStatus::kStopped);
    REQUIRE(w.count("deadlock") == 1);
    const auto& d = w.sim.findings().back().details;
    REQUIRE(d.size() == 2);
    const std::string both = d[0] + d[1];
    CHECK(both.find("htab_bucket") != std::string::npos);
    CHECK(both.find("hrtimer_cancel") != std::string::npos);
  }
}

TEST_CASE(
    "4.16 concurrent init: one wins, the other gets -EBUSY; concurrent set_callback leaves "
    "exactly one prog reference",
    "[race][4.16]") {
  World w(2);
  BpfMap* m = w.array(1);
  std::vector<std::int64_t> inits;
  NativeProg* p = nullptr;
  NativeProg* q = nullptr;
  auto body = [&](NativeProg** self) {
    return [&, self](ProgRun& r, auto) -> Co<std::int64_t> {
      const auto t = h::timer_of(*m, co_await h::map_lookup(r, *m, h::u32_key(0)));
      inits.push_back(co_await h::timer_init(r, t, *m, kClockMonotonic));
      (void)co_await h::timer_set_callback(r, t, (*self)->callback(0));
      co_return 0;
    };
  };
  auto noop = [](ProgRun&, auto) -> Co<std::int64_t> { co_return 0; };
  p = w.prog("P", body(&p), {{"cbP", noop}}, {m});
  q = w.prog("Q", body(&q), {{"cbQ", noop}}, {m});
  w.run_at(0, 0, p);
  w.run_at(0, 1, q);
  w.run(100000);
  std::sort(inits.begin(), inits.end());
  CHECK(inits == std::vector<std::int64_t>{-kEBUSY, 0});
  // Exactly one of the two holds the timer's reference (the last writer), on top of its fd.
  CHECK(p->refcnt + q->refcnt == 3);
  CHECK(w.k.invariant_violations(true).empty());
  w.exit_at(200000, 0);
  w.run();
  w.k.check_quiescence();
  CHECK(w.sim.findings().empty());
}
