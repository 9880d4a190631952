// `bpftsim timers`: what happened to each BPF timer of a run, from its trace — one row per
// bpf_hrtimer (the allocation bpf_timer_init makes): the map element it lives in, the callbacks
// it ran, how often it was started, expired and cancelled, when it was freed and by whom, and the
// findings about it. Built from trace records only (kmalloc/kfree of kind bpf_hrtimer,
// hrtimer_start/_cancel/_expire_entry, bpf_timer_cb), so it describes any kept trace.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/finding.h"
#include "sim/trace.h"

namespace bpftsim::tools {

struct TimerRow {
  std::int64_t id = 0;  // the bpf_hrtimer object
  std::string element;  // "m[0]" (from its allocation's name), or the name itself
  std::string init;     // "t=298 cpu0"
  std::uint64_t starts = 0, expiries = 0, cancels = 0;
  std::vector<std::string> callbacks;  // distinct callback names, in order of first run
  std::uint64_t callback_runs = 0;
  std::string freed;                  // "t=10513 cpu1 by bpf_timer_cancel_and_free", or "-"
  std::vector<std::string> findings;  // kinds of the findings about it
};

std::vector<TimerRow> timer_table(const std::vector<sim::TraceRecord>& records,
                                  const std::vector<sim::Finding>& findings);

// The table as aligned text (a header, one line per timer), "(no BPF timers)" when empty.
std::string timer_table_text(const std::vector<TimerRow>& rows);

}  // namespace bpftsim::tools
