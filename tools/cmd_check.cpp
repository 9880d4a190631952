// `bpftsim check PATH...`: runs every scenario under the paths (*.json, recursively, in sorted
// order; not the schema, not *.run.json, not below a directory named `explore` unless PATH is that
// directory), prints a report for each failure and a summary table, and exits with the worst code
// (2 bad input > 1 failed > 0 passed).
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "tools/commands.h"
#include "tools/report.h"
#include "tools/runfile.h"
#include "tools/runner.h"
#include "tools/scenario.h"

namespace bpftsim::tools {
namespace {

namespace fs = std::filesystem;

struct CheckArgs {
  std::vector<std::string> paths;
  std::optional<std::uint64_t> seed;
  std::optional<std::string> profile;
  std::string run_dir = ".";
  std::optional<std::uint64_t> max_steps;
  std::optional<std::uint64_t> max_insns;
};

struct Row {
  std::string name;
  std::string result;  // PASS, FAIL, ERROR
  std::string vtime;
  std::string findings;
  long long wall_ms = 0;
  int code = kExitOk;
};

bool is_scenario_file(const fs::path& p) {
  const std::string name = p.filename().string();
  auto ends_with = [&](const std::string& s) {
    return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  return ends_with(".json") && !ends_with(".run.json") && name != "scenario.schema.json";
}

// The scenario files under `paths`, sorted. A path that is no directory is taken as a scenario
// file: loading it says why it is none (missing, a device, too large).
std::vector<std::string> collect(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const auto& p : paths) {
    std::error_code ec;
    if (!fs::is_directory(p, ec)) {
      out.push_back(p);
      continue;
    }
    std::vector<std::string> found;
    for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      // An `explore` directory below PATH holds scenarios whose failures are found by searching
      // schedules (scenarios/explore: some seeds fail by design); `check` runs them only when
      // the directory itself is named.
      if (it->is_directory(ec) && it->path().filename() == "explore") {
        it.disable_recursion_pending();
        continue;
      }
      if (it->is_regular_file(ec) && is_scenario_file(it->path()))
        found.push_back(it->path().string());
    }
    std::sort(found.begin(), found.end());
    out.insert(out.end(), found.begin(), found.end());
  }
  return out;
}

std::string vtime_text(sim::TimeNs t) {
  if (t >= sim::kNsPerMs)
    return fmt::format("{}.{:03} ms", t / sim::kNsPerMs, t % sim::kNsPerMs / sim::kNsPerUs);
  if (t >= sim::kNsPerUs) return fmt::format("{}.{:03} us", t / sim::kNsPerUs, t % sim::kNsPerUs);
  return fmt::format("{} ns", t);
}

Row check_one(const std::string& file, const CheckArgs& args, Progress& progress,
              const std::string& label) {
  const auto start = std::chrono::steady_clock::now();
  auto wall = [&] {
    return static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::steady_clock::now() - start)
                                      .count());
  };
  auto loaded = load_scenario(file);
  if (auto* e = std::get_if<InputError>(&loaded)) {
    progress.clear();
    std::printf("ERROR %s\n  %s\n", file.c_str(), e->text().c_str());
    return Row{file, "ERROR", "-", "-", wall(), kExitBadInput};
  }
  const Scenario& sc = std::get<Scenario>(loaded);
  RunOptions opts;
  opts.seed = args.seed;
  opts.profile = args.profile;
  opts.full_trace = false;  // no trace file: the tail is enough for the failure report
  opts.max_steps = args.max_steps;
  opts.max_insns = args.max_insns;
  if (progress.enabled())
    opts.progress = [&](sim::TimeNs t) { progress.update(label + " " + sc.name, t); };
  auto ran = run_scenario(sc, opts);
  progress.clear();
  if (auto* e = std::get_if<InputError>(&ran)) {
    std::printf("ERROR %s\n  %s\n", file.c_str(), e->text().c_str());
    return Row{sc.name, "ERROR", "-", "-", wall(), kExitBadInput};
  }
  const RunResult& r = std::get<RunResult>(ran);
  Row row{sc.name,
          r.passed() ? "PASS" : "FAIL",
          vtime_text(r.end_ns),
          std::to_string(r.findings.size()),
          wall(),
          r.passed() ? kExitOk : kExitFailed};
  if (!r.passed()) {
    std::printf("%s  (%s)\n", result_line(r).c_str(), file.c_str());
    std::string reproduce =
        fmt::format("bpftsim run {} --seed {} --profile {}", file, r.seed, r.profile);
    auto written = write_run_file(make_run_file(sc, r, BPFTSIM_VERSION), args.run_dir);
    if (auto* path = std::get_if<std::string>(&written))
      reproduce = fmt::format("bpftsim replay {}   (or: {})", *path, reproduce);
    print_failure_report(stdout, r, reproduce);
  }
  std::fflush(stdout);
  return row;
}

int check(const CheckArgs& args) {
  std::vector<Row> rows;
  const std::vector<std::string> files = collect(args.paths);
  Progress progress;
  for (std::size_t i = 0; i < files.size(); ++i) {
    const std::string label = fmt::format("[{}/{}]", i + 1, files.size());
    progress.update(label + " " + files[i], 0);
    rows.push_back(check_one(files[i], args, progress, label));
  }
  progress.clear();
  std::size_t width = 8;
  for (const Row& r : rows)
    width = std::max(width, r.name.size());
  std::printf("\n%-*s  %-6s  %14s  %8s  %8s\n", static_cast<int>(width), "SCENARIO", "RESULT",
              "VIRTUAL_TIME", "FINDINGS", "WALL_MS");
  int worst = kExitOk;
  std::size_t pass = 0, fail = 0, error = 0;
  for (const Row& r : rows) {
    std::printf("%-*s  %-6s  %14s  %8s  %8lld\n", static_cast<int>(width), r.name.c_str(),
                r.result.c_str(), r.vtime.c_str(), r.findings.c_str(), r.wall_ms);
    worst = std::max(worst, r.code);
    pass += r.code == kExitOk;
    fail += r.code == kExitFailed;
    error += r.code == kExitBadInput;
  }
  std::printf("\n%zu scenario(s): %zu passed, %zu failed, %zu error(s)\n", rows.size(), pass, fail,
              error);
  if (rows.empty()) {
    std::fprintf(stderr, "bpftsim check: no scenarios found\n");
    return kExitBadInput;
  }
  return worst;
}

const Registrar kRegisterCheck{
    "check", [](CLI::App& app) {
      auto args = std::make_shared<CheckArgs>();
      auto* sub = app.add_subcommand(
          "check", "Run every scenario under the given paths and print a summary table");
      sub->add_option(
             "paths", args->paths,
             "scenario files or directories (recursive; an explore/ directory below one is "
             "skipped: name it to run its scenarios)")
          ->required();
      sub->add_option("--seed", args->seed, "scheduler seed for every scenario")
          ->check(unsigned_in(0, kMaxU64));
      sub->add_option("--profile", args->profile, "kernel profile for every scenario");
      sub->add_option("--max-steps", args->max_steps,
                      "step limit of each run (default: the scenario's, else 2000000)")
          ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
      sub->add_option("--max-insns", args->max_insns,
                      "BPF instructions each run may execute (default 1000000000)")
          ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 50));
      sub->add_option("--run-dir", args->run_dir,
                      "directory for the run files of failing runs (default: .)");
      return std::function<int()>([args] { return check(*args); });
    }};

}  // namespace
}  // namespace bpftsim::tools
