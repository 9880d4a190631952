// What a scenario expects of its run (scenarios/README.md, "expect"), as plain data, and what each
// expectation means: when a global's value satisfies it, when a finding matches a pattern, when
// a count holds. The runner (tools/runner.cpp) reads the run's state and asks these; the parser
// (tools/scenario.cpp) only builds them.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/libbpf_loader.h"
#include "sim/finding.h"
#include "sim/simulator.h"
#include "sim/time.h"

namespace bpftsim::tools {

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

// A global variable: <object>.<var>, with its section and place from BTF; or a member of a struct
// variable, <object>.<var>.<member path> (`offset`, `size` and `sign` then the member's).
struct GlobalRef {
  std::string text;
  std::uint32_t object = 0;
  std::string var;
  std::uint32_t size = 0;
  model::GlobalVar::Sign sign = model::GlobalVar::Sign::kUnknown;  // of its BTF type
  std::uint32_t offset = 0;    // of the member in the variable (0: the variable itself)
  std::uint32_t var_size = 0;  // of the variable
};

// A value expected of an integer: N (equality), ">=N", "<=N", "!=N", or {"in": [N, ...]}.
// Equality, inequality and membership compare in the value's width (so -35 matches an int
// holding -35); ordering compares as the signedness says (unknown: signed when N is negative,
// else unsigned). "unset" is parsed into equality with the variable's initial value.
struct ValueExpect {
  enum class Op : std::uint8_t { kEq, kGe, kLe, kNe, kIn };
  Op op = Op::kEq;
  std::uint64_t value = 0;         // two's complement of N
  bool negative = false;           // N < 0
  std::vector<std::uint64_t> set;  // kIn: two's complements
  std::string written;             // as written in the scenario, for messages
  std::string text() const;        // "-35", ">=3", "!=0", "in [0, -1]", "unset (99)"
  // Whether `size` bytes read as the little-endian `raw`, of signedness `sign`, satisfy it.
  bool holds(std::uint64_t raw, std::uint32_t size, model::GlobalVar::Sign sign) const;
};

// `raw` (`size` bytes) as a type of signedness `sign` shows it: both forms when the signedness
// is unknown and they differ ("4294967261 (as signed: -35)").
std::string show_value(std::uint64_t raw, std::uint32_t size, model::GlobalVar::Sign sign);

struct ValueMatch;

struct GlobalExpect {
  GlobalRef global;
  ValueExpect want;
  // Instead of `want`: every byte of the variable, or members of its struct (any size).
  std::shared_ptr<const ValueMatch> match;
  std::string pointer;
  bool holds(std::uint64_t raw) const { return want.holds(raw, global.size, global.sign); }
  std::string show(std::uint64_t raw) const { return show_value(raw, global.size, global.sign); }
};

// A member of a map value's or a global's BTF struct, expected as an integer (model::BtfField).
struct FieldExpect {
  std::string path;  // "in.x"
  std::uint32_t offset = 0;
  std::uint32_t size = 0;
  model::GlobalVar::Sign sign = model::GlobalVar::Sign::kUnknown;
  ValueExpect want;
  std::string pointer;
};

// What a value (a map element's, a lookup's, a global's) must be: exactly these bytes, an integer
// comparison (values of at most 8 bytes, little-endian), or values of its BTF struct's members.
struct ValueMatch {
  std::optional<std::vector<std::uint8_t>> bytes;
  std::optional<ValueExpect> want;
  std::uint32_t size = 0;  // of the value
  model::GlobalVar::Sign sign = model::GlobalVar::Sign::kUnknown;
  std::vector<FieldExpect> fields;

