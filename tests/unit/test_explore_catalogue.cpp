// The explore catalogue (scenarios/explore/*.json): for each seed bug of the reference, a scenario
// with the same actors and no scripted interleaving (the interesting actions start at times drawn
// from ranges of at least 50 us, the scheduler's window W is > 0) whose expectations state the
// correct behaviour. A random search over schedules must find the bug's outcome on v5.15 within a
// budget, and find no failure on the profile with the fix within a (CI-sized) budget; the two
// that no fix of the model closes (4.1 is kernel behaviour, the 4.12 ABBA deadlock is open until
// v6.15) must still fail with every fix on.
//
// A random schedule is a run under the seeded scheduler with seed s (what `bpftsim run S --seed s`
// does): every range, window tie, landing and jitter is drawn uniformly from s. Searches here run
// in-process, the scenario loaded (its objects compiled) once. Explore scenarios are not part of
// the scripted catalogue ([catalogue], `bpftsim check scenarios/` skips explore/ directories):
// some of their schedules fail by design.
//
// Hidden measurement cases (not run by ctest; tools/explore-table.sh and
// tools/explore-fixed-check.sh drive them):
//   [.explore-measure]  BPFTSIM_EXPLORE_FILE (a scenario file; default: every explore scenario),
//                       BPFTSIM_EXPLORE_PROFILE (default: the scenario's; "fixed": the profile of
//                       the first fix its closed_by names, scenarios without one skipped),
//                       BPFTSIM_EXPLORE_RUNS (default 1000), BPFTSIM_EXPLORE_FIRST_SEED (default
//                       1): outcome counts, hit rate and schedules/s of those seeds
//   [.explore-table]    BPFTSIM_EXPLORE_FILE as above, BPFTSIM_EXPLORE_SEARCHES (default 10),
//                       BPFTSIM_EXPLORE_BUDGET (default 10^6): per scenario, the schedules and wall
//                       time to the first failure of searches k = 1..SEARCHES (search k runs the
//                       seeds k*10^9+1, k*10^9+2, ...), printed as a Markdown table row of medians
#include <fmt/format.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "model/profile.h"
#include "tests/unit/scenario_harness.h"
#include "tests/unit/tool_harness.h"
#include "tools/runner.h"
#include "tools/scenario.h"

namespace fs = std::filesystem;
using bpftsim::testing::load;
using namespace bpftsim;
using namespace bpftsim::tools;

