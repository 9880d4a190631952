// Exploring the schedules of one scenario (issue 9): the scenario is loaded once, then run many
// times, each run ("schedule") with a scheduler of the chosen strategy answering every decision
// (sim/scheduler.h), and the outcomes (tools/runner.h outcome_of) are counted.
//
// Strategies:
//   random  schedule i: a SeededScheduler seeded with splitmix64(seed ^ splitmix64(i)) - every
//           choice uniform. The data seed (bpf_get_prandom_u32) stays the scenario's / --seed.
//   pct     probabilistic concurrency testing with depth d: per schedule, random priorities per
//           context key (Candidate::owner); d-1 change points at random decision indices in
//           [0, k) (k = the decisions of a calibration run with every choice the default); a tie
//           goes to the candidate whose owner has the highest priority; at a change point that
//           owner drops below every other. Draws (range, jitter, grace, land) and cpu choices are
//           uniform from the schedule's PRNG.
//   dfs     systematic and stateless: a schedule is a vector of choice indices (unlisted = 0);
//           each run records the options of each decision, and the next schedule increments the
//           deepest decision that can be incremented, with at most `bound` non-default choices per
//           schedule (preemption bound). A draw with more than `dfs_points` options is explored at
//           `dfs_points` evenly spaced values (min ... max), never value by value. Schedules are
//           visited in lexicographic order of their choice vectors; a schedule is named by its
//           non-default choices, "3=1,7=4" (decision 3 took choice 1, decision 7 choice 4), the
//           first one (all defaults) "root".
//
// Sharding (shard i of N) partitions the schedule space deterministically: random/pct own the
// schedule indices j with j mod N == i; dfs owns the subtrees (first non-default choice (p, v))
// whose hash mod N == i, runs the root of every other subtree once to learn the tree (not counted)
// and skips its descendants. The union of the shards is exactly the unsharded run's schedules, and
// merge_summaries() of their summaries equals the unsharded summary (for runs that visit their
// whole space: --all, or no failure, under a --schedules budget or a finite dfs tree).
//
// --jobs N runs schedules on N threads of this process. Results never depend on the thread that
// ran a schedule: results are aggregated in schedule order, and the first failure (without --all)
// is the first in that order, so a summary is the same for every N.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "sim/scheduler.h"
#include "tools/runner.h"
#include "tools/scenario.h"

namespace bpftsim::tools {

enum class Strategy : std::uint8_t { kRandom, kPct, kDfs };
const char* strategy_name(Strategy s);
std::optional<Strategy> strategy_from_name(const std::string& name);

// The outcome of a self-check whose two runs of one schedule gave different trace digests.
inline constexpr const char* kNondeterminismOutcome = "nondeterminism";

struct ExploreOptions {
  Strategy strategy = Strategy::kRandom;
  // Budgets: stop after this many (counted) schedules / this much wall time. With neither,
  // random and pct run kDefaultSchedules and dfs its whole (bounded) tree. A scenario whose run
  // asks no decision has one schedule: random and pct run it once.
  std::optional<std::uint64_t> schedules;
  std::optional<double> time_s;
  std::optional<std::uint64_t> seed;  // exploration seed and data seed (default: the scenario's)
  std::optional<std::string> profile;
  std::optional<sim::TimeNs> window_ns;
  std::optional<std::uint64_t> max_steps;
  std::optional<std::uint64_t> max_insns;
  unsigned depth = 3;       // pct
  unsigned bound = 2;       // dfs: non-default choices per schedule
  unsigned dfs_points = 5;  // dfs: values tried of a draw with more options
  bool all = false;         // keep going after the first failure
  unsigned jobs = 1;
  unsigned shard = 0, shards = 1;
  std::uint64_t self_check = 100;  // every Nth schedule runs twice; 0: never
  bool record_schedules = false;   // fill ExploreResult::schedule_ids (tests)
  // Called from time to time (on the calling thread) with the schedules run and failures so far.
  std::function<void(std::uint64_t schedules, std::uint64_t failures, double seconds)> progress;
  // Test hook: wraps the scheduler of each run (`rerun`: the self-check's second run).
  std::function<std::unique_ptr<sim::Scheduler>(std::unique_ptr<sim::Scheduler>, bool rerun)>
      wrap_scheduler;
};

inline constexpr std::uint64_t kDefaultSchedules = 10000;

struct OutcomeStat {
  std::string outcome;  // outcome_of(), or kNondeterminismOutcome
  std::uint64_t count = 0;
  std::string first;  // the schedule that first produced it (see schedule names above)
  bool operator==(const OutcomeStat&) const = default;
};

// What an exploration found. Everything but `seconds` and `run_files` is deterministic.
struct ExploreSummary {
  std::string scenario;  // path as given
  std::string name;
  std::string strategy;
  std::uint64_t seed = 0;
  std::string profile;
  std::optional<sim::TimeNs> window_ns;
  unsigned depth = 0, bound = 0, dfs_points = 0;  // the strategy's parameters
  bool all = false;
  std::uint64_t budget = 0;             // the --schedules budget (0: none)
  std::uint64_t schedules = 0;          // schedules run and counted
  std::uint64_t self_checks = 0;        // of which run twice
  bool complete = false;                // dfs: the whole bounded tree was visited
  std::vector<OutcomeStat> outcomes;    // in order of first appearance
  std::set<sim::DecisionSite> sites;    // decision sites covered
  std::vector<unsigned> shards_merged;  // the shard indices this summary holds (of `shards`)
  unsigned shards = 1;
  // Not compared: wall time, and the run files written.
  double seconds = 0;
  std::vector<std::string> run_files;

  std::uint64_t failures() const;                   // schedules whose outcome is not "pass"
  bool same_result(const ExploreSummary& o) const;  // everything but the timing and run files
};

// A distinct failure: the first schedule that produced the outcome, and its decisions.
struct ExploreFailure {
  std::string outcome;
  std::string schedule;
  sim::DecisionList decisions;
  std::uint64_t digest = 0;
};

struct ExploreResult {
  ExploreSummary summary;
  std::vector<ExploreFailure> failures;   // one per failing outcome, in order of first appearance
  std::vector<std::string> schedule_ids;  // every counted schedule (record_schedules), sorted
};

// Explores `sc` (loaded once by the caller). Input problems found when running (an unknown
// profile, a map the kernel refuses) are InputErrors.
std::variant<ExploreResult, InputError> explore(const Scenario& sc, const ExploreOptions& opts);

// The options a failing schedule's run used (seed, profile, window, limits), for replay/shrink.
RunOptions explore_run_options(const Scenario& sc, const ExploreOptions& opts);

// Summary JSON: deterministic except the "timing" key (and "run_files").
std::string summary_json(const ExploreSummary& s);
std::string summary_text(const ExploreSummary& s);
// Parses a summary written by summary_json; `path` names it in errors.
std::variant<ExploreSummary, InputError> parse_summary(const std::string& path,
                                                       const std::string& text);
// Joins the summaries of the shards of one exploration (same scenario, strategy, seed,
// parameters, shard count; disjoint shards). The result's `first` of each outcome is the
// earliest over the shards, in the strategy's schedule order.
std::variant<ExploreSummary, std::string> merge_summaries(const std::vector<ExploreSummary>& parts);

}  // namespace bpftsim::tools
