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

#include "tests/prop/rc_defaults.h"
#include "tests/prop/timer_workload.h"

using namespace bpftsim::prop;

TEST_CASE("random timer workloads without known-bug combinations stay clean", "[prop]") {
  (void)kRcDefaults;
  rc::prop("no findings, invariants hold, nothing left allocated after teardown", [] {
    const Case c = *gen_case(Mode::kClean);
    const Outcome o = run_workload(c, Mode::kClean);
    RC_LOG() << o.describe();
    RC_CLASSIFY(o.callbacks_run > 0, "callbacks ran");
    RC_CLASSIFY(o.helper_successes >= 5, ">= 5 successful helper calls");
    const auto broken = judge(o, Mode::kClean);
    for (const auto& b : broken)
      RC_LOG() << b << "\n";
    RC_ASSERT(broken.empty());
  });
}

TEST_CASE("random timer workloads with the seed's known races keep invariants", "[prop]") {
  (void)kRcDefaults;
  rc::prop("only use_after_free/leak/deadlock findings; invariants and refcounts hold", [] {
    const Case c = *gen_case(Mode::kKnownBugs);
    const Outcome o = run_workload(c, Mode::kKnownBugs);
    RC_LOG() << o.describe();
    for (const auto& f : o.findings)
      RC_TAG(std::string(bpftsim::sim::finding_kind_name(f.kind)));
    const auto broken = judge(o, Mode::kKnownBugs);
    for (const auto& b : broken)
      RC_LOG() << b << "\n";
    RC_ASSERT(broken.empty());
  });
}
