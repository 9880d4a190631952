// The choice model (issue 9) at the model and tool level: RCU grace-period jitter and deferred
// work on any CPU are decisions; observers (expect.at / globals_at) leave the digest unchanged;
// an edited run file replays leniently; at_ns ranges are recorded draws that seeds vary and
// replay reproduces.
#include <fmt/format.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "sim/scheduler.h"
#include "tests/unit/scenario_harness.h"
#include "tests/unit/tool_harness.h"
#include "tools/runfile.h"
#include "tools/runner.h"
#include "tools/scenario.h"

using bpftsim::testing::run;
using namespace bpftsim;
using namespace bpftsim::tools;
using namespace bpftsim::testing;
using nlohmann::json;

namespace {

const fs::path kScenarios = fs::path(BPFTSIM_SOURCE_DIR) / "scenarios";

json read_json(const fs::path& p) {
  return json::parse(read_file(p));
}

// A copy of a catalogue scenario whose object paths are absolute (it is written elsewhere).
json catalogue(const std::string& rel) {
  const fs::path file = kScenarios / rel;
  json doc = read_json(file);
  for (auto& o : doc["objects"])
    o["path"] = (file.parent_path() / o["path"].get<std::string>()).lexically_normal().string();
  return doc;
}

Scenario parse(const TempDir& dir, const std::string& name, const json& doc) {
  const fs::path file = dir.file(name, doc.dump(2));
  auto loaded = load_scenario(file.string());
  if (auto* e = std::get_if<InputError>(&loaded)) FAIL(e->text());
  return std::get<Scenario>(loaded);
}

std::size_t count_kind(const sim::DecisionList& list, sim::DecisionKind kind) {
  std::size_t n = 0;
  for (const auto& d : list)
    n += d.kind == kind;
  return n;
}

// "digest <hex> records <n>" from the tool's output.
std::string digest_line(const std::string& out) {
  const auto at = out.find("digest ");
  if (at == std::string::npos) return "";
  return out.substr(at, out.find('\n', at) - at);
}

}  // namespace

TEST_CASE("model: RCU grace-period jitter is a grace decision, deferred work a cpu decision",
          "[choice]") {
  TempDir dir;
  // 4.9 frees timers through RCU and, at the exit, the map through deferred work.
  json doc = catalogue("races/4.9-cancel-vs-free.json");
  doc.erase("expect");
  doc["expect"] = {{"findings", {{"allow_other_findings", true}}}};
  const Scenario plain = parse(dir, "plain.json", doc);
  doc["costs"] = {{"rcu_gp_jitter_ns", 20000}};
  doc["work_on_any_cpu"] = true;
  const Scenario chosen = parse(dir, "chosen.json", doc);

  // Without the knobs: none of these decisions.
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    RunOptions o;
    o.seed = seed;
    const RunResult r = run(plain, o);
    CHECK(count_kind(r.decisions, sim::DecisionKind::kGrace) == 0);
    CHECK(count_kind(r.decisions, sim::DecisionKind::kCpu) == 0);
  }
  std::set<std::int64_t> work_cpus, gp_ends;
  for (std::uint64_t seed = 1; seed <= 16; ++seed) {
    RunOptions o;
    o.seed = seed;
    const RunResult r = run(chosen, o);
    INFO("seed " << seed);
    CHECK(count_kind(r.decisions, sim::DecisionKind::kGrace) >= 1);
    CHECK(count_kind(r.decisions, sim::DecisionKind::kCpu) >= 1);
    // The grace draw is bounded by the jitter; the cpu candidates are the CPUs.
    for (const auto& d : r.decisions) {
      if (d.kind == sim::DecisionKind::kGrace) CHECK(d.options == 20001);
      if (d.kind == sim::DecisionKind::kCpu) CHECK(d.options == 2);
    }
    for (const auto& rec : r.trace().records()) {
      if (rec.event == "queue_work") work_cpus.insert(rec.int_field("cpu", -1));
      if (rec.event == "rcu_gp_end" && rec.int_field("gp", 0) == 1) gp_ends.insert(rec.t_ns);
    }
    // Replay of the recorded decisions reproduces the run.
    RunOptions again;
    again.seed = seed;
    again.replay = r.decisions;
    CHECK(run(chosen, again).digest == r.digest);
  }
  // Seeds do move the work and stretch the grace period.
  CHECK(work_cpus == std::set<std::int64_t>{0, 1});
  CHECK(gp_ends.size() > 4);
}

