// Shrinking a failing run (issue 9, item 3): from a scenario, the options of a failing run and
// its decision list, find a smaller run that fails the same way and is 1-minimal: removing any
// one of its remaining timeline actions, or resetting any one of its remaining decisions to the
// default, makes the failure go away.
//
// "Fails the same way" is outcome_of() (tools/runner.h) equal to the failing run's, the outcome
// key explorers deduplicate by. An outcome that names a timeline action ("/timeline/3", a failed
// expect_ret) is compared with the action's index in the original scenario.
//
// Every candidate run replays its decision list leniently (sim/scheduler.h): a decision the list
// lacks takes the default, so any edited list still gives a run. The moves, delta-debugging style
// (ddmin: halves, then quarters, ... down to single elements; subsets and complements):
//   - ranges narrowed to points: an action whose at_ns is {"min", "max"} gets the time the
//     current run drew for it (its `range` decision, keyed by action_key()); the decision is gone;
//   - timeline actions removed (one always stays: a timeline has at least one action). Actions are
//   keyed by content (action_key()), so the decisions of
//     the others still apply. An action that an `expect.order` event names ({"action_start": I} /
//     {"action_done": I}) and the action an outcome "/timeline/I" names are never removed (the
//     expectation would change meaning); the indices of expect.order are renumbered when earlier
//     actions go. An `expect_ret` goes with its action;
//   - the decision list cut (a suffix dropped), then decisions reset to defaults (entries
//     dropped).
// After each run that still fails, the list becomes the run's own non-default decisions (chosen
// != 0): lenient replay of those gives the identical run, and decisions the run never asked are
// gone. The moves repeat until a round changes nothing; a final one-at-a-time pass over actions
// and decisions then establishes 1-minimality (unless ShrinkOptions::max_runs ran out first).
//
// A candidate runs without a trace (keep_trace = false) and with a step limit of at most
// max(4 x the failing run's steps, 100000) unless the options set one: a candidate that runs on
// (an `exit` removed, a periodic timer left armed) is cut there and counts as not failing the
// same way.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <variant>

#include "sim/scheduler.h"
#include "tools/runner.h"
#include "tools/scenario.h"

namespace bpftsim::tools {

struct ShrinkOptions {
  // Runs the shrinker may spend on candidates, the replay of the failing run included; the run
  // of the written document (ShrinkResult::run) is one more.
  std::size_t max_runs = 2000;
};

struct ShrinkResult {
  // The shrunk scenario, a complete JSON document: the original text with actions removed and
  // ranges replaced by points; "name" gets ".shrunk", "seed", "profile" (and "window_ns" when the
  // run overrode it) are the failing run's, object paths are absolute.
  std::string scenario_json;
  std::string document_error;  // why scenario_json is empty
  // Its decision list, the non-default decisions only: replay it leniently. `run.decisions` is
  // the complete list the run recorded, which replays strictly (what the run file records).
  sim::DecisionList decisions;
  RunResult run;         // the shrunk run (fails with the same outcome_of), with its full trace
  std::string outcome;   // outcome_of of the failing run, which the shrunk run has too
  std::size_t runs = 0;  // runs the shrinker spent (all of them)
  std::size_t actions_before = 0, actions_after = 0;
  // Decisions: the failing list's size before, the shrunk (non-default) list's after.
  std::size_t decisions_before = 0, decisions_after = 0;
  // Non-default decisions of the failing run, for comparison with decisions_after.
  std::size_t nondefault_before = 0;
  std::size_t ranges_narrowed = 0;
  // The final one-at-a-time pass completed without a change: the result is 1-minimal. False when
  // max_runs ran out first (the result still fails the same way, it is just not minimal).
  bool minimal = false;
};

// `sc` was loaded from sc.file; `opts` are the options the failing run used (seed, profile,
// window) and `failing` its decisions. Returns nullopt when the failure does not reproduce (the
// run passes, or the scenario cannot be run with these options). The original JSON is read from
// sc.file again; when it cannot be read or its bytes changed since loading, scenario_json is
// empty and document_error says why (the shrink itself still happens on the loaded scenario).
std::optional<ShrinkResult> shrink(const Scenario& sc, const RunOptions& opts,
                                   const sim::DecisionList& failing, const ShrinkOptions& so = {});

struct ShrunkFiles {
  std::string scenario;  // <dir>/<name>.shrunk.json
  std::string run_file;  // <dir>/<name>.shrunk.run.json
  // The run of the written scenario replaying the written run file's decisions strictly, as
  // `bpftsim replay` will; its trace is complete when `full_trace` was asked.
  RunResult run;
};

// Writes <dir>/<name>.shrunk.json (object paths relative to `dir` when both are below one
// top-level directory, else absolute) and its run file
// <dir>/<name>.shrunk.run.json (creating `dir`), after loading the written scenario back and
// replaying `r.run.decisions` on it strictly: the run file records that run (its digest, and the
// scenario hash of the written bytes), so `bpftsim replay` reproduces it. An error when a file
// cannot be written or the written scenario does not fail the same way.
std::variant<ShrunkFiles, InputError> write_shrunk(const ShrinkResult& r, const std::string& dir,
                                                   bool full_trace = false);

}  // namespace bpftsim::tools
