// Engine tests: steps and virtual time, blocking and waking, softirqs at step boundaries, the
// wait-for cycle report, run limits, and replay of recorded decisions.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

#include <string>
#include <vector>

#include "sim/count_table.h"
#include "sim/fifo.h"
#include "sim/hash.h"
#include "sim/simulator.h"

using namespace bpftsim::sim;

namespace {
// A tiny lock for engine tests (the model has its own bpf_spin_lock).
struct TestLock {
  Context* owner = nullptr;
  WaitQueue wq;
};

Co<void> lock(Context& ctx, TestLock& l, std::uint64_t id) {
  while (l.owner != nullptr)
    co_await ctx.block(l.wq, WaitFor{"test_lock", "lock", id, l.owner});
  l.owner = &ctx;
  co_await ctx.step(10);
}

void unlock(TestLock& l) {
  l.owner = nullptr;
  l.wq.wake_all();
}
}  // namespace

TEST_CASE("finding kinds: one name table, both ways", "[sim]") {
  std::set<std::string> names;
  for (FindingKind k : all_finding_kinds()) {
    const std::string name = finding_kind_name(k);
    CHECK(names.insert(name).second);
    CHECK(finding_kind_by_name(name) == k);
  }
  CHECK(names.size() == 10);
  CHECK(!finding_kind_by_name("use-after-free"));
}

TEST_CASE("steps advance virtual time by their cost on their own CPU", "[sim]") {
  Simulator sim(SimConfig{.seed = 1, .cpus = 2});
  std::vector<std::pair<int, TimeNs>> log;
  for (int cpu = 0; cpu < 2; ++cpu) {
    sim.spawn_task(cpu, std::string("t").append(std::to_string(cpu)),
                   [&log, cpu](Context& ctx) -> Co<void> {
                     for (int i = 0; i < 3; ++i) {
                       log.emplace_back(cpu, ctx.now());
                       co_await ctx.step(100 * (cpu + 1));
                     }
                   });
  }
  CHECK(sim.run() == RunStatus::kQuiescent);
  std::vector<TimeNs> cpu1;
  for (auto& [c, t] : log)
    if (c == 1) cpu1.push_back(t);
  CHECK(cpu1 == std::vector<TimeNs>{0, 200, 400});
  CHECK(sim.now() == 600);
}

TEST_CASE("tasks on one CPU run one after the other", "[sim]") {
  Simulator sim(SimConfig{.seed = 1, .cpus = 1});
  std::vector<std::string> order;
  for (const char* n : {"a", "b"})
    sim.spawn_task(0, n, [&order, n](Context& ctx) -> Co<void> {
      order.push_back(std::string(n) + "0");
      co_await ctx.step(50);
      order.push_back(std::string(n) + "1");
      co_await ctx.step(50);
    });
  sim.run();
  CHECK(order == std::vector<std::string>{"a0", "a1", "b0", "b1"});
  CHECK(sim.now() == 200);
}

TEST_CASE("a blocked context is woken when the owner releases", "[sim]") {
  Simulator sim(SimConfig{.seed = 3, .cpus = 2});
  TestLock l;
  TimeNs b_got = -1;
  sim.spawn_task(0, "a", [&](Context& ctx) -> Co<void> {
    co_await lock(ctx, l, 1);
    co_await ctx.step(1000);
    unlock(l);
    co_await ctx.step(1);
  });
  sim.at(5, 7, [&](Simulator& s) {
    s.spawn_task(1, "b", [&](Context& ctx) -> Co<void> {
      co_await lock(ctx, l, 1);
      b_got = ctx.now();
      unlock(l);
    });
  });
  CHECK(sim.run() == RunStatus::kQuiescent);
  CHECK(b_got == 1020);  // a releases at 10 + 1000; b takes L then (its lock step costs 10)
  CHECK(sim.findings().empty());
}

