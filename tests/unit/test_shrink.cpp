// The shrinker (tools/shrink.h, issue 9 item 3): a failing run shrinks to a 1-minimal one that
// fails the same way. 1-minimality is checked here independently of the shrinker: from the
// written JSON document, each remaining action is removed (a JSON edit, loaded again) and each
// remaining decision reset (dropped from the lenient list), one at a time, and each such run must
// no longer fail the same way. Two inputs: race 4.9 with irrelevant actions added, and
// tests/data/shrink-mutual-cancel.json (race 4.8 with ranges and a window, a failing seed found
// by search). Then `bpftsim shrink` and `bpftsim replay` of what it writes, through the tool.
#include <fmt/format.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/unit/scenario_harness.h"
#include "tests/unit/tool_harness.h"
#include "tools/runfile.h"
#include "tools/runner.h"
#include "tools/scenario.h"
#include "tools/shrink.h"

using bpftsim::testing::run;
using namespace bpftsim;
using namespace bpftsim::tools;
using bpftsim::testing::read_file;
using bpftsim::testing::run_tool;
using bpftsim::testing::TempDir;
namespace fs = std::filesystem;
using OJson = nlohmann::ordered_json;

namespace {

const fs::path kShrinkSource = BPFTSIM_SOURCE_DIR;

Scenario parse(const fs::path& file, const std::string& text) {
  auto sc = parse_scenario(file.string(), text);
  if (auto* e = std::get_if<InputError>(&sc)) FAIL(e->text());
  return std::get<Scenario>(std::move(sc));
}

RunOptions lenient(const RunResult& like, const sim::DecisionList& list) {
  RunOptions o;
  o.seed = like.seed;
  o.profile = like.profile;
  o.replay = list;
  o.lenient = true;
  o.keep_trace = false;
  o.full_trace = false;
  return o;
}

// 4.9 (cancel vs free) without its expectations, so that its use-after-free is an unexpected
// finding (a failure), on three CPUs with irrelevant actions added: lookups and a wait on CPU 2
// and a lookup on CPU 0 after the race. Object paths absolute. Returns the document.
OJson race_4_9_with_noise() {
  OJson doc = OJson::parse(read_file(kShrinkSource / "scenarios/races/4.9-cancel-vs-free.json"));
  doc.erase("expect");
  doc.erase("closed_by");
  doc["name"] = "noisy-4.9";
  doc["cpus"] = 3;
  doc["objects"][0]["path"] = (kShrinkSource / "scenarios/progs/race_cancel_free.bpf.c").string();
  OJson tl = OJson::array();
  auto noise = [](std::int64_t at, int cpu, const char* what, const char* map) {
    OJson a;
    a["at_ns"] = at;
    a["cpu"] = cpu;
    a["action"] = what;
    if (map != nullptr) {
      a["map"] = map;
      a["key"] = 0;
    }
    a["comment"] = "noise";
    return a;
  };
  tl.push_back(doc["timeline"][0]);
  tl.push_back(noise(2000, 2, "map_lookup", "t.m"));
  tl.push_back(noise(5000, 2, "wait", nullptr));
  tl.push_back(doc["timeline"][1]);
  tl.push_back(doc["timeline"][2]);
  tl.push_back(noise(12000, 2, "map_lookup", "t.m2"));
  tl.push_back(doc["timeline"][3]);
  tl.push_back(noise(40000, 0, "map_lookup", "t.m2"));
  doc["timeline"] = tl;
  return doc;
}

// Checks that `res` is 1-minimal, from its JSON document alone.
void check_one_minimal(const ShrinkResult& res, const fs::path& dir) {
  REQUIRE_FALSE(res.scenario_json.empty());
  REQUIRE(res.minimal);
  const fs::path file = dir / "shrunk.json";
  const Scenario sc = parse(file, res.scenario_json);
  CHECK(sc.timeline.size() == res.actions_after);
  // The document with its decisions fails as the original did.
  const RunResult again = run(sc, lenient(res.run, res.decisions));
  REQUIRE(outcome_of(again) == res.outcome);
  CHECK(again.digest == res.run.digest);
  const OJson doc = OJson::parse(res.scenario_json);
  for (std::size_t i = 0; i < sc.timeline.size(); ++i) {
    OJson fewer = doc;
    fewer["timeline"].erase(i);
    if (fewer["timeline"].empty()) continue;  // the schema wants at least one action
    const Scenario c = parse(file, fewer.dump(2));
    const RunResult r = run(c, lenient(res.run, res.decisions));
    INFO("without action " << i << " (" << sc.timeline[i].describe() << ")");
    CHECK(outcome_of(r) != res.outcome);
  }
  for (std::size_t j = 0; j < res.decisions.size(); ++j) {
    sim::DecisionList fewer = res.decisions;
    fewer.erase(fewer.begin() + static_cast<std::ptrdiff_t>(j));
    const RunResult r = run(sc, lenient(res.run, fewer));
    INFO("decision " << j << " reset: " << sim::format_decisions({res.decisions[j]}));
    CHECK(outcome_of(r) != res.outcome);
  }
}

bool has_noise(const std::string& json) {
  const OJson doc = OJson::parse(json);
  for (const OJson& a : doc["timeline"])
    if (a.contains("comment") && a["comment"] == "noise") return true;
  return false;
}

}  // namespace

