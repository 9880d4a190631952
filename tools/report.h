// What the run/check/replay commands print and write around a run: trace files in the three
// renderings (sim/trace_render.h), the failure report (failures, the line that reproduces the
// run, the last trace events of each CPU involved), and the progress line shown on a terminal.
#pragma once

#include <cstdio>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sim/time.h"
#include "tools/runner.h"

namespace bpftsim::tools {

// "text", "jsonl" or "perfetto"; anything else is refused by the CLI before a run.
bool valid_trace_format(const std::string& format);
// Writes the run's trace to `path` ("-" = stdout); an error message on failure.
std::optional<std::string> write_trace(const RunResult& r, const std::string& path,
                                       const std::string& format);

// The last `n` trace records of each CPU in `cpus`, as text lines ("cpu N:" headers).
std::vector<std::string> last_events_per_cpu(const sim::Trace& trace, const std::set<int>& cpus,
                                             std::size_t n);

// Where a finding happened, in one line: "use_after_free at t=13677 ns on cpu 0 in softirq/0
// (callback long_cb of program arm, map timers key 0)".
std::string finding_place(const sim::Finding& f);
// Each CPU the finding involves (its own; every CPU of a deadlock's cycle): the trace records of
// that CPU around the finding's record, `before` before it and `after` after it.
std::vector<std::string> events_around(const sim::Trace& trace, const sim::Finding& f,
                                       std::size_t before, std::size_t after);
// One line per timer the finding is about: its life from the trace (init, start, expire,
// callback, cancel, free) with times and CPUs, e.g. "timer 7: kmalloc 0.3us cpu0, ...".
std::vector<std::string> timer_stories(const sim::Trace& trace, const sim::Finding& f);

// One result line: "PASS name  t=... ns  findings=N  digest=...".
std::string result_line(const RunResult& r);

// The failure report: each failure, then `reproduce` (one line), then the last `events` trace
// records of each CPU involved.
void print_failure_report(std::FILE* out, const RunResult& r, const std::string& reproduce,
                          std::size_t events = 5);

// A one-line progress indicator on stderr, only when stderr is a terminal (never in tests or CI).
class Progress {
 public:
  Progress();
  ~Progress();
  bool enabled() const { return enabled_; }
  // "[i/n] name t=..." at most every 100 ms of wall time.
  void update(const std::string& label, sim::TimeNs now);
  void clear();

 private:
  bool enabled_ = false;
  bool shown_ = false;
  long long last_ms_ = 0;
};

}  // namespace bpftsim::tools
