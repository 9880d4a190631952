// `bpftsim check PATH...`: runs every scenario under the paths (recursively, in sorted order;
// not below a directory named `explore` unless PATH is that directory), prints a report for each
// failure and a summary table, and exits with the worst code (2 bad input > 1 failed or crashed >
// 0 passed). In a directory, a *.json file is a scenario when it says so: a "$schema" naming
// scenario.schema.json, or the scenario's required keys (name, description, cpus, objects,
// timeline) at its top level, or a file that is not JSON at all (a broken scenario, reported as an
// error); other JSON (traces, run files, package.json) is skipped. Files named
// on the command line are always taken. Each scenario runs in a child process, so a crash of one
// (a simulator bug) is a CRASH row and the table is still printed. Two scenarios with one name
// get a warning (their run files would share a name).
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "tools/commands.h"
#include "tools/report.h"
#include "tools/runfile.h"
#include "tools/runner.h"
#include "tools/scenario.h"

#include <nlohmann/json.hpp>

namespace bpftsim::tools {
namespace {

namespace fs = std::filesystem;

struct CheckArgs {
  std::vector<std::string> paths;
  std::optional<std::uint64_t> seed;
  std::optional<std::string> profile;
  std::string run_dir = "bpftsim-runs";
  std::optional<std::uint64_t> max_steps;
  std::optional<std::uint64_t> max_insns;
};

struct Row {
  std::string name;
  std::string result;  // PASS, FAIL, ERROR, CRASH
  std::string vtime;
  std::string findings;
  long long wall_ms = 0;
  int code = kExitOk;
};

// Whether a *.json file found in a directory declares itself a scenario (see the top of this
// file). A file that is no JSON at all is taken too, so that a scenario with a syntax error is
// reported rather than skipped.
bool is_scenario_file(const fs::path& p) {
  const std::string name = p.filename().string();
  auto ends_with = [&](const std::string& s) {
    return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  if (!ends_with(".json") || ends_with(".run.json") || name == "scenario.schema.json") return false;
  std::error_code ec;
  const auto size = fs::file_size(p, ec);
  if (ec || size > (std::uintmax_t{16} << 20)) return false;  // no scenario is this large
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  const auto doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded()) return true;
  if (!doc.is_object()) return false;
  if (doc.contains("$schema") && doc["$schema"].is_string() &&
      doc["$schema"].get<std::string>().find("scenario.schema.json") != std::string::npos &&
      !doc.contains("$defs"))
    return true;
  for (const char* key : {"name", "description", "cpus", "objects", "timeline"})
    if (!doc.contains(key)) return false;
  return true;
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

// Every line of a (multi-line) error after the first indented as the first is.
std::string indented(std::string text) {
  for (std::size_t at = text.find('\n'); at != std::string::npos; at = text.find('\n', at + 3))
    text.insert(at + 1, "  ");
  return text;
}

Row check_one(const std::string& file, const CheckArgs& args, Progress& progress,
              const std::string& label, std::map<std::string, std::string>& names) {
  const auto start = std::chrono::steady_clock::now();
  auto wall = [&] {
    return static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::steady_clock::now() - start)
                                      .count());
  };
  auto loaded = load_scenario(file);
  if (auto* e = std::get_if<InputError>(&loaded)) {
    progress.clear();
    std::printf("ERROR %s\n  %s\n", file.c_str(), indented(e->text()).c_str());
    return Row{file, "ERROR", "-", "-", wall(), kExitBadInput};
  }
  const Scenario& sc = std::get<Scenario>(loaded);
  if (auto [it, fresh] = names.try_emplace(sc.name, file); !fresh) {
    progress.clear();
    std::printf(
        "warning: %s and %s are both named '%s': the run file of the later one replaces "
        "the earlier's in %s\n",
        it->second.c_str(), file.c_str(), sc.name.c_str(), args.run_dir.c_str());
  }
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
    std::printf("ERROR %s\n  %s\n", file.c_str(), indented(e->text()).c_str());
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

// The name of a scenario as far as the parent knows it: its "name", else the file.
std::string name_for_row(const std::string& file) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec) || fs::file_size(file, ec) > (std::uintmax_t{16} << 20))
    return file;  // never read a device or a huge file (check_one says what it is)
  std::ifstream in(file, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const auto doc = nlohmann::json::parse(ss.str(), nullptr, false);
  if (doc.is_object() && doc.contains("name") && doc["name"].is_string())
    return doc["name"].get<std::string>();
  return file;
}

