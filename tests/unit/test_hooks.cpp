// Programs attached to kernel hook points (model/bpf_trace.h), the nanosleep action and the task
// helpers, on scenarios/progs/hooks_test.bpf.c: where an attached program runs (nested in the
// context that hits the hook, at that point of the kernel code), with which context arguments,
// once per kernel call, not after its link is closed, not recursively; what
// bpf_get_current_pid_tgid and bpf_get_current_task_btf return; and a section naming a hook the
// model lacks refused as bad input.
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "model/bpf_trace.h"
#include "model/helpers.h"
#include "model/profile.h"
#include "model/uapi.h"
#include "tests/unit/scenario_harness.h"
#include "tests/unit/tool_harness.h"
#include "tools/runner.h"
#include "tools/scenario.h"

using namespace bpftsim;
using namespace bpftsim::tools;
using bpftsim::testing::failures;
using bpftsim::testing::run;
namespace fs = std::filesystem;

namespace {

std::string hooks_object() {
  return std::string(BPFTSIM_PROGS_DIR) + "/hooks_test.bpf.o";
}

std::string scenario_text(int cpus, const std::string& timeline, const std::string& expect) {
  return fmt::format(R"({{"name": "hooks", "description": "d", "cpus": {},
 "objects": [{{"name": "t", "path": "{}"}}],
 "timeline": [
{}
 ],
 "expect": {}}})",
                     cpus, hooks_object(), timeline, expect);
}

Scenario parse(const std::string& text) {
  auto sc = parse_scenario("hooks.json", text);
  if (auto* e = std::get_if<InputError>(&sc)) FAIL(e->text());
  return std::get<Scenario>(std::move(sc));
}

RunResult run_text(const std::string& text, std::vector<std::string> watches = {}) {
  RunOptions opts;
  opts.watches = std::move(watches);
  return run(parse(text), opts);
}

// The last value a watch reported.
std::string last_watch(const RunResult& r, const std::string& what) {
  std::string v;
  for (const auto& c : r.watch_changes)
    if (c.what == what) v = c.value;
  return v;
}

std::vector<const sim::TraceRecord*> records(const RunResult& r, const std::string& event) {
  std::vector<const sim::TraceRecord*> out;
  for (const sim::TraceRecord& rec : r.trace().records())
    if (rec.event == event) out.push_back(&rec);
  return out;
}

std::string str_field(const sim::TraceRecord& rec, const std::string& key) {
  const sim::TraceValue* v = rec.field(key);
  if (!v) return "";
  if (const auto* s = std::get_if<std::string>(v)) return *s;
  return "";
}

}  // namespace

TEST_CASE("hooks: section names parse to the model's hook points", "[hooks]") {
  std::string err;
  auto h = model::parse_hook_section("fentry/do_nanosleep", &err);
  REQUIRE(h);
  CHECK(h->kind == model::HookKind::kFentry);
  CHECK(h->target == "do_nanosleep");
  h = model::parse_hook_section("tracepoint/timer/hrtimer_start", &err);
  REQUIRE(h);
  CHECK(h->kind == model::HookKind::kTracepoint);
  CHECK(h->target == "hrtimer_start");
  h = model::parse_hook_section("raw_tracepoint/hrtimer_cancel", &err);
  REQUIRE(h);
  CHECK(h->kind == model::HookKind::kRawTp);
  h = model::parse_hook_section("kprobe/hrtimer_start_range_ns", &err);
  REQUIRE(h);
  CHECK(h->kind == model::HookKind::kKprobe);
  // Not hook kinds: run by test_run or an interrupt, no error.
  for (const char* s : {"syscall", "tc", "xdp"}) {
    CHECK_FALSE(model::parse_hook_section(s, &err));
    CHECK(err.empty());
  }
  // Hook kinds with a target the model lacks, or kinds it cannot attach: an error naming it.
  for (const char* s : {"fentry/no_such_function", "tp_btf/sched_switch",
                        "tracepoint/sched/sched_switch", "kretprobe/do_nanosleep"}) {
    INFO(s);
    CHECK_FALSE(model::parse_hook_section(s, &err));
    CHECK(err.find(s) != std::string::npos);
  }
}

