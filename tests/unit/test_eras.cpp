// Kernel eras: what the era features of the profiles change (reference 2.6, 2.7 and bpf_loop),
// through the scenarios that state them (scenarios/errors/start-*-v6.*.json,
// load-bpf-loop-v5.17.json) run by the bpftsim binary under their own profile and under the era
// before, where they must fail.
#include <catch2/catch.hpp>

#include <string>

#include "model/helpers.h"
#include "model/profile.h"
#include "model/uapi.h"
#include "tests/unit/tool_harness.h"

using namespace bpftsim;
using namespace bpftsim::testing;

namespace {
std::string scenario(const std::string& name) {
  return std::string(BPFTSIM_SOURCE_DIR) + "/scenarios/errors/" + name;
}
}  // namespace

TEST_CASE("bpf_loop is a helper from v5.17 on (helper_in_profile)", "[eras]") {
  CHECK(!model::helpers::helper_in_profile(model::kHelperLoop, *model::profile_by_name("v5.15")));
  CHECK(!model::helpers::helper_in_profile(model::kHelperLoop, *model::profile_by_name("v5.16")));
  CHECK(model::helpers::helper_in_profile(model::kHelperLoop, *model::profile_by_name("v5.17")));
  CHECK(model::helpers::helper_in_profile(model::kHelperLoop,
                                          *model::profile_by_name("v5.15+bpf_loop")));
  for (const char* p : {"v5.15", "v6.14"})
    CHECK(model::helpers::helper_in_profile(model::kHelperTimerStart, *model::profile_by_name(p)));
  // bpf_get_current_comm (16) is not modelled
  CHECK(!model::helpers::helper_in_profile(16, *model::profile_by_name("v6.14")));
}

TEST_CASE("a program calling bpf_loop does not load before v5.17: unknown func bpf_loop#181",
          "[eras]") {
  TempDir dir;
  const std::string file = scenario("load-bpf-loop-v5.17.json");
  const Cmd ok = run_tool("run " + file, dir.path);
  INFO(ok.out);
  CHECK(ok.code == 0);
  for (const char* old : {"v5.15", "v5.16", "v5.15+2.2"}) {
    const Cmd c = run_tool("run " + file + " --profile " + old, dir.path);
    INFO(old << "\n" << c.out);
    CHECK(c.code == 2);
    CHECK_THAT(c.out, Catch::Contains("section 'syscall': program 'run_loop': unknown func "
                                      "bpf_loop#181 (kernel " +
                                      std::string(old) + " does not have it)"));
    CHECK_THAT(c.out, Catch::Contains("/objects/0/path"));
  }
  CHECK(run_tool("run " + file + " --profile v5.15+bpf_loop", dir.path).code == 0);
}

// bpf_timer_start's flags check (kernel/bpf/helpers.c): -EINVAL for any flag before v6.4, for
// anything but BPF_F_TIMER_ABS in v6.4-v6.6, for anything but ABS|CPU_PIN from v6.7.
TEST_CASE("bpf_timer_start flags per era: ABS from v6.4, CPU_PIN from v6.7", "[eras]") {
  TempDir dir;
  struct Row {
    const char* file;
    const char* profile;
    int code;
    const char* says;  // what a failing run prints
  };
  for (const Row& r :
       {Row{"start-flags-v6.4-abs.json", "v6.4", 0, ""},
        Row{"start-flags-v6.4-abs.json", "v6.1", 1, "returned -22 (-EINVAL), expected 0"},
        Row{"start-flags-v6.4-abs.json", "v5.15+2.6", 0, ""},
        Row{"start-flags-v6.7-cpu-pin.json", "v6.7", 0, ""},
        Row{"start-flags-v6.7-cpu-pin.json", "v6.14", 0, ""},
        Row{"start-flags-v6.7-cpu-pin.json", "v6.4", 1, "returned -22 (-EINVAL), expected 0"},
        Row{"start-abs-negative-v6.4.json", "v6.1", 1, "returned -22 (-EINVAL), expected 0"},
        Row{"start-einval-flags.json", "v6.1", 0, ""},
        Row{"start-einval-flags.json", "v6.4", 1, "returned 0, expected -22"}}) {
    const Cmd c =
        run_tool(std::string("run ") + scenario(r.file) + " --profile " + r.profile, dir.path);
    INFO(r.file << " on " << r.profile << "\n" << c.out);
    CHECK(c.code == r.code);
    if (r.code == 1) CHECK_THAT(c.out, Catch::Contains(r.says));
  }
}