TEST_CASE("an ABBA wait is reported as a deadlock with its cycle", "[sim]") {
  Simulator sim(SimConfig{.seed = 9, .cpus = 2});
  TestLock la, lb;
  sim.spawn_task(0, "ab", [&](Context& ctx) -> Co<void> {
    co_await lock(ctx, la, 1);
    co_await ctx.step(100);
    co_await lock(ctx, lb, 2);
    unlock(lb);
    unlock(la);
  });
  sim.spawn_task(1, "ba", [&](Context& ctx) -> Co<void> {
    co_await lock(ctx, lb, 2);
    co_await ctx.step(100);
    co_await lock(ctx, la, 1);
    unlock(la);
    unlock(lb);
  });
  CHECK(sim.run() == RunStatus::kStopped);
  REQUIRE(sim.findings().size() == 1);
  const Finding& f = sim.findings()[0];
  CHECK(f.kind == FindingKind::kDeadlock);
  REQUIRE(f.details.size() == 2);
  CHECK(f.details[0].find("waits in test_lock") != std::string::npos);
  REQUIRE(f.cycle.size() == 2);  // the structured cycle a scenario's finding_match reads
  CHECK(f.cycle[0].waits_in == "test_lock");
  CHECK(f.cycle[1].waits_in == "test_lock");
}

TEST_CASE("a softirq runs at a step boundary of an interruptible task, not inside a bh-off section",
          "[sim]") {
  Simulator sim(SimConfig{.seed = 1, .cpus = 1});
  std::vector<std::string> log;
  sim.set_softirq_handler(1, "TEST", [&](Context& ctx) -> Co<void> {
    log.push_back("softirq@" + std::to_string(ctx.now()));
    co_await ctx.step(5);
  });
  sim.spawn_task(0, "t", [&](Context& ctx) -> Co<void> {
    log.push_back("a@" + std::to_string(ctx.now()));
    ctx.local_bh_disable();
    co_await ctx.step(100);
    log.push_back("b@" + std::to_string(ctx.now()));
    ctx.local_bh_enable();
    co_await ctx.step(100);
    log.push_back("c@" + std::to_string(ctx.now()));
  });
  sim.at(50, 1, [](Simulator& s) { s.raise_softirq(0, 1); });
  sim.run();
  CHECK(log == std::vector<std::string>{"a@0", "b@100", "softirq@200", "c@205"});
}

TEST_CASE("step limit is a liveness finding", "[sim]") {
  Simulator sim(SimConfig{.seed = 1, .cpus = 1, .max_steps = 100});
  sim.spawn_task(0, "forever", [](Context& ctx) -> Co<void> {
    for (;;)
      co_await ctx.step(1);
  });
  CHECK(sim.run() == RunStatus::kLimit);
  REQUIRE(sim.findings().size() == 1);
  CHECK(sim.findings()[0].kind == FindingKind::kLiveness);
}

namespace {
std::uint64_t racy_run(std::unique_ptr<Scheduler> sched, DecisionList* out, int* winner) {
  Simulator sim(SimConfig{.seed = 11, .cpus = 3}, std::move(sched));
  int shared = -1;
  for (int cpu = 0; cpu < 3; ++cpu)
    sim.spawn_task(cpu, "w", [&shared, cpu](Context& ctx) -> Co<void> {
      for (int i = 0; i < 4; ++i) {
        co_await ctx.step(10);
        shared = cpu;
        ctx.trace("write", {{"v", cpu}});
      }
    });
  sim.run();
  if (out) *out = sim.scheduler().decisions();
  if (winner) *winner = shared;
  return sim.trace().digest();
}
}  // namespace

TEST_CASE("same seed gives the same digest; a decision list replays it exactly", "[sim]") {
  DecisionList d1;
  int w1 = 0, w2 = 0;
  const auto a = racy_run(std::make_unique<SeededScheduler>(5), &d1, &w1);
  const auto b = racy_run(std::make_unique<SeededScheduler>(5), nullptr, nullptr);
  CHECK(a == b);
  CHECK(d1.size() >= 4);  // simultaneous steps on three CPUs are decisions
  const auto c = racy_run(std::make_unique<ReplayScheduler>(d1), nullptr, &w2);
  CHECK(c == a);
  CHECK(w2 == w1);
  // Some seed orders the writes differently.
  bool differs = false;
  for (std::uint64_t s = 1; s < 20 && !differs; ++s)
    differs = racy_run(std::make_unique<SeededScheduler>(s), nullptr, nullptr) != a;
  CHECK(differs);
  // The text form round-trips.
  std::string err;
  auto parsed = parse_decisions(format_decisions(d1), &err);
  REQUIRE(parsed);
  CHECK(*parsed == d1);
}

