// v7.0's lock-free timer unit (model/bpf_async.*, reference 2.20-2.22) and the profiles it
// comes with: what each of 2.20, 2.21 and 2.22 changes, shown by the v7.0 scenarios
// (scenarios/errors/*-v7.0.json, races/4.15-*, conformance/timer_start_delete_race_v7_0.json,
// conformance/timer_start_deadlock_*.json)
// run by the bpftsim binary under their own profile and under the profiles before, where they
// must fail (or not load) as the reference says.
#include <catch2/catch.hpp>

#include <string>

#include "model/helpers.h"
#include "model/profile.h"
#include "model/uapi.h"
#include "tests/unit/tool_harness.h"

using namespace bpftsim;
using namespace bpftsim::testing;

namespace {
std::string scenario(const std::string& dir_and_name) {
  return std::string(BPFTSIM_SOURCE_DIR) + "/scenarios/" + dir_and_name;
}
}  // namespace

TEST_CASE("bpf_timer_cancel_async is a kfunc from 2.21 on, resolved by name", "[async][eras]") {
  CHECK(model::helpers::kfunc_by_name("bpf_timer_cancel_async").value_or(-1) ==
        model::kKfuncTimerCancelAsync);
  CHECK(!model::helpers::kfunc_by_name("bpf_rcu_read_lock").has_value());
  CHECK(model::helpers::helper_name(model::kKfuncTimerCancelAsync) == "bpf_timer_cancel_async");
  for (const char* p : {"v5.15", "v6.14", "v6.14+2.20"})
    CHECK(!model::helpers::helper_in_profile(model::kKfuncTimerCancelAsync,
                                             *model::profile_by_name(p)));
  for (const char* p : {"v6.14+2.20+2.21", "v7.0", "v5.15+2.20+2.21"})
    CHECK(model::helpers::helper_in_profile(model::kKfuncTimerCancelAsync,
                                            *model::profile_by_name(p)));
}

TEST_CASE("a program calling bpf_timer_cancel_async does not load before 2.21", "[async][eras]") {
  TempDir dir;
  const std::string file = scenario("errors/cancel-async-0-1-v7.0.json");
  CHECK(run_tool("run " + file, dir.path).code == 0);
  CHECK(run_tool("run " + file + " --profile v6.14+2.20+2.21", dir.path).code == 0);
  for (const char* old : {"v6.14", "v6.14+2.20", "v5.15"}) {
    const Cmd c = run_tool("run " + file + " --profile " + old, dir.path);
    INFO(old << "\n" << c.out);
    CHECK(c.code == 2);
    CHECK_THAT(c.out, Catch::Contains("section 'syscall': program 'cancel_async': kfunc "
                                      "bpf_timer_cancel_async is not in kernel " +
                                      std::string(old)));
    CHECK_THAT(c.out, Catch::Contains("/objects/0/path"));
  }
}

TEST_CASE("an unknown kfunc is a load error naming it and its section, on every profile",
          "[async]") {
  TempDir dir;
  const auto file = dir.file("unknown-kfunc.json", R"({
  "name": "unknown-kfunc", "description": "loads kfunc_unknown.bpf.c", "cpus": 1,
  "objects": [{"name": "k", "path": ")" + scenario("progs/kfunc_unknown.bpf.c") +
                                                       R"("}],
  "timeline": [{"at_ns": 0, "cpu": 0, "action": "run", "prog": "k.calls_unknown_kfunc"}],
  "expect": {}
})");
  for (const char* p : {"v5.15", "v7.0"}) {
    const Cmd c = run_tool("run " + file.string() + " --profile " + p, dir.path);
    INFO(p << "\n" << c.out);
    CHECK(c.code == 2);
    CHECK_THAT(c.out, Catch::Contains("section 'syscall'"));
    CHECK_THAT(c.out, Catch::Contains("kfunc call to 'bpf_rcu_read_lock' is not supported"));
  }
}

