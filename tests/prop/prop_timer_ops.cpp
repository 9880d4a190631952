// Properties over random timer workloads (tests/prop/timer_workload.h): random sequences of
// program, syscall, pin and exit operations on 1-4 CPUs with a seeded scheduler keep the model's
// invariants, and every failure shrinks to a minimal operation list (printed with its seed).
//
// RC_PARAMS defaults to "max_success=200" (set below unless the environment sets it); reproduce
// a failure with the RC_PARAMS line rapidcheck prints, e.g. RC_PARAMS="reproduce=..." .
#include <rapidcheck/catch.h>

#include <cstdlib>
#include <set>
#include <string>

#include "tests/prop/timer_workload.h"

using namespace bpftsim::prop;

namespace {

// rapidcheck reads RC_PARAMS once, on first use (after static initialization).
const bool kRcDefaults = [] {
  ::setenv("RC_PARAMS", "max_success=200", /*overwrite=*/0);
  return true;
}();

// Findings that no run may ever produce: the model's refcounting and lifetimes must never go
// wrong except through the seed's catalogued races, and no run may hang or fault.
using bpftsim::sim::FindingKind;
const std::set<FindingKind> kNeverAllowed = {FindingKind::kRefcountUnderflow,
                                             FindingKind::kDoubleFree, FindingKind::kLiveness,
                                             FindingKind::kProgramFault, FindingKind::kWildPointer};

// Findings the seed's known bugs produce (reference 4.3-UAF, 4.9: use_after_free; 4.10: leak;
// 4.8, 4.8-free, 4.12: deadlock).
const std::set<FindingKind> kKnownBugKinds = {FindingKind::kUseAfterFree, FindingKind::kLeak,
                                              FindingKind::kDeadlock};

bool is_queued_after_free(const std::string& violation) {
  return violation.find("is still queued") != std::string::npos;
}

}  // namespace

TEST_CASE("random timer workloads without known-bug combinations stay clean", "[prop]") {
  (void)kRcDefaults;
  rc::prop("no findings, invariants hold, nothing left allocated after teardown", [] {
    const Case c = *gen_case(Mode::kClean);
    const Outcome o = run_workload(c, Mode::kClean);
    RC_LOG() << o.describe();
    RC_CLASSIFY(o.callbacks_run > 0, "callbacks ran");
    RC_CLASSIFY(o.helper_successes >= 5, ">= 5 successful helper calls");
    RC_ASSERT(o.status == bpftsim::sim::RunStatus::kQuiescent);
    RC_ASSERT(o.findings.empty());
    RC_ASSERT(o.midrun_violations.empty());
    RC_ASSERT(o.violations.empty());
    RC_ASSERT(o.armed_timers == 0u);
    RC_ASSERT(o.live_objects == 0u);
  });
}

TEST_CASE("random timer workloads with the seed's known races keep invariants", "[prop]") {
  (void)kRcDefaults;
  rc::prop("only use_after_free/leak/deadlock findings; invariants and refcounts hold", [] {
    const Case c = *gen_case(Mode::kKnownBugs);
    const Outcome o = run_workload(c, Mode::kKnownBugs);
    RC_LOG() << o.describe();
    for (const auto& f : o.findings) {
      RC_TAG(std::string(bpftsim::sim::finding_kind_name(f.kind)));
      RC_ASSERT(kNeverAllowed.count(f.kind) == 0u);
      RC_ASSERT(kKnownBugKinds.count(f.kind) == 1u);
    }
    // A bpf_hrtimer freed while queued is 4.3-UAF before its expiry touches it; a quiescent run
    // has let it expire, which reports the use-after-free.
    bool queued_after_free = false;
    for (const auto& v : o.midrun_violations) {
      queued_after_free = queued_after_free || is_queued_after_free(v);
      RC_ASSERT(is_queued_after_free(v));
    }
    if (o.status == bpftsim::sim::RunStatus::kQuiescent) {
      RC_ASSERT(o.violations.empty());  // queue order and refcounts balanced with holders
      RC_ASSERT(o.armed_timers == 0u);
      if (queued_after_free) RC_ASSERT(o.has_finding("use_after_free"));
      if (!o.has_finding("leak")) RC_ASSERT(o.live_objects == 0u);
    } else {
      // Only a deadlock (4.8, 4.8-free, 4.12) may stop a run; the queues are still in order.
      RC_ASSERT(o.status == bpftsim::sim::RunStatus::kStopped);
      RC_ASSERT(o.has_finding("deadlock"));
      for (const auto& v : o.violations)
        RC_ASSERT(is_queued_after_free(v));
    }
  });
}
