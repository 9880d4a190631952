// The catalogue: scenarios/races, scenarios/errors, scenarios/fixes and scenarios/conformance are
// the one statement of every race outcome and helper return code (the C++ catalogue that used to
// repeat them is gone). Every file runs through the same runner as `bpftsim run`:
//   - under seeds 1-4, each passing;
//   - replaying seed 1's decision list under another seed: the same digest, no divergence, a pass;
//   - races/*.json under each single fix of reference section 2 (with its prerequisites): the
//     scenario fails exactly when the profile holds a fix its "closed_by" names (a program the
//     fix's verifier refuses at load counts as failing: the bug cannot show).
#include <fmt/format.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "model/profile.h"
#include "tests/unit/scenario_harness.h"
#include "tools/runner.h"
#include "tools/scenario.h"

namespace fs = std::filesystem;
using bpftsim::testing::failures;
using bpftsim::testing::load;
using bpftsim::testing::run;
using namespace bpftsim;
using namespace bpftsim::tools;

namespace {

std::vector<fs::path> catalogue(const std::vector<std::string>& dirs) {
  std::vector<fs::path> out;
  for (const std::string& d : dirs)
    for (const auto& e : fs::directory_iterator(fs::path(BPFTSIM_SOURCE_DIR) / "scenarios" / d))
      if (e.is_regular_file() && e.path().extension() == ".json") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

// The profile of one fix with the fixes it requires, on the scenario's profile (the seed when it
// names none): "v5.15+2.9+2.12", "v6.14+2.20+2.21".
std::string single_fix_profile(const model::ProfileFix& f, const std::string& base) {
  std::string name = base.empty() ? "v5.15" : base;
  for (const std::string& dep : f.requires_fixes)
    name += "+" + dep;
  return name + "+" + f.id;
}

bool is_fix(const std::string& id) {
  for (const model::ProfileFix& f : model::profile_fixes())
    if (f.id == id) return true;
  return false;
}

// Whether the race's expectations (the bug) hold under `opts`. A profile whose verifier refuses the
// race's program at load (2.1 refusing a tracepoint program that uses a timer map) closes the race
// as well: the bug cannot show, and the refusal, with its rule, is what `why` says.
bool shows_bug(const Scenario& sc, const RunOptions& opts, std::string* why) {
  auto r = run_scenario(sc, opts);
  if (auto* e = std::get_if<InputError>(&r)) {
    *why = e->text();
    const bool refused = e->message.find("cannot load object") != std::string::npos &&
                         e->message.find(": rule ") != std::string::npos;
    if (!refused) FAIL(e->text());
    return false;
  }
  const RunResult& rr = std::get<RunResult>(r);
  *why = failures(rr);
  return rr.passed();
}

}  // namespace

TEST_CASE("catalogue: every scenario passes under seeds 1-4 and replays its decisions exactly",
          "[catalogue]") {
  const auto files = catalogue({"races", "errors", "fixes", "conformance"});
  CHECK(files.size() >= 50);
  for (const fs::path& file : files) {
    DYNAMIC_SECTION(file.filename().string()) {
      const Scenario sc = load(file);
      RunResult first;
      for (std::uint64_t seed = 1; seed <= 4; ++seed) {
        RunOptions opts;
        opts.seed = seed;
        opts.keep_trace = false;
        RunResult r = run(sc, opts);
        INFO("seed " << seed << "\n" << failures(r));
        CHECK(r.passed());
        if (seed == 1) first = std::move(r);
      }
      RunOptions replay;
      replay.seed = 9999;  // data randomness differs; every scheduling choice is replayed
      replay.replay = first.decisions;
      replay.keep_trace = false;
      const RunResult again = run(sc, replay);
      INFO(failures(again));
      CHECK(again.status != sim::RunStatus::kDiverged);
      CHECK(again.digest == first.digest);
      CHECK(again.decisions.size() == first.decisions.size());
      CHECK(again.passed());
    }
  }
}

TEST_CASE("catalogue: each fix closes exactly the races whose closed_by names it", "[catalogue]") {
  for (const fs::path& file : catalogue({"races"})) {
    DYNAMIC_SECTION(file.filename().string()) {
      Scenario sc = load(file);
      for (const model::ProfileFix& fix : model::profile_fixes()) {
        const std::string profile = single_fix_profile(fix, sc.profile);
        bool closed = false;
        for (const std::string& id : sc.closed_by) {
          const bool in_profile =
              id == fix.id || std::find(fix.requires_fixes.begin(), fix.requires_fixes.end(), id) !=
                                  fix.requires_fixes.end();
          closed = closed || in_profile;
        }
        RunOptions opts;
        opts.profile = profile;
        opts.keep_trace = false;
        std::string why;
        const bool shows = shows_bug(sc, opts, &why);
        INFO(profile << (closed ? " closes it" : " leaves it") << "\n" << why);
        // A fix written on a feature (2.21 and 2.22 on 2.20, v7.0's lock-free unit, which
        // changes the outcome of the bpf_spin_lock design's races by itself) is judged against
        // that feature: it leaves the outcome it found, or closes the race.
        std::string on_feature;
        for (const std::string& dep : fix.requires_fixes)
          if (!is_fix(dep)) on_feature += "+" + dep;
        if (closed || on_feature.empty()) {
          CHECK(shows == !closed);
        } else {
          RunOptions before = opts;
          before.profile = (sc.profile.empty() ? std::string("v5.15") : sc.profile) + on_feature;
          std::string why_before;
          const bool shows_before = shows_bug(sc, before, &why_before);
          INFO("on " << *before.profile << ": " << (shows_before ? "shows" : "does not show")
                     << "\n"
                     << why_before);
          CHECK(shows == shows_before);
        }
      }
    }
  }
}

TEST_CASE("catalogue: the seed matters where the scheduler has ties to break", "[catalogue]") {
  // 4.5 (Ctrl-C with self re-arming timers) has many simultaneous events: two seeds break their
  // ties differently, and the trace says so.
  const Scenario sc = load(fs::path(BPFTSIM_SOURCE_DIR) / "scenarios/races/4.5-ctrl-c.json");
  std::set<std::uint64_t> digests;
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    RunOptions opts;
    opts.seed = seed;
    opts.keep_trace = false;
    const RunResult r = run(sc, opts);
    CHECK(!r.decisions.empty());
    digests.insert(r.digest);
  }
  CHECK(digests.size() > 1);
}