// The F2 column of reference 4.17 on v7.0, and the profile before the change that made each.
TEST_CASE("v7.0 return values and the change each comes from", "[async][eras]") {
  TempDir dir;
  struct Row {
    const char* file;
    const char* profile;
    int code;
    const char* says;  // what a failing run prints
  };
  for (const Row& r : {
           Row{"errors/cancel-async-0-1-v7.0.json", "v7.0", 0, ""},
           Row{"errors/cancel-async-minus1-running-v7.0.json", "v7.0", 0, ""},
           Row{"errors/cancel-async-ecanceled-nmi-v7.0.json", "v7.0", 0, ""},
           // 2.21 alone defers in NMI already.
           Row{"errors/cancel-async-ecanceled-nmi-v7.0.json", "v6.14+2.20+2.21", 0, ""},
           Row{"errors/cancel-eopnotsupp-hardirq-v7.0.json", "v7.0", 0, ""},
           // Before 2.22 a hardirq cancels synchronously.
           Row{"errors/cancel-eopnotsupp-hardirq-v7.0.json", "v6.14+2.20+2.21", 1,
               "t.callbacks is 0 at the end, expected 1"},
           Row{"errors/cancel-eopnotsupp-hardirq-v7.0.json", "v6.14", 1,
               "t.callbacks is 0 at the end, expected 1"},
           Row{"errors/start-deferred-nmi-v7.0.json", "v7.0", 0, ""},
           // 2.20 keeps the NMI refusal of the earlier eras.
           Row{"errors/start-deferred-nmi-v7.0.json", "v6.14+2.20", 1,
               "t.irq_ret is -95 at t=6000, expected 0"},
           Row{"errors/start-deferred-nmi-v7.0.json", "v6.14", 1,
               "t.irq_ret is -95 at t=6000, expected 0"},
           Row{"errors/start-enoent-being-freed-v7.0.json", "v7.0", 0, ""},
           // Without the temporary reference (2.20 alone) the start arms the timer of a cb
           // that is then freed: reference 4.15's use-after-free.
           Row{"errors/start-enoent-being-freed-v7.0.json", "v6.14+2.20", 1,
               "unexpected finding: use_after_free"},
           Row{"errors/init-ebusy-cmpxchg-loser-v7.0.json", "v7.0", 0, ""},
           // The lock serializes the two inits: the loser's -EBUSY is the check under the lock.
           Row{"errors/init-ebusy-cmpxchg-loser-v7.0.json", "v6.14", 1, "bpf_async_init_lost"},
           // 2.22 drops the prog reference at cancel_and_free, 2.21 only with the delayed free.
           Row{"errors/delete-drops-prog-at-once-v7.0.json", "v7.0", 0, ""},
           Row{"errors/delete-drops-prog-at-once-v7.0.json", "v6.14+2.20+2.21", 1,
               "the refcnt of t.hash_arm is 2 at t=11000, expected 1"},
           // 2.22's recursion guard: the worker's tracepoint program gets -EDEADLK. Before
           // 2.22 the hardirq start is synchronous and its tracepoint program self-deadlocks.
           Row{"errors/start-edeadlk-recursion-v7.0.json", "v7.0", 0, ""},
           Row{"errors/start-edeadlk-recursion-v7.0.json", "v6.14+2.20+2.21", 1,
               "waits in raw_spin_lock for hrtimer_base#0"},
           Row{"errors/start-edeadlk-recursion-v7.0.json", "v6.14", 1,
               "waits in spin_lock for bpf_timer_lock"},
           Row{"verifier/tracing-prog-timer-v7.0.json", "v7.0", 0, ""},
           Row{"verifier/tracing-prog-timer-v7.0.json", "v6.14+2.20", 2, "rule tracing_timer"},
       }) {
    const Cmd c =
        run_tool(std::string("run ") + scenario(r.file) + " --profile " + r.profile, dir.path);
    INFO(r.file << " on " << r.profile << "\n" << c.out);
    CHECK(c.code == r.code);
    if (r.code != 0) CHECK_THAT(c.out, Catch::Contains(r.says));
  }
}

// Reference 3.9's array form never reaches cancel_and_free; the hash form is 4.15, a
// use-after-free with 2.20 alone and none from 2.21 on (also under 4 seeds: [catalogue]).
TEST_CASE("timer_start_delete_race: array deletes -EINVAL, the hash race closed by 2.21",
          "[async][eras]") {
  TempDir dir;
  const std::string conf = scenario("conformance/timer_start_delete_race_v7_0.json");
  for (const char* p : {"v7.0", "v6.14+2.20", "v6.14"}) {
    const Cmd c = run_tool("run " + conf + " --profile " + p, dir.path);
    INFO(p << "\n" << c.out);
    CHECK(c.code == 0);
  }
  const std::string race = scenario("races/4.15-start-vs-delete.json");
  const Cmd bug = run_tool("run " + race, dir.path);
  INFO(bug.out);
  CHECK(bug.code == 0);  // its expectations describe the bug: they hold on v6.14+2.20
  CHECK_THAT(bug.out, Catch::Contains("findings=1"));
  for (const char* p : {"v7.0", "v6.14+2.20+2.21", "v6.14"}) {
    const Cmd c = run_tool("run " + race + " --profile " + p, dir.path);
    INFO(p << "\n" << c.out);
    CHECK(c.code == 1);
    CHECK_THAT(c.out, Catch::Contains("0 use_after_free finding(s), expected >=1"));
  }
}

// timer_start_deadlock (reference 3.8, 2.22): returns on v7.0 with tp_called 1; the same program
// deadlocks before 2.22, on the timer's bpf_spin_lock up to v6.14 and on the hrtimer base lock
// with the lock-free unit of 2.20+2.21.
TEST_CASE("timer_start_deadlock returns on v7.0 and deadlocks before 2.22", "[async][eras]") {
  TempDir dir;
  const std::string v70 = scenario("conformance/timer_start_deadlock_v7_0.json");
  const std::string v614 = scenario("conformance/timer_start_deadlock_v6_14.json");
  const Cmd ok = run_tool("run " + v70, dir.path);
  INFO(ok.out);
  CHECK(ok.code == 0);
  CHECK_THAT(ok.out, Catch::Contains("status=quiescent"));
  struct Row {
    const char* profile;
    const char* says;
  };
  for (const Row& r : {Row{"v6.14", "waits in spin_lock for bpf_timer_lock"},
                       Row{"v5.16", "waits in spin_lock for bpf_timer_lock"},
                       Row{"v6.14+2.20+2.21", "waits in raw_spin_lock for hrtimer_base#0"}}) {
    const Cmd c = run_tool("run " + v70 + " --profile " + r.profile, dir.path);
    INFO(r.profile << "\n" << c.out);
    CHECK(c.code == 1);
    CHECK_THAT(c.out, Catch::Contains("unexpected finding: deadlock"));
    CHECK_THAT(c.out, Catch::Contains(r.says));
  }
  // The v6.14 scenario's expectations (the deadlock) hold up to v6.14 and stop at 2.22.
  for (const char* p : {"v6.14", "v6.1", "v5.16"}) {
    const Cmd c = run_tool("run " + v614 + " --profile " + p, dir.path);
    INFO(p << "\n" << c.out);
    CHECK(c.code == 0);
  }
  const Cmd fixed = run_tool("run " + v614 + " --profile v7.0", dir.path);
  INFO(fixed.out);
  CHECK(fixed.code == 1);
  CHECK_THAT(fixed.out, Catch::Contains("status=quiescent"));
}
