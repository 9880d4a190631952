// A JSON scenario (scenarios/README.md) read, validated and resolved: the file is parsed, checked
// against scenarios/scenario.schema.json (compiled into the tool), its objects are compiled and
// opened (model/bpf_compile.h, model/libbpf_loader.h), and every name it uses is resolved against
// them. What comes out is plain data that the runner (tools/runner.h) executes; nothing here
// touches a Kernel.
//
// Every problem is an InputError naming the file, the JSON pointer and the line:column of that
// place, and what was expected (exit code 2). Errors are returned, never thrown.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "model/bpf_object.h"
#include "model/fault_inject.h"
#include "model/libbpf_loader.h"
#include "model/profile.h"
#include "sim/simulator.h"
#include "sim/time.h"
#include "tools/expect.h"

namespace bpftsim::tools {

class JsonSchema;

// At most this many input errors of one scenario are reported (scenario errors are collected:
// the schema's, then, when the schema holds, the meaning checks').
inline constexpr std::size_t kMaxInputErrors = 20;

struct InputError {
  std::string file;
  std::string pointer;  // JSON pointer ("" = the whole document)
  int line = 0;         // 0: no position (e.g. the file cannot be read)
  int column = 0;
  std::string message;
  // Further errors of the same input, in document order after this one; `capped`: more were
  // found than kMaxInputErrors and checking stopped.
  std::vector<InputError> more;
  bool capped = false;

  // "FILE:LINE:COL: at POINTER: MESSAGE" (parts without a value left out); with `more`, one such
  // line per error, then "N errors" (and " (stopped after 20)").
  std::string text() const;
};

// FNV-1a 64 of `bytes` (sim/hash.h; scenario hashes in run files).
std::uint64_t fnv1a64(const std::string& bytes);

// The schema compiled into the tool (scenarios/scenario.schema.json at build time).
const std::string& scenario_schema_text();
const JsonSchema& scenario_schema();

enum class ActionKind : std::uint8_t {
  kRun,
  kRunFentry,
  kAttach,
  kNanosleep,
  kMapLookup,
  kMapUpdate,
  kMapDelete,
  kClose,
  kPin,
  kUnpin,
  kObjGet,
  kGetFdById,
  kExit,
  kWait,
};
const char* action_kind_name(ActionKind kind);

// The widest at_ns range: its width + 1 options must fit a 32-bit decision.
inline constexpr sim::TimeNs kMaxAtRangeNs = 0xffffffffLL;

enum class FdKind : std::uint8_t { kMap, kProg, kLink };

// Where a `run` action's program runs: a BPF_PROG_TEST_RUN task, or an interrupt of the CPU.
enum class RunContext : std::uint8_t { kTask, kHardirq, kNmi };
const char* run_context_name(RunContext c);  // "task", "hardirq", "nmi"

struct Action {
  std::size_t index = 0;
  std::string pointer;  // "/timeline/<index>"
  ActionKind kind = ActionKind::kWait;
  sim::TimeNs at_ns = 0;                 // the time, or the least time of a range
  std::optional<sim::TimeNs> at_max_ns;  // a range {"min": at_ns, "max": at_max_ns}
  int cpu = 0;
  std::string process = "loader";
  // The map/program the action works on (run, attach, map_*, close, pin, get_fd_by_id);
  // `target_kind` says which fd table of the process it names (close/pin: map, prog or link).
  std::optional<NameRef> target;
  FdKind target_kind = FdKind::kMap;
  std::array<std::uint64_t, 5> args{};     // run
  RunContext context = RunContext::kTask;  // run
  int fentry = 0;                          // run_fentry: 1..8
  sim::TimeNs duration_ns = 0;             // nanosleep
  std::vector<std::uint8_t> key;           // map_*
  std::vector<std::uint8_t> value;         // map_update (bytes)
  std::optional<NameRef> value_map;        // map_update of a map-in-map: fd of it
  std::uint64_t flags = 0;                 // map_update
  std::optional<ValueMatch> expect_value;  // map_lookup
  std::string path;                        // pin, unpin, obj_get
  std::optional<std::int64_t> expect_ret;
  // expect_ret written as "!=N", ">=N", "<=N" or {"in": [N, ...]} (e.g. {"in": [0, -35]}).
  std::optional<ValueExpect> expect_ret_match;

  // "map_update t.array" / "exit" / "run_fentry bpf_fentry_test1", for messages and task names.
  std::string describe() const;
};

struct ScenarioObject {
  std::string name;
  std::string path;           // as written
  std::string resolved_path;  // relative to the scenario file's directory
  int line = 0;               // of its "path" in the scenario, for errors found when loading it
  int column = 0;
  model::ObjectSpec spec;
  // The verifier's results for `spec` (set by load_scenario; shared by copies of the scenario,
  // whose specs do not change): a scenario is verified once, not on every run.
  std::shared_ptr<model::VerifyMemo> verify_memo;
};

// Hashes of the parts of a scenario, so that a replay against a changed scenario can say what
// changed: the programs (object files' bytes, names, paths, cflags), the setup (timeline, CPUs,
// costs, seed, window...: everything but the expectations and the prose) and the expectations.
struct ScenarioParts {
  std::uint64_t programs = 0, setup = 0, expect = 0;
  bool operator==(const ScenarioParts&) const = default;
};

struct Scenario {
  std::string file;  // as given
  std::uint64_t hash = 0;
  ScenarioParts parts;
  std::string name;
  std::string description;
  std::string profile = "v5.15";
  int cpus = 1;
  std::uint64_t seed = 1;
  std::vector<ScenarioObject> objects;
  model::CostModel costs;
  sim::TimeNs jitter_ns = 0;
  // The explorer's knobs (sim::SimConfig): scheduling window, how many boundaries an interrupt
  // may be deferred, whether deferred work may run on any CPU.
  sim::TimeNs window_ns = 0;
  int land_max = 0;
  bool work_on_any_cpu = false;
  std::optional<sim::TimeNs> max_time_ns;
  std::optional<std::uint64_t> max_steps;
  // Fault injection (model::FaultInjection): the next `count` passes through `site` fail.
  struct Fault {
    model::FaultSite site{};
    int count = 1;
  };
  std::vector<Fault> faults;
  std::vector<Action> timeline;
  Expectations expect;
  // With expect.load_error: the message of an object that failed to open or check when the
  // scenario was read (its name resolution and the timeline are then skipped); the runner judges
  // it, or loads the objects and judges their failure.
  std::optional<std::string> load_failure;
  // Races only: the fixes (model::profile_fixes() ids) that close this race; the suite runs the
  // scenario under each fix and requires it to fail exactly under these.
  std::vector<std::string> closed_by;
};

using ScenarioResult = std::variant<Scenario, InputError>;

// Reads `path` and loads it (objects are compiled/opened relative to its directory).
ScenarioResult load_scenario(const std::string& path);
// The same from text already read; `file` names it in errors and anchors relative paths.
ScenarioResult parse_scenario(const std::string& file, const std::string& text);

}  // namespace bpftsim::tools