TEST_CASE("a replay that no longer fits reports the first diverging decision", "[sim]") {
  DecisionList bogus{Decision{DecisionKind::kTie, 7, 3, 0x1234}};
  Simulator sim(SimConfig{.seed = 1, .cpus = 2}, std::make_unique<ReplayScheduler>(bogus));
  for (int cpu = 0; cpu < 2; ++cpu)
    sim.spawn_task(cpu, "w", [](Context& ctx) -> Co<void> { co_await ctx.step(10); });
  CHECK(sim.run() == RunStatus::kDiverged);
  REQUIRE(!sim.findings().empty());
  CHECK(sim.findings().back().message.find("decision #0") != std::string::npos);
}

TEST_CASE("the digest is the same whether records are kept or not", "[sim]") {
  auto run = [](bool keep) {
    Simulator sim(SimConfig{.seed = 3, .cpus = 2, .keep_trace = keep});
    for (int cpu = 0; cpu < 2; ++cpu)
      sim.spawn_task(cpu, "w", [cpu](Context& ctx) -> Co<void> {
        for (int i = 0; i < 3; ++i) {
          co_await ctx.step(7);
          ctx.trace("an_event_name_past_sso", {{"cpu", cpu}, {"s", "a string field past sso"}});
        }
      });
    sim.run();
    CHECK(sim.trace().records().empty() == !keep);
    return std::pair{sim.trace().digest(), sim.trace().count()};
  };
  const auto kept = run(true);
  CHECK(kept.second >= 6);
  CHECK(run(false) == kept);
}

// ---- The choice model (issue 9): stable keys, the window W, interrupt landing, lenient replay --

namespace {

// Key of a task spawned at the top level (no parent) with the default site (its name), after
// `before` spawns of other names.
std::uint64_t key_after(const std::vector<std::string>& before, const std::string& name) {
  Simulator sim(SimConfig{.seed = 1, .cpus = 2});
  for (const auto& b : before)
    sim.spawn_task(1, b, [](Context& ctx) -> Co<void> { co_await ctx.step(3); });
  return sim.spawn_task(0, name, [](Context& ctx) -> Co<void> { co_await ctx.step(3); }).key();
}

}  // namespace

TEST_CASE("context keys: spawn site plus ordinal, unmoved by unrelated spawns", "[sim][choice]") {
  const std::uint64_t alone = key_after({}, "a");
  // Contexts of other sites spawned earlier do not shift a context's key (ids would).
  CHECK(key_after({"x"}, "a") == alone);
  CHECK(key_after({"x", "y", "z"}, "a") == alone);
  // Two spawns at the same site: the ordinal tells them apart.
  CHECK(key_after({"a"}, "a") != alone);
  CHECK(key_after({"a", "x"}, "a") == key_after({"x", "a"}, "a"));
  // An explicit site overrides the name: same site, different names = one site.
  {
    Simulator sim(SimConfig{.seed = 1, .cpus = 1});
    auto body = [](Context& ctx) -> Co<void> { co_await ctx.step(1); };
    const auto k1 = sim.spawn_task(0, "one", body, 77).key();
    const auto k2 = sim.spawn_task(0, "two", body, 77).key();
    const auto k3 = sim.spawn_task(0, "two", body, 78).key();
    CHECK(k1 != k2);  // the second spawn at site 77
    CHECK(k2 != k3);
    Simulator other(SimConfig{.seed = 1, .cpus = 1});
    CHECK(other.spawn_task(0, "two", body, 77).key() == k1);  // the first at 77: name ignored
  }
  // A child's key hangs off its parent's: the same whatever else ran before.
  auto child_key = [](bool extra) {
    Simulator sim(SimConfig{.seed = 1, .cpus = 2});
    std::uint64_t child = 0, parent = 0;
    if (extra) sim.spawn_task(1, "noise", [](Context& ctx) -> Co<void> { co_await ctx.step(5); });
    sim.spawn_task(0, "parent", [&](Context& ctx) -> Co<void> {
      parent = ctx.key();
      co_await ctx.step(10);
      child = ctx.sim()
                  .spawn_task(1, "child", [](Context& c) -> Co<void> { co_await c.step(1); })
                  .key();
      co_await ctx.step(10);
    });
    CHECK(sim.run() == RunStatus::kQuiescent);
    CHECK(child != 0);
    CHECK(child != parent);
    return std::pair{parent, child};
  };
  CHECK(child_key(false) == child_key(true));
  // Spawned at the top level, a context named "child" is another context.
  CHECK(key_after({}, "child") != child_key(false).second);
}