TEST_CASE("hooks: nanosleep runs fentry and fexit do_nanosleep once per call, in the task",
          "[hooks]") {
  // loader (pid 100) sleeps 5 us on cpu 0; then "other" (pid 101) sleeps on cpu 1.
  const std::string text = scenario_text(2, R"(
  {"at_ns": 0, "action": "attach", "prog": "t.sleep_entry", "expect_ret": 0},
  {"at_ns": 0, "action": "attach", "prog": "t.sleep_exit", "expect_ret": 0},
  {"at_ns": 1000, "cpu": 0, "action": "nanosleep", "duration_ns": 5000, "expect_ret": 0},
  {"at_ns": 20000, "cpu": 1, "action": "nanosleep", "process": "other", "duration_ns": 100, "expect_ret": 0},
  {"at_ns": 40000, "action": "exit"})",
                                         R"({
   "at": [{"at_ns": 10000, "globals": {"t.entry_runs": 1, "t.exit_runs": 1,
           "t.entry_task_pid": 100, "t.entry_task_tgid": 100, "t.entry_pid_tgid": 429496729700,
           "t.entry_arg1": 1, "t.exit_arg1": 1, "t.exit_ret": 0}}],
   "globals": {"t.entry_runs": 2, "t.exit_runs": 2, "t.entry_task_pid": 101,
               "t.entry_task_tgid": 101, "t.entry_pid_tgid": 433791696997,
               "t.entry_task_state": 0, "t.exit_task_state": 0},
   "findings": {}, "status": "quiescent"})");
  const RunResult r = run_text(text, {"t.entry_arg0"});
  INFO(failures(r));
  CHECK(r.passed());
  // The sleeper each call hands do_nanosleep: a fresh one per call.
  CHECK(last_watch(r, "t.entry_arg0") == "2");
  // Each program ran in the nanosleep task (the context of the action), fentry before the sleep,
  // fexit after it: their bpf_ktime_get_ns values are at least the duration apart.
  std::vector<std::int64_t> ktime;
  std::vector<std::uint32_t> ctxs;
  for (const sim::TraceRecord* rec : records(r, "bpf_helper"))
    if (str_field(*rec, "helper") == "bpf_ktime_get_ns") {
      ktime.push_back(rec->int_field("ret"));
      ctxs.push_back(rec->ctx);
    }
  REQUIRE(ktime.size() == 4);
  CHECK(ktime[1] - ktime[0] >= 5000);
  CHECK(ktime[3] - ktime[2] >= 100);
  CHECK(ctxs[0] == ctxs[1]);
  CHECK(ctxs[2] == ctxs[3]);
  CHECK(ctxs[0] != ctxs[2]);
  for (const sim::TraceRecord* rec : records(r, "ctx_begin"))
    if (rec->ctx == ctxs[0]) CHECK(str_field(*rec, "name").rfind("nanosleep", 0) == 0);
}

TEST_CASE("hooks: a closed link no longer runs its program; an unattached hook costs nothing",
          "[hooks]") {
  const std::string timeline = R"(
  {"at_ns": 0, "action": "attach", "prog": "t.sleep_entry", "expect_ret": 0},
  {"at_ns": 1000, "action": "nanosleep", "duration_ns": 100},
  {"at_ns": 2000, "action": "nanosleep", "duration_ns": 100},
  {"at_ns": 3000, "action": "close", "link": "t.sleep_entry", "expect_ret": 0},
  {"at_ns": 4000, "action": "nanosleep", "duration_ns": 100},
  {"at_ns": 10000, "action": "exit"})";
  const RunResult r = run_text(scenario_text(
      1, timeline, R"({"globals": {"t.entry_runs": 2, "t.exit_runs": 0}, "findings": {}})"));
  INFO(failures(r));
  CHECK(r.passed());
  // Without any program attached, a nanosleep leaves no program record.
  const RunResult bare = run_text(scenario_text(1, R"(
  {"at_ns": 1000, "action": "nanosleep", "duration_ns": 100, "expect_ret": 0})",
                                                R"({"findings": {}})"));
  CHECK(bare.passed());
  CHECK(records(bare, "bpf_prog_run").empty());
  CHECK(records(bare, "do_nanosleep").size() == 1);
}

TEST_CASE("hooks: hrtimer tracepoint programs run nested in the code that hits them", "[hooks]") {
  // arm starts slot 0's timer (10 us); it expires; arm again (init -EBUSY, start 0); cancel.
  const std::string timeline = R"(
  {"at_ns": 0, "action": "attach", "prog": "t.on_start", "expect_ret": 0},
  {"at_ns": 0, "action": "attach", "prog": "t.on_cancel", "expect_ret": 0},
  {"at_ns": 0, "action": "attach", "prog": "t.on_expire_entry", "expect_ret": 0},
  {"at_ns": 0, "action": "attach", "prog": "t.on_expire_exit", "expect_ret": 0},
  {"at_ns": 1000, "action": "run", "prog": "t.arm", "expect_ret": 0},
  {"at_ns": 30000, "action": "run", "prog": "t.arm", "expect_ret": 0},
  {"at_ns": 31000, "action": "run", "prog": "t.cancel", "expect_ret": 0},
  {"at_ns": 50000, "action": "exit"})";
  // Expiry: expire_entry and expire_exit once, hrtimer_cancel once (__remove_hrtimer dequeues the
  // expiring timer); the cancel of the re-armed timer hits hrtimer_cancel again.
  const RunResult r = run_text(
      scenario_text(1, timeline, R"({"globals": {"t.tp_start_runs": 2, "t.tp_cancel_runs": 2,
      "t.tp_expire_entry_runs": 1, "t.tp_expire_exit_runs": 1, "t.callbacks": 1,
      "t.tp_start_mode": 5, "t.arm_start": 0, "t.cancel_ret": 1}, "findings": {}, "status": "quiescent"})"),
      {"t.tp_start_hrtimer", "t.tp_expire_hrtimer"});
  INFO(failures(r));
  CHECK(r.passed());
  // ctx[0] is the hrtimer the trace names (its owner object id), the same at start and expiry.
  const auto starts = records(r, "hrtimer_start");
  REQUIRE(starts.size() == 2);
  const std::string hrtimer = std::to_string(starts[0]->int_field("hrtimer"));
  CHECK(last_watch(r, "t.tp_start_hrtimer") == hrtimer);
  CHECK(last_watch(r, "t.tp_expire_hrtimer") == hrtimer);
  // Nesting: the first hrtimer_start record, then on_start's run in the same context (the arm
  // task), then arm's bpf_timer_start returns in that context.
  const auto& recs = r.trace().records();
  std::size_t i = 0;
  while (i < recs.size() && recs[i].event != "hrtimer_start")
    ++i;
  REQUIRE(i + 1 < recs.size());
  const std::uint32_t arm_ctx = recs[i].ctx;
  CHECK(recs[i + 1].event == "bpf_prog_run");
  CHECK(str_field(recs[i + 1], "name") == "on_start");
  CHECK(recs[i + 1].ctx == arm_ctx);
  bool start_returned = false;
  for (std::size_t j = i + 1; j < recs.size() && !start_returned; ++j)
    start_returned = recs[j].event == "bpf_helper" && recs[j].ctx == arm_ctx &&
                     str_field(recs[j], "helper") == "bpf_timer_start";
  CHECK(start_returned);
}

