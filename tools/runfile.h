// Run files: what a failing run leaves behind so that `bpftsim replay` repeats it exactly.
//
//   {"bpftsim_run": 2, "tool_version": "0.1.0", "scenario": "<path as given>",
//    "scenario_hash": "fnv1a64:<16 hex digits>", "name": "...", "profile": "v5.15", "seed": 1,
//    "window_ns": 500 (optional: a --window the run was made with),
//    "decisions": "<sim::format_decisions text>", "digest": "<16 hex digits>",
//    "status": "quiescent", "outcome": "use_after_free@hrtimer_try_to_cancel",
//    "parts": {"programs": "<hex>", "setup": "<hex>", "expect": "<hex>"}, "failures": ["..."]}
//
// The scenario is named by its path (relative paths are resolved against the directory the
// run file was written from, which is recorded as "cwd") and pinned by the hash of its bytes;
// replay refuses a scenario whose bytes changed. "digest" is the trace digest the run had, so a
// replay can say whether it reproduced the run.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "sim/scheduler.h"
#include "tools/runner.h"
#include "tools/scenario.h"

namespace bpftsim::tools {

struct RunFile {
  std::string tool_version;
  std::string scenario;  // path as given to run/check
  std::string cwd;       // working directory of that run
  std::uint64_t scenario_hash = 0;
  std::string name;
  std::string profile;
  std::uint64_t seed = 0;
  std::optional<sim::TimeNs> window_ns;  // the run's --window, when it overrode the scenario's
  sim::DecisionList decisions;
  std::uint64_t digest = 0;
  std::string status;
  std::string outcome;  // tools/runner.h outcome_of (what a replay must reproduce)
  std::vector<std::string> failures;
  std::optional<ScenarioParts> parts;  // of the scenario then (what changed since)
  // Where it was read from (read_run_file/parse_run_file), for errors that concern the file:
  // its path and the positions of its "scenario" and "decisions" keys.
  std::string path;
  int scenario_line = 0, scenario_column = 0;
  int decisions_line = 0, decisions_column = 0;

  // Where `scenario` is: as written when absolute, else relative to `cwd`, else (no cwd) to the
  // directory of the run file `run_file`.
  std::string scenario_path(const std::string& run_file = {}) const;
};

RunFile make_run_file(const Scenario& sc, const RunResult& r, const std::string& tool_version);
std::string run_file_json(const RunFile& f);
// Errors name the run file and the key (exit 2). The file must be a regular file of at most
// model::kMaxRunFileBytes; the JSON is read as scenarios are (no duplicate keys, no number beyond
// 64 bits, no unknown keys), and the decision list strictly (sim::parse_decisions: one
// "kind key options chosen value" per line, options in [2, 2^32-1]).
std::variant<RunFile, InputError> read_run_file(const std::string& path);
// The same from text already read; `path` names it in errors.
std::variant<RunFile, InputError> parse_run_file(const std::string& path, const std::string& text);
// Loads the scenario run file `f` (read from `run_file`) names. A scenario that cannot be read at
// all is reported at the run file's "scenario" key (it is the run file that points there); other
// problems are the scenario's own errors.
std::variant<Scenario, InputError> load_run_file_scenario(const RunFile& f,
                                                          const std::string& run_file);

// Writes `f` to `<dir>/<name>.run.json` (creating `dir`); returns that path, or an error that
// says why (strerror), also when the file would exceed what read_run_file accepts.
std::variant<std::string, InputError> write_run_file(const RunFile& f, const std::string& dir);

// Whether a --trace FILE can be written, checked before a run so that a long run does not end in
// "cannot write": "" and "-" (stdout) always can; a directory cannot; otherwise the file is opened
// for writing (and removed again if this created it). Returns "--trace PATH: why (strerror)".
std::optional<std::string> check_trace_output(const std::string& path);

}  // namespace bpftsim::tools
