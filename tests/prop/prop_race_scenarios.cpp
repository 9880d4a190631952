// Properties over generated scenarios-with-ranges (issue 9, item 7): the actors of five seed-bug
// races of the catalogue (scenarios/races: 4.3 re-arm then delete, 4.8 mutual cancel, 4.9 cancel
// vs free, 4.10 init vs last uref, 4.12 lock+timer copy), with no scripted interleaving: each
// action's at_ns becomes a range {"min": its catalogue time, "max": up to 50 us later}, under a
// window W > 0, deferred softirq landing, RCU grace-period jitter and deferred work on any CPU,
// and a random seed. Each case is a complete JSON scenario, loaded with tools::parse_scenario
// and run with tools::run_scenario. Properties:
//   - on the profile with every fix (v5.15+2.2+2.8+2.9+2.11+2.12) every schedule passes the
//     scenario's expectation of no finding and a quiescent end;
//   - on the seed profile the findings are only those the seed's races explain (use_after_free,
//     leak, deadlock, wild_pointer), never a broken invariant, a refcount underflow, a double
//     free or a program fault;
//   - every run replays from its decision list to the same digest.
// A failing case shrinks twice: RapidCheck shrinks the generated case (narrower ranges, smaller
// window, fewer knobs) and prints it as the complete scenario JSON (runnable with `bpftsim run`);
// for the fixed-profile property the log also holds bpftsim's own shrink (tools/shrink.h) of
// that case's failing run: the 1-minimal scenario (actions removed, ranges narrowed to points)
// and its non-default decisions.
#include <fmt/format.h>
#include <rapidcheck/catch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include <stdlib.h>

#include "sim/scheduler.h"
#include "tests/prop/rc_defaults.h"
#include "tools/runner.h"
#include "tools/scenario.h"
#include "tools/shrink.h"

using namespace bpftsim;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr const char* kFixedProfile = "v5.15+2.2+2.8+2.9+2.11+2.12";

const std::vector<std::string>& races() {
  static const std::vector<std::string> names = {"4.3-uaf-rearm-then-delete", "4.8-mutual-cancel",
                                                 "4.9-cancel-vs-free", "4.10-init-vs-uref",
                                                 "4.12-copy-bug-timer-and-lock"};
  return names;
}

// The catalogue scenario with its objects pointed at the prebuilt .bpf.o (no clang per case)
// and its expectations dropped (the properties judge the run).
json base_scenario(const std::string& name) {
  const fs::path file = fs::path(BPFTSIM_SOURCE_DIR) / "scenarios" / "races" / (name + ".json");
  std::ifstream in(file);
  json doc = json::parse(in);
  for (auto& o : doc["objects"]) {
    const std::string stem = fs::path(o["path"].get<std::string>()).stem().string();  // x.bpf
    o["path"] = (fs::path(BPFTSIM_PROGS_DIR) / (stem + ".o")).string();
  }
  doc.erase("closed_by");
  doc["description"] = "generated from " + name + ": every action time a range";
  for (auto& a : doc["timeline"])
    a.erase("expect_ret");  // scripted returns; other schedules may return otherwise
  return doc;
}

// A generated scenario: the JSON text is the case (shown as is on a failure).
struct RaceScenario {
  std::string race;
  json doc;
};