TEST_CASE("step keys: one per step of a context", "[sim][choice]") {
  Simulator sim(SimConfig{.seed = 1, .cpus = 1});
  std::vector<std::uint64_t> keys;
  std::vector<std::uint64_t> steps;
  Context& c = sim.spawn_task(0, "t", [&](Context& ctx) -> Co<void> {
    for (int i = 0; i < 5; ++i) {
      keys.push_back(ctx.step_key());
      steps.push_back(ctx.steps());
      co_await ctx.step(10);
    }
  });
  const std::uint64_t key = c.key();
  CHECK(sim.run() == RunStatus::kQuiescent);
  REQUIRE(keys.size() == 5);
  CHECK(std::set<std::uint64_t>(keys.begin(), keys.end()).size() == 5);
  CHECK(steps == std::vector<std::uint64_t>{1, 2, 3, 4, 5});
  for (std::uint64_t k : keys)
    CHECK(k != key);
}

namespace {

struct WindowRun {
  std::vector<std::string> order;  // "a@t" / "b@t" when each task's step returned
  std::vector<TimeNs> clock;       // now() at every point a body ran, in execution order
  TimeNs max_late = 0;             // the most any step ended after its own end time
  DecisionList decisions;
};

// Two tasks: a on cpu0 from t=0 (steps of 100 ns), b on cpu1 from t=50 (steps of b_cost, 55 ns:
// their first steps end 5 ns apart, at 100 and 105); `steps` steps each.
WindowRun window_run(TimeNs window, std::uint64_t seed, int steps = 1, TimeNs b_cost = 55) {
  Simulator sim(SimConfig{.seed = seed, .cpus = 2, .window_ns = window});
  WindowRun w;
  auto body = [&w, steps](std::string name, TimeNs cost) {
    return [&w, steps, name, cost](Context& ctx) -> Co<void> {
      for (int i = 0; i < steps; ++i) {
        const TimeNs start = ctx.now();
        w.clock.push_back(start);
        co_await ctx.step(cost);
        w.clock.push_back(ctx.now());
        w.max_late = std::max(w.max_late, ctx.now() - (start + cost));
        CHECK(ctx.now() >= start + cost);  // never early
        w.order.push_back(name + "@" + std::to_string(ctx.now()));
      }
    };
  };
  sim.spawn_task(0, "a", body("a", 100));
  sim.at(50, 9, [&](Simulator& s) { s.spawn_task(1, "b", body("b", b_cost)); });
  CHECK(sim.run() == RunStatus::kQuiescent);
  w.decisions = sim.scheduler().decisions();
  return w;
}

}  // namespace

TEST_CASE("window W: steps ending within W of each other are a tie decision", "[sim][choice]") {
  // W = 0: 100 and 105 are different instants, ordered by time, no decision.
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    const WindowRun w = window_run(0, seed);
    CHECK(w.decisions.empty());
    CHECK(w.order == std::vector<std::string>{"a@100", "b@105"});
    CHECK(w.max_late == 0);
  }
  // W = 10: which goes first is a tie; some seed runs b (due at 105) first, and then a runs at
  // 105, 5 ns late.
  bool b_first = false, a_first = false;
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    const WindowRun w = window_run(10, seed);
    REQUIRE(!w.decisions.empty());
    for (const Decision& d : w.decisions)
      CHECK(d.kind == DecisionKind::kTie);
    if (w.order == std::vector<std::string>{"b@105", "a@105"}) {
      b_first = true;
      CHECK(w.max_late == 5);
    } else {
      CHECK(w.order == std::vector<std::string>{"a@100", "b@105"});
      a_first = true;
    }
  }
  CHECK(b_first);
  CHECK(a_first);
}

TEST_CASE("window W: no event fires more than W late, virtual time never goes back",
          "[sim][choice]") {
  for (TimeNs window : {TimeNs{0}, TimeNs{3}, TimeNs{10}, TimeNs{40}}) {
    TimeNs worst = 0;
    std::set<std::vector<std::string>> orders;
    for (std::uint64_t seed = 1; seed <= 30; ++seed) {
      // b's steps of 53 ns end 3, 9, 15, ... ns after a's (never at the same instant): W = 0
      // orders them all by time; every W >= 3 has ties to decide.
      const WindowRun w = window_run(window, seed, 12, 53);
      INFO("W=" << window << " seed " << seed);
      CHECK(w.max_late <= window);
      CHECK(std::is_sorted(w.clock.begin(), w.clock.end()));
      CHECK(w.order.size() == 24);
      worst = std::max(worst, w.max_late);
      orders.insert(w.order);
    }
    if (window == 0) {
      CHECK(worst == 0);
      CHECK(orders.size() == 1);
    } else {
      CHECK(worst > 0);  // the window is used, not just allowed
      CHECK(orders.size() > 1);
    }
  }
}

