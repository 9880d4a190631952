// `bpftsim explore SCENARIO`: runs a scenario under many schedules (tools/explore.h) and reports
// each distinct outcome with its count and hit rate. Each distinct failure is written as a run file
// that `bpftsim replay` reproduces, then shrunk (tools/shrink.h) unless --no-shrink.
// `bpftsim explore --merge SUMMARY...` joins the summaries of the shards of one exploration.
#include <fmt/format.h>

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "model/input_file.h"
#include "tools/commands.h"
#include "tools/explore.h"
#include "tools/report.h"
#include "tools/runfile.h"
#include "tools/runner.h"
#include "tools/scenario.h"
#include "tools/shrink.h"

namespace bpftsim::tools {
namespace {

struct ExploreArgs {
  std::string scenario;
  std::string strategy = "random";
  std::optional<std::uint64_t> schedules;
  std::optional<double> time_s;
  std::optional<std::uint64_t> seed;
  std::optional<std::string> profile;
  std::optional<std::int64_t> window_ns;
  unsigned depth = 3, bound = 2, dfs_points = 5;
  bool all = false;
  unsigned jobs = 1;
  std::string shard;
  std::uint64_t self_check = 100;
  std::string summary;
  std::string run_dir = "bpftsim-runs";
  bool no_shrink = false;
  std::optional<std::uint64_t> max_steps;
  std::optional<std::uint64_t> max_insns;
  std::vector<std::string> merge;
};

void fail_input(const std::string& msg) {
  std::fprintf(stderr, "bpftsim explore: %s\n", msg.c_str());
}

bool write_text(const std::string& path, const std::string& text, std::string* err) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) {
    *err = fmt::format("{}: cannot write: {}", path, std::strerror(errno));
    return false;
  }
  return true;
}

// A file name part from a schedule name ("3=1,7=4" -> "3.1-7.4").
std::string file_part(const std::string& schedule) {
  std::string s = schedule;
  for (char& c : s)
    if (c == '=') {
      c = '.';
    } else if (c == ',') {
      c = '-';
    }
  return s;
}

// The end of an explore or a merge: the summary written to --summary when asked, and the exit
// code (1 when a schedule failed).
int finish(const ExploreArgs& args, const ExploreSummary& s) {
  if (!args.summary.empty()) {
    std::string err;
    if (!write_text(args.summary, summary_json(s), &err)) {
      fail_input(err);
      return kExitBadInput;
    }
  }
  return s.failures() > 0 ? kExitFailed : kExitOk;
}

int merge(const ExploreArgs& args) {
  std::vector<ExploreSummary> parts;
  for (const std::string& path : args.merge) {
    std::string text;
    if (auto why = model::read_input_file(path, model::kMaxRunFileBytes, "summary", &text)) {
      fail_input(fmt::format("{}: {}", path, *why));
      return kExitBadInput;
    }
    auto parsed = parse_summary(path, text);
    if (auto* e = std::get_if<InputError>(&parsed)) {
      fail_input(e->text());
      return kExitBadInput;
    }
    parts.push_back(std::get<ExploreSummary>(parsed));
  }
  auto merged = merge_summaries(parts);
  if (auto* e = std::get_if<std::string>(&merged)) {
    fail_input("--merge: " + *e);
    return kExitBadInput;
  }
  const ExploreSummary& s = std::get<ExploreSummary>(merged);
  std::printf("%s", summary_text(s).c_str());
  for (const std::string& f : s.run_files)
    std::printf("  run file: %s\n", f.c_str());
  return finish(args, s);
}

