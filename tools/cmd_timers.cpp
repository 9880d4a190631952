// `bpftsim timers SCENARIO|RUNFILE`: runs a scenario (or replays a run file) and prints one row
// per BPF timer of the run (tools/timers.h): where it lives, its callbacks, starts, expiries,
// cancels, its free and the findings about it. `--watch t.counter` / `--watch t.m[0]` follows a
// global variable or a map value through the run: every change with its time, CPU and context,
// in the summary and (with --trace) as `watch` records in the written trace (the run itself, its
// decisions and digest are unchanged: watching only reads).
#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "sim/trace_render.h"
#include "tools/commands.h"
#include "tools/report.h"
#include "tools/runfile.h"
#include "tools/runner.h"
#include "tools/scenario.h"
#include "tools/timers.h"

namespace bpftsim::tools {
namespace {

struct TimersArgs {
  std::string input;
  std::optional<std::uint64_t> seed;
  std::optional<std::string> profile;
  std::vector<std::string> watches;
  std::string trace;
  std::string trace_format = "text";
};

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

int timers(const TimersArgs& args) {
  if (auto err = check_trace_output(args.trace)) {
    std::fprintf(stderr, "bpftsim timers: %s\n", err->c_str());
    return kExitBadInput;
  }
  RunOptions opts;
  std::variant<Scenario, InputError> loaded;
  if (ends_with(args.input, ".run.json")) {
    auto read = read_run_file(args.input);
    if (auto* e = std::get_if<InputError>(&read)) {
      std::fprintf(stderr, "bpftsim timers: %s\n", e->text().c_str());
      return kExitBadInput;
    }
    const RunFile& f = std::get<RunFile>(read);
    opts.seed = f.seed;
    opts.profile = f.profile;
    opts.window_ns = f.window_ns;
    opts.replay = f.decisions;
    opts.lenient = true;  // the run file's run, even if the scenario's expectations changed
    loaded = load_run_file_scenario(f, args.input);
  } else {
    loaded = load_scenario(args.input);
  }
  if (auto* e = std::get_if<InputError>(&loaded)) {
    std::fprintf(stderr, "bpftsim timers: %s\n", e->text().c_str());
    return kExitBadInput;
  }
  const Scenario& sc = std::get<Scenario>(loaded);
  if (args.seed) opts.seed = args.seed;
  if (args.profile) opts.profile = args.profile;
  opts.watches = args.watches;
  opts.full_trace = true;
  auto ran = run_scenario(sc, opts);
  if (auto* e = std::get_if<InputError>(&ran)) {
    std::fprintf(stderr, "bpftsim timers: %s\n", e->text().c_str());
    return kExitBadInput;
  }
  const RunResult& r = std::get<RunResult>(ran);
  std::printf("%s\n\n", result_line(r).c_str());
  std::printf("%s", timer_table_text(timer_table(r.trace().records(), r.findings)).c_str());
  for (const std::string& what : args.watches) {
    std::printf("\nwatch %s\n", what.c_str());
    std::printf("  %-14s  %-4s  %-6s  %s\n", "T_NS", "CPU", "CTX", "VALUE");
    for (const auto& c : r.watch_changes)
      if (c.what == what)
        std::printf("  %-14lld  %-4s  %-6s  %s\n", static_cast<long long>(c.t_ns),
                    c.cpu < 0 ? "-" : std::to_string(c.cpu).c_str(),
                    c.ctx == 0 ? "-" : std::to_string(c.ctx).c_str(), c.value.c_str());
  }
  if (!args.trace.empty()) {
    // The run's records with a `watch` record after the record that made each change.
    std::vector<sim::TraceRecord> out;
    const auto& recs = r.trace().records();
    std::size_t next = 0;
    for (std::size_t i = 0; i <= recs.size(); ++i) {
      for (; next < r.watch_changes.size() && r.watch_changes[next].record <= i; ++next) {
        const auto& c = r.watch_changes[next];
        out.push_back(sim::TraceRecord{
            c.t_ns, c.cpu, c.ctx, "watch", {{"what", c.what}, {"value", c.value}}});
      }
      if (i < recs.size()) out.push_back(recs[i]);
    }
    std::FILE* f = args.trace == "-" ? stdout : std::fopen(args.trace.c_str(), "wb");
    if (f == nullptr) {
      std::fprintf(stderr, "bpftsim timers: --trace %s: cannot open for writing\n",
                   args.trace.c_str());
      return kExitBadInput;
    }
    std::string text = args.trace_format == "jsonl"      ? sim::render_jsonl(out)
                       : args.trace_format == "perfetto" ? sim::render_perfetto(out)
                                                         : sim::render_text(out);
    std::fwrite(text.data(), 1, text.size(), f);
    if (f != stdout) std::fclose(f);
  }
  std::fflush(stdout);
  return kExitOk;
}

const Registrar kRegisterTimers{
    "timers", [](CLI::App& app) {
      auto args = std::make_shared<TimersArgs>();
      auto* sub = app.add_subcommand(
          "timers",
          "Run a scenario (or replay a run file) and print one row per BPF timer; --watch "
          "follows a global or a map value through the run");
      sub->add_option("input", args->input, "a scenario, or a run file (<name>.run.json)")
          ->required();
      sub->add_option("--seed", args->seed, "scheduler seed (overrides the scenario's)")
          ->check(unsigned_in(0, kMaxU64));
      sub->add_option("--profile", args->profile, profile_help());
      sub->add_option("--watch", args->watches,
                      "follow <object>.<global>, <object>.<global>.<member> (a member of a struct "
                      "global) or <object>.<map>[<key>] (repeatable)");
      sub->add_option("--trace", args->trace,
                      "write the trace, with a `watch` record at each change, to FILE ('-': "
                      "stdout)");
      sub->add_option("--trace-format", args->trace_format, "text (default), jsonl or perfetto")
          ->check(CLI::IsMember({"text", "jsonl", "perfetto"}));
      return std::function<int()>([args] { return timers(*args); });
    }};

}  // namespace
}  // namespace bpftsim::tools
