// The scenario format's richer expectations (scenarios/README.md "expect"): sets of values,
// "unset", finding patterns, trace record counts, the order of events, state at an instant, and
// closed_by. Each is tried on a real scenario of the library both ways: the expectation that
// describes the run passes, a wrong one fails naming its JSON pointer.
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "model/fault_inject.h"
#include "model/profile.h"
#include "tests/unit/scenario_harness.h"
#include "tools/runner.h"
#include "tools/scenario.h"

using bpftsim::testing::failures;
using namespace bpftsim::tools;
using Json = nlohmann::json;

namespace {

std::string library(const std::string& rel) {
  return std::string(BPFTSIM_SOURCE_DIR) + "/scenarios/" + rel;
}

Json read_json(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return Json::parse(ss.str());
}

// Runs the library scenario `rel` with its "expect" object patched by `patch` (keys replaced).
RunResult run_patched(const std::string& rel, const Json& patch, const Json& top = Json::object()) {
  Json doc = read_json(library(rel));
  for (const auto& [k, v] : patch.items())
    doc["expect"][k] = v;
  for (const auto& [k, v] : top.items())
    doc[k] = v;
  auto sc = parse_scenario(library(rel), doc.dump(2));
  if (auto* e = std::get_if<InputError>(&sc)) FAIL(e->text());
  auto r = run_scenario(std::get<Scenario>(sc));
  if (auto* e = std::get_if<InputError>(&r)) FAIL(e->text());
  return std::get<RunResult>(std::move(r));
}

}  // namespace

TEST_CASE("expect: {\"in\": [...]} and \"unset\" for globals", "[expect]") {
  // 4.8: both cancels spin forever, so their results keep the program's initial value (99).
  auto ok = run_patched("races/4.8-mutual-cancel.json", {{"globals",
                                                          {{"t.cb1_cancel_ret", "unset"},
                                                           {"t.cb2_cancel_ret", "unset"},
                                                           {"t.arm1_start", {{"in", {-22, 0}}}}}}});
  INFO(failures(ok));
  CHECK(ok.passed());
  auto bad = run_patched("races/4.8-mutual-cancel.json",
                         {{"globals", {{"t.arm1_start", {{"in", {-22, 1}}}}}}});
  REQUIRE_FALSE(bad.passed());
  CHECK_THAT(failures(bad), Catch::Contains("/expect/globals/t.arm1_start: t.arm1_start is 0 at "
                                            "the end, expected in [-22,1]"));
  // 4.1: the cancel returned, so its result is no longer the initial value.
  auto set = run_patched("races/4.1-cancel-while-running.json",
                         {{"globals", {{"t.cancel_ret", "unset"}}}});
  REQUIRE_FALSE(set.passed());
  CHECK_THAT(failures(set), Catch::Contains("expected unset (99)"));
}

TEST_CASE("expect: finding_match on kind, site, object, history and the wait-for cycle",
          "[expect]") {
  auto ok = run_patched("races/4.8-mutual-cancel.json",
                        {{"finding_match",
                          {{{"kind", "deadlock"},
                            {"cycle",
                             {{{"ctx", "softirq"}, {"waits_in", "hrtimer_cancel"}},
                              {{"ctx", "softirq"}, {"waits_in", "hrtimer_cancel"}}}}}}}});
  INFO(failures(ok));
  CHECK(ok.passed());
  auto wrong_cycle = run_patched(
      "races/4.8-mutual-cancel.json",
      {{"finding_match",
        {{{"kind", "deadlock"}, {"cycle", {{{"ctx", "task"}}, {{"ctx", "softirq"}}}}}}}});
  REQUIRE_FALSE(wrong_cycle.passed());
  CHECK_THAT(failures(wrong_cycle), Catch::Contains("/expect/finding_match/0: no finding matches "
                                                    "deadlock cycle=[task, softirq]"));
  auto uaf = run_patched("races/4.9-cancel-vs-free.json",
                         {{"finding_match",
                           {{{"kind", "use_after_free"},
                             {"site", "hrtimer_try_to_cancel"},
                             {"object", "bpf_hrtimer"},
                             {"history", {"alloc", "free by bpf_timer_cancel_and_free"}}}}}});
  INFO(failures(uaf));
  CHECK(uaf.passed());
  auto wrong_site =
      run_patched("races/4.9-cancel-vs-free.json",
                  {{"finding_match", {{{"kind", "use_after_free"}, {"site", "__run_hrtimer"}}}}});
  CHECK_FALSE(wrong_site.passed());
  // History entries must come in the order given.
  auto wrong_order =
      run_patched("races/4.9-cancel-vs-free.json",
                  {{"finding_match",
                    {{{"kind", "use_after_free"},
                      {"history", {"free by bpf_timer_cancel_and_free", "alloc"}}}}}});
  CHECK_FALSE(wrong_order.passed());
}

