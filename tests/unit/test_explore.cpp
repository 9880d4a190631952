// bpftsim explore (tools/explore.h): strategies find an unscripted race, results do not depend on
// --jobs, dfs shards partition the schedule space and merge back, failures replay, self-check.
#include <catch2/catch.hpp>

#include <algorithm>
#include <regex>
#include <set>
#include <string>

#include "tests/unit/scenario_harness.h"
#include "tests/unit/tool_harness.h"
#include "tools/explore.h"
#include "tools/scenario.h"

namespace bpftsim::tools {
using bpftsim::testing::load;
namespace {

using testing::run_tool;
using testing::TempDir;

const std::string kRace =
    std::string(BPFTSIM_SOURCE_DIR) + "/tests/data/explore-mutual-cancel.json";

ExploreResult run_explore(const Scenario& sc, const ExploreOptions& o) {
  auto r = explore(sc, o);
  if (auto* e = std::get_if<InputError>(&r)) FAIL(e->text());
  return std::get<ExploreResult>(std::move(r));
}

bool has_outcome(const ExploreSummary& s, const std::string& part) {
  return std::any_of(s.outcomes.begin(), s.outcomes.end(), [&](const OutcomeStat& o) {
    return o.outcome.find(part) != std::string::npos;
  });
}

std::uint64_t count_of(const ExploreSummary& s, const std::string& outcome) {
  for (const OutcomeStat& o : s.outcomes)
    if (o.outcome == outcome) return o.count;
  return 0;
}

// The summary JSON without the keys that may differ between equal explorations.
std::string comparable(std::string json) {
  auto cut = [&](const std::string& key) {
    const auto at = json.find("\"" + key + "\"");
    if (at == std::string::npos) return;
    auto end = json.find(key == "timing" ? "}" : "]", at);
    json.erase(at, end + 1 - at);
  };
  cut("run_files");
  cut("timing");
  return json;
}

TEST_CASE("explore: random and pct find the unscripted mutual-cancel deadlock", "[explore]") {
  const Scenario sc = load(kRace);
  for (Strategy st : {Strategy::kRandom, Strategy::kPct}) {
    ExploreOptions o;
    o.strategy = st;
    o.schedules = 300;
    const ExploreResult r = run_explore(sc, o);
    INFO(summary_text(r.summary));
    // Stops at the first failure: one failing schedule, the last one counted.
    REQUIRE(r.summary.failures() == 1);
    REQUIRE(r.failures.size() == 1);
    CHECK(r.failures[0].outcome.find("deadlock") != std::string::npos);
    CHECK(r.summary.outcomes.back().outcome == r.failures[0].outcome);
    CHECK(r.summary.outcomes.back().first == std::to_string(r.summary.schedules - 1));
    CHECK(r.summary.schedules < 300);
    CHECK_FALSE(r.failures[0].decisions.empty());
    // Ranges and ties were decided.
    std::set<std::string> kinds;
    for (const auto& site : r.summary.sites)
      kinds.insert(sim::decision_kind_name(site.kind));
    CHECK(kinds.count("range") == 1);
  }
  // --all: both outcomes, with a hit rate strictly between 0 and 1; the counts add up.
  ExploreOptions o;
  o.schedules = 200;
  o.all = true;
  const ExploreResult r = run_explore(sc, o);
  INFO(summary_text(r.summary));
  CHECK(r.summary.schedules == 200);
  CHECK(count_of(r.summary, "pass") > 0);
  CHECK(has_outcome(r.summary, "deadlock"));
  std::uint64_t total = 0;
  for (const OutcomeStat& s : r.summary.outcomes)
    total += s.count;
  CHECK(total == 200);
  // A different seed explores other schedules.
  o.seed = 99;
  const ExploreResult r2 = run_explore(sc, o);
  CHECK(r2.summary.seed == 99);
  CHECK_FALSE(r2.summary.same_result(r.summary));
}

TEST_CASE("explore: --jobs 2 gives the same summary as --jobs 1", "[explore]") {
  const Scenario sc = load(kRace);
  for (Strategy st : {Strategy::kRandom, Strategy::kPct, Strategy::kDfs}) {
    for (bool all : {false, true}) {
      ExploreOptions o;
      o.strategy = st;
      o.all = all;
      o.schedules = 120;
      o.dfs_points = 3;
      o.self_check = 7;
      o.record_schedules = true;
      const ExploreResult one = run_explore(sc, o);
      o.jobs = 2;
      const ExploreResult two = run_explore(sc, o);
      o.jobs = 3;
      const ExploreResult three = run_explore(sc, o);
      INFO(strategy_name(st) << " all=" << all << "\n"
                             << summary_text(one.summary) << summary_text(two.summary));
      CHECK(one.summary.schedules > 0);
      CHECK(two.summary.same_result(one.summary));
      CHECK(three.summary.same_result(one.summary));
      CHECK(comparable(summary_json(two.summary)) == comparable(summary_json(one.summary)));
      CHECK(two.schedule_ids == one.schedule_ids);
      REQUIRE(two.failures.size() == one.failures.size());
      for (std::size_t i = 0; i < one.failures.size(); ++i) {
        CHECK(two.failures[i].decisions == one.failures[i].decisions);
        CHECK(two.failures[i].digest == one.failures[i].digest);
      }
    }
  }
}

TEST_CASE("explore: dfs shards 0/4..3/4 cover exactly the unsharded schedules", "[explore]") {
  const Scenario sc = load(kRace);
  ExploreOptions o;
  o.strategy = Strategy::kDfs;
  o.all = true;
  o.dfs_points = 3;
  o.bound = 2;
  o.schedules = 100000;  // a cap far above the tree (3000 schedules): a broken walk ends
  o.record_schedules = true;
  const ExploreResult whole = run_explore(sc, o);
  INFO(summary_text(whole.summary));
  REQUIRE(whole.summary.complete);
  REQUIRE(whole.summary.schedules == whole.schedule_ids.size());
  REQUIRE(whole.summary.schedules > 20);  // a real tree, not just the root
  CHECK(has_outcome(whole.summary, "deadlock"));
  // Schedule names are distinct, each within the bound.
  const std::set<std::string> all_ids(whole.schedule_ids.begin(), whole.schedule_ids.end());
  CHECK(all_ids.size() == whole.schedule_ids.size());
  for (const std::string& id : all_ids)
    CHECK(std::count(id.begin(), id.end(), '=') <= 2);

  std::vector<ExploreSummary> parts;
  std::multiset<std::string> union_ids;
  for (unsigned i = 0; i < 4; ++i) {
    o.shard = i;
    o.shards = 4;
    const ExploreResult part = run_explore(sc, o);
    INFO("shard " << i << "\n" << summary_text(part.summary));
    CHECK(part.summary.schedules < whole.summary.schedules);
    union_ids.insert(part.schedule_ids.begin(), part.schedule_ids.end());
    parts.push_back(part.summary);
  }
  // Disjoint (a multiset without repeats) and equal to the unsharded set.
  CHECK(union_ids.size() == all_ids.size());
  CHECK(std::set<std::string>(union_ids.begin(), union_ids.end()) == all_ids);
  // The merged summary is the unsharded one, also after a trip through JSON; order of the parts
  // does not matter.
  std::reverse(parts.begin(), parts.end());
  auto merged = merge_summaries(parts);
  REQUIRE(std::holds_alternative<ExploreSummary>(merged));
  const ExploreSummary& m = std::get<ExploreSummary>(merged);
  INFO(summary_text(m));
  CHECK(m.same_result(whole.summary));
  std::vector<ExploreSummary> reparsed;
  for (const ExploreSummary& p : parts) {
    auto back = parse_summary("part.json", summary_json(p));
    REQUIRE(std::holds_alternative<ExploreSummary>(back));
    reparsed.push_back(std::get<ExploreSummary>(back));
  }
  auto merged2 = merge_summaries(reparsed);
  REQUIRE(std::holds_alternative<ExploreSummary>(merged2));
  CHECK(comparable(summary_json(std::get<ExploreSummary>(merged2))) ==
        comparable(summary_json(whole.summary)));
  // A summary naming a schedule that cannot be is refused.
  std::string text = summary_json(parts.front());
  const auto at = text.find("\"first\": \"");
  REQUIRE(at != std::string::npos);
  text.insert(at + 10, "x");
  CHECK(std::holds_alternative<InputError>(parse_summary("bad.json", text)));
  CHECK(std::holds_alternative<InputError>(parse_summary("bad.json", "{\"bpftsim_explore\": 1}")));
  CHECK(std::holds_alternative<InputError>(parse_summary("bad.json", "[")));
  // A shard given twice, or a shard of another exploration, is refused.
  parts.push_back(parts.front());
  CHECK(std::holds_alternative<std::string>(merge_summaries(parts)));
  parts.pop_back();
  parts.back().seed += 1;
  CHECK(std::holds_alternative<std::string>(merge_summaries(parts)));
}

TEST_CASE("explore: random and pct shards split the indices and merge back", "[explore]") {
  const Scenario sc = load(kRace);
  for (Strategy st : {Strategy::kRandom, Strategy::kPct}) {
    ExploreOptions o;
    o.strategy = st;
    o.all = true;
    o.schedules = 200;
    o.self_check = 9;
    o.record_schedules = true;
    const ExploreResult whole = run_explore(sc, o);
    std::vector<ExploreSummary> parts;
    std::vector<std::string> ids;
    for (unsigned i = 0; i < 3; ++i) {
      o.shard = i;
      o.shards = 3;
      const ExploreResult part = run_explore(sc, o);
      for (const std::string& id : part.schedule_ids)
        CHECK(std::stoull(id) % 3 == i);
      ids.insert(ids.end(), part.schedule_ids.begin(), part.schedule_ids.end());
      parts.push_back(part.summary);
    }
    std::sort(ids.begin(), ids.end());
    CHECK(ids == whole.schedule_ids);
    auto merged = merge_summaries(parts);
    REQUIRE(std::holds_alternative<ExploreSummary>(merged));
    INFO(summary_text(std::get<ExploreSummary>(merged)) << summary_text(whole.summary));
    CHECK(std::get<ExploreSummary>(merged).same_result(whole.summary));
  }
}

TEST_CASE("explore: dfs bound and draw points bound the tree", "[explore]") {
  const Scenario sc = load(kRace);
  ExploreOptions o;
  o.strategy = Strategy::kDfs;
  o.all = true;
  o.bound = 0;
  o.schedules = 100000;  // a cap far above these trees: a broken walk ends
  o.record_schedules = true;
  ExploreResult r = run_explore(sc, o);
  CHECK(r.summary.complete);
  CHECK(r.schedule_ids == std::vector<std::string>{"root"});
  // Bound 1: the root plus one schedule per non-default value of each decision of the root's run
  // (its later decisions can differ; at least the two range draws' dfs_points - 1 values each).
  o.bound = 1;
  o.dfs_points = 4;
  r = run_explore(sc, o);
  CHECK(r.summary.complete);
  CHECK(r.summary.schedules >= 1 + 2 * 3);
  for (const std::string& id : r.schedule_ids)
    CHECK(std::count(id.begin(), id.end(), '=') <= 1);
  // Points grow the tree, not the 2001 values of a range.
  o.dfs_points = 2;
  const ExploreResult fewer = run_explore(sc, o);
  CHECK(fewer.summary.schedules < r.summary.schedules);
  // A budget cuts the walk in schedule order: a prefix of the whole walk.
  o.schedules = 3;
  const ExploreResult cut = run_explore(sc, o);
  CHECK(cut.summary.schedules == 3);
  CHECK_FALSE(cut.summary.complete);
}

TEST_CASE("explore: a scenario without decisions has one schedule", "[explore]") {
  const Scenario sc =
      load(std::string(BPFTSIM_SOURCE_DIR) + "/scenarios/races/4.10-init-vs-uref.json");
  for (Strategy st : {Strategy::kRandom, Strategy::kPct, Strategy::kDfs}) {
    ExploreOptions o;
    o.strategy = st;
    o.schedules = 50;
    o.all = true;
    const ExploreResult r = run_explore(sc, o);
    INFO(summary_text(r.summary));
    CHECK(r.summary.schedules == 1);
    CHECK(r.summary.sites.empty());
    CHECK(r.summary.outcomes.size() == 1);
  }
}

TEST_CASE("explore: the self-check finds no nondeterminism, and catches an injected one",
          "[explore]") {
  const Scenario sc = load(kRace);
  ExploreOptions o;
  o.schedules = 40;
  o.all = true;
  o.self_check = 1;  // every schedule twice
  const ExploreResult clean = run_explore(sc, o);
  CHECK(clean.summary.self_checks == 40);
  CHECK_FALSE(has_outcome(clean.summary, kNondeterminismOutcome));
  // A second run whose scheduler is not the first's: its choices (and digest) differ.
  o.wrap_scheduler = [](std::unique_ptr<sim::Scheduler> s,
                        bool rerun) -> std::unique_ptr<sim::Scheduler> {
    if (!rerun) return s;
    return std::make_unique<sim::SeededScheduler>(0xbadbadULL);
  };
  o.self_check = 5;
  const ExploreResult bad = run_explore(sc, o);
  INFO(summary_text(bad.summary));
  CHECK(bad.summary.self_checks == 8);
  CHECK(count_of(bad.summary, kNondeterminismOutcome) >= 1);
  CHECK(count_of(bad.summary, kNondeterminismOutcome) <= 8);
  // Only the self-checked schedules (indices 4, 9, ...) can be flagged.
  for (const OutcomeStat& s : bad.summary.outcomes)
    if (s.outcome == kNondeterminismOutcome) CHECK(std::stoull(s.first) % 5 == 4);
}

TEST_CASE("explore (tool): a failure's run file replays to the same digest", "[explore]") {
  TempDir dir;
  auto r = run_tool(
      "explore '" + kRace + "' --schedules 300 --no-shrink --run-dir runs --summary s.json",
      dir.path);
  INFO(r.out);
  REQUIRE(r.code == 1);
  CHECK(r.out.find("FAIL deadlock") != std::string::npos);
  std::smatch m;
  REQUIRE(std::regex_search(r.out, m, std::regex("run file: (\\S+\\.run\\.json)")));
  const std::string run_file = m[1];
  const std::string summary = testing::read_file(dir.path / "s.json");
  CHECK(summary.find(run_file) != std::string::npos);
  auto rep = run_tool("replay " + run_file, dir.path);
  INFO(rep.out);
  CHECK(rep.code == 0);  // reproduced (exit 0), the failure shown
  CHECK(rep.out.find("reproduced: the trace digest matches") != std::string::npos);
  CHECK(rep.out.find("deadlock") != std::string::npos);
  // A --window override is recorded in the run file, and the replay uses it.
  auto w = run_tool("explore '" + kRace + "' --window 0 --no-shrink --run-dir runs0", dir.path);
  INFO(w.out);
  REQUIRE(w.code == 1);
  REQUIRE(std::regex_search(w.out, m, std::regex("run file: (\\S+\\.run\\.json)")));
  const std::string run_file0 = m[1];
  CHECK(testing::read_file(dir.path / run_file0).find("\"window_ns\": 0") != std::string::npos);
  auto rep0 = run_tool("replay " + run_file0, dir.path);
  INFO(rep0.out);
  CHECK(rep0.code == 0);
  CHECK(rep0.out.find("reproduced: the trace digest matches") != std::string::npos);
  // No failure: exit 0 (the profile with fix 2.11 closes the race).
  auto fixed = run_tool("explore '" + kRace + "' --schedules 150 --profile v5.15+2.11", dir.path);
  INFO(fixed.out);
  CHECK(fixed.code == 0);
  CHECK(fixed.out.find("150 schedule(s)") != std::string::npos);
  // A time budget alone ends the exploration.
  auto timed = run_tool("explore '" + kRace + "' --time 0.3 --profile v5.15+2.11", dir.path);
  INFO(timed.out);
  CHECK(timed.code == 0);
  CHECK(std::regex_search(timed.out, std::regex("\\n  [1-9][0-9]* schedule\\(s\\)")));
}

TEST_CASE("explore (tool): failures are shrunk by default", "[explore]") {
  TempDir dir;
  auto r = run_tool("explore '" + kRace + "' --schedules 300 --run-dir runs", dir.path);
  INFO(r.out);
  REQUIRE(r.code == 1);
  std::smatch m;
  // With the shrinker built in (tools/shrink.h), the shrunk run file replays: same digest. (A
  // build with the shrinker's stub says the failure did not reproduce for it.)
  if (std::regex_search(r.out, m, std::regex("shrunk: .*bpftsim replay (\\S+\\.run\\.json)"))) {
    auto rep = run_tool("replay " + std::string(m[1]), dir.path);
    INFO(rep.out);
    CHECK(rep.code == 0);
    CHECK(rep.out.find("reproduced: the trace digest matches") != std::string::npos);
    CHECK(rep.out.find("deadlock") != std::string::npos);
  } else {
    CHECK(r.out.find("shrink: ") != std::string::npos);
  }
  // --no-shrink: no shrink line.
  auto n = run_tool("explore '" + kRace + "' --schedules 300 --run-dir runs --no-shrink", dir.path);
  CHECK(n.out.find("shrunk") == std::string::npos);
  CHECK(n.out.find("shrink: ") == std::string::npos);
}

TEST_CASE("explore (tool): shard summaries merge into the unsharded summary", "[explore]") {
  TempDir dir;
  const std::string common =
      "explore '" + kRace +
      "' --strategy dfs --bound 1 --dfs-points 3 --all --no-shrink --run-dir runs "
      "--self-check 0 --schedules 100000";
  auto whole = run_tool(common + " --summary whole.json", dir.path);
  INFO(whole.out);
  REQUIRE(whole.code == 1);
  std::string files;
  for (int i = 0; i < 4; ++i) {
    auto part = run_tool(common + " --shard " + std::to_string(i) + "/4 --summary part" +
                             std::to_string(i) + ".json",
                         dir.path);
    INFO(part.out);
    REQUIRE(part.code <= 1);
    files += " part" + std::to_string(i) + ".json";
  }
  auto merged = run_tool("explore --merge" + files + " --summary merged.json", dir.path);
  INFO(merged.out);
  CHECK(merged.code == 1);
  CHECK(comparable(testing::read_file(dir.path / "merged.json")) ==
        comparable(testing::read_file(dir.path / "whole.json")));
  // Bad input: exit 2.
  CHECK(run_tool("explore --merge part0.json part0.json", dir.path).code == 2);
  CHECK(run_tool("explore --merge nonexistent.json", dir.path).code == 2);
  CHECK(run_tool("explore '" + kRace + "' --shard 4/4", dir.path).code == 2);
  CHECK(run_tool("explore '" + kRace + "' --shard x", dir.path).code == 2);
  CHECK(run_tool("explore '" + kRace + "' --strategy bogus", dir.path).code == 2);
  CHECK(run_tool("explore nonexistent.json", dir.path).code == 2);
  CHECK(run_tool("explore '" + kRace + "' --profile nosuch", dir.path).code == 2);
}

}  // namespace
}  // namespace bpftsim::tools
