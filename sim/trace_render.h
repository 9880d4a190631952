// Three renderings of one stream of trace records (sim/trace.h), documented in traces/README.md:
//   render_text      one ftrace-style line per record (Trace::format_text);
//   render_jsonl     one JSON object per line: {"t_ns","cpu","ctx","event","fields"};
//   render_perfetto  Chrome/Perfetto trace-event JSON that opens in ui.perfetto.dev.
// Output is a pure function of the records: no locale, no floating point, no addresses, no
// unordered containers, so one run gives the same bytes in every build.
//
// The renderers know nothing of the model. The model asks for richer Perfetto rendering through
// field names on its records:
//   slice_begin=<name>     opens a slice <name> on the record's track (a B event);
//   slice_end=<name>       closes the innermost open slice of that name on the track (an E event);
//   flow_out=<int id>      starts a flow arrow here ("s") ...
//   flow_in=<int id>       ... that ends here ("f", bound to the enclosing slice); an id pairs
//                          the first flow_in after its flow_out; unpaired ends are dropped;
//   counter:<name>=<int>   sets the counter track <name> (a "C" event on the kernel/global
//                          process).
// Every record is also an instant event carrying all its fields. A context's lifetime
// (ctx_begin .. ctx_end, named by ctx_begin's `name`) is a slice at the bottom of its track;
// slices still open at ctx_end or at the end of the trace are closed there.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "sim/trace.h"

namespace bpftsim::sim {

void render_text(const std::vector<TraceRecord>& records, std::ostream& out);
void render_jsonl(const std::vector<TraceRecord>& records, std::ostream& out);
void render_perfetto(const std::vector<TraceRecord>& records, std::ostream& out);

std::string render_text(const std::vector<TraceRecord>& records);
std::string render_jsonl(const std::vector<TraceRecord>& records);
std::string render_perfetto(const std::vector<TraceRecord>& records);

}  // namespace bpftsim::sim
