// Running a loaded Scenario (tools/scenario.h): builds a Simulator and a Kernel from its profile,
// costs, jitter, limits and seed (or a recorded decision list), loads its objects into the loader
// process (model/bpf_object.h), queues each timeline action as a task on its CPU at its time, runs
// until quiescence (or a stop, or a limit), and judges the expectations.
//
// Timeline actions run as user-space tasks through the syscall model (model/syscall.h); `run`
// is BPF_PROG_TEST_RUN, `run_fentry` bpf_prog_test_run_tracing (every attached fentry program on
// bpf_fentry_test1..8 in order, in one task). Each action ends with a `scenario_action` trace
// record carrying its index and return value; expect_ret is checked there.
//
// A RunResult keeps the run's Simulator (trace, findings, decisions) alive for rendering.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "sim/scheduler.h"
#include "sim/simulator.h"
#include "tools/scenario.h"

namespace bpftsim::tools {

struct RunOptions {
  std::optional<std::uint64_t> seed;        // overrides the scenario's seed
  std::optional<std::string> profile;       // overrides the scenario's profile
  std::optional<sim::DecisionList> replay;  // replay these decisions (the seed still drives data)
  bool lenient = false;  // replay by key, defaults for what the list lacks (sim/scheduler.h)
  // The scheduler of the run (explorers); overrides seed-driven choices and `replay`.
  std::function<std::unique_ptr<sim::Scheduler>()> make_scheduler;
  std::optional<sim::TimeNs> window_ns;  // overrides the scenario's window_ns (--window)
  // Values to follow through the run (`bpftsim timers --watch`): "<object>.<global>" or
  // "<object>.<map>[<key>]" (key: an integer, little-endian in the key size, or 0x<hex bytes>).
  // Each change is a RunResult::watch_changes entry; watching never changes the run.
  std::vector<std::string> watches;
  bool keep_trace = true;      // keep trace records (the digest is always computed)
  bool coalesce_steps = true;  // sim::SimConfig::coalesce_steps (tests turn it off to compare)
  // Keep every record (a trace file will be written), counted against the trace record limit;
  // false: keep only the last kTailRecords records, enough for the failure report.
  bool full_trace = true;
  // Overrides of the run limits (command-line flags); see kDefaultMaxSteps and friends.
  std::optional<std::uint64_t> max_steps;
  std::optional<std::uint64_t> max_trace_records;
  std::optional<std::uint64_t> max_insns;
  // Called between slices of the run with the virtual time reached (progress display).
  std::function<void(sim::TimeNs)> progress;
};

// Limits of a scenario run (issue 7): with them no scenario runs for more than about ten seconds
// or takes more than a gigabyte or two, and one that would ends with status `limit` (exit 1) and
// a message naming the limit and how to raise it. Steps: limits.max_steps or --max-steps; BPF
// instructions executed: --max-insns; trace
// records kept in memory (only when a trace file is written): --max-trace-records; virtual time:
// limits.max_time_ns. Maps and global data: model/libbpf_loader.h (per object) and
// model::kMaxLoadedMapBytes (per run).
inline constexpr std::uint64_t kDefaultMaxSteps = 2'000'000;
inline constexpr std::uint64_t kDefaultMaxInsns = 1'000'000'000;
inline constexpr std::uint64_t kDefaultMaxTraceRecords = 2'000'000;
inline constexpr std::uint64_t kTailRecords = 100'000;

struct RunInstance;  // the Simulator and Kernel of one run

// The stable key of timeline action `i` (its spawn site): what it does, where and by whom, and
// its ordinal among identical actions before it, so that removing or moving other actions
// (shrinking) or changing its time leaves it unchanged.
std::uint64_t action_key(const Scenario& sc, std::size_t i);
// The keys of all timeline actions, in timeline order: action_key(sc, i) for every i, in one pass.
std::vector<std::uint64_t> action_keys(const Scenario& sc);

struct RunResult {
  std::string name;  // the scenario's
  std::uint64_t seed = 0;
  std::string profile;
  std::optional<sim::TimeNs> window_ns;  // RunOptions::window_ns, when given
  sim::RunStatus status = sim::RunStatus::kQuiescent;
  sim::TimeNs end_ns = 0;
  std::uint64_t steps = 0;
  std::uint64_t digest = 0;   // trace digest (FNV-1a over every record)
  std::uint64_t records = 0;  // trace records emitted
  std::vector<sim::Finding> findings;
  // Expectations that did not hold, one line each; empty when the run passed.
  std::vector<std::string> failures;
  // CPUs the failures point at (findings, failed actions); all CPUs when none does.
  std::set<int> cpus;
  sim::DecisionList decisions;
  // RunOptions::watches: each value as the run began, then every change, in trace order.
  struct WatchChange {
    std::string what;          // the watch expression
    std::uint64_t record = 0;  // trace records emitted before the step that made the change ended
    sim::TimeNs t_ns = 0;
    int cpu = -1;
    std::uint32_t ctx = 0;
    std::string value;  // an integer (values of at most 8 bytes), 0x<hex>, or "absent"
                        // (a map value as a lookup reads it: timer and lock bytes as zero)
  };
  std::vector<WatchChange> watch_changes;
  std::shared_ptr<RunInstance> instance;

  bool passed() const { return failures.empty(); }
  const sim::Trace& trace() const;
};

// What a run came to, as explorers and the shrinker compare runs: "pass" when every expectation
// held; else the distinct findings as "kind@site" (site left out when the model gave none), in
// order of first appearance and joined by ", "; else (expectations failed without a finding) the
// JSON pointer the first failure names ("/expect/globals", "/timeline/3", ...).
std::string outcome_of(const RunResult& r);

// Runs `sc`. Input problems found only now (an unknown --profile, a map the kernel refuses) are
// InputErrors; everything else, including failed expectations, is in the RunResult.
std::variant<RunResult, InputError> run_scenario(const Scenario& sc, const RunOptions& opts = {});

}  // namespace bpftsim::tools