// fixed: on the profile with every fix, expecting a clean run (no finding, quiescent); else on
// the seed profile, any finding allowed (the property judges them).
rc::Gen<RaceScenario> gen_race_scenario(bool fixed) {
  return rc::gen::exec([fixed] {
    RaceScenario s;
    s.race = *rc::gen::elementOf(races());
    s.doc = base_scenario(s.race);
    if (fixed) {
      s.doc["profile"] = kFixedProfile;
      s.doc["expect"] = json::object();
    } else {
      s.doc["expect"] = {{"findings", {{"allow_other_findings", true}}}};
    }
    s.doc["seed"] = *rc::gen::inRange<std::uint64_t>(1, 1'000'000);
    // Shrinking goes towards the first element of each list: no range, the smallest window.
    s.doc["window_ns"] = *rc::gen::element<std::int64_t>(20, 200, 1000, 5000);
    s.doc["interrupt_defer_max"] = *rc::gen::inRange(0, 4);
    s.doc["work_on_any_cpu"] = *rc::gen::arbitrary<bool>();
    const auto jitter = *rc::gen::element<std::int64_t>(0, 2000, 20'000);
    if (jitter > 0) s.doc["costs"] = {{"rcu_gp_jitter_ns", jitter}};
    for (auto& a : s.doc["timeline"]) {
      const auto width = *rc::gen::element<std::int64_t>(0, 1000, 10'000, 50'000);
      if (width == 0) continue;
      const std::int64_t at = a["at_ns"].get<std::int64_t>();
      a["at_ns"] = {{"min", at}, {"max", at + width}};
    }
    return s;
  });
}

tools::Scenario parse(const RaceScenario& s) {
  auto parsed = tools::parse_scenario("generated/" + s.race + ".json", s.doc.dump(1));
  if (auto* e = std::get_if<tools::InputError>(&parsed)) {
    RC_LOG() << e->text() << "\n";
    RC_FAIL("the generated scenario does not load");
  }
  return std::get<tools::Scenario>(parsed);
}

tools::RunResult run(const tools::Scenario& sc, const tools::RunOptions& o) {
  auto ran = tools::run_scenario(sc, o);
  if (auto* e = std::get_if<tools::InputError>(&ran)) {
    RC_LOG() << e->text() << "\n";
    RC_FAIL("the generated scenario does not run");
  }
  return std::move(std::get<tools::RunResult>(ran));
}

std::string describe(const tools::RunResult& r) {
  std::string s =
      fmt::format("status {}, outcome {}, {} decisions\n", sim::run_status_name(r.status),
                  tools::outcome_of(r), r.decisions.size());
  for (const auto& f : r.findings)
    s +=
        fmt::format("finding {} at {} ns: {}\n", sim::finding_kind_name(f.kind), f.t_ns, f.message);
  return s;
}

// bpftsim's shrinker on a failing case: it reads the scenario from its file, so the case is
// written to a fresh directory, loaded back and shrunk there. Returns the report for the log.
std::string shrink_report(const RaceScenario& s, const tools::RunOptions& opts,
                          const sim::DecisionList& failing) {
  std::string tmpl = (fs::temp_directory_path() / "bpftsim-prop-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) return "shrink: no temporary directory\n";
  const fs::path dir = tmpl;
  const fs::path file = dir / (s.race + ".json");
  std::ofstream(file) << s.doc.dump(1);
  std::string out;
  auto loaded = tools::load_scenario(file.string());
  if (auto* sc = std::get_if<tools::Scenario>(&loaded)) {
    const auto shrunk = tools::shrink(*sc, opts, failing, tools::ShrinkOptions{.max_runs = 500});
    if (!shrunk) {
      out = "shrink: the failure did not reproduce from the file\n";
    } else {
      out = fmt::format(
          "bpftsim shrink: outcome {}; {} -> {} actions, {} -> {} decisions, {} range(s) "
          "narrowed, {} runs, {}\n{}\nnon-default decisions (replay leniently):\n{}",
          shrunk->outcome, shrunk->actions_before, shrunk->actions_after, shrunk->decisions_before,
          shrunk->decisions_after, shrunk->ranges_narrowed, shrunk->runs,
          shrunk->minimal ? "1-minimal" : "not minimal (max_runs)",
          shrunk->scenario_json.empty() ? shrunk->document_error : shrunk->scenario_json,
          sim::format_decisions(shrunk->decisions));
    }
  } else {
    out = "shrink: " + std::get<tools::InputError>(loaded).text() + "\n";
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  return out;
}

// The options of a property's run: no trace kept (the digest is still computed).
tools::RunOptions untraced() {
  tools::RunOptions o;
  o.keep_trace = false;
  o.full_trace = false;
  return o;
}

// Counterexamples print as the scenario file they are (runnable with `bpftsim run`).
void showValue(const RaceScenario& s, std::ostream& os) {
  os << s.race << " with ranges:\n" << s.doc.dump(1);
}

}  // namespace

TEST_CASE("generated race scenarios with ranges: no finding on the profile with every fix",
          "[prop][explore][scenario]") {
  (void)prop::kRcDefaults;
  rc::prop("unscripted schedules of the seed bugs' actors are clean once fixed", [] {
    const RaceScenario s = *gen_race_scenario(true);
    const tools::Scenario sc = parse(s);
    const tools::RunOptions o = untraced();
    const tools::RunResult r = run(sc, o);
    RC_LOG() << describe(r);
    RC_TAG(s.race);
    if (!r.passed()) {
      for (const auto& f : r.failures)
        RC_LOG() << f << "\n";
      RC_LOG() << shrink_report(s, o, r.decisions);
    }
    RC_ASSERT(r.passed());
    RC_ASSERT(r.findings.empty());
  });
}

TEST_CASE("generated race scenarios with ranges: only the seed's races on the seed profile",
          "[prop][explore][scenario]") {
  (void)prop::kRcDefaults;
  rc::prop("findings are use_after_free/leak/deadlock/wild_pointer; replay reproduces", [] {
    const RaceScenario s = *gen_race_scenario(false);
    const tools::Scenario sc = parse(s);
    const tools::RunOptions o = untraced();
    const tools::RunResult r = run(sc, o);
    RC_LOG() << describe(r);
    RC_CLASSIFY(r.findings.empty(), "no finding");
    for (const auto& f : r.findings) {
      RC_TAG(std::string(sim::finding_kind_name(f.kind)));
      RC_ASSERT(f.kind == sim::FindingKind::kUseAfterFree || f.kind == sim::FindingKind::kLeak ||
                f.kind == sim::FindingKind::kDeadlock || f.kind == sim::FindingKind::kWildPointer);
    }
    RC_ASSERT(r.status != sim::RunStatus::kLimit);
    RC_ASSERT(r.status != sim::RunStatus::kDiverged);
    tools::RunOptions again = o;
    again.replay = r.decisions;
    const tools::RunResult rr = run(sc, again);
    RC_ASSERT(rr.digest == r.digest);
    RC_ASSERT(tools::outcome_of(rr) == tools::outcome_of(r));
  });
}
