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
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "model/libbpf_loader.h"
#include "model/profile.h"
#include "sim/simulator.h"
#include "sim/time.h"

namespace bpftsim::tools {

class JsonSchema;

struct InputError {
  std::string file;
  std::string pointer;  // JSON pointer ("" = the whole document)
  int line = 0;         // 0: no position (e.g. the file cannot be read)
  int column = 0;
  std::string message;

  // "FILE:LINE:COL: at POINTER: MESSAGE" (parts without a value left out).
  std::string text() const;
};

// FNV-1a 64 of `bytes` (scenario hashes in run files).
std::uint64_t fnv1a64(const std::string& bytes);

// The schema compiled into the tool (scenarios/scenario.schema.json at build time).
const std::string& scenario_schema_text();
const JsonSchema& scenario_schema();

// <object>.<name> resolved: the object's index and the map's/program's index in its ObjectSpec.
// <object>.<outer>.inner names the inner map template of the map-in-map `outer` (index: the
// outer map's): libbpf creates it only to create the outer map and closes it at once, so no
// process ever holds an fd of it (actions on it return -EBADF), and it has no id, no elements and
// is never alive after load (get_fd_by_id, expect.maps and expect.alive.maps refuse it).
struct NameRef {
  std::string text;  // as written: "t.array"
  std::uint32_t object = 0;
  std::uint32_t index = 0;
  bool inner_template = false;
};

// A global variable: <object>.<var>, with its section and place from BTF.
struct GlobalRef {
  std::string text;
  std::uint32_t object = 0;
  std::string var;
  std::uint32_t size = 0;
  model::GlobalVar::Sign sign = model::GlobalVar::Sign::kUnknown;  // of its BTF type
};

enum class ActionKind : std::uint8_t {
  kRun,
  kRunFentry,
  kAttach,
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

enum class FdKind : std::uint8_t { kMap, kProg, kLink };

// Where a `run` action's program runs: a BPF_PROG_TEST_RUN task, or an interrupt of the CPU.
enum class RunContext : std::uint8_t { kTask, kHardirq, kNmi };
const char* run_context_name(RunContext c);  // "task", "hardirq", "nmi"

struct Action {
  std::size_t index = 0;
  std::string pointer;  // "/timeline/<index>"
  ActionKind kind = ActionKind::kWait;
  sim::TimeNs at_ns = 0;
  int cpu = 0;
  std::string process = "loader";
  // The map/program the action works on (run, attach, map_*, close, pin, get_fd_by_id);
  // `target_kind` says which fd table of the process it names (close/pin: map, prog or link).
  std::optional<NameRef> target;
  FdKind target_kind = FdKind::kMap;
  std::array<std::uint64_t, 5> args{};                    // run
  RunContext context = RunContext::kTask;                 // run
  int fentry = 0;                                         // run_fentry: 1..8
  std::vector<std::uint8_t> key;                          // map_*
  std::vector<std::uint8_t> value;                        // map_update (bytes)
  std::optional<NameRef> value_map;                       // map_update of a map-in-map: fd of it
  std::uint64_t flags = 0;                                // map_update
  std::optional<std::vector<std::uint8_t>> expect_value;  // map_lookup
  std::string path;                                       // pin, unpin, obj_get
  std::optional<std::int64_t> expect_ret;

  // "map_update t.array" / "exit" / "run_fentry bpf_fentry_test1", for messages and task names.
  std::string describe() const;
};

// A global's expected value: N (equality), ">=N", "<=N" or "!=N". Equality and inequality
// compare in the variable's width (so -35 matches an int holding -35); ordering compares as the
// BTF type's signedness says (unknown: signed when N is negative, else unsigned).
struct GlobalExpect {
  enum class Op : std::uint8_t { kEq, kGe, kLe, kNe };
  GlobalRef global;
  Op op = Op::kEq;
  std::uint64_t value = 0;  // two's complement of N
  bool negative = false;    // N < 0
  std::string pointer;
  std::string text() const;  // "-35", ">=3", "!=0"
  // Whether the variable's `size` bytes, read as the little-endian `raw`, satisfy it.
  bool holds(std::uint64_t raw) const;
  // `raw` as the variable's type shows it: signed or unsigned per BTF; both forms when the
  // signedness is unknown and they differ ("4294967261 (as signed: -35)").
  std::string show(std::uint64_t raw) const;
};

struct GlobalsAt {
  sim::TimeNs at_ns = 0;
  std::vector<GlobalExpect> globals;
  std::string pointer;
};

struct MapExpect {
  NameRef map;
  std::vector<std::uint8_t> key;
  std::optional<std::vector<std::uint8_t>> value;
  bool present = true;
  std::string pointer;
};

struct CountExpect {
  enum class Op : std::uint8_t { kEq, kGe, kLe };
  std::string kind;
  Op op = Op::kEq;
  std::uint64_t n = 0;
  std::string text() const;  // "0", ">=1"
  bool holds(std::uint64_t count) const;
};

struct AliveExpect {
  std::optional<std::uint64_t> objects;
  std::optional<std::uint64_t> armed_timers;
  std::optional<std::vector<NameRef>> maps;
  std::optional<std::vector<NameRef>> progs;
};

struct Expectations {
  std::vector<GlobalExpect> globals;
  std::vector<GlobalsAt> globals_at;
  std::vector<MapExpect> maps;
  std::vector<CountExpect> findings;
  bool allow_other_findings = false;
  AliveExpect alive;
  sim::RunStatus status = sim::RunStatus::kQuiescent;
};

struct ScenarioObject {
  std::string name;
  std::string path;           // as written
  std::string resolved_path;  // relative to the scenario file's directory
  int line = 0;               // of its "path" in the scenario, for errors found when loading it
  int column = 0;
  model::ObjectSpec spec;
};

struct Scenario {
  std::string file;  // as given
  std::uint64_t hash = 0;
  std::string name;
  std::string description;
  std::string profile = "v5.15";
  int cpus = 1;
  std::uint64_t seed = 1;
  std::vector<ScenarioObject> objects;
  model::CostModel costs;
  sim::TimeNs jitter_ns = 0;
  std::optional<sim::TimeNs> max_time_ns;
  std::optional<std::uint64_t> max_steps;
  // Fault injection (model::FaultInjection): the next `count` passes through `site` fail.
  struct Fault {
    std::string site;
    int count = 1;
  };
  std::vector<Fault> faults;
  std::vector<Action> timeline;
  Expectations expect;
};

using ScenarioResult = std::variant<Scenario, InputError>;

// Reads `path` and loads it (objects are compiled/opened relative to its directory).
ScenarioResult load_scenario(const std::string& path);
// The same from text already read; `file` names it in errors and anchors relative paths.
ScenarioResult parse_scenario(const std::string& file, const std::string& text);

}  // namespace bpftsim::tools