TEST_CASE("tool: an expect.at / globals_at observer leaves the trace digest unchanged",
          "[choice]") {
  TempDir dir;
  for (const char* rel : {"races/4.9-cancel-vs-free.json", "races/4.8-mutual-cancel.json"}) {
    INFO(rel);
    json doc = catalogue(rel);
    const json globals = doc["expect"]["globals"];
    REQUIRE(globals.is_object());
    const std::string global = globals.begin().key();
    doc["window_ns"] = 20;  // ties, and some seeds hit the race, some not
    doc["expect"] = {{"findings", {{"allow_other_findings", true}}}};
    doc.erase("closed_by");
    dir.file("bare.json", doc.dump(2));
    // Observers at many instants, some of them exactly at event times of the run.
    json at = json::array();
    for (int t = 0; t <= 40000; t += 250) {
      json e = {{"at_ns", t}, {"invariants", true}};
      e["globals"] = {{global, ">=0"}};
      at.push_back(e);
    }
    doc["expect"]["at"] = at;
    dir.file("observed.json", doc.dump(2));
    // The older spelling, with an expectation that fails at every instant: the run fails, its
    // digest is still the bare run's.
    doc["expect"].erase("at");
    json older = json::array();
    for (int t = 100; t <= 40000; t += 500)
      older.push_back({{"at_ns", t}, {"globals", {{global, 123456789}}}});
    doc["expect"]["globals_at"] = older;
    dir.file("failing.json", doc.dump(2));

    std::set<std::string> digests;
    for (int seed = 1; seed <= 8; ++seed) {
      const std::string flags = fmt::format(" --seed {} --digest", seed);
      const Cmd bare = run_tool("run bare.json" + flags, dir.path);
      const Cmd observed = run_tool("run observed.json" + flags, dir.path);
      INFO(bare.out);
      INFO(observed.out);
      CHECK((bare.code == 0 || bare.code == 1));
      // The observers ran and held (those after a stop are "not checked").
      std::istringstream lines(observed.out);
      for (std::string line; std::getline(lines, line);)
        if (line.find("/expect/at/") != std::string::npos)
          CHECK_THAT(line, Catch::Contains("not checked"));
      if (bare.code == 0) CHECK(observed.code == 0);
      REQUIRE(!digest_line(bare.out).empty());
      CHECK(digest_line(observed.out) == digest_line(bare.out));
      const Cmd failing = run_tool("run failing.json" + flags, dir.path);
      INFO(failing.out);
      CHECK(failing.code == 1);
      CHECK_THAT(failing.out, Catch::Contains("expected 123456789"));
      CHECK(digest_line(failing.out) == digest_line(bare.out));
      digests.insert(digest_line(bare.out));
    }
    CHECK(digests.size() > 1);  // the seeds do pick different schedules
  }
}

TEST_CASE("tool: a run file with one decision removed replays with --lenient, not strictly",
          "[choice]") {
  TempDir dir;
  json doc = catalogue("races/4.9-cancel-vs-free.json");
  doc["window_ns"] = 20;  // about one seed in four hits the race
  doc.erase("closed_by");
  doc["expect"] = json::object();  // the race's use-after-free now fails the run
  dir.file("fails.json", doc.dump(2));
  fs::create_directory(dir.path / "runs");

  // A failing seed with enough decisions to cut one from the middle.
  fs::path run_file;
  json rf;
  for (int seed = 1; seed <= 40 && run_file.empty(); ++seed) {
    const Cmd r = run_tool(fmt::format("run fails.json --seed {} --run-dir runs", seed), dir.path);
    if (r.code != 1) continue;
    const fs::path p = dir.path / "runs" / (doc["name"].get<std::string>() + ".run.json");
    REQUIRE(fs::exists(p));
    rf = read_json(p);
    const std::string decisions = rf["decisions"].get<std::string>();
    if (std::count(decisions.begin(), decisions.end(), '\n') >= 4) run_file = p;
  }
  REQUIRE(!run_file.empty());
  const Cmd exact = run_tool("replay " + run_file.string(), dir.path);
  INFO(exact.out);
  CHECK(exact.code == 0);  // it fails as recorded: reproduced
  CHECK_THAT(exact.out, Catch::Contains("FAIL "));
  CHECK_THAT(exact.out, Catch::Contains("reproduced: the trace digest matches"));

  // Remove the second recorded decision.
  const std::string text = rf["decisions"].get<std::string>();
  const auto first_end = text.find('\n');
  const auto second_end = text.find('\n', first_end + 1);
  rf["decisions"] = text.substr(0, first_end + 1) + text.substr(second_end + 1);
  const fs::path edited = dir.file("edited.run.json", rf.dump(2));

  // Strictly, the run asks decision #1's key where the list now has #2's: a divergence, not
  // a reproduction (exit 1).
  const Cmd strict = run_tool("replay " + edited.string(), dir.path);
  INFO(strict.out);
  CHECK(strict.code == 1);
  CHECK_THAT(strict.out, Catch::Contains("replay diverged at decision #1"));
  CHECK_THAT(strict.out, Catch::Contains("NOT reproduced"));

  // Leniently, the missing decision takes its default and the run goes on to its end: judged,
  // never a divergence (exit 0 if it came to the recorded outcome, 1 if not; 2 = refused).
  const Cmd lenient = run_tool("replay --lenient " + edited.string(), dir.path);
  INFO(lenient.out);
  CHECK((lenient.code == 0 || lenient.code == 1));
  CHECK_THAT(lenient.out, !Catch::Contains("diverged"));
  CHECK_THAT(lenient.out, !Catch::Contains("replay_divergence"));
  CHECK_THAT(lenient.out, Catch::Contains("status=quiescent"));
  CHECK_THAT(lenient.out, Catch::Contains("reproduced"));
}

