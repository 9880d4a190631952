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
    for (auto it = last.rbegin(); it != last.rend(); ++it)
      out.push_back("  " + sim::Trace::format_text(**it));
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
  if (!r.trace().keeps_records()) return;
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
