// Properties over explored schedules (issue 9, item 7): the random timer workloads of
// tests/prop/timer_workload.h, generated with their operations as time ranges and the choice
// model's knobs on (a window W > 0 within which events are unordered, softirq landing deferred,
// RCU grace periods and timer expiries jittered), each run under the random scheduler of its own
// seed. The existing properties (prop::judge) must hold under every such schedule; a schedule
// replays from its decision list, and any edited list (a decision dropped) still gives a run
// that keeps them.
//
// A failure shrinks with RapidCheck's shrinking of the generated case (fewer operations,
// narrower ranges, a smaller window): the counterexample printed is the shrunk case
// (showValue: every op with its time range, the knobs, the seed) and, in the log, its decision
// list. bpftsim's own shrinker (tools/shrink.h) works on JSON scenarios and is not used here:
// these workloads are model-level (World), not scenarios.
#include <rapidcheck/catch.h>

#include <cstdlib>
#include <string>

#include "sim/scheduler.h"
#include "tests/prop/rc_defaults.h"
#include "tests/prop/timer_workload.h"

using namespace bpftsim;
using namespace bpftsim::prop;

namespace {

std::size_t count(const sim::DecisionList& list, sim::DecisionKind kind) {
  std::size_t n = 0;
  for (const auto& d : list)
    n += d.kind == kind;
  return n;
}

void classify(const Outcome& o) {
  RC_CLASSIFY(count(o.decisions, sim::DecisionKind::kTie) > 0, "tie decisions");
  RC_CLASSIFY(count(o.decisions, sim::DecisionKind::kRange) > 0, "range draws");
  RC_CLASSIFY(count(o.decisions, sim::DecisionKind::kLand) > 0, "landing decisions");
  RC_CLASSIFY(count(o.decisions, sim::DecisionKind::kGrace) > 0, "grace draws");
}

Outcome replay(const Case& c, Mode mode, const sim::DecisionList& list, bool lenient) {
  RunControl ctl;
  ctl.make_scheduler = [&list, lenient] {
    return std::make_unique<sim::ReplayScheduler>(list, lenient);
  };
  return run_workload(c, mode, ctl);
}

}  // namespace

TEST_CASE("explored schedules of clean timer workloads stay clean", "[prop][explore]") {
  (void)kRcDefaults;
  rc::prop("ranges, W > 0, deferred landing, jitter: no findings, invariants hold", [] {
    const Case c = *gen_explore_case(Mode::kClean);
    const Outcome o = run_workload(c, Mode::kClean);
    RC_LOG() << o.describe();
    classify(o);
    const auto broken = judge(o, Mode::kClean);
    for (const auto& b : broken)
      RC_LOG() << b << "\n";
    if (!broken.empty()) RC_LOG() << "decisions:\n" << sim::format_decisions(o.decisions);
    RC_ASSERT(broken.empty());
  });
}

TEST_CASE("explored schedules of racy timer workloads keep invariants", "[prop][explore]") {
  (void)kRcDefaults;
  rc::prop("only use_after_free/leak/deadlock findings; invariants and refcounts hold", [] {
    const Case c = *gen_explore_case(Mode::kKnownBugs);
    const Outcome o = run_workload(c, Mode::kKnownBugs);
    RC_LOG() << o.describe();
    classify(o);
    for (const auto& f : o.findings)
      RC_TAG(std::string(sim::finding_kind_name(f.kind)));
    const auto broken = judge(o, Mode::kKnownBugs);
    for (const auto& b : broken)
      RC_LOG() << b << "\n";
    if (!broken.empty()) RC_LOG() << "decisions:\n" << sim::format_decisions(o.decisions);
    RC_ASSERT(broken.empty());
  });
}

TEST_CASE("an explored schedule replays; an edited decision list still gives a clean run",
          "[prop][explore]") {
  (void)kRcDefaults;
  rc::prop("strict replay: same digest; one decision dropped: lenient replay stays clean", [] {
    const Case c = *gen_explore_case(Mode::kClean);
    const Outcome o = run_workload(c, Mode::kClean);
    classify(o);
    RC_PRE(o.decisions.size() >= 2);
    const Outcome again = replay(c, Mode::kClean, o.decisions, false);
    RC_ASSERT(again.divergence.empty());
    RC_ASSERT(again.digest == o.digest);
    RC_ASSERT(again.decisions == o.decisions);

    sim::DecisionList edited = o.decisions;
    const auto drop = *rc::gen::inRange<std::size_t>(0, edited.size());
    edited.erase(edited.begin() + static_cast<std::ptrdiff_t>(drop));
    const Outcome lenient = replay(c, Mode::kClean, edited, true);
    RC_LOG() << lenient.describe();
    RC_ASSERT(lenient.divergence.empty());
    RC_ASSERT(lenient.status != sim::RunStatus::kDiverged);
    // Every decision before the dropped one is as recorded; the dropped one took the default.
    RC_ASSERT(lenient.decisions.size() > drop);
    for (std::size_t i = 0; i < drop; ++i)
      RC_ASSERT(lenient.decisions[i] == o.decisions[i]);
    RC_ASSERT(lenient.decisions[drop].key == o.decisions[drop].key);
    RC_ASSERT(lenient.decisions[drop].chosen == 0u);
    const auto broken = judge(lenient, Mode::kClean);
    for (const auto& b : broken)
      RC_LOG() << b << "\n";
    RC_ASSERT(broken.empty());
  });
}