TEST_CASE("tool: an at_ns range is a recorded draw; seeds vary it, replay reproduces it",
          "[choice]") {
  TempDir dir;
  json doc = catalogue("races/4.9-cancel-vs-free.json");
  doc["window_ns"] = 200;
  doc.erase("closed_by");
  doc["expect"] = {{"findings", {{"allow_other_findings", true}}}};
  // The canceller and the update anywhere in 50 us (ranges count by their min in the
  // timeline's order).
  doc["timeline"][1]["at_ns"] = {{"min", 10000}, {"max", 60000}};
  doc["timeline"][2]["at_ns"] = {{"min", 10000}, {"max", 60000}};
  doc["timeline"][3]["at_ns"] = 100000;
  dir.file("ranges.json", doc.dump(2));
  const Scenario sc = parse(dir, "ranges.json", doc);

  // Through the library: the drawn times, per seed.
  std::set<std::vector<std::int64_t>> drawn;
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    RunOptions o;
    o.seed = seed;
    const RunResult r = run(sc, o);
    std::vector<std::int64_t> times;
    std::map<std::int64_t, std::int64_t> by_index;
    for (const auto& rec : r.trace().records())
      if (rec.event == "action_time") by_index[rec.int_field("index", -1)] = rec.int_field("at_ns");
    REQUIRE(by_index.size() == 2);
    CHECK(by_index.count(1));
    CHECK(by_index.count(2));
    CHECK(by_index[1] >= 10000);
    CHECK(by_index[1] <= 60000);
    CHECK(by_index[2] >= 10000);
    CHECK(by_index[2] <= 60000);
    times = {by_index[1], by_index[2]};
    drawn.insert(times);
    CHECK(count_kind(r.decisions, sim::DecisionKind::kRange) == 2);
    // The action starts at its drawn time (within the window).
    for (const auto& rec : r.trace().records())
      if (rec.event == "scenario_action" && rec.int_field("index", -1) == 2)
        CHECK(rec.t_ns >= by_index[2]);
  }
  CHECK(drawn.size() == 8);

  // Through the tool: same seed, same digest; another seed, another; replay reproduces.
  const Cmd a = run_tool("run ranges.json --seed 5 --digest", dir.path);
  const Cmd b = run_tool("run ranges.json --seed 5 --digest", dir.path);
  const Cmd c = run_tool("run ranges.json --seed 6 --digest", dir.path);
  INFO(a.out);
  REQUIRE(!digest_line(a.out).empty());
  CHECK(digest_line(a.out) == digest_line(b.out));
  CHECK(digest_line(a.out) != digest_line(c.out));

  // A failing variant (it expects a stop that never comes) leaves a run file; replay repeats
  // it, drawn times included.
  doc["expect"] = {{"status", "stopped"}, {"findings", {{"allow_other_findings", true}}}};
  dir.file("ranges_fail.json", doc.dump(2));
  fs::create_directory(dir.path / "runs");
  bool replayed = false;
  for (int seed = 1; seed <= 3 && !replayed; ++seed) {
    const Cmd r = run_tool(
        fmt::format("run ranges_fail.json --seed {} --run-dir runs --digest", seed), dir.path);
    if (r.code != 1) continue;
    const fs::path p = dir.path / "runs" / (doc["name"].get<std::string>() + ".run.json");
    REQUIRE(fs::exists(p));
    CHECK_THAT(read_json(p)["decisions"].get<std::string>(), Catch::Contains("range "));
    const Cmd rep = run_tool("replay " + p.string(), dir.path);
    INFO(rep.out);
    CHECK_THAT(rep.out, Catch::Contains("reproduced: the trace digest matches"));
    CHECK_THAT(rep.out, Catch::Contains(digest_line(r.out)));
    replayed = true;
  }
  CHECK(replayed);
}