TEST_CASE("expect: events counts and the order of events", "[expect]") {
  // 4.1: the cancel waits (blocks) for the running callback; it returns after the callback.
  auto ok = run_patched(
      "races/4.1-cancel-while-running.json",
      {{"events", {{"block", ">=1"}, {"bpf_timer_cb", 1}}},
       {"order",
        {{{"first", {{"action_start", 1}}}, {"then", {{"callback_exit", "t.long_cb"}}}},
         {{"first", {{"callback_exit", "t.long_cb"}}}, {"then", {{"action_done", 1}}}},
         {{"first", {{"callback_entry", "t.long_cb"}}},
          {"then", {{"helper", "bpf_timer_cancel"}, {"ret", 0}, {"prog", "t.canceller"}}}}}}});
  INFO(failures(ok));
  CHECK(ok.passed());
  auto bad =
      run_patched("races/4.1-cancel-while-running.json",
                  {{"events", {{"block", 0}}},
                   {"order",
                    {{{"first", {{"action_done", 1}}}, {"then", {{"callback_exit", "t.long_cb"}}}},
                     {{"first", {{"helper", "bpf_timer_cancel"}, {"ret", 1}}},
                      {"then", {{"action_done", 2}}}}}}});
  REQUIRE_FALSE(bad.passed());
  const std::string f = failures(bad);
  CHECK_THAT(f, Catch::Contains("/expect/events/block:"));
  CHECK_THAT(f, Catch::Contains("/expect/order/0: {\"action_done\":1} (trace record"));
  CHECK_THAT(f, Catch::Contains("/expect/order/1/first: {\"helper\":\"bpf_timer_cancel\","
                                "\"ret\":1} never happened"));
}

TEST_CASE("expect: state at an instant (globals, alive, refcnt, usercnt, invariants)", "[expect]") {
  // 4.1 at 2 us: T armed and running nothing yet; the arm program holds its fd and the timer's
  // reference (2); the map has its one fd.
  auto ok =
      run_patched("races/4.1-cancel-while-running.json", {{"at",
                                                           {{{"at_ns", 1000},
                                                             {"globals", {{"t.callbacks", 0}}},
                                                             {"alive", {{"armed_timers", 1}}},
                                                             {"refcnt", {{"t.arm", 2}}},
                                                             {"usercnt", {{"t.timers", 1}}},
                                                             {"invariants", true}}}}});
  INFO(failures(ok));
  CHECK(ok.passed());
  auto bad = run_patched("races/4.1-cancel-while-running.json",
                         {{"at",
                           {{{"at_ns", 1000},
                             {"alive", {{"armed_timers", 0}}},
                             {"refcnt", {{"t.arm", {{"in", {1, 3}}}}}}}}}});
  REQUIRE_FALSE(bad.passed());
  CHECK_THAT(failures(bad), Catch::Contains("/expect/at/0/alive/armed_timers: 1 armed timer(s) "
                                            "at t=1000, expected 0"));
  CHECK_THAT(failures(bad), Catch::Contains("/expect/at/0/refcnt/t.arm: the refcnt of t.arm is 2 "
                                            "at t=1000, expected in [1,3]"));
}