int explore_cmd(const ExploreArgs& args) {
  if (!args.merge.empty()) {
    if (!args.scenario.empty()) {
      fail_input("--merge takes summary files only, not a scenario");
      return kExitBadInput;
    }
    return merge(args);
  }
  if (args.scenario.empty()) {
    fail_input("a SCENARIO (or --merge SUMMARY...) is required");
    return kExitBadInput;
  }
  ExploreOptions o;
  o.strategy = *strategy_from_name(args.strategy);
  o.schedules = args.schedules;
  o.time_s = args.time_s;
  o.seed = args.seed;
  o.profile = args.profile;
  o.window_ns = args.window_ns;
  o.max_steps = args.max_steps;
  o.max_insns = args.max_insns;
  o.depth = args.depth;
  o.bound = args.bound;
  o.dfs_points = args.dfs_points;
  o.all = args.all;
  o.jobs = args.jobs;
  o.self_check = args.self_check;
  if (!args.shard.empty()) {
    unsigned i = 0, n = 0;
    char tail = 0;
    if (std::sscanf(args.shard.c_str(), "%u/%u%c", &i, &n, &tail) != 2 || n == 0 || i >= n ||
        args.shard.find_first_not_of("0123456789/") != std::string::npos) {
      fail_input(fmt::format("--shard: expected i/N with 0 <= i < N, got '{}'", args.shard));
      return kExitBadInput;
    }
    o.shard = i;
    o.shards = n;
  }
  auto loaded = load_scenario(args.scenario);
  if (auto* e = std::get_if<InputError>(&loaded)) {
    fail_input(e->text());
    return kExitBadInput;
  }
  const Scenario& sc = std::get<Scenario>(loaded);
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  if (tty)
    o.progress = [&](std::uint64_t n, std::uint64_t failures, double secs) {
      std::fprintf(stderr, "\r\033[Kexplore %s: %llu schedules, %.0f/s, %llu failing",
                   sc.name.c_str(), static_cast<unsigned long long>(n),
                   secs > 0 ? static_cast<double>(n) / secs : 0.0,
                   static_cast<unsigned long long>(failures));
      std::fflush(stderr);
    };
  auto explored = explore(sc, o);
  if (tty) std::fprintf(stderr, "\r\033[K");
  if (auto* e = std::get_if<InputError>(&explored)) {
    fail_input(e->text());
    return kExitBadInput;
  }
  ExploreResult& res = std::get<ExploreResult>(explored);
  ExploreSummary& s = res.summary;

  // Each distinct failure: replayed with its decisions and a full trace, written as a run file,
  // then shrunk.
  std::vector<std::string> lines;
  for (const ExploreFailure& f : res.failures) {
    RunOptions ro = explore_run_options(sc, o);
    ro.replay = f.decisions;
    ro.keep_trace = true;
    ro.full_trace = true;
    auto ran = run_scenario(sc, ro);
    if (auto* e = std::get_if<InputError>(&ran)) {
      fail_input(e->text());
      return kExitBadInput;
    }
    const RunResult& r = std::get<RunResult>(ran);
    lines.push_back(fmt::format("FAIL {}  (first at schedule {})", f.outcome, f.schedule));
    if (r.digest != f.digest)
      lines.push_back(
          fmt::format("  note: the replay's digest {:016x} differs from the "
                      "schedule's {:016x} (nondeterminism)",
                      r.digest, f.digest));
    const std::string base =
        fmt::format("{}.{}-{}-{}", sc.name, s.strategy, s.seed, file_part(f.schedule));
    RunFile rf = make_run_file(sc, r, BPFTSIM_VERSION);
    std::error_code ec;
    std::filesystem::create_directories(args.run_dir, ec);
    const std::string path = (std::filesystem::path(args.run_dir) / (base + ".run.json")).string();
    std::string err;
    if (ec) {
      lines.push_back(
          fmt::format("  cannot create the run directory {}: {}", args.run_dir, ec.message()));
      continue;
    }
    if (!write_text(path, run_file_json(rf), &err)) {
      lines.push_back("  " + err);
      continue;
    }
    s.run_files.push_back(path);
    lines.push_back(fmt::format("  run file: {}   (bpftsim replay {})", path, path));
    if (args.no_shrink || f.outcome == kNondeterminismOutcome) continue;
    auto shrunk = shrink(sc, explore_run_options(sc, o), r.decisions);
    if (!shrunk) {
      lines.push_back("  shrink: the failure did not reproduce for the shrinker");
      continue;
    }
    auto written =
        write_shrunk(*shrunk, (std::filesystem::path(args.run_dir) / (base + ".shrunk")).string());
    if (auto* e = std::get_if<InputError>(&written)) {
      lines.push_back("  shrink: " + e->text());
      continue;
    }
    const ShrunkFiles& sf = std::get<ShrunkFiles>(written);
    s.run_files.push_back(sf.run_file);
    lines.push_back(fmt::format(
        "  shrunk: {} action(s) -> {}, {} decision(s) -> {} in {} runs{}: {}   (bpftsim replay {})",
        shrunk->actions_before, shrunk->actions_after, shrunk->decisions_before,
        shrunk->decisions_after, shrunk->runs, shrunk->minimal ? "" : " (not 1-minimal)",
        sf.scenario, sf.run_file));
  }
  std::printf("%s", summary_text(s).c_str());
  for (const std::string& l : lines)
    std::printf("%s\n", l.c_str());
  std::fflush(stdout);
  return finish(args, s);
}