// Our mirrors of the kernel's selftests of each era (scenarios/conformance/), run on the era
// before the one they were written for: each fails there, for the reason the era fixed.
TEST_CASE("timer.c of v6.8 and timer_lockup of v6.10 need their eras", "[eras]") {
  TempDir dir;
  const std::string conf = std::string(BPFTSIM_SOURCE_DIR) + "/scenarios/conformance/";
  // timer.c v6.8 on v6.4: no BPF_F_TIMER_CPU_PIN, so test4/test5's timers never run.
  const Cmd timer = run_tool("run " + conf + "timer_v6_8.json --profile v6.4", dir.path);
  INFO(timer.out);
  CHECK(timer.code == 1);
  CHECK_THAT(timer.out, Catch::Contains("t.pinned_callback_check is 0 at t=70000, expected 2"));
  CHECK(run_tool("run " + conf + "timer_v6_8.json", dir.path).code == 0);
  // timer_lockup on v6.8 (no 2.11): the callbacks spin in hrtimer_cancel for each other.
  const Cmd lockup = run_tool("run " + conf + "timer_lockup_v6_10.json --profile v6.8", dir.path);
  INFO(lockup.out);
  CHECK(lockup.code == 1);
  CHECK_THAT(lockup.out, Catch::Contains("status=stopped"));
  CHECK_THAT(lockup.out, Catch::Contains("deadlock"));
  CHECK(run_tool("run " + conf + "timer_lockup_v6_8.json", dir.path).code == 0);
  CHECK(run_tool("run " + conf + "timer_lockup_v6_10.json", dir.path).code == 0);
}

// Reference 2.4 (v6.1, bpf_mem_alloc for no-prealloc hash maps), a map change, not a fix: a
// deleted or replaced no-prealloc element is freed, its timer cancelled and freed, by the delete
// or update itself instead of one RCU grace period later. The seed's outcomes (races/) hold up to
// v5.17 and stop at v6.1 (or with 2.4 alone); the new ones (errors/*-v6.1.json) the other way.
TEST_CASE("no-prealloc hash elements and their timers are freed at once from v6.1 (2.4)",
          "[eras]") {
  TempDir dir;
  const std::string root = std::string(BPFTSIM_SOURCE_DIR) + "/scenarios/";
  struct Row {
    const char* file;
    const char* says_on_new;  // what the seed's scenario prints on v6.1
    const char* says_on_old;  // what the v6.1 scenario prints on v5.17
  };
  for (const Row& r : {Row{"4.3-noprealloc-delete-then-rearm.json",
                           "t.start_after is -22 at the end, expected 0", ""},
                       Row{"4.12-noprealloc-old-timer-fires.json",
                           "t.callbacks is 0 at the end, expected 1", ""}}) {
    const std::string file = root + "races/" + r.file;
    for (const char* old : {"v5.15", "v5.17", "v5.17+2.9"}) {
      const Cmd c = run_tool("run " + file + " --profile " + old, dir.path);
      INFO(r.file << " on " << old << "\n" << c.out);
      CHECK(c.code == 0);
    }
    for (const char* now : {"v6.1", "v5.15+2.4", "v6.14"}) {
      const Cmd c = run_tool("run " + file + " --profile " + now, dir.path);
      INFO(r.file << " on " << now << "\n" << c.out);
      CHECK(c.code == 1);
      CHECK_THAT(c.out, Catch::Contains(r.says_on_new));
    }
  }
  for (const Row& r : {Row{"start-einval-noprealloc-deleted-v6.1.json", "",
                           "t.start_after is 0 at the end, expected -22"},
                       Row{"noprealloc-update-cancels-old-timer-v6.1.json", "",
                           "t.callbacks is 1 at the end, expected 0"}}) {
    const std::string file = root + "errors/" + r.file;
    for (const char* now : {"v6.1", "v5.15+2.4", "v6.14"}) {
      const Cmd c = run_tool("run " + file + " --profile " + now, dir.path);
      INFO(r.file << " on " << now << "\n" << c.out);
      CHECK(c.code == 0);
    }
    const Cmd c = run_tool("run " + file + " --profile v5.17", dir.path);
    INFO(r.file << " on v5.17\n" << c.out);
    CHECK(c.code == 1);
    CHECK_THAT(c.out, Catch::Contains(r.says_on_old));
  }
}

