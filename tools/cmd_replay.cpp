// `bpftsim replay RUNFILE`: repeats the run a run file describes (scenario, profile, seed and its
// recorded scheduler decisions) and says whether it reproduced (same trace digest; or, replaying
// leniently, the same outcome). Exit 0 when it reproduced, 1 when not. Refuses, with exit 2, a
// scenario whose bytes changed since the run, unless --allow-changed: then it says which parts
// changed (programs, setup, expectations) and replays leniently by decision key.
#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <string>

#include "tools/commands.h"
#include "tools/report.h"
#include "tools/runfile.h"
#include "tools/runner.h"
#include "tools/scenario.h"

namespace bpftsim::tools {
namespace {

struct ReplayArgs {
  std::string run_file;
  std::string trace;
  std::string trace_format = "text";
  bool lenient = false;
  bool allow_changed = false;
};

// "the expectations", "the programs and the setup", or "nothing but formatting or prose".
std::string changed_parts(const ScenarioParts& then, const ScenarioParts& now) {
  std::vector<std::string> what;
  if (then.programs != now.programs) what.push_back("the programs");
  if (then.setup != now.setup) what.push_back("the setup (timeline, CPUs, costs, seed, window)");
  if (then.expect != now.expect) what.push_back("the expectations");
  if (what.empty()) return "nothing but formatting, names or prose";
  std::string s = what[0];
  for (std::size_t i = 1; i < what.size(); ++i)
    s += (i + 1 == what.size() ? " and " : ", ") + what[i];
  return s;
}

int replay(const ReplayArgs& args) {
  auto read = read_run_file(args.run_file);
  if (auto* e = std::get_if<InputError>(&read)) {
    std::fprintf(stderr, "bpftsim replay: %s\n", e->text().c_str());
    return kExitBadInput;
  }
  const RunFile& f = std::get<RunFile>(read);
  if (auto err = check_trace_output(args.trace)) {
    std::fprintf(stderr, "bpftsim replay: %s\n", err->c_str());
    return kExitBadInput;
  }
  const std::string path = f.scenario_path(args.run_file);
  auto loaded = load_run_file_scenario(f, args.run_file);
  if (auto* e = std::get_if<InputError>(&loaded)) {
    std::fprintf(stderr, "bpftsim replay: %s\n", e->text().c_str());
    return kExitBadInput;
  }
  const Scenario& sc = std::get<Scenario>(loaded);
  const bool changed = sc.hash != f.scenario_hash;
  const std::string what =
      f.parts ? fmt::format(" (changed: {})", changed_parts(*f.parts, sc.parts)) : std::string();
  if (changed && !args.allow_changed) {
    std::fprintf(stderr,
                 "bpftsim replay: %s: the scenario changed since the run%s (%s: fnv1a64 %016llx, "
                 "run file %s has %016llx); replay it leniently with `bpftsim replay %s "
                 "--allow-changed`, or re-run it with `bpftsim run %s --seed %llu --profile %s`\n",
                 args.run_file.c_str(), what.c_str(), path.c_str(),
                 static_cast<unsigned long long>(sc.hash), args.run_file.c_str(),
                 static_cast<unsigned long long>(f.scenario_hash), args.run_file.c_str(),
                 path.c_str(), static_cast<unsigned long long>(f.seed), f.profile.c_str());
    return kExitBadInput;
  }
  if (changed)
    std::printf("the scenario changed since the run%s: replaying leniently by decision key\n",
                what.c_str());
  const bool lenient = args.lenient || changed;
  if (f.tool_version != BPFTSIM_VERSION)
    std::fprintf(stderr,
                 "bpftsim replay: note: the run file was written by bpftsim %s, this is %s\n",
                 f.tool_version.c_str(), BPFTSIM_VERSION);
  RunOptions opts;
  opts.seed = f.seed;
  opts.profile = f.profile;
  opts.replay = f.decisions;
  opts.lenient = lenient;
  opts.window_ns = f.window_ns;
  opts.full_trace = !args.trace.empty();
  Progress progress;
  if (progress.enabled())
    opts.progress = [&](sim::TimeNs t) { progress.update("bpftsim replay " + sc.name, t); };
  auto ran = run_scenario(sc, opts);
  progress.clear();
  if (auto* e = std::get_if<InputError>(&ran)) {
    std::fprintf(stderr, "bpftsim replay: %s\n", e->text().c_str());
    return kExitBadInput;
  }
  const RunResult& r = std::get<RunResult>(ran);
  // A run file whose decision list goes on after the run ended was not written by that run (an
  // edited or spliced file): refused as bad input rather than called a reproduction. Only a run
  // that ended on its own (quiescent, or stopped by a finding) says so: after a divergence the
  // rest is unused by construction, and a run cut by a limit the recorded one did not hit is
  // reported as not reproduced (its digest differs).
  const bool ended_on_its_own =
      r.status == sim::RunStatus::kQuiescent || r.status == sim::RunStatus::kStopped;
  if (!lenient && ended_on_its_own && r.decisions.size() < f.decisions.size()) {
    const InputError unused{
        args.run_file, "/decisions", f.decisions_line, f.decisions_column,
        fmt::format("{} recorded decision(s) left unused: the replayed run ended after {} of "
                    "the {} decisions (decision #{} on); this run file was not written by this "
                    "run of the scenario",
                    f.decisions.size() - r.decisions.size(), r.decisions.size(), f.decisions.size(),
                    r.decisions.size())};
    std::fprintf(stderr, "bpftsim replay: %s\n", unused.text().c_str());
    return kExitBadInput;
  }
  std::printf("%s\n", result_line(r).c_str());
  std::printf("digest %016llx records %llu\n", static_cast<unsigned long long>(r.digest),
              static_cast<unsigned long long>(r.records));
  if (!args.trace.empty())
    if (auto err = write_trace(r, args.trace, args.trace_format)) {
      std::fprintf(stderr, "bpftsim replay: %s\n", err->c_str());
      return kExitBadInput;
    }
  const bool same = r.digest == f.digest;
  const std::string outcome = outcome_of(r);
  // Leniently, the trace may differ (other expectations, an edited list): the outcome is what
  // must come back. A run file without one (older) compares digests only.
  const bool same_outcome = !f.outcome.empty() && outcome == f.outcome;
  const bool reproduced = same || (lenient && same_outcome);
  if (same) {
    std::printf("reproduced: the trace digest matches the recorded run (recorded digest %016llx)\n",
                static_cast<unsigned long long>(f.digest));
  } else if (reproduced) {
    std::printf(
        "reproduced: the recorded outcome '%s' (the trace digest differs from the recorded "
        "%016llx)\n",
        f.outcome.c_str(), static_cast<unsigned long long>(f.digest));
  } else {
    std::printf(
        "NOT reproduced: the trace digest differs from the recorded run (recorded digest "
        "%016llx)%s\n",
        static_cast<unsigned long long>(f.digest),
        f.outcome.empty()
            ? ""
            : fmt::format("; outcome '{}', recorded '{}'", outcome, f.outcome).c_str());
  }
  if (!r.passed()) print_failure_report(stdout, r, fmt::format("bpftsim replay {}", args.run_file));
  std::fflush(stdout);
  return reproduced ? kExitOk : kExitFailed;
}

const Registrar kRegisterReplay{
    "replay", [](CLI::App& app) {
      auto args = std::make_shared<ReplayArgs>();
      auto* sub = app.add_subcommand(
          "replay", "Replay a run file (written by a failing run) exactly: same decisions, seed");
      sub->add_option("runfile", args->run_file, "run file (<name>.run.json)")->required();
      sub->add_option("--trace", args->trace, "write the trace to FILE ('-': stdout)");
      sub->add_option("--trace-format", args->trace_format, "text (default), jsonl or perfetto")
          ->check(CLI::IsMember({"text", "jsonl", "perfetto"}));
      sub->add_flag("--allow-changed", args->allow_changed,
                    "replay against a scenario changed since the run: say what changed "
                    "(programs, setup, expectations) and replay leniently by decision key");
      sub->add_flag("--lenient", args->lenient,
                    "follow the decisions by key: a decision the list lacks (or whose choice is "
                    "gone) takes the default, so an edited list still gives a run");
      return std::function<int()>([args] { return replay(*args); });
    }};

}  // namespace
}  // namespace bpftsim::tools