namespace {

// A task on cpu0 runs 6 steps of 100 ns; at 150 ns (inside its second step) a softirq is raised
// on cpu0, or (hardirq) an interrupt context spawned there. Returns the time the handler
// started, and the decisions.
std::pair<TimeNs, DecisionList> landing(int land_max, std::uint64_t seed, bool hardirq = false) {
  Simulator sim(SimConfig{.seed = seed, .cpus = 1, .land_max = land_max});
  TimeNs landed = -1;
  auto handler = [&landed](Context& ctx) -> Co<void> {
    landed = ctx.now();
    co_await ctx.step(5);
  };
  sim.set_softirq_handler(1, "TEST", handler);
  sim.spawn_task(0, "t", [](Context& ctx) -> Co<void> {
    for (int i = 0; i < 6; ++i)
      co_await ctx.step(100);
  });
  sim.at(150, 1, [hardirq, handler](Simulator& s) {
    if (hardirq) {
      s.spawn_interrupt(0, CtxKind::kHardirq, "irq", handler);
    } else {
      s.raise_softirq(0, 1);
    }
  });
  CHECK(sim.run() == RunStatus::kQuiescent);
  return {landed, sim.scheduler().decisions()};
}

}  // namespace

TEST_CASE("interrupt landing: at the first boundary, or deferred up to land_max boundaries",
          "[sim][choice]") {
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    const auto [t, d] = landing(0, seed);
    CHECK(t == 200);  // the boundary ending the step it was raised in
    CHECK(d.empty());
  }
  for (bool hardirq : {false, true}) {
    std::set<TimeNs> seen;
    for (std::uint64_t seed = 1; seed <= 60; ++seed) {
      const auto [t, d] = landing(2, seed, hardirq);
      INFO("seed " << seed << (hardirq ? ", hardirq" : ", softirq"));
      // 200: lands at once; 300 / 400: deferred by 1 / 2 boundaries (each step is 100 ns, plus
      // nothing: the softirq's own 5 ns come after it started).
      CHECK((t == 200 || t == 300 || t == 400));
      seen.insert(t);
      // One land decision per boundary it could have landed at, and no more than land_max.
      std::size_t lands = 0, deferred = 0;
      for (const Decision& dd : d) {
        CHECK(dd.kind == DecisionKind::kLand);
        ++lands;
        deferred += dd.chosen;
      }
      CHECK(deferred == static_cast<std::size_t>((t - 200) / 100));
      CHECK(lands == std::min<std::size_t>(deferred + 1, 2));
    }
    CHECK(seen == std::set<TimeNs>{200, 300, 400});
  }
  CHECK(landing(0, 3, true).first == 200);
}

TEST_CASE("interrupt landing: a spinning context never defers (no false deadlock)",
          "[sim][choice]") {
  // cpu0's task spins on a lock only the softirq releases (owner unknown: no wait-for edge). A
  // deferred landing here would leave nothing to run: a false deadlock.
  for (std::uint64_t seed = 1; seed <= 30; ++seed) {
    Simulator sim(SimConfig{.seed = seed, .cpus = 1, .land_max = 3});
    bool held = true;
    WaitQueue wq;
    TimeNs landed = -1, got = -1;
    sim.set_softirq_handler(1, "RELEASE", [&](Context& ctx) -> Co<void> {
      landed = ctx.now();
      held = false;
      wq.wake_all();
      co_await ctx.step(5);
    });
    sim.spawn_task(0, "spinner", [&](Context& ctx) -> Co<void> {
      co_await ctx.step(10);
      while (held)
        co_await ctx.block(wq, WaitFor{"test_lock", "lock", 1, nullptr});
      got = ctx.now();
      co_await ctx.step(10);
    });
    sim.at(500, 1, [](Simulator& s) { s.raise_softirq(0, 1); });
    INFO("seed " << seed);
    CHECK(sim.run() == RunStatus::kQuiescent);
    CHECK(sim.findings().empty());
    CHECK(landed == 500);
    CHECK(got == 505);
    for (const Decision& d : sim.scheduler().decisions())
      CHECK(d.kind != DecisionKind::kLand);
  }
}