TEST_CASE("action keys: one pass gives each action's key, identical actions told by ordinal",
          "[shrink]") {
  OJson doc = race_4_9_with_noise();
  // Two more lookups identical to the one at 2000 ns on CPU 2: same identity, ordinals 1 and 2.
  doc["timeline"].push_back(doc["timeline"][1]);
  doc["timeline"][doc["timeline"].size() - 1]["at_ns"] = 50000;
  doc["timeline"].push_back(doc["timeline"][1]);
  doc["timeline"][doc["timeline"].size() - 1]["at_ns"] = 60000;
  const Scenario sc = parse(kShrinkSource / "scenarios/races/noisy.json", doc.dump(2));
  const std::vector<std::uint64_t> keys = action_keys(sc);
  REQUIRE(keys.size() == sc.timeline.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    INFO("action " << i);
    CHECK(keys[i] == action_key(sc, i));
  }
  std::vector<std::uint64_t> sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());  // all distinct
}

TEST_CASE("shrink: 4.9 with irrelevant actions shrinks to a 1-minimal run", "[shrink]") {
  TempDir tmp;
  const fs::path file = tmp.file("noisy-4.9.json", race_4_9_with_noise().dump(2));
  auto loaded = load_scenario(file.string());
  REQUIRE(std::holds_alternative<Scenario>(loaded));
  const Scenario& sc = std::get<Scenario>(loaded);
  RunOptions opts;
  opts.keep_trace = false;
  const RunResult failing = run(sc, opts);
  REQUIRE(outcome_of(failing).find("use_after_free") != std::string::npos);

  const auto res = shrink(sc, RunOptions{}, failing.decisions);
  REQUIRE(res.has_value());
  CHECK(res->outcome == outcome_of(failing));
  CHECK(res->actions_before == 8);
  CHECK(res->actions_after < res->actions_before);
  CHECK(res->runs <= ShrinkOptions{}.max_runs);
  CHECK_FALSE(has_noise(res->scenario_json));
  check_one_minimal(*res, tmp.path);
}

TEST_CASE("shrink: ranges and a window narrow to points, 1-minimal", "[shrink]") {
  TempDir tmp;
  const fs::path file = kShrinkSource / "tests/data/shrink-mutual-cancel.json";
  auto loaded = load_scenario(file.string());
  REQUIRE(std::holds_alternative<Scenario>(loaded));
  const Scenario& sc = std::get<Scenario>(loaded);
  // The first seed whose run deadlocks.
  std::optional<RunResult> failing;
  std::uint64_t seed = 1;
  for (; seed <= 2000 && !failing; ++seed) {
    RunOptions o;
    o.seed = seed;
    o.keep_trace = false;
    o.full_trace = false;
    RunResult r = run(sc, o);
    if (!r.passed()) failing = std::move(r);
  }
  REQUIRE(failing.has_value());
  INFO("seed " << failing->seed << ": " << outcome_of(*failing));
  REQUIRE(outcome_of(*failing).find("deadlock") != std::string::npos);

  RunOptions opts;
  opts.seed = failing->seed;
  const auto res = shrink(sc, opts, failing->decisions);
  REQUIRE(res.has_value());
  CHECK(res->outcome == outcome_of(*failing));
  CHECK(res->actions_after < res->actions_before);
  // The drawn times are the run's: every range that is left is narrowed to a point.
  const OJson doc = OJson::parse(res->scenario_json);
  for (const OJson& a : doc["timeline"])
    CHECK(a["at_ns"].is_number_integer());
  CHECK(res->ranges_narrowed >= 1);
  // The arms are 200..400 ns apart: in time order (every choice the default) the callbacks do not
  // overlap, so the shrunk run keeps at least one choice of the window, and without its
  // decisions the shrunk scenario does not deadlock.
  CHECK(res->decisions_after >= 1);
  const Scenario shrunk = parse(tmp.path / "s.json", res->scenario_json);
  CHECK(outcome_of(run(shrunk, lenient(res->run, {}))) != res->outcome);
  check_one_minimal(*res, tmp.path);
}

