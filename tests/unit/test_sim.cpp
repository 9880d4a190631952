// Engine tests: steps and virtual time, blocking and waking, softirqs at step boundaries, the
// wait-for cycle report, run limits, and replay of recorded decisions.
#include <catch2/catch.hpp>

#include <set>

#include <string>
#include <vector>

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
