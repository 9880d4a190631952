// `bpftsim shrink RUNFILE`: shrinks the failing run a run file describes (tools/shrink.h) to a
// 1-minimal one that fails the same way, and writes it as a scenario <name>.shrunk.json with its
// run file <name>.shrunk.run.json (which `bpftsim replay` reproduces) and, on request, its trace.
// Exit 0 when shrunk, 1 when the run file's run does not fail (nothing to shrink), 2 bad input.
#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <string>

#include "tools/commands.h"
#include "tools/report.h"
#include "tools/runfile.h"
#include "tools/runner.h"
#include "tools/scenario.h"
#include "tools/shrink.h"

namespace bpftsim::tools {
namespace {

struct ShrinkArgs {
  std::string run_file;
  std::string out_dir = ".";
  std::string trace;
  std::string trace_format = "text";
  std::size_t max_runs = ShrinkOptions{}.max_runs;
};

int shrink_cmd(const ShrinkArgs& args) {
  auto read = read_run_file(args.run_file);
  if (auto* e = std::get_if<InputError>(&read)) {
    std::fprintf(stderr, "bpftsim shrink: %s\n", e->text().c_str());
    return kExitBadInput;
  }
  const RunFile& f = std::get<RunFile>(read);
  if (auto err = check_trace_output(args.trace)) {
    std::fprintf(stderr, "bpftsim shrink: %s\n", err->c_str());
    return kExitBadInput;
  }
  const std::string path = f.scenario_path(args.run_file);
  auto loaded = load_run_file_scenario(f, args.run_file);
  if (auto* e = std::get_if<InputError>(&loaded)) {
    std::fprintf(stderr, "bpftsim shrink: %s\n", e->text().c_str());
    return kExitBadInput;
  }
  const Scenario& sc = std::get<Scenario>(loaded);
  if (sc.hash != f.scenario_hash) {
    std::fprintf(stderr,
                 "bpftsim shrink: %s: the scenario changed since the run (%s: fnv1a64 %016llx, "
                 "run file has %016llx); its decisions no longer describe that run\n",
                 args.run_file.c_str(), path.c_str(), static_cast<unsigned long long>(sc.hash),
                 static_cast<unsigned long long>(f.scenario_hash));
    return kExitBadInput;
  }
  RunOptions opts;
  opts.seed = f.seed;
  opts.profile = f.profile;
  opts.window_ns = f.window_ns;
  // The run once as recorded (leniently, as the shrinker replays): input problems found only
  // when running (an unknown profile) are bad input, a run that passes has nothing to shrink.
  {
    RunOptions probe = opts;
    probe.replay = f.decisions;
    probe.lenient = true;
    probe.keep_trace = false;
    probe.full_trace = false;
    auto ran = run_scenario(sc, probe);
    if (auto* e = std::get_if<InputError>(&ran)) {
      std::fprintf(stderr, "bpftsim shrink: %s\n", e->text().c_str());
      return kExitBadInput;
    }
    if (std::get<RunResult>(ran).passed()) {
      std::printf("%s: the run passes (%s, seed %llu, %zu decisions): nothing to shrink\n",
                  args.run_file.c_str(), sc.name.c_str(), static_cast<unsigned long long>(f.seed),
                  f.decisions.size());
      return kExitFailed;
    }
  }
  ShrinkOptions so;
  so.max_runs = args.max_runs;
  const auto res = shrink(sc, opts, f.decisions, so);
  if (!res) {
    std::printf("%s: the failure does not reproduce: nothing to shrink\n", args.run_file.c_str());
    return kExitFailed;
  }
  auto written = write_shrunk(*res, args.out_dir, !args.trace.empty());
  if (auto* e = std::get_if<InputError>(&written)) {
    std::fprintf(stderr, "bpftsim shrink: %s\n", e->text().c_str());
    return kExitBadInput;
  }
  const ShrunkFiles& files = std::get<ShrunkFiles>(written);
  std::printf("shrunk %s: fails with %s\n", sc.name.c_str(), res->outcome.c_str());
  std::printf("  actions   %zu -> %zu (%zu range(s) narrowed to points)\n", res->actions_before,
              res->actions_after, res->ranges_narrowed);
  std::printf("  decisions %zu -> %zu non-default (%zu non-default before; the run records %zu)\n",
              res->decisions_before, res->decisions_after, res->nondefault_before,
              files.run.decisions.size());
  std::printf("  runs      %zu (of at most %zu)%s\n", res->runs, args.max_runs,
              res->minimal ? ", 1-minimal"
                           : ", NOT 1-minimal: --max-runs ran out (the result still fails)");
  std::printf("  scenario  %s\n  run file  %s\n", files.scenario.c_str(), files.run_file.c_str());
  if (!args.trace.empty())
    if (auto err = write_trace(files.run, args.trace, args.trace_format)) {
      std::fprintf(stderr, "bpftsim shrink: %s\n", err->c_str());
      return kExitBadInput;
    }
  std::printf("reproduce: bpftsim replay %s\n", files.run_file.c_str());
  std::fflush(stdout);
  return kExitOk;
}

const Registrar kRegisterShrink{
    "shrink", [](CLI::App& app) {
      auto args = std::make_shared<ShrinkArgs>();
      auto* sub = app.add_subcommand(
          "shrink",
          "Shrink a failing run (a run file) to a 1-minimal one that fails the same way: "
          "actions removed, ranges narrowed, decisions reset, the decision list cut");
      sub->add_option("runfile", args->run_file, "run file of a failing run (<name>.run.json)")
          ->required();
      sub->add_option("--out-dir", args->out_dir,
                      "directory for <name>.shrunk.json and <name>.shrunk.run.json (default: .)");
      sub->add_option("--trace", args->trace, "write the shrunk run's trace to FILE ('-': stdout)");
      sub->add_option("--trace-format", args->trace_format, "text (default), jsonl or perfetto")
          ->check(CLI::IsMember({"text", "jsonl", "perfetto"}));
      sub->add_option("--max-runs", args->max_runs,
                      "runs the shrinker may spend (default 2000); when they run out the result "
                      "still fails but may not be 1-minimal")
          ->check(unsigned_in(2, 100000000));
      return std::function<int()>([args] { return shrink_cmd(*args); });
    }};

}  // namespace
}  // namespace bpftsim::tools