TEST_CASE("shrink: a run that passes has nothing to shrink", "[shrink]") {
  auto loaded = load_scenario((kShrinkSource / "scenarios/races/4.9-cancel-vs-free.json").string());
  REQUIRE(std::holds_alternative<Scenario>(loaded));
  const Scenario& sc = std::get<Scenario>(loaded);
  const RunResult passing = run(sc, RunOptions{});
  REQUIRE(passing.passed());
  CHECK_FALSE(shrink(sc, RunOptions{}, passing.decisions).has_value());
}

TEST_CASE("shrink: a small budget still gives a failing result, not called minimal", "[shrink]") {
  TempDir tmp;
  const fs::path file = tmp.file("noisy-4.9.json", race_4_9_with_noise().dump(2));
  auto loaded = load_scenario(file.string());
  REQUIRE(std::holds_alternative<Scenario>(loaded));
  const Scenario& sc = std::get<Scenario>(loaded);
  const RunResult failing = run(sc, RunOptions{});
  ShrinkOptions so;
  so.max_runs = 3;
  const auto res = shrink(sc, RunOptions{}, failing.decisions, so);
  REQUIRE(res.has_value());
  CHECK_FALSE(res->minimal);
  CHECK(res->runs <= 4);  // the budget, and the run of the written document
  const Scenario shrunk = parse(tmp.path / "s.json", res->scenario_json);
  CHECK(outcome_of(run(shrunk, lenient(res->run, res->decisions))) == res->outcome);
}

TEST_CASE("shrink: bpftsim shrink writes a scenario and run file that replay reproduces",
          "[shrink]") {
  TempDir tmp;
  tmp.file("noisy-4.9.json", race_4_9_with_noise().dump(2));
  const auto ran = run_tool("run noisy-4.9.json --run-dir runs", tmp.path);
  REQUIRE(ran.code == 1);
  REQUIRE(fs::exists(tmp.path / "runs/noisy-4.9.run.json"));

  const auto sh = run_tool(
      "shrink runs/noisy-4.9.run.json --out-dir out --trace shrunk.trace --max-runs 500", tmp.path);
  INFO(sh.out);
  REQUIRE(sh.code == 0);
  CHECK(sh.out.find("actions   8 -> ") != std::string::npos);
  CHECK(sh.out.find(", 1-minimal\n") != std::string::npos);
  CHECK(fs::exists(tmp.path / "out/noisy-4.9.shrunk.json"));
  REQUIRE(fs::exists(tmp.path / "out/noisy-4.9.shrunk.run.json"));
  CHECK(fs::file_size(tmp.path / "shrunk.trace") > 0);
  // The object path leads to the object from the output directory.
  const OJson doc = OJson::parse(read_file(tmp.path / "out/noisy-4.9.shrunk.json"));
  const fs::path object = doc["objects"][0]["path"].get<std::string>();
  CHECK(fs::equivalent(tmp.path / "out" / object,
                       kShrinkSource / "scenarios/progs/race_cancel_free.bpf.c"));

  // Strict replay, from another directory: reproduced (exit 0).
  const auto rep = run_tool("replay " + (tmp.path / "out/noisy-4.9.shrunk.run.json").string(),
                            tmp.path / "runs");
  INFO(rep.out);
  CHECK(rep.code == 0);
  CHECK(rep.out.find("reproduced: the trace digest matches") != std::string::npos);
  CHECK(rep.out.find("use_after_free") != std::string::npos);

  // The shrunk run file shrinks no further, and the shrinker still says so with exit 0.
  const auto again = run_tool("shrink out/noisy-4.9.shrunk.run.json --out-dir out2", tmp.path);
  INFO(again.out);
  CHECK(again.code == 0);
}