TEST_CASE("hooks: a program does not re-enter itself on one CPU (prog->active)", "[hooks]") {
  // on_start_fn (fentry/hrtimer_start_range_ns, outside the base lock) starts slot 1's timer
  // inside arm's start; that start's own hrtimer_start_range_ns finds on_start_fn running.
  const std::string timeline = R"(
  {"at_ns": 0, "action": "attach", "prog": "t.on_start_fn", "expect_ret": 0},
  {"at_ns": 1000, "action": "run", "prog": "t.arm", "expect_ret": 0},
  {"at_ns": 50000, "action": "exit"})";
  const RunResult r = run_text(scenario_text(
      1, timeline, R"({"globals": {"t.fn_start_runs": 1, "t.nested_start": 0, "t.arm_start": 0,
      "t.callbacks": 2}, "findings": {}, "status": "quiescent"})"));
  INFO(failures(r));
  CHECK(r.passed());
  const auto misses = records(r, "bpf_prog_recursion_miss");
  REQUIRE(misses.size() == 1);
  CHECK(str_field(*misses[0], "hook") == "fentry/hrtimer_start_range_ns");
}

TEST_CASE("hooks: the task_struct of bpf_get_current_task_btf is read-only", "[hooks]") {
  const std::string timeline = R"(
  {"at_ns": 0, "action": "attach", "prog": "t.write_task", "expect_ret": 0},
  {"at_ns": 1000, "action": "run_fentry", "fentry": "bpf_fentry_test1"})";
  const RunResult r = run_text(scenario_text(
      1, timeline,
      R"({"finding_match": [{"kind": "program_fault"}], "findings": {"program_fault": 1},
          "status": "stopped"})"));
  INFO(failures(r));
  CHECK(r.passed());
  REQUIRE(!r.findings.empty());
  CHECK(r.findings[0].message.find("write_task") != std::string::npos);
}

TEST_CASE("hooks: the task helpers exist in every profile", "[hooks][eras]") {
  for (const auto& v : model::kernel_versions()) {
    const auto p = model::profile_by_name(v.name);
    REQUIRE(p);
    INFO(v.name);
    CHECK(model::helpers::helper_in_profile(model::kHelperGetCurrentTaskBtf, *p));
    CHECK(model::helpers::helper_in_profile(model::kHelperGetCurrentPidTgid, *p));
  }
}

TEST_CASE("hooks: attaching to a hook the model lacks is bad input naming the file and section",
          "[hooks][input]") {
  testing::TempDir tmp;
  const std::string text = scenario_text(1, R"(
  {"at_ns": 0, "action": "wait"},
  {"at_ns": 0, "action": "attach", "prog": "t.bad_hook"})",
                                         R"({})");
  testing::write_file(tmp.path / "bad.json", text);
  const testing::Cmd c = testing::run_tool("run bad.json", tmp.path);
  INFO(c.out);
  CHECK(c.code == 2);
  CHECK(c.out.find("bad.json") != std::string::npos);
  CHECK(c.out.find("/timeline/1/prog") != std::string::npos);
  CHECK(c.out.find("fentry/no_such_function") != std::string::npos);
  CHECK(c.out.find("do_nanosleep") != std::string::npos);  // what it could attach to
  // And a nanosleep without a duration is a schema error at its JSON path.
  testing::write_file(tmp.path / "bad2.json", scenario_text(1, R"(
  {"at_ns": 0, "action": "nanosleep"})",
                                                            R"({})"));
  const testing::Cmd c2 = testing::run_tool("run bad2.json", tmp.path);
  INFO(c2.out);
  CHECK(c2.code == 2);
  CHECK(c2.out.find("bad2.json") != std::string::npos);
  CHECK(c2.out.find("/timeline/0") != std::string::npos);
}
