// What the checkers report. A finding has a kind from one closed list (with its name table, shared
// by the model's checkers, the scenario format and the CLI), a one-line message, and structured
// fields a scenario can match (`expect.finding_match`): the code that found it, the object it is
// about with that object's history, and for a deadlock the wait-for cycle.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sim/time.h"

namespace bpftsim::sim {

enum class FindingKind : std::uint8_t {
  kDeadlock,           // a wait-for cycle (or blocked contexts with nothing left to wake them)
  kLiveness,           // the step or virtual-time limit
  kReplayDivergence,   // a replayed decision list no longer fits
  kUseAfterFree,       // an access to a freed kernel object
  kDoubleFree,         // a second free
  kLeak,               // allocated and unreachable at quiescence
  kRefcountUnderflow,  // a reference count below zero
  kProgramFault,       // a BPF program's bad access, runaway loop, or rejected argument
  kWildPointer,        // a pointer that is no object (the kernel would crash)
  kInvariant,          // a model invariant broken at quiescence
};

// "deadlock", "use_after_free", ... (the names scenarios and traces use).
const char* finding_kind_name(FindingKind kind);
std::optional<FindingKind> finding_kind_by_name(std::string_view name);
std::span<const FindingKind> all_finding_kinds();

// One context of a deadlock's wait-for cycle.
struct CycleEntry {
  int cpu = -1;
  std::string ctx_kind;  // "task", "softirq", "hardirq", "nmi"
  std::string waits_in;  // what it spins in ("hrtimer_cancel", "spin_lock"), "" if interrupted
  std::string object;    // the kind of object it waits on ("bpf_hrtimer", "htab_bucket"), or ""
  std::string text;      // the full description
};

struct Finding {
  FindingKind kind = FindingKind::kInvariant;
  std::string message;  // one line
  TimeNs t_ns = 0;
  int cpu = -1;
  std::vector<std::string> details;  // e.g. the wait-for cycle, an object's history
  std::string site;                  // the code that touched or found it ("__run_hrtimer")
  std::string object;                // the object it is about ("bpf_hrtimer#12"), or ""
  std::vector<std::string> history;  // that object's events, oldest first ("free by ...")
  std::vector<CycleEntry> cycle;     // deadlock: the contexts of the wait-for cycle
  // Where it happened, in the user's terms (filled by the simulator and the model's hook when
  // the finding is reported from a running context): the context's id and name ("softirq/1",
  // "run t.canceller"), and when BPF code was running there, its program, the timer callback
  // (if a callback), and the map and key of that callback's element.
  std::uint32_t ctx = 0;
  std::string context;
  std::string program;
  std::string callback;
  std::string map;
  std::string key;
  // The BPF instruction running there (its index in the program, -1: none) and, from the
  // object's BTF line info, its source line ("race.bpf.c:42") and that line's text.
  std::int64_t pc = -1;
  std::string source;
  std::string source_text;
};

}  // namespace bpftsim::sim