namespace {

const fs::path kExploreDir = fs::path(BPFTSIM_SOURCE_DIR) / "scenarios" / "explore";

// Sanitizer and Debug builds run a schedule 20-50 times slower: smaller budgets there.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSlowBuild = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSlowBuild = true;
#else
constexpr bool kSlowBuild = false;
#endif
#elif !defined(NDEBUG)
constexpr bool kSlowBuild = true;
#else
constexpr bool kSlowBuild = false;
#endif

// Each explore scenario, the outcome (tools/runner.h outcome_of) of the first failing schedule of
// a random search from seed 1 on v5.15, for deadlocks the wait-for cycle ("ctx:waits_in" of each
// context, sorted), and the schedules that search may take.
struct Entry {
  const char* file;
  const char* outcome;
  const char* cycle;
  std::uint64_t budget;
};
const Entry kCatalogue[] = {
    {"4.1-cancel-while-running.json", "/expect/globals/t.cancel_waited", "", 1000},
    {"4.3-uaf-rearm-then-delete.json", "use_after_free@__run_hrtimer", "", 1000},
    {"4.8-mutual-cancel.json", "deadlock", "softirq:hrtimer_cancel softirq:hrtimer_cancel", 2000},
    {"4.9-cancel-vs-free.json", "use_after_free@hrtimer_try_to_cancel", "", 3000},
    {"4.10-init-vs-uref.json", "leak@quiescence", "", 5000},
    {"4.12-copy-bug-timer-and-lock.json", "wild_pointer@bpf_timer_cancel_and_free", "", 1000},
    {"4.12-abba-bucket-lock.json", "deadlock", "softirq:spin_lock task:hrtimer_cancel", 1000},
    {"4.12-abba-delete.json", "deadlock", "softirq:spin_lock task:hrtimer_cancel", 1000},
    {"2.12-a-mutual-free.json", "deadlock", "softirq:hrtimer_cancel softirq:hrtimer_cancel", 2000},
    // On its own profile, v6.14+2.20 (the intermediate revision of v7.0's rework).
    {"4.15-start-vs-delete.json", "use_after_free@__run_hrtimer", "", 1000},
    {"4.14-tracing-prog-hrtimer.json", "deadlock", "task:raw_spin_lock", 1000},
};

// The wait-for cycle of the run's first deadlock finding, as Entry::cycle writes it.
std::string cycle_of(const RunResult& r) {
  for (const sim::Finding& f : r.findings) {
    if (f.kind != sim::FindingKind::kDeadlock) continue;
    std::vector<std::string> parts;
    for (const sim::CycleEntry& c : f.cycle)
      parts.push_back(c.ctx_kind + ":" + c.waits_in);
    std::sort(parts.begin(), parts.end());
    return fmt::format("{}", fmt::join(parts, " "));
  }
  return "";
}

std::vector<fs::path> explore_files() {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(kExploreDir))
    if (e.is_regular_file() && e.path().extension() == ".json") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

// The profile the scenario's bug is searched on: its own, the seed when it names none.
std::string bug_profile(const Scenario& sc) {
  return sc.profile.empty() ? "v5.15" : sc.profile;
}

// The profile with the first fix `closed_by` names and the fixes it requires, on the scenario's
// profile ("v5.15+2.9+2.12", "v6.14+2.20+2.21"); nullopt when no fix closes the scenario.
std::optional<std::string> fixed_profile(const Scenario& sc) {
  if (sc.closed_by.empty()) return std::nullopt;
  for (const model::ProfileFix& f : model::profile_fixes()) {
    if (f.id != sc.closed_by.front()) continue;
    std::string name = bug_profile(sc);
    for (const std::string& dep : f.requires_fixes)
      name += "+" + dep;
    return name + "+" + f.id;
  }
  FAIL("unknown fix " << sc.closed_by.front());
  return std::nullopt;
}

// Every fix of the bpf_spin_lock design on: "v5.15+2.2+2.8+...". (The fixes of v7.0's rework
// need its lock-free unit, a feature: a scenario closed by none of the model's fixes is a bug of
// the spin-lock design, searched with all of its fixes.)
std::string all_fixes_profile() {
  std::string name = "v5.15";
  const auto& fixes = model::profile_fixes();
  for (const model::ProfileFix& f : fixes) {
    bool on_fixes = true;  // every prerequisite is a fix, none a feature
    for (const std::string& dep : f.requires_fixes)
      on_fixes = on_fixes && std::any_of(fixes.begin(), fixes.end(),
                                         [&](const model::ProfileFix& g) { return g.id == dep; });
    if (on_fixes) name += "+" + f.id;
  }
  return name;
}

// One random schedule: the run under the seeded scheduler with `seed`, no trace kept.
RunResult run_seed(const Scenario& sc, const std::string& profile, std::uint64_t seed) {
  RunOptions opts;
  opts.seed = seed;
  opts.profile = profile;
  opts.keep_trace = false;
  opts.full_trace = false;
  auto r = run_scenario(sc, opts);
  if (auto* e = std::get_if<InputError>(&r)) FAIL(e->text());
  return std::get<RunResult>(std::move(r));
}

// The verifier's refusal of one of the scenario's programs under `profile` (a fix that closes a
// race by refusing the program, as 2.1 refuses tracepoint programs using timers): the message
// naming the rule, or nullopt when the objects load.
std::optional<std::string> refused_at_load(const Scenario& sc, const std::string& profile) {
  RunOptions opts;
  opts.profile = profile;
  opts.keep_trace = false;
  auto r = run_scenario(sc, opts);
  auto* e = std::get_if<InputError>(&r);
  if (!e) return std::nullopt;
  if (e->message.find("cannot load object") == std::string::npos ||
      e->message.find(": rule ") == std::string::npos)
    FAIL(e->text());
  return e->message;
}

struct Search {
  std::uint64_t runs = 0;
  std::optional<std::uint64_t> first_failure;  // its seed
  std::string first_outcome;
  std::map<std::string, std::uint64_t> outcomes;
  double seconds = 0;
};

// Seeds first..first+budget-1, stopping at the first failure when `stop`.
Search random_search(const Scenario& sc, const std::string& profile, std::uint64_t first,
                     std::uint64_t budget, bool stop) {
  Search s;
  const auto start = std::chrono::steady_clock::now();
  for (std::uint64_t i = 0; i < budget; ++i) {
    const RunResult r = run_seed(sc, profile, first + i);
    ++s.runs;
    const std::string outcome = outcome_of(r);
    ++s.outcomes[outcome];
    if (outcome != "pass" && !s.first_failure) {
      s.first_failure = first + i;
      s.first_outcome = outcome;
      if (stop) break;
    }
  }
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return s;
}

std::uint64_t passes(const Search& s) {
  const auto it = s.outcomes.find("pass");
  return it == s.outcomes.end() ? 0 : it->second;
}

std::string histogram(const Search& s) {
  std::string out;
  for (const auto& [outcome, n] : s.outcomes)
    out += fmt::format("  {:>8}  {}\n", n, outcome);
  return out;
}

std::uint64_t env_u64(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
}

std::vector<fs::path> env_files() {
  if (const char* f = std::getenv("BPFTSIM_EXPLORE_FILE"); f && *f) return {fs::path(f)};
  return explore_files();
}

template <typename T>
T median(std::vector<T> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

}  // namespace

TEST_CASE("explore catalogue: every scenario is listed and leaves its interleaving unscripted",
          "[explore-catalogue]") {
  const auto files = explore_files();
  REQUIRE(files.size() == std::size(kCatalogue));
  for (const Entry& e : kCatalogue) {
    INFO(e.file);
    CHECK(std::find(files.begin(), files.end(), kExploreDir / e.file) != files.end());
  }
  for (const fs::path& file : files) {
    DYNAMIC_SECTION(file.filename().string()) {
      const Scenario sc = load(file);
      CHECK(sc.window_ns > 0);
      // The actions that make the race (every one but set-up at 0 and the final exit) start at
      // a drawn time, from a range of at least 50 us.
      std::size_t ranged = 0;
      for (const Action& a : sc.timeline) {
        INFO(a.pointer);
        if (a.at_max_ns) {
          CHECK(*a.at_max_ns - a.at_ns >= 50'000);
          ++ranged;
        } else {
          CHECK((a.at_ns == 0 || &a == &sc.timeline.back()));
        }
      }
      CHECK(ranged >= 1);
      CHECK(ranged + 2 >= sc.timeline.size());
    }
  }
}

TEST_CASE("explore catalogue: a random search finds each seed bug on v5.15",
          "[explore-catalogue]") {
  for (const Entry& e : kCatalogue) {
    DYNAMIC_SECTION(e.file) {
      const Scenario sc = load(kExploreDir / e.file);
      const Search s = random_search(sc, bug_profile(sc), 1, e.budget, true);
      INFO(s.runs << " schedules\n" << histogram(s));
      REQUIRE(s.first_failure.has_value());
      CHECK(s.first_outcome == e.outcome);
      // The same failure, rerun from its seed alone, is the same run (what `bpftsim run S --seed
      // N` reproduces).
      const RunResult again = run_seed(sc, bug_profile(sc), *s.first_failure);
      CHECK(outcome_of(again) == e.outcome);
      CHECK(cycle_of(again) == e.cycle);
      // Not every schedule fails (the outcome is found, not scripted), except where the bug needs
      // no interleaving at all (4.3 and the copy bug fail on almost every schedule).
      if (s.runs == 1) {
        const Search more = random_search(sc, bug_profile(sc), 1, 50, false);
        INFO(histogram(more));
        const bool interleaving_free = std::string(e.file).rfind("4.3-", 0) == 0 ||
                                       std::string(e.file).find("copy-bug") != std::string::npos;
        CHECK((interleaving_free || passes(more) > 0));
      }
    }
  }
}

TEST_CASE("explore catalogue: no schedule fails on the profile with the fix",
          "[explore-catalogue]") {
  // tools/explore-fixed-check.sh runs 10^5 schedules per scenario (README "Finding races").
  const std::uint64_t budget = kSlowBuild ? 300 : 10000;
  for (const Entry& e : kCatalogue) {
    DYNAMIC_SECTION(e.file) {
      const Scenario sc = load(kExploreDir / e.file);
      const auto profile = fixed_profile(sc);
      if (!profile) {
        // No fix of the model closes it: with every fix on, the search still finds it.
        const Search s = random_search(sc, all_fixes_profile(), 1, e.budget, true);
        INFO(histogram(s));
        REQUIRE(s.first_failure.has_value());
        CHECK(s.first_outcome == e.outcome);
        continue;
      }
      if (const auto refusal = refused_at_load(sc, *profile)) {
        // The fix refuses the race's program: no schedule can run it (4.14 on 2.1).
        INFO(*refusal);
        CHECK(refusal->find("rule tracing_timer") != std::string::npos);
        continue;
      }
      const Search s = random_search(sc, *profile, 1, budget, false);
      INFO(*profile << ": " << s.runs << " schedules\n" << histogram(s));
      CHECK(!s.first_failure.has_value());
      CHECK(passes(s) == budget);
    }
  }
}

TEST_CASE("explore catalogue: bpftsim check skips explore directories unless named",
          "[explore-catalogue]") {
  testing::TempDir tmp;
  const std::string scenario = fmt::format(
      R"({{"name": "{}", "description": "d", "cpus": 1,
          "objects": [{{"name": "t", "path": "{}/race_cancel_running_once.bpf.o"}}],
          "timeline": [{{"at_ns": 0, "action": "wait"}}]}})",
      "%s", BPFTSIM_PROGS_DIR);
  auto named = [&](const char* name) {
    std::string s = scenario;
    s.replace(s.find("%s"), 2, name);
    return s;
  };
  fs::create_directories(tmp.path / "lib" / "explore");
  testing::write_file(tmp.path / "lib" / "scripted.json", named("scripted"));
  testing::write_file(tmp.path / "lib" / "explore" / "searched.json", named("searched"));
  const testing::Cmd all = testing::run_tool("check lib", tmp.path);
  INFO(all.out);
  CHECK(all.code == 0);
  CHECK(all.out.find("1 scenario(s): 1 passed") != std::string::npos);
  CHECK(all.out.find("searched") == std::string::npos);
  const testing::Cmd named_dir = testing::run_tool("check lib/explore", tmp.path);
  INFO(named_dir.out);
  CHECK(named_dir.code == 0);
  CHECK(named_dir.out.find("searched") != std::string::npos);
  CHECK(named_dir.out.find("1 scenario(s): 1 passed") != std::string::npos);
}