  struct Mismatch {
    std::string pointer;  // the expectation's (a field's), or "" for the value's own
    std::string field;    // ".in.x", or ""
    std::string have;     // the value (or member) as read
    std::string want;     // as expected
  };
  // Where `value` (`size` bytes) differs from what is expected.
  std::vector<Mismatch> mismatches(const std::vector<std::uint8_t>& value) const;
};

// "0x2a000000"
std::string hex_bytes(const std::vector<std::uint8_t>& bytes);

struct MapExpect {
  NameRef map;
  std::vector<std::uint8_t> key;
  std::optional<ValueMatch> value;
  bool present = true;
  std::string pointer;
};

// A count: N, ">=N" or "<=N".
struct CountExpect {
  enum class Op : std::uint8_t { kEq, kGe, kLe };
  Op op = Op::kEq;
  std::uint64_t n = 0;
  std::string text() const;  // "0", ">=1"
  bool holds(std::uint64_t count) const;
};

struct FindingCount {
  sim::FindingKind kind{};
  CountExpect count;
};

// A trace record count by record name ("block", "queue_work", "bpf_timer_publish").
struct EventCount {
  std::string event;
  CountExpect count;
  std::string pointer;
};

struct AliveExpect {
  std::optional<std::uint64_t> objects;
  std::optional<std::uint64_t> armed_timers;
  std::optional<std::vector<NameRef>> maps;
  std::optional<std::vector<NameRef>> progs;
};

// One element of a deadlock's wait-for cycle; empty fields match anything.
struct CyclePattern {
  std::string ctx;       // context kind: "task", "softirq", "hardirq", "nmi"
  std::string waits_in;  // substring of what it spins in
  std::string object;    // substring of the kind of object it waits on
};

// A pattern at least one finding must match: its kind, and substrings of its structured fields.
struct FindingMatch {
  sim::FindingKind kind{};
  std::string site;
  std::string object;
  std::vector<std::string> history;  // each a substring of a history entry, in this order
  std::optional<std::vector<CyclePattern>> cycle;  // exact length; any rotation
  std::string pointer;
  bool matches(const sim::Finding& f) const;
  std::string text() const;  // the pattern, for messages
};

// A point of the run, found in its trace records.
struct EventRef {
  enum class Kind : std::uint8_t {
    kActionStart,
    kActionDone,
    kCallbackEntry,
    kCallbackExit,
    kHelper
  };
  Kind kind = Kind::kActionDone;
  std::size_t action = 0;           // kActionStart/kActionDone: timeline index
  std::string function;             // kCallbackEntry/kCallbackExit: the callback's function name
  std::string helper;               // kHelper: "bpf_timer_cancel"
  std::optional<std::int64_t> ret;  // kHelper: only calls returning this
  std::optional<NameRef> prog;      // kHelper/callbacks: only this program's
  std::uint32_t nth = 1;            // the nth such event, 1-based
  std::string text;                 // as written, for messages
};

struct OrderExpect {
  EventRef first;
  EventRef then;
  std::string pointer;
};

// Values of program and map reference counts at an instant.
struct RefcntExpect {
  NameRef target;
  bool is_prog = false;
  bool user = false;  // usercnt (maps) instead of refcnt
  ValueExpect want;
  std::string pointer;
};

// State at an instant: globals, liveness, reference counts, the model's invariants.
struct AtExpect {
  sim::TimeNs at_ns = 0;
  std::vector<GlobalExpect> globals;
  std::optional<AliveExpect> alive;
  std::vector<MapExpect> maps;  // map elements then, as expect.maps
  std::vector<RefcntExpect> refcnts;
  bool invariants = false;
  std::string pointer;
};

// The top-level `expect`, or one alternative of its `any_of` (pointer "/expect/any_of/<i>").
struct Expectations {
  std::string pointer = "/expect";
  std::vector<GlobalExpect> globals;
  std::vector<AtExpect> at;  // "at", and the spellings "globals_at" and "maps_at"
  std::vector<MapExpect> maps;
  std::vector<FindingCount> findings;
  bool allow_other_findings = false;
  std::vector<FindingMatch> finding_match;
  std::vector<EventCount> events;
  std::vector<OrderExpect> order;
  AliveExpect alive;
  sim::RunStatus status = sim::RunStatus::kQuiescent;
  // expect.load_error: loading the objects must fail with a message containing this; nothing
  // runs then (the other expectations are refused as bad input).
  std::optional<std::string> load_error;
  // Whether `findings` or `finding_match` is given (else the default "no findings" may apply),
  // and whether `status` is (else the default "quiescent" may apply): see any_of.
  bool findings_given = false;
  bool status_given = false;
  // expect.any_of (top level only): at least one alternative must hold entirely. A default
  // ("no findings", status "quiescent") applies to an alternative when neither the top level nor
  // that alternative names findings (status); the top level applies it itself only when it has
  // no alternatives.
  std::vector<Expectations> any_of;
};

}  // namespace bpftsim::tools