namespace {

// Three CPUs, four steps each, W = 4 and jitter: many decisions of two kinds.
struct Racy {
  RunStatus status;
  std::uint64_t digest;
  DecisionList decisions;
  std::string findings;
};

Racy racy_w(std::unique_ptr<Scheduler> sched) {
  Simulator sim(SimConfig{.seed = 11, .cpus = 3, .jitter_max_ns = 3, .window_ns = 4},
                std::move(sched));
  int shared = -1;
  for (int cpu = 0; cpu < 3; ++cpu)
    sim.spawn_task(cpu, "w" + std::to_string(cpu), [&shared, cpu](Context& ctx) -> Co<void> {
      for (int i = 0; i < 4; ++i) {
        co_await ctx.step(10);
        shared = cpu;
        ctx.trace("write", {{"v", cpu}});
      }
    });
  Racy r;
  r.status = sim.run();
  r.digest = sim.trace().digest();
  r.decisions = sim.scheduler().decisions();
  for (const auto& f : sim.findings())
    r.findings += f.message + "\n";
  return r;
}

}  // namespace

TEST_CASE("lenient replay: a list with an entry removed still gives a run; strict diverges",
          "[sim][choice]") {
  const Racy rec = racy_w(std::make_unique<SeededScheduler>(7));
  REQUIRE(rec.status == RunStatus::kQuiescent);
  REQUIRE(rec.decisions.size() >= 6);
  // Both modes reproduce the unedited list.
  CHECK(racy_w(std::make_unique<ReplayScheduler>(rec.decisions, false)).digest == rec.digest);
  CHECK(racy_w(std::make_unique<ReplayScheduler>(rec.decisions, true)).digest == rec.digest);

  for (std::size_t drop = 0; drop + 1 < rec.decisions.size(); ++drop) {
    INFO("decision #" << drop << " removed");
    DecisionList edited = rec.decisions;
    edited.erase(edited.begin() + static_cast<std::ptrdiff_t>(drop));
    const Racy strict = racy_w(std::make_unique<ReplayScheduler>(edited, false));
    CHECK(strict.status == RunStatus::kDiverged);
    CHECK_THAT(strict.findings, Catch::Contains("decision #" + std::to_string(drop)));
    const Racy lenient = racy_w(std::make_unique<ReplayScheduler>(edited, true));
    INFO(lenient.findings);
    CHECK(lenient.status == RunStatus::kQuiescent);
    // The removed decision took the default; every decision before it is as recorded.
    REQUIRE(lenient.decisions.size() > drop);
    for (std::size_t i = 0; i < drop; ++i)
      CHECK(lenient.decisions[i] == rec.decisions[i]);
    CHECK(lenient.decisions[drop].key == rec.decisions[drop].key);
    CHECK(lenient.decisions[drop].chosen == 0);
  }
}

TEST_CASE("lenient replay: a recorded value no longer among the candidates takes the default",
          "[sim][choice]") {
  // A recorded run with a tie decided for a candidate other than the first.
  Racy rec;
  std::size_t at = 0;
  bool found = false;
  for (std::uint64_t seed = 1; seed < 50 && !found; ++seed) {
    rec = racy_w(std::make_unique<SeededScheduler>(seed));
    for (at = 0; at < rec.decisions.size(); ++at)
      if (rec.decisions[at].kind == DecisionKind::kTie && rec.decisions[at].chosen != 0) {
        found = true;
        break;
      }
  }
  REQUIRE(found);
  DecisionList edited = rec.decisions;
  edited[at].value = 0xdeadbeefcafeULL;  // no candidate has this key

  const Racy lenient = racy_w(std::make_unique<ReplayScheduler>(edited, true));
  CHECK(lenient.status == RunStatus::kQuiescent);
  REQUIRE(lenient.decisions.size() > at);
  for (std::size_t i = 0; i < at; ++i)
    CHECK(lenient.decisions[i] == rec.decisions[i]);
  CHECK(lenient.decisions[at].key == rec.decisions[at].key);
  CHECK(lenient.decisions[at].chosen == 0);
  CHECK(lenient.decisions[at].value != rec.decisions[at].value);

  const Racy strict = racy_w(std::make_unique<ReplayScheduler>(edited, false));
  CHECK(strict.status == RunStatus::kDiverged);
  CHECK_THAT(strict.findings, Catch::Contains("not among the run's"));
  CHECK_THAT(strict.findings, Catch::Contains("decision #" + std::to_string(at)));
}

