#include "tools/report.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>

#include "sim/trace_render.h"

namespace bpftsim::tools {

bool valid_trace_format(const std::string& format) {
  return format == "text" || format == "jsonl" || format == "perfetto";
}

std::optional<std::string> write_trace(const RunResult& r, const std::string& path,
                                       const std::string& format) {
  const auto& recs = r.trace().records();
  auto render = [&](std::ostream& out) {
    if (format == "jsonl") {
      sim::render_jsonl(recs, out);
    } else if (format == "perfetto") {
      sim::render_perfetto(recs, out);
    } else {
      sim::render_text(recs, out);
    }
  };
  if (path == "-") {
    render(std::cout);
    std::cout.flush();
    return std::nullopt;
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return fmt::format("{}: cannot open for writing: {}", path, std::strerror(errno));
  render(out);
  out.close();
  if (!out) return fmt::format("{}: write failed: {}", path, std::strerror(errno));
  return std::nullopt;
}

std::vector<std::string> last_events_per_cpu(const sim::Trace& trace, const std::set<int>& cpus,
                                             std::size_t n) {
  std::vector<std::string> out;
  const auto& recs = trace.records();
  for (int cpu : cpus) {
    std::vector<const sim::TraceRecord*> last;
    for (auto it = recs.rbegin(); it != recs.rend() && last.size() < n; ++it)
      if (it->cpu == cpu) last.push_back(&*it);
    out.push_back(fmt::format("cpu {}: last {} event(s)", cpu, last.size()));
    sim::ContextLabels labels;
    labels.see_all(recs);
    for (auto it = last.rbegin(); it != last.rend(); ++it)
      out.push_back("  " + sim::Trace::format_text(**it, &labels));
  }
  return out;
}

std::string finding_place(const sim::Finding& f) {
  std::string s = fmt::format("{} at t={} ns", sim::finding_kind_name(f.kind), f.t_ns);
  if (f.cpu >= 0) s += fmt::format(" on cpu {}", f.cpu);
  if (!f.context.empty()) s += fmt::format(" in {}", f.context);
  std::vector<std::string> bpf;
  if (!f.callback.empty()) bpf.push_back(fmt::format("callback {}", f.callback));
  if (!f.program.empty())
    bpf.push_back(fmt::format("{}program {}", f.callback.empty() ? "" : "of ", f.program));
  std::string where = fmt::format("{}", fmt::join(bpf, " "));
  if (!f.map.empty()) {
    if (!where.empty()) where += ", ";
    where += fmt::format("map {} key {}", f.map, f.key);
  }
  if (!where.empty()) s += " (" + where + ")";
  if (!f.site.empty()) s += fmt::format(" in {}", f.site);
  if (!f.source.empty()) {
    s += fmt::format(", at {}", f.source);
    if (f.pc >= 0) s += fmt::format(" (insn {})", f.pc);
    if (!f.source_text.empty()) {
      constexpr std::size_t kMax = 100;
      std::string text = f.source_text.substr(0, kMax);
      if (f.source_text.size() > kMax) text += "...";
      s += fmt::format(": {}", text);
    }
  } else if (f.pc >= 0) {
    s += fmt::format(", at insn {}", f.pc);
  }
  return s;
}

namespace {

// The index of the trace record of finding `f` (the first "finding" record at its time, of its
// kind and message), or the last record before its time.
std::size_t finding_record(const std::vector<sim::TraceRecord>& recs, const sim::Finding& f) {
  std::size_t best = recs.size();
  for (std::size_t i = 0; i < recs.size(); ++i) {
    const sim::TraceRecord& r = recs[i];
    if (r.t_ns > f.t_ns) break;
    best = i;
    if (r.event != "finding") continue;
    const sim::TraceValue* k = r.field("kind");
    const sim::TraceValue* m = r.field("message");
    if (k && m && std::get_if<std::string>(k) &&
        *std::get_if<std::string>(k) == sim::finding_kind_name(f.kind) &&
        std::get_if<std::string>(m) && *std::get_if<std::string>(m) == f.message)
      return i;
  }
  return best;
}

std::optional<std::int64_t> int_of(const sim::TraceRecord& r, const char* key) {
  const sim::TraceValue* v = r.field(key);
  if (v == nullptr) return std::nullopt;
  if (const auto* i = std::get_if<std::int64_t>(v)) return *i;
  return std::nullopt;
}

}  // namespace

std::vector<std::string> events_around(const sim::Trace& trace, const sim::Finding& f,
                                       std::size_t before, std::size_t after) {
  std::vector<std::string> out;
  const auto& recs = trace.records();
  if (recs.empty()) return out;
  std::set<int> cpus;
  if (f.cpu >= 0) cpus.insert(f.cpu);
  for (const sim::CycleEntry& c : f.cycle)
    if (c.cpu >= 0) cpus.insert(c.cpu);
  const std::size_t at = finding_record(recs, f);
  if (at >= recs.size()) return out;
  sim::ContextLabels labels;
  labels.see_all(recs);
  for (int cpu : cpus) {
    std::vector<std::size_t> picked;
    for (std::size_t i = at + 1; i-- > 0 && picked.size() < before + 1;)
      if (recs[i].cpu == cpu || i == at) picked.insert(picked.begin(), i);
    std::size_t later = 0;
    for (std::size_t i = at + 1; i < recs.size() && later < after; ++i)
      if (recs[i].cpu == cpu) {
        picked.push_back(i);
        ++later;
      }
    out.push_back(fmt::format("cpu {} around the finding (t={} ns):", cpu, f.t_ns));
    for (std::size_t i : picked)
      out.push_back(
          fmt::format("{} {}", i == at ? ">" : " ", sim::Trace::format_text(recs[i], &labels)));
  }
  return out;
}

std::vector<std::string> timer_stories(const sim::Trace& trace, const sim::Finding& f) {
  std::vector<std::string> out;
  // The timer the finding is about: "bpf_hrtimer#7", or the object of a cycle's wait.
  // The timers the finding is about: its object ("bpf_hrtimer#7"), and the hrtimers a deadlock's
  // contexts wait for ("... waits in hrtimer_cancel for hrtimer#8 ...").
  std::set<std::int64_t> ids;
  std::vector<std::string> texts{f.object};
  texts.insert(texts.end(), f.details.begin(), f.details.end());
  for (const std::string& text : texts)
    for (std::size_t at = text.find("hrtimer#"); at != std::string::npos;
         at = text.find("hrtimer#", at + 1)) {
      std::size_t end = at + 8;
      while (end < text.size() && text[end] >= '0' && text[end] <= '9')
        ++end;
      if (end > at + 8 && end - at - 8 < 12)
        ids.insert(std::stoll(text.substr(at + 8, end - at - 8)));
    }
  const auto& recs = trace.records();
  for (std::int64_t id : ids) {
    std::vector<std::string> steps;
    for (const sim::TraceRecord& r : recs) {
      const bool about = int_of(r, "timer") == id || int_of(r, "hrtimer") == id ||
                         ((r.event == "kmalloc" || r.event == "kfree") && int_of(r, "obj") == id);
      if (!about && !(r.event == "finding" && r.t_ns == f.t_ns)) continue;
      std::string what = r.event;
      if (r.event == "bpf_timer_cb")
        if (const sim::TraceValue* cb = r.field("callback"))
          if (const auto* s = std::get_if<std::string>(cb)) what += " " + *s;
      if (r.event == "kfree")
        if (const sim::TraceValue* by = r.field("by"))
          if (const auto* s = std::get_if<std::string>(by)) what += " by " + *s;
      if (r.event == "finding") what = sim::finding_kind_name(f.kind);
      steps.push_back(fmt::format("{} t={} cpu{}", what, r.t_ns, r.cpu));
    }
    if (steps.size() > 16) {
      steps.erase(steps.begin() + 8, steps.end() - 8);
      steps.insert(steps.begin() + 8, "...");
    }
    out.push_back(fmt::format("timer {}: {}", id, fmt::join(steps, ", ")));
  }
  return out;
}

std::string result_line(const RunResult& r) {
  return fmt::format("{} {}  status={} t={} ns  findings={}  seed={}  digest={:016x}",
                     r.passed() ? "PASS" : "FAIL", r.name, sim::run_status_name(r.status), r.end_ns,
                     r.findings.size(), r.seed, r.digest);
}

void print_failure_report(std::FILE* out, const RunResult& r, const std::string& reproduce,
                          std::size_t events) {
  for (const auto& f : r.failures)
    std::fprintf(out, "  %s\n", f.c_str());
  std::fprintf(out, "  reproduce: %s\n", reproduce.c_str());
  // The findings where they happened (the first three), with the CPUs' events around them and
  // the story of each timer involved; without findings, the last events of the CPUs involved.
  std::size_t shown = 0;
  for (const sim::Finding& f : r.findings) {
    if (f.kind == sim::FindingKind::kReplayDivergence) continue;
    if (shown++ == 3) break;
    std::fprintf(out, "  finding: %s\n", finding_place(f).c_str());
    if (!r.trace().keeps_records()) continue;
    for (const auto& line : timer_stories(r.trace(), f))
      std::fprintf(out, "    %s\n", line.c_str());
    for (const auto& line : events_around(r.trace(), f, events, 2))
      std::fprintf(out, "    %s\n", line.c_str());
  }
  if (shown > 0 || !r.trace().keeps_records()) return;
  for (const auto& line : last_events_per_cpu(r.trace(), r.cpus, events))
    std::fprintf(out, "  %s\n", line.c_str());
}

namespace {
long long wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

Progress::Progress() : enabled_(::isatty(STDERR_FILENO) == 1), last_ms_(wall_ms()) {}

Progress::~Progress() {
  clear();
}

void Progress::update(const std::string& label, sim::TimeNs now) {
  if (!enabled_) return;
  const long long ms = wall_ms();
  if (ms - last_ms_ < 100) return;
  last_ms_ = ms;
  std::fprintf(stderr, "\r\033[K%s  t=%lld.%03lld ms", label.c_str(),
               static_cast<long long>(now / sim::kNsPerMs),
               static_cast<long long>(now % sim::kNsPerMs / sim::kNsPerUs));
  std::fflush(stderr);
  shown_ = true;
}

void Progress::clear() {
  if (!shown_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  shown_ = false;
}

}  // namespace bpftsim::tools