TEST_CASE("shrink: bpftsim shrink exit codes: 1 for a passing run, 2 for bad input", "[shrink]") {
  TempDir tmp;
  // A run file of a passing run (the scripted 4.9 passes: its expectations describe the race).
  const fs::path scenario = kShrinkSource / "scenarios/races/4.9-cancel-vs-free.json";
  auto loaded = load_scenario(scenario.string());
  REQUIRE(std::holds_alternative<Scenario>(loaded));
  const Scenario& sc = std::get<Scenario>(loaded);
  const RunResult passing = run(sc, RunOptions{});
  REQUIRE(passing.passed());
  auto written = write_run_file(make_run_file(sc, passing, BPFTSIM_VERSION), tmp.path.string());
  REQUIRE(std::holds_alternative<std::string>(written));
  const auto pass = run_tool("shrink " + std::get<std::string>(written), tmp.path);
  INFO(pass.out);
  CHECK(pass.code == 1);
  CHECK(pass.out.find("nothing to shrink") != std::string::npos);

  tmp.file("bad.run.json", "{\"bpftsim_run\": 2}");
  const auto bad = run_tool("shrink bad.run.json", tmp.path);
  INFO(bad.out);
  CHECK(bad.code == 2);
  CHECK(bad.out.find("bad.run.json") != std::string::npos);
  const auto missing = run_tool("shrink nosuch.run.json", tmp.path);
  CHECK(missing.code == 2);
}

TEST_CASE("shrink: actions named by expect.order stay, renumbered; the others go", "[shrink]") {
  TempDir tmp;
  OJson doc = race_4_9_with_noise();
  // Index 4 is the update of T's slot, 7 the last lookup (noise, but named here).
  REQUIRE(doc["timeline"][4]["action"] == "map_update");
  doc["expect"]["order"] = OJson::parse(
      R"([{"first": {"action_start": 4}, "then": {"action_done": 7}, "comment": "holds"}])");
  const fs::path file = tmp.file("ordered-4.9.json", doc.dump(2));
  auto loaded = load_scenario(file.string());
  if (auto* e = std::get_if<InputError>(&loaded)) FAIL(e->text());
  const Scenario& sc = std::get<Scenario>(loaded);
  const RunResult failing = run(sc, RunOptions{});
  REQUIRE(outcome_of(failing).find("use_after_free") != std::string::npos);
  const auto res = shrink(sc, RunOptions{}, failing.decisions);
  REQUIRE(res.has_value());
  REQUIRE(res->minimal);
  const OJson out = OJson::parse(res->scenario_json);
  const OJson& order = out["expect"]["order"][0];
  const OJson& tl = out["timeline"];
  const std::size_t first = order["first"]["action_start"].get<std::size_t>();
  const std::size_t then = order["then"]["action_done"].get<std::size_t>();
  REQUIRE(first < tl.size());
  REQUIRE(then < tl.size());
  CHECK(tl[first]["action"] == "map_update");
  CHECK(tl[then]["action"] == "map_lookup");
  CHECK(tl[then]["at_ns"] == 40000);
  // The other noise is gone.
  std::size_t noise = 0;
  for (const OJson& a : tl)
    if (a.contains("comment") && a["comment"] == "noise") ++noise;
  CHECK(noise == 1);
  // Written and replayed strictly: it still fails the same way.
  auto files = write_shrunk(*res, (tmp.path / "out").string());
  if (auto* e = std::get_if<InputError>(&files)) FAIL(e->text());
  CHECK(outcome_of(std::get<ShrunkFiles>(files).run) == res->outcome);
}