TEST_CASE("decision text: every kind round-trips; parse errors name the line", "[sim][choice]") {
  DecisionList all;
  for (int k = 1; k <= kDecisionKinds; ++k)
    all.push_back(Decision{static_cast<DecisionKind>(k), 0xfedcba9876543210ULL + k,
                           static_cast<std::uint32_t>(2 + k), static_cast<std::uint32_t>(k),
                           0xffffffffffffffffULL - k});
  all.push_back(Decision{DecisionKind::kRange, 0, 4294967295u, 4294967294u, 4294967294u});
  std::string err;
  const std::string text = format_decisions(all);
  auto back = parse_decisions(text, &err);
  INFO(err);
  REQUIRE(back);
  CHECK(*back == all);
  // Comments, blank lines, tabs and CRLF are tolerated; the result is the same.
  auto spaced = parse_decisions("# recorded\n\n" + std::string("tie\t1f 2 1 abc\r\n"), &err);
  REQUIRE(spaced);
  REQUIRE(spaced->size() == 1);
  CHECK((*spaced)[0] == Decision{DecisionKind::kTie, 0x1f, 2, 1, 0xabc});
  CHECK(format_decisions(*spaced) == "tie 1f 2 1 abc\n");

  struct Bad {
    std::string text;
    std::string needle;
  };
  const std::vector<Bad> bad = {
      {"tie 1 2 0 1\n\n# c\nbogus 1 2 0 1\n", "decision line 4: unknown decision kind 'bogus'"},
      {"tie 1 2 0 1\ntie 1 2 0\n", "decision line 2: expected"},
      {"land xyz 2 0 0\n", "decision line 1: key 'xyz'"},
      {"tie 1 2 2 1\n", "decision line 1: choice 2 out of 2 options"},
      {"tie 1 1 0 1\n", "decision line 1: choice 0 out of 1 options"},
      {"tie 1 -2 0 1\n", "decision line 1: options '-2'"},
      {"tie 1 4294967296 0 1\n", "decision line 1: options '4294967296'"},
      {"cpu 1 2 1 12345678901234567\n", "decision line 1: value '12345678901234567'"},
      {"grace 1 2 1 1 extra\n", "decision line 1: expected"},
  };
  for (const Bad& b : bad) {
    INFO(b.text);
    err.clear();
    CHECK(!parse_decisions(b.text, &err));
    CHECK_THAT(err, Catch::Contains(b.needle));
  }
}

TEST_CASE("ties between events that share a tag replay strictly (the nth gets its own key)",
          "[sim][choice]") {
  // Three callbacks at one instant with one tag, each spawning a task that records its order.
  auto run = [](std::unique_ptr<Scheduler> sched, DecisionList* out) {
    Simulator sim(SimConfig{.seed = 3, .cpus = 1}, std::move(sched));
    std::vector<int> order;
    for (int i = 0; i < 3; ++i)
      sim.at(5, 7, [&order, i](Simulator& s) {
        s.spawn_task(0, "t" + std::to_string(i), [&order, i](Context& ctx) -> Co<void> {
          order.push_back(i);
          co_await ctx.step(1);
        });
      });
    CHECK(sim.run() == RunStatus::kQuiescent);
    if (out) *out = sim.scheduler().decisions();
    return std::make_pair(order, sim.trace().digest());
  };
  std::set<std::vector<int>> orders;
  for (std::uint64_t seed = 1; seed <= 19; ++seed) {
    DecisionList d;
    const auto a = run(std::make_unique<SeededScheduler>(seed), &d);
    orders.insert(a.first);
    const auto b = run(std::make_unique<ReplayScheduler>(d), nullptr);
    INFO("seed " << seed);
    CHECK(b == a);
  }
  CHECK(orders.size() > 1);
}

TEST_CASE("Fifo: first in, first out, across drains and a queue that never drains", "[sim]") {
  bpftsim::sim::Fifo<int> q;
  CHECK(q.empty());
  // A queue that never drains (always one behind): the consumed front is dropped as it goes.
  int next_in = 0;
  int next_out = 0;
  q.push_back(next_in++);
  for (int round = 0; round < 1000; ++round) {
    q.push_back(next_in++);
    q.push_back(next_in++);
    REQUIRE(q.front() == next_out++);
    q.pop_front();
    REQUIRE(q.size() == static_cast<std::size_t>(next_in - next_out));
  }
  while (!q.empty()) {
    REQUIRE(q.front() == next_out++);
    q.pop_front();
  }
  CHECK(next_out == next_in);
  q.push_back(7);  // drained: starts over
  CHECK(q.size() == 1);
  CHECK(q.front() == 7);
}