const Registrar kRegisterExplore{
    "explore", [](CLI::App& app) {
      auto args = std::make_shared<ExploreArgs>();
      auto* sub = app.add_subcommand(
          "explore",
          "Run a scenario under many schedules; count outcomes, write and shrink "
          "failures");
      sub->add_option("scenario", args->scenario, "scenario file (scenarios/README.md)");
      sub->add_option("--strategy", args->strategy, "random (default), pct or dfs")
          ->check(CLI::IsMember({"random", "pct", "dfs"}));
      sub->add_option("--schedules", args->schedules,
                      "schedule budget (default 10000 for random/pct without --time; dfs: its "
                      "whole bounded tree)")
          ->check(unsigned_in(1, std::uint64_t{1} << 40));
      sub->add_option("--time", args->time_s, "wall-time budget in seconds")
          ->check(CLI::Range(0.001, 1e7));
      sub->add_option("--seed", args->seed,
                      "exploration seed, also the data seed (default: the scenario's)")
          ->check(unsigned_in(0, kMaxU64));
      sub->add_option("--profile", args->profile, "kernel profile (overrides the scenario's)");
      sub->add_option("--window", args->window_ns,
                      "scheduling window in ns (overrides the scenario's window_ns)")
          ->check(CLI::Range(std::int64_t{0}, std::int64_t{1000000000}));
      sub->add_option("--depth", args->depth, "pct: bug depth d (d-1 change points; default 3)")
          ->check(CLI::Range(1u, 64u));
      sub->add_option("--bound", args->bound,
                      "dfs: non-default choices per schedule (preemption bound; default 2)")
          ->check(CLI::Range(0u, 64u));
      sub->add_option("--dfs-points", args->dfs_points,
                      "dfs: values tried of a draw with more options, evenly spaced (default 5)")
          ->check(CLI::Range(2u, 1000u));
      sub->add_flag("--all", args->all,
                    "keep going after the first failure (every distinct failure)");
      sub->add_option("--jobs", args->jobs, "threads (default 1); results do not depend on it")
          ->check(CLI::Range(1u, 256u));
      sub->add_option("--shard", args->shard,
                      "i/N: explore only shard i of N of the schedule space (see --merge)");
      sub->add_option("--self-check", args->self_check,
                      "run every Nth schedule twice and compare digests (default 100; 0: off)")
          ->check(unsigned_in(0, kMaxU64));
      sub->add_option("--summary", args->summary, "write the summary as JSON to FILE");
      sub->add_option("--run-dir", args->run_dir,
                      "directory for the failures' run files (default: ./bpftsim-runs)");
      sub->add_flag("--no-shrink", args->no_shrink, "do not shrink the failures");
      sub->add_option("--max-steps", args->max_steps, "step limit per run")
          ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
      sub->add_option("--max-insns", args->max_insns, "BPF instruction limit per run")
          ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 50));
      sub->add_option("--merge", args->merge,
                      "join these shard summaries (--summary files) into one; no scenario")
          ->expected(1, -1);
      return std::function<int()>([args] { return explore_cmd(*args); });
    }};

}  // namespace
}  // namespace bpftsim::tools