TEST_CASE("shrink: an outcome naming an action (/timeline/I) follows it when others go",
          "[shrink]") {
  TempDir tmp;
  OJson doc = OJson::parse(R"({
    "name": "wrong-ret", "description": "a lookup expected to return 7", "cpus": 2,
    "objects": [{"name": "t", "path": "PATH"}],
    "timeline": [
      {"at_ns": 0, "cpu": 0, "action": "run", "prog": "t.setup", "expect_ret": 0},
      {"at_ns": 1000, "cpu": 1, "action": "map_lookup", "map": "t.m", "key": 0},
      {"at_ns": 2000, "cpu": 1, "action": "wait"},
      {"at_ns": 3000, "cpu": 1, "action": "map_lookup", "map": "t.m2", "key": 0, "expect_ret": 7},
      {"at_ns": 4000, "cpu": 0, "action": "map_lookup", "map": "t.m", "key": 0}
    ]})");
  doc["objects"][0]["path"] = (kShrinkSource / "scenarios/progs/race_cancel_free.bpf.c").string();
  const fs::path file = tmp.file("wrong-ret.json", doc.dump(2));
  auto loaded = load_scenario(file.string());
  if (auto* e = std::get_if<InputError>(&loaded)) FAIL(e->text());
  const Scenario& sc = std::get<Scenario>(loaded);
  const RunResult failing = run(sc, RunOptions{});
  REQUIRE(outcome_of(failing) == "/timeline/3");
  const auto res = shrink(sc, RunOptions{}, failing.decisions);
  REQUIRE(res.has_value());
  CHECK(res->outcome == "/timeline/3");
  CHECK(res->minimal);
  CHECK(res->actions_after < 5);
  // The action with the failed expect_ret is still there, under its new index.
  const Scenario shrunk = parse(tmp.path / "s.json", res->scenario_json);
  std::size_t at = shrunk.timeline.size();
  for (std::size_t i = 0; i < shrunk.timeline.size(); ++i)
    if (shrunk.timeline[i].expect_ret == 7) at = i;
  REQUIRE(at < shrunk.timeline.size());
  CHECK(outcome_of(run(shrunk, lenient(res->run, res->decisions))) ==
        fmt::format("/timeline/{}", at));
}

TEST_CASE("shrink: the shrunk window race replays through the tool", "[shrink]") {
  TempDir tmp;
  const std::string scenario = (kShrinkSource / "tests/data/shrink-mutual-cancel.json").string();
  // The first seed that deadlocks leaves a run file.
  std::uint64_t seed = 1;
  for (; seed <= 200; ++seed)
    if (run_tool(fmt::format("run '{}' --seed {} --run-dir runs", scenario, seed), tmp.path).code ==
        1)
      break;
  REQUIRE(seed <= 200);
  const auto sh = run_tool("shrink runs/shrink-mutual-cancel.run.json --out-dir out", tmp.path);
  INFO(sh.out);
  REQUIRE(sh.code == 0);
  CHECK(sh.out.find("fails with deadlock") != std::string::npos);
  CHECK(sh.out.find(", 1-minimal\n") != std::string::npos);
  const auto rep = run_tool("replay out/shrink-mutual-cancel.shrunk.run.json", tmp.path);
  INFO(rep.out);
  CHECK(rep.code == 0);
  CHECK(rep.out.find("reproduced: the trace digest matches") != std::string::npos);
  CHECK(rep.out.find("deadlock") != std::string::npos);
  // Leniently, with the complete recorded list, it is the same run.
  const auto len = run_tool("replay --lenient out/shrink-mutual-cancel.shrunk.run.json", tmp.path);
  CHECK(len.out.find("reproduced: the trace digest matches") != std::string::npos);
}

TEST_CASE("shrink: an expectation failure (4.9 on the fixed profile) keeps one action at least",
          "[shrink]") {
  TempDir tmp;
  auto loaded = load_scenario((kShrinkSource / "scenarios/races/4.9-cancel-vs-free.json").string());
  REQUIRE(std::holds_alternative<Scenario>(loaded));
  const Scenario& sc = std::get<Scenario>(loaded);
  RunOptions opts;
  opts.profile = "v5.15+2.9";
  const RunResult failing = run(sc, opts);
  REQUIRE(outcome_of(failing) == "/expect/findings/use_after_free");
  const auto res = shrink(sc, opts, failing.decisions);
  REQUIRE(res.has_value());
  INFO(res->document_error);
  REQUIRE_FALSE(res->scenario_json.empty());
  CHECK(res->minimal);
  CHECK(res->actions_after >= 1);
  CHECK(res->actions_after < res->actions_before);
  CHECK(OJson::parse(res->scenario_json)["profile"] == "v5.15+2.9");
  auto files = write_shrunk(*res, (tmp.path / "out").string());
  if (auto* e = std::get_if<InputError>(&files)) FAIL(e->text());
  CHECK(outcome_of(std::get<ShrunkFiles>(files).run) == "/expect/findings/use_after_free");
}