TEST_CASE("a decision's key: its base the first time, base and occurrence hashed after", "[sim]") {
  // 300 bases of two kinds, each asked three times, interleaved: the occurrence table grows
  // several times while counts are live, and the same base counts apart under another kind.
  bpftsim::sim::SeededScheduler s(11);
  std::vector<std::pair<bpftsim::sim::DecisionKind, std::uint64_t>> asked;
  for (std::uint32_t round = 0; round < 3; ++round)
    for (std::uint64_t b = 0; b < 300; ++b) {
      const auto kind =
          b % 2 == 0 ? bpftsim::sim::DecisionKind::kJitter : bpftsim::sim::DecisionKind::kLand;
      const std::uint64_t base = (b / 2) * 0x10000000ULL;  // even and odd b share a base
      s.draw(kind, base, 4);
      asked.emplace_back(kind, base);
    }
  REQUIRE(s.decisions().size() == asked.size());
  for (std::size_t i = 0; i < asked.size(); ++i) {
    const std::uint64_t nth = i / 300;
    const auto& d = s.decisions()[i];
    INFO("decision " << i);
    CHECK(d.kind == asked[i].first);
    CHECK(s.bases()[i] == asked[i].second);
    CHECK(d.key == (nth == 0 ? asked[i].second
                             : bpftsim::sim::Hasher().u64(asked[i].second).u64(nth).value()));
  }
}

TEST_CASE("a hasher continued from a state equals one fed the same input from the start", "[sim]") {
  using bpftsim::sim::Hasher;
  for (const std::uint64_t k : {std::uint64_t{0}, std::uint64_t{5}, ~std::uint64_t{0} - 3}) {
    CHECK(Hasher(bpftsim::sim::str_state("jitter")).u64(k).value() ==
          Hasher().str("jitter").u64(k).value());
    CHECK(Hasher(Hasher().u64(k).value()).u64(k + 1).value() == Hasher().u64(k).u64(k + 1).value());
  }
  // u64 is the 8 little-endian bytes, whatever path computes it (below 256 it takes a shortcut).
  const auto bytewise = [](std::uint64_t h, std::uint64_t v) {
    for (int i = 0; i < 8; ++i)
      h = (h ^ ((v >> (8 * i)) & 0xffu)) * Hasher::kPrime;
    return h;
  };
  for (std::uint64_t v = 0; v < 70000; v += (v < 300 ? 1 : 997))
    for (const std::uint64_t h : {Hasher::kOffsetBasis, std::uint64_t{0}, ~std::uint64_t{0}}) {
      CAPTURE(v, h);
      CHECK(Hasher(h).u64(v).value() == bytewise(h, v));
      CHECK(Hasher(h).u64(~v).value() == bytewise(h, ~v));
    }
  static_assert(Hasher().u64(7).value() == [] {
    std::uint64_t h = (Hasher::kOffsetBasis ^ 7) * Hasher::kPrime;
    for (int i = 1; i < 8; ++i)
      h *= Hasher::kPrime;  // the seven zero bytes
    return h;
  }());
  // str() is the length then the bytes, at compile time as at run time.
  static_assert(bpftsim::sim::str_state("ab") != bpftsim::sim::str_state("ba"));
  const std::string ab = std::string("a") + "b";
  CHECK(Hasher().str(ab).value() == bpftsim::sim::str_state("ab"));
  CHECK(Hasher().str(ab).value() == Hasher().u64(2).bytes("ab", 2).value());
}

TEST_CASE("CountTable counts each key pair on its own, across growth and reset", "[sim]") {
  bpftsim::sim::CountTable t;
  // (a, b) and (b, a) are different keys; 500 keys make the table grow from 16 slots.
  for (std::uint32_t round = 0; round < 3; ++round)
    for (std::uint64_t k = 0; k < 250; ++k) {
      CHECK(t.next(k, k + 1) == round);
      CHECK(t.next(k + 1, k) == round);
    }
  CHECK(t.next(1000, 1000) == 0);
  CHECK(t.next(1000, 1000) == 1);
  CHECK_FALSE(t.reset(16));  // larger than 16 slots by now: left as it is
  CHECK(t.next(1000, 1000) == 2);
  CHECK(t.reset(1 << 20));
  CHECK(t.next(1000, 1000) == 0);
  CHECK(t.next(3, 4) == 0);
}