TEST_CASE("explore catalogue: outcome counts over a range of seeds", "[.explore-measure]") {
  const std::uint64_t runs = env_u64("BPFTSIM_EXPLORE_RUNS", 1000);
  const std::uint64_t first = env_u64("BPFTSIM_EXPLORE_FIRST_SEED", 1);
  const char* want = std::getenv("BPFTSIM_EXPLORE_PROFILE");
  for (const fs::path& file : env_files()) {
    const Scenario sc = load(file);
    std::string profile = sc.profile;
    if (want && std::string(want) == "fixed") {
      const auto p = fixed_profile(sc);
      if (!p) {
        fmt::print("{}: no fix closes it, skipped\n", sc.name);
        continue;
      }
      profile = *p;
      if (const auto refusal = refused_at_load(sc, profile)) {
        fmt::print("{}: refused at load on {}, skipped\n", sc.name, profile);
        continue;
      }
    } else if (want && *want) {
      profile = want;
    }
    const Search s = random_search(sc, profile, first, runs, false);
    const std::uint64_t fails = s.runs - passes(s);
    fmt::print(
        "{} profile {} seeds {}..{}: {} schedules in {:.2f} s ({:.0f}/s), {} failing "
        "({:.3f}%)\n{}",
        sc.name, profile, first, first + runs - 1, s.runs, s.seconds, s.runs / s.seconds, fails,
        100.0 * static_cast<double>(fails) / static_cast<double>(s.runs), histogram(s));
    if (s.first_failure)
      fmt::print("  first failure: seed {} ({})\n", *s.first_failure, s.first_outcome);
  }
}

