// Schedules per second of the explore catalogue (issue 9 "Speed for search"), one core:
//
//   BM_ExploreRandom/race_4_N     scenarios/explore/4.N-*.json (N = 1, 9) through run_scenario
//                                 with the seeded scheduler, a new seed per iteration (one random
//                                 schedule each, as an explorer's `random` strategy runs them), no
//                                 trace kept (keep_trace = false, full_trace = false).
//   BM_ScriptedBaseline/race_4_N  the scripted scenarios/races/4.N-*.json through today's
//                                 run_scenario with its own seed and keep_trace = true (the
//                                 default of `bpftsim run`): the baseline of the issue (~11k
//                                 runs/s).
//   BM_ScriptedNoTrace/race_4_N   the same scripted run with no trace kept: what the trace costs.
//
// The scenario is loaded (its .bpf.c compiled) once, outside the timed loop; every iteration
// builds a fresh simulator and kernel and loads the objects into it (no snapshot/restore yet).
// items_per_second is schedules/s (per CPU second); failing_fraction is the share of failing
// schedules (the random search's hit rate). Report medians of several runs (one command line):
//   build/bench/tests/bench_explore --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true
// The explore 4.1 scenario runs a shorter one-shot program than the scripted 4.1 (a callback
// that does not re-arm), so its row is not a like-for-like speed-up; 4.9 runs the same program.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <variant>

#include "tools/runner.h"
#include "tools/scenario.h"

namespace {

using namespace bpftsim;
using namespace bpftsim::tools;

const Scenario& scenario(const std::string& rel) {
  static std::map<std::string, Scenario> cache;
  auto it = cache.find(rel);
  if (it != cache.end()) return it->second;
  auto loaded = load_scenario(std::string(BPFTSIM_SOURCE_DIR) + "/scenarios/" + rel);
  if (auto* e = std::get_if<InputError>(&loaded)) {
    std::fprintf(stderr, "bench_explore: %s\n", e->text().c_str());
    std::exit(2);
  }
  return cache.emplace(rel, std::get<Scenario>(std::move(loaded))).first->second;
}

void run_many(benchmark::State& state, const Scenario& sc, bool seeded, bool keep_trace) {
  std::uint64_t seed = 1, failures = 0;
  for (auto _ : state) {
    RunOptions opts;
    if (seeded) opts.seed = seed++;
    opts.keep_trace = keep_trace;
    opts.full_trace = keep_trace;
    auto r = run_scenario(sc, opts);
    auto* result = std::get_if<RunResult>(&r);
    if (!result) {
      state.SkipWithError("run_scenario: input error");
      return;
    }
    failures += !result->passed();
    benchmark::DoNotOptimize(result->digest);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["failing_fraction"] =
      static_cast<double>(failures) / static_cast<double>(state.iterations());
}

void BM_ExploreRandom(benchmark::State& state, const char* rel) {
  run_many(state, scenario(std::string("explore/") + rel), true, false);
}

void BM_ScriptedBaseline(benchmark::State& state, const char* rel) {
  run_many(state, scenario(std::string("races/") + rel), false, true);
}

void BM_ScriptedNoTrace(benchmark::State& state, const char* rel) {
  run_many(state, scenario(std::string("races/") + rel), false, false);
}

BENCHMARK_CAPTURE(BM_ScriptedBaseline, race_4_1, "4.1-cancel-while-running.json")->MinTime(1.0);
BENCHMARK_CAPTURE(BM_ScriptedNoTrace, race_4_1, "4.1-cancel-while-running.json")->MinTime(1.0);
BENCHMARK_CAPTURE(BM_ExploreRandom, race_4_1, "4.1-cancel-while-running.json")->MinTime(1.0);
BENCHMARK_CAPTURE(BM_ScriptedBaseline, race_4_9, "4.9-cancel-vs-free.json")->MinTime(1.0);
BENCHMARK_CAPTURE(BM_ScriptedNoTrace, race_4_9, "4.9-cancel-vs-free.json")->MinTime(1.0);
BENCHMARK_CAPTURE(BM_ExploreRandom, race_4_9, "4.9-cancel-vs-free.json")->MinTime(1.0);

}  // namespace

BENCHMARK_MAIN();