TEST_CASE("closed_by names known fixes only", "[expect]") {
  Json doc = read_json(library("races/4.9-cancel-vs-free.json"));
  doc["closed_by"] = {"2.9", "2.12"};
  auto sc = parse_scenario(library("races/4.9-cancel-vs-free.json"), doc.dump(2));
  REQUIRE(std::holds_alternative<Scenario>(sc));
  CHECK(std::get<Scenario>(sc).closed_by == std::vector<std::string>{"2.9", "2.12"});
  doc["closed_by"] = {"2.9", "7.7"};
  auto bad = parse_scenario(library("races/4.9-cancel-vs-free.json"), doc.dump(2));
  REQUIRE(std::holds_alternative<InputError>(bad));
  // The message lists every fix the model has (model::profile_fixes()).
  std::string known;
  for (const auto& f : bpftsim::model::profile_fixes())
    known += (known.empty() ? "" : ", ") + f.id;
  CHECK(known.find("2.9") != std::string::npos);
  CHECK_THAT(std::get<InputError>(bad).text(),
             Catch::Contains("at /closed_by/1: unknown fix '7.7' (known: " + known + ")"));
}

TEST_CASE("the schema's finding kinds are the engine's (sim/finding.h), all but replay_divergence",
          "[expect]") {
  const Json schema = Json::parse(scenario_schema_text());
  std::set<std::string> counted, matched, engine;
  for (const auto& [k, v] : schema["$defs"]["findings"]["properties"].items())
    if (k != "allow_other_findings" && k != "comment") counted.insert(k);
  for (const auto& k : schema["$defs"]["finding_matches"]["items"]["properties"]["kind"]["enum"])
    matched.insert(k.get<std::string>());
  for (auto kind : bpftsim::sim::all_finding_kinds())
    if (kind != bpftsim::sim::FindingKind::kReplayDivergence)
      engine.insert(bpftsim::sim::finding_kind_name(kind));
  // The top level and the alternatives of any_of share them.
  CHECK(schema["$defs"]["expect"]["properties"]["findings"]["$ref"] == "#/$defs/findings");
  CHECK(schema["$defs"]["expect_alt"]["properties"]["findings"]["$ref"] == "#/$defs/findings");
  CHECK(counted == engine);
  CHECK(matched == engine);
}

TEST_CASE("the schema's fault sites are the model's (model/fault_inject.h)", "[expect]") {
  const Json schema = Json::parse(scenario_schema_text());
  std::set<std::string> in_schema, in_model;
  for (const auto& s : schema["properties"]["faults"]["items"]["properties"]["site"]["enum"])
    in_schema.insert(s.get<std::string>());
  for (auto site : bpftsim::model::all_fault_sites()) {
    in_model.insert(bpftsim::model::fault_site_name(site));
    CHECK(bpftsim::model::fault_site_by_name(bpftsim::model::fault_site_name(site)) == site);
  }
  CHECK(in_schema == in_model);
}

TEST_CASE("expect.at observers never change the run: same digest and decisions with or without",
          "[expect]") {
  // 4.5 has many simultaneous events (scheduler ties). Observers at every 250 ns, many of them on
  // instants where events are due, must leave the schedule alone: they are not events.
  Json at = Json::array();
  for (int t = 0; t <= 20000; t += 250)
    at.push_back({{"at_ns", t}, {"invariants", true}});
  auto plain = run_patched("races/4.5-ctrl-c.json", Json::object());
  auto observed = run_patched("races/4.5-ctrl-c.json", {{"at", at}});
  INFO(failures(observed));
  CHECK(observed.passed());
  CHECK(!plain.decisions.empty());
  CHECK(observed.digest == plain.digest);
  CHECK(observed.decisions.size() == plain.decisions.size());
  // An observer past the end of a quiescent run reads the final state; one past a stopped run
  // is reported as not checked.
  auto late = run_patched("races/4.5-ctrl-c.json",
                          {{"at", {{{"at_ns", 900000000}, {"alive", {{"armed_timers", 0}}}}}}});
  INFO(failures(late));
  CHECK(late.passed());
  auto stopped = run_patched("races/4.8-mutual-cancel.json",
                             {{"at", {{{"at_ns", 900000000}, {"invariants", true}}}}});
  REQUIRE_FALSE(stopped.passed());
  CHECK_THAT(failures(stopped), Catch::Contains("/expect/at/0: not checked, the run ended "
                                                "(stopped)"));
}