TEST_CASE("explore catalogue: schedules and time to the first failure", "[.explore-table]") {
  const std::uint64_t searches = env_u64("BPFTSIM_EXPLORE_SEARCHES", 10);
  const std::uint64_t budget = env_u64("BPFTSIM_EXPLORE_BUDGET", 1'000'000);
  for (const fs::path& file : env_files()) {
    const Scenario sc = load(file);
    std::vector<std::uint64_t> schedules;
    std::vector<double> millis;
    std::uint64_t found = 0, total_runs = 0;
    double total_seconds = 0;
    for (std::uint64_t k = 1; k <= searches; ++k) {
      const Search s = random_search(sc, bug_profile(sc), k * 1'000'000'000 + 1, budget, true);
      found += s.first_failure.has_value();
      schedules.push_back(s.runs);
      millis.push_back(1000 * s.seconds);
      total_runs += s.runs;
      total_seconds += s.seconds;
    }
    const auto [lo, hi] = std::minmax_element(schedules.begin(), schedules.end());
    fmt::print("| {} | random | {} | {:.2f} ms | {}..{} | {}/{} | {:.0f} |\n", sc.name,
               median(schedules), median(millis), *lo, *hi, found, searches,
               static_cast<double>(total_runs) / total_seconds);
  }
}
