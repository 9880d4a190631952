// Step coalescing (Simulator::end_step, next_alone) changes no run: a step whose boundary would be
// the next event, alone, runs its next step inline, and an idle boundary in that position is not
// queued at all. Every scenario of the library, under two seeds and with a scheduling window that
// makes more events tie, gives the same trace digest, decision list, steps, status and end time
// with coalescing on and off; and the engine's own tests show that it does happen.
#include <fmt/format.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "sim/simulator.h"
#include "tests/unit/scenario_harness.h"

namespace fs = std::filesystem;
using namespace bpftsim;

namespace {

std::vector<fs::path> scenario_files() {
  std::vector<fs::path> out;
  const fs::path root = fs::path(BPFTSIM_SOURCE_DIR) / "scenarios";
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.path().extension() == ".json" && e.path().filename() != "scenario.schema.json" &&
        e.path().parent_path().filename() != "verifier")
      out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

struct Outcome {
  std::string status;
  sim::TimeNs end_ns = 0;
  std::uint64_t steps = 0;
  std::uint64_t digest = 0;
  std::uint64_t records = 0;
  std::string decisions;
};

// The run of `sc` as the outcome to compare, or nullopt when it does not load (no such run).
std::optional<Outcome> outcome(const tools::Scenario& sc, const tools::RunOptions& opts) {
  auto r = tools::run_scenario(sc, opts);
  if (std::holds_alternative<tools::InputError>(r)) return std::nullopt;
  const auto& res = std::get<tools::RunResult>(r);
  return Outcome{
      sim::run_status_name(res.status),    res.end_ns, res.steps, res.digest, res.records,
      sim::format_decisions(res.decisions)};
}

sim::Co<void> steps(sim::Context& ctx, int n, sim::TimeNs cost) {
  for (int i = 0; i < n; ++i) {
    ctx.trace("work", {{"i", i}});
    co_await ctx.step(cost);
  }
}

// A small engine run: tasks of several steps on two CPUs, a softirq raised by a timed callback,
// an observer in the middle; the digest, decisions and counters of the run.
struct EngineRun {
  std::uint64_t digest = 0;
  std::string decisions;
  std::uint64_t steps = 0;
  sim::TimeNs end = 0;
  std::uint64_t inline_steps = 0;
  std::uint64_t skipped = 0;
  std::vector<sim::TimeNs> observed;
};

EngineRun engine_run(sim::TimeNs window, int land_max, sim::TimeNs jitter, bool coalesce) {
  sim::Simulator s(sim::SimConfig{.seed = 7,
                                  .cpus = 2,
                                  .jitter_max_ns = jitter,
                                  .window_ns = window,
                                  .land_max = land_max,
                                  .coalesce_steps = coalesce});
  s.set_softirq_handler(1, "TEST", [](sim::Context& ctx) { return steps(ctx, 3, 40); });
  s.spawn_task(0, "a", [](sim::Context& ctx) { return steps(ctx, 8, 100); });
  s.spawn_task(1, "b", [](sim::Context& ctx) { return steps(ctx, 5, 130); });
  s.at(250, 1, [](sim::Simulator& sm) { sm.raise_softirq(0, 1); });
  s.at(2000, 2, [](sim::Simulator& sm) { sm.raise_softirq(1, 1); });
  EngineRun r;
  s.observe_at(420, [&r](sim::Simulator& sm) { r.observed.push_back(sm.now()); });
  REQUIRE(s.run() == sim::RunStatus::kQuiescent);
  r.digest = s.trace().digest();
  r.decisions = sim::format_decisions(s.scheduler().decisions());
  r.steps = s.steps();
  r.end = s.now();
  r.inline_steps = s.inline_steps();
  r.skipped = s.skipped_boundaries();
  return r;
}

}  // namespace

TEST_CASE("step coalescing: engine runs keep their digest and decisions, and it happens",
          "[sim][coalescing]") {
  struct Case {
    sim::TimeNs window;
    int land_max;
    sim::TimeNs jitter;
  };
  for (const Case& c :
       {Case{0, 0, 0}, Case{50, 0, 0}, Case{0, 2, 0}, Case{0, 0, 30}, Case{100, 2, 60}}) {
    INFO(fmt::format("window {} land_max {} jitter {}", c.window, c.land_max, c.jitter));
    const EngineRun on = engine_run(c.window, c.land_max, c.jitter, true);
    const EngineRun off = engine_run(c.window, c.land_max, c.jitter, false);
    CHECK(on.digest == off.digest);
    CHECK(on.decisions == off.decisions);
    CHECK(on.steps == off.steps);
    CHECK(on.end == off.end);
    CHECK(on.observed == off.observed);
    CHECK(off.inline_steps == 0);
    CHECK(off.skipped == 0);
    CHECK(on.inline_steps + on.skipped > 0);
    if (c.window == 0 && c.land_max == 0) CHECK(on.inline_steps > 0);
  }
}

TEST_CASE("step coalescing: every scenario keeps its digest, decisions and steps",
          "[coalescing][golden]") {
  std::size_t runs = 0;
  for (const fs::path& f : scenario_files()) {
    const tools::Scenario sc = testing::load(f);
    for (int variant = 0; variant < 3; ++variant) {
      tools::RunOptions opts;
      opts.keep_trace = false;
      opts.seed = variant == 1 ? 2 : 1;
      if (variant == 2) opts.window_ns = 300;  // more events tie: more decisions
      INFO(fmt::format("{} variant {}", f.generic_string(), variant));
      const auto on = outcome(sc, opts);
      opts.coalesce_steps = false;
      const auto off = outcome(sc, opts);
      REQUIRE(on.has_value() == off.has_value());
      if (!on) continue;
      CHECK(on->status == off->status);
      CHECK(on->end_ns == off->end_ns);
      CHECK(on->steps == off->steps);
      CHECK(on->records == off->records);
      CHECK(on->decisions == off->decisions);
      CHECK(on->digest == off->digest);
      ++runs;
    }
  }
  CHECK(runs >= 300);
}