TEST_CASE(
    "catalogue: each closed race shows on the last kernel version without its fixes and "
    "not on the first with them",
    "[catalogue][eras]") {
  const auto& versions = model::kernel_versions();
  for (const fs::path& file : catalogue({"races"})) {
    Scenario sc = load(file);
    if (sc.closed_by.empty()) continue;
    DYNAMIC_SECTION(file.filename().string()) {
      // The first version holding a fix that closes it (each fix of closed_by closes it, as
      // the test above checks on the seed).
      std::size_t first = versions.size();
      for (std::size_t v = 0; v < versions.size() && first == versions.size(); ++v) {
        const auto p = model::profile_by_name(versions[v].name);
        REQUIRE(p);
        bool any = false;
        for (const std::string& id : sc.closed_by)
          for (const model::ProfileFix& f : model::profile_changes())
            if (f.id == id) any = any || (*p).*(f.flag);
        if (any) first = v;
      }
      REQUIRE(first < versions.size());
      REQUIRE(first > 0);
      // The version before, plus the prerequisites of the closing fixes that it lacks (and that
      // do not close it themselves): a bug of
      // a change that no earlier version has (2.20's intermediate revision) shows on
      // "v6.14+2.20", the last profile without the fix.
      std::string before = versions[first - 1].name;
      const auto bp = model::profile_by_name(before);
      REQUIRE(bp);
      for (const std::string& id : sc.closed_by)
        for (const model::ProfileFix& f : model::profile_changes()) {
          if (f.id != id) continue;
          for (const std::string& dep : f.requires_fixes)
            for (const model::ProfileFix& d : model::profile_changes())
              if (d.id == dep && !((*bp).*(d.flag)) &&
                  std::find(sc.closed_by.begin(), sc.closed_by.end(), dep) == sc.closed_by.end())
                before += "+" + dep;
        }
      REQUIRE(model::profile_by_name(before));
      for (const std::size_t v : {first - 1, first}) {
        const std::string profile = v < first ? before : versions[v].name;
        RunOptions opts;
        opts.profile = profile;
        opts.keep_trace = false;
        std::string why;
        const bool shows = shows_bug(sc, opts, &why);
        INFO(profile << "\n" << why);
        // The scenario's expectations describe the bug: they hold where it is, not where it was
        // fixed (or its program is refused).
        CHECK(shows == (v < first));
      }
    }
  }
}
