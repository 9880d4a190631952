// The built-in race catalogue: the cases of ../shared/reference/bpf-timer.md section 4 that the
// seed (v5.15) exhibits, each built with native programs on a World and judged against the
// outcome the reference states. `bpftsim races` replays them; tests/unit/test_races.cpp asserts
// their observations one by one.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "scenarios/native/world.h"

namespace bpftsim::native {

struct RaceOutcome {
  bool as_expected = false;  // the reference's outcome for the profile was observed
  std::string observed;      // one line: what happened
  std::map<std::string, std::int64_t> values;  // named observations (helper returns, times)
  std::shared_ptr<World> world;                // the (final) run, for traces and findings
};

// How to run a case: the scheduler seed, or a recorded decision list to replay (the probe runs
// some cases use to learn timings always use the seed).
struct RunConfig {
  std::uint64_t seed = 1;
  const sim::DecisionList* replay = nullptr;
  model::KernelProfile profile = model::default_profile();  // the verdicts are the seed's
};

struct RaceCase {
  std::string id;        // "4.1", "4.3-uaf", ...
  std::string title;     // what the race is
  std::string expected;  // the outcome the reference states for v5.15
  std::function<RaceOutcome(const RunConfig&)> run;
};

const std::vector<RaceCase>& race_catalogue();
const RaceCase* find_race(const std::string& id);

}  // namespace bpftsim::native