// free_timer of v6.14 (reference 3.7): overwrites chase long callbacks on the other CPU. Its
// programs need bpf_loop (v5.17) and BPF_F_TIMER_CPU_PIN (v6.7); from v6.7 on it passes.
TEST_CASE("free_timer of v6.14 needs bpf_loop and BPF_F_TIMER_CPU_PIN, and passes from v6.7",
          "[eras]") {
  TempDir dir;
  const std::string file =
      std::string(BPFTSIM_SOURCE_DIR) + "/scenarios/conformance/free_timer_v6_14.json";
  for (const char* p : {"v6.14", "v6.10", "v6.7"}) {
    const Cmd c = run_tool("run " + file + " --profile " + p, dir.path);
    INFO(p << "\n" << c.out);
    CHECK(c.code == 0);
  }
  const Cmd no_pin = run_tool("run " + file + " --profile v6.4", dir.path);
  INFO(no_pin.out);
  CHECK(no_pin.code == 1);
  CHECK_THAT(no_pin.out, Catch::Contains("f.start_err is -22 at the end, expected 0"));
  const Cmd no_loop = run_tool("run " + file + " --profile v5.16", dir.path);
  INFO(no_loop.out);
  CHECK(no_loop.code == 2);
  CHECK_THAT(no_loop.out, Catch::Contains("unknown func bpf_loop#181"));
}

// timer_crash (reference 3.3, the oracle of 2.2): our fentry/do_nanosleep mirror crashes (a wild
// pointer) through v5.16 and not from v5.17; each scenario fails on the other side of 2.2 for
// that reason. The v5.17 ones hold on every later era.
TEST_CASE("timer_crash: the checker's finding up to v5.16, none from v5.17", "[eras]") {
  TempDir dir;
  const std::string conf = std::string(BPFTSIM_SOURCE_DIR) + "/scenarios/conformance/";
  for (const char* sub : {"array", "hash"}) {
    const std::string crash = conf + "timer_crash_" + sub + "_v5_15.json";
    const std::string fixed = conf + "timer_crash_" + sub + "_v5_17.json";
    for (const char* p : {"v5.15", "v5.16"}) {
      const Cmd c = run_tool("run " + crash + " --profile " + p, dir.path);
      INFO(sub << " on " << p << "\n" << c.out);
      CHECK(c.code == 0);
    }
    const Cmd crash_on_fixed = run_tool("run " + crash + " --profile v5.17", dir.path);
    INFO(crash_on_fixed.out);
    CHECK(crash_on_fixed.code == 1);
    CHECK_THAT(crash_on_fixed.out, Catch::Contains("status=quiescent"));
    const Cmd fixed_on_old = run_tool("run " + fixed + " --profile v5.16", dir.path);
    INFO(fixed_on_old.out);
    CHECK(fixed_on_old.code == 1);
    CHECK_THAT(fixed_on_old.out, Catch::Contains("wild_pointer"));
    CHECK_THAT(fixed_on_old.out, Catch::Contains("0xdeadcaf3"));
    for (const char* p : {"v5.17", "v6.1", "v6.8", "v6.14"}) {
      const Cmd c = run_tool("run " + fixed + " --profile " + p, dir.path);
      INFO(sub << " on " << p << "\n" << c.out);
      CHECK(c.code == 0);
    }
  }
}

// Reference 2.1 itself (4.14): the tracepoint program on hrtimer_start self-deadlocks on v5.15
// and is refused at load from v5.16, the refusal naming the verifier rule.
TEST_CASE("4.14: a tracepoint program inside hrtimer_start deadlocks on v5.15, is refused on v5.16",
          "[eras]") {
  TempDir dir;
  const std::string race =
      std::string(BPFTSIM_SOURCE_DIR) + "/scenarios/races/4.14-tracing-prog-hrtimer-deadlock.json";
  const Cmd old = run_tool("run " + race, dir.path);
  INFO(old.out);
  CHECK(old.code == 0);
  const Cmd refused = run_tool("run " + race + " --profile v5.16", dir.path);
  INFO(refused.out);
  CHECK(refused.code == 2);
  CHECK_THAT(refused.out, Catch::Contains("rule tracing_timer"));
  CHECK_THAT(refused.out, Catch::Contains("tracepoint/timer/hrtimer_start"));
  const Cmd fix = run_tool("run " + std::string(BPFTSIM_SOURCE_DIR) +
                               "/scenarios/fixes/4.14-tracing-prog-refused-2.1.json",
                           dir.path);
  INFO(fix.out);
  CHECK(fix.code == 0);
}