// Runs check_one in a child process (fork) and reads its row back through a pipe; a child that
// dies (a crash of the simulator on this scenario) is a CRASH row naming the signal. The parent
// keeps the names seen so far, so duplicates are still warned about.
Row check_in_child(const std::string& file, const CheckArgs& args, Progress& progress,
                   const std::string& label, std::map<std::string, std::string>& names) {
  const auto start = std::chrono::steady_clock::now();
  int fds[2];
  std::fflush(stdout);
  std::fflush(stderr);
  if (::pipe(fds) != 0) return check_one(file, args, progress, label, names);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return check_one(file, args, progress, label, names);
  }
  if (pid == 0) {
    ::close(fds[0]);
    // The test of this path (tests/unit/test_scenario.cpp) needs a scenario that crashes the
    // simulator; none is known, so the test names a file for the child to abort on.
    if (const char* crash = std::getenv("BPFTSIM_TEST_CHECK_ABORT_ON"); crash && file == crash)
      std::abort();
    const Row r = check_one(file, args, progress, label, names);
    const std::string line = fmt::format("{}\t{}\t{}\t{}\t{}\t{}\n", r.name, r.result, r.vtime,
                                         r.findings, r.wall_ms, r.code);
    std::size_t off = 0;
    while (off < line.size()) {
      const ssize_t n = ::write(fds[1], line.data() + off, line.size() - off);
      if (n <= 0) break;
      off += static_cast<std::size_t>(n);
    }
    std::fflush(stdout);
    std::fflush(stderr);
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0)
    text.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const long long wall =
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::steady_clock::now() - start)
                                 .count());
  std::vector<std::string> parts;
  std::stringstream ls(text.substr(0, text.find('\n')));
  for (std::string p; std::getline(ls, p, '\t');)
    parts.push_back(p);
  if (parts.size() == 6 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    names.try_emplace(parts[0], file);
    return Row{parts[0], parts[1], parts[2], parts[3], std::stoll(parts[4]), std::stoi(parts[5])};
  }
  progress.clear();
  const std::string why =
      WIFSIGNALED(status)
          ? fmt::format("killed by signal {} ({})", WTERMSIG(status), ::strsignal(WTERMSIG(status)))
          : fmt::format("exited with status {}", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  std::printf(
      "CRASH %s\n  bpftsim crashed on this scenario: %s (a simulator bug: please report "
      "it with the scenario; `bpftsim run %s` shows the assertion)\n",
      file.c_str(), why.c_str(), file.c_str());
  std::fflush(stdout);
  return Row{name_for_row(file), "CRASH", "-", "-", wall, kExitFailed};
}

int check(const CheckArgs& args) {
  std::vector<Row> rows;
  const std::vector<std::string> files = collect(args.paths);
  Progress progress;
  std::map<std::string, std::string> names;  // scenario name -> its first file
  for (std::size_t i = 0; i < files.size(); ++i) {
    const std::string label = fmt::format("[{}/{}]", i + 1, files.size());
    progress.update(label + " " + files[i], 0);
    rows.push_back(check_in_child(files[i], args, progress, label, names));
  }
  progress.clear();
  std::size_t width = 8;
  for (const Row& r : rows)
    width = std::max(width, r.name.size());
  std::printf("\n%-*s  %-6s  %14s  %8s  %8s\n", static_cast<int>(width), "SCENARIO", "RESULT",
              "VIRTUAL_TIME", "FINDINGS", "WALL_MS");
  int worst = kExitOk;
  std::size_t pass = 0, fail = 0, error = 0, crash = 0;
  for (const Row& r : rows) {
    std::printf("%-*s  %-6s  %14s  %8s  %8lld\n", static_cast<int>(width), r.name.c_str(),
                r.result.c_str(), r.vtime.c_str(), r.findings.c_str(), r.wall_ms);
    worst = std::max(worst, r.code);
    pass += r.code == kExitOk;
    crash += r.result == "CRASH";
    fail += r.code == kExitFailed && r.result != "CRASH";
    error += r.code == kExitBadInput;
  }
  std::printf("\n%zu scenario(s): %zu passed, %zu failed, %zu error(s)%s\n", rows.size(), pass,
              fail, error, crash ? fmt::format(", {} crashed", crash).c_str() : "");
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
      sub->add_option("--profile", args->profile, profile_help());
      sub->add_option("--max-steps", args->max_steps,
                      "step limit of each run (default: the scenario's, else 2000000)")
          ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
      sub->add_option("--max-insns", args->max_insns,
                      "BPF instructions each run may execute (default 1000000000)")
          ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 50));
      sub->add_option("--run-dir", args->run_dir,
                      "directory for the run files of failing runs (default: ./bpftsim-runs)");
      return std::function<int()>([args] { return check(*args); });
    }};

}  // namespace
}  // namespace bpftsim::tools
