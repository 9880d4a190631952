// `bpftsim run SCENARIO`: runs one JSON scenario (scenarios/README.md) and judges its
// expectations. A failing run writes a run file and prints the line that reproduces it and the
// last trace events of each CPU involved.
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

struct RunArgs {
  std::string scenario;
  std::optional<std::uint64_t> seed;
  std::optional<std::string> profile;
  std::string trace;
  std::string trace_format = "text";
  std::string run_dir = "bpftsim-runs";
  bool digest = false;
  std::optional<std::uint64_t> max_steps;
  std::optional<std::uint64_t> max_trace_records;
  std::optional<std::uint64_t> max_insns;
  std::optional<std::int64_t> window_ns;
};

int run_one(const RunArgs& args) {
  if (auto err = check_trace_output(args.trace)) {
    std::fprintf(stderr, "bpftsim run: %s\n", err->c_str());
    return kExitBadInput;
  }
  auto loaded = load_scenario(args.scenario);
  if (auto* e = std::get_if<InputError>(&loaded)) {
    std::fprintf(stderr, "bpftsim run: %s\n", e->text().c_str());
    return kExitBadInput;
  }
  const Scenario& sc = std::get<Scenario>(loaded);
  RunOptions opts;
  opts.seed = args.seed;
  opts.profile = args.profile;
  opts.full_trace = !args.trace.empty();  // else only the tail, for the failure report
  opts.max_steps = args.max_steps;
  opts.max_trace_records = args.max_trace_records;
  opts.max_insns = args.max_insns;
  opts.window_ns = args.window_ns;
  Progress progress;
  if (progress.enabled())
    opts.progress = [&](sim::TimeNs t) { progress.update("bpftsim run " + sc.name, t); };
  auto ran = run_scenario(sc, opts);
  progress.clear();
  if (auto* e = std::get_if<InputError>(&ran)) {
    std::fprintf(stderr, "bpftsim run: %s\n", e->text().c_str());
    return kExitBadInput;
  }
  const RunResult& r = std::get<RunResult>(ran);
  std::printf("%s\n", result_line(r).c_str());
  if (args.digest)
    std::printf("digest %016llx records %llu\n", static_cast<unsigned long long>(r.digest),
                static_cast<unsigned long long>(r.records));
  if (!args.trace.empty())
    if (auto err = write_trace(r, args.trace, args.trace_format)) {
      std::fprintf(stderr, "bpftsim run: %s\n", err->c_str());
      return kExitBadInput;
    }
  if (r.passed()) return kExitOk;
  std::string reproduce =
      fmt::format("bpftsim run {} --seed {} --profile {}", sc.file, r.seed, r.profile);
  auto written = write_run_file(make_run_file(sc, r, BPFTSIM_VERSION), args.run_dir);
  if (auto* path = std::get_if<std::string>(&written)) {
    reproduce = fmt::format("bpftsim replay {}   (or: {})", *path, reproduce);
  } else {
    std::fprintf(stderr, "bpftsim run: %s\n", std::get<InputError>(written).text().c_str());
  }
  print_failure_report(stdout, r, reproduce);
  std::fflush(stdout);
  return kExitFailed;
}

const Registrar kRegisterRun{
    "run", [](CLI::App& app) {
      auto args = std::make_shared<RunArgs>();
      auto* sub = app.add_subcommand("run", "Run one JSON scenario and check its expectations");
      sub->add_option("scenario", args->scenario, "scenario file (scenarios/README.md)")
          ->required();
      sub->add_option("--seed", args->seed, "scheduler seed (overrides the scenario's)")
          ->check(unsigned_in(0, kMaxU64));
      sub->add_option("--profile", args->profile, profile_help());
      sub->add_option("--trace", args->trace, "write the trace to FILE ('-': stdout)");
      sub->add_option("--trace-format", args->trace_format, "text (default), jsonl or perfetto")
          ->check(CLI::IsMember({"text", "jsonl", "perfetto"}));
      sub->add_option("--run-dir", args->run_dir,
                      "directory for the run file of a failing run (default: ./bpftsim-runs)");
      sub->add_flag("--digest", args->digest, "also print 'digest <hex> records <n>'");
      sub->add_option("--window", args->window_ns,
                      "scheduling window in ns (overrides the scenario's window_ns): events due "
                      "within it of the earliest are unordered, a scheduler decision")
          ->check(CLI::Range(std::int64_t{0}, std::int64_t{1000000000}));
      sub->add_option("--max-steps", args->max_steps,
                      "step limit (default: the scenario's limits.max_steps, else 2000000)")
          ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
      sub->add_option("--max-insns", args->max_insns,
                      "BPF instructions all programs may execute (default 1000000000)")
          ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 50));
      sub->add_option("--max-trace-records", args->max_trace_records,
                      "trace records kept in memory for --trace (default 2000000)")
          ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
      return std::function<int()>([args] { return run_one(*args); });
    }};

}  // namespace
}  // namespace bpftsim::tools
