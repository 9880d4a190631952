// Kernel profiles: the seed plus later fixes as switches. Each fix is shown closing its race on
// the profile that has it, while the seed still shows the race (tests/unit/test_races.cpp).
#include <catch2/catch.hpp>

#include "model/errno.h"
#include "scenarios/native/races.h"

using namespace bpftsim;
using native::RaceOutcome;
using native::RunConfig;

namespace {
RaceOutcome run_on(const std::string& id, const std::string& profile) {
  std::string err;
  auto p = model::profile_by_name(profile, &err);
  REQUIRE(p.has_value());
  RunConfig cfg;
  cfg.profile = *p;
  RaceOutcome o = native::find_race(id)->run(cfg);
  INFO(id << " on " << profile << ": " << o.observed << "\n" << o.world->findings_text());
  CHECK(o.world->k.profile.name == profile);
  return o;
}
}  // namespace

TEST_CASE("profile names: the seed plus fixes by reference section", "[profile]") {
  CHECK(model::profile_by_name("v5.15")->name == "v5.15");
  CHECK(model::profile_by_name("seed")->name == "v5.15");
  auto p = model::profile_by_name("v5.15+2.8+2.9");
  REQUIRE(p);
  CHECK(!p->copy_skips_lock_and_timer);
  CHECK(p->init_checks_usercnt_after_publish);
  CHECK(p->cancel_and_free_kfree_rcu);
  std::string err;
  CHECK(!model::profile_by_name("v5.15+9.9", &err));
  CHECK(err.find("unknown fix '9.9'") != std::string::npos);
  CHECK(!model::profile_by_name("v6.1", &err));
  CHECK(err.find("unknown kernel profile") != std::string::npos);
  CHECK(model::profile_names().size() == 1 + model::profile_fixes().size());
  for (const auto& n : model::profile_names())
    CHECK(model::profile_by_name(n));
}

TEST_CASE("profile names are canonical: fixes sorted, named once, prerequisites required",
          "[profile]") {
  auto p = model::profile_by_name("v5.15+2.9+2.8+2.8");
  REQUIRE(p);
  CHECK(p->name == "v5.15+2.8+2.9");
  CHECK(model::profile_by_name("seed+2.11+2.2")->name == "v5.15+2.2+2.11");
  std::string err;
  CHECK(!model::profile_by_name("v5.15+2.12", &err));
  CHECK(err == "fix 2.12 needs fix 2.9 (it landed on top of it): name both, e.g. 'v5.15+2.9+2.12'");
  auto q = model::profile_by_name("v5.15+2.12+2.9");
  REQUIRE(q);
  CHECK(q->name == "v5.15+2.9+2.12");
  CHECK(q->defer_free_in_callback);
  CHECK(q->cancel_and_free_kfree_rcu);
}

TEST_CASE("2.2: copies skip both the lock and the timer; the timer pointer survives updates",
          "[profile]") {
  auto o = run_on("4.12-copy-bug", "v5.15+2.2");
  CHECK(!o.as_expected);  // the seed's outcome is gone
  CHECK(o.values.at("findings.wild_pointer") == 0);
  auto f = run_on("4.12-flock", "v5.15+2.2");
  CHECK(f.values.at("update_ret") == 0);
  CHECK(f.values.at("callbacks") == 1);
  CHECK(f.values.at("findings.wild_pointer") == 0);
  CHECK(f.values.at("live_objects") == 0);
}

TEST_CASE("2.8: init racing the last close no longer leaks a timer", "[profile]") {
  auto o = run_on("4.10", "v5.15+2.8");
  CHECK(o.values.at("findings.leak") == 0);
  CHECK(o.values.at("live_objects") == 0);
  const auto init = o.values.at("init_ret");
  CHECK((init == 0 || init == -model::kEPERM));
  CHECK(o.values.at("set_callback_ret") != 0);  // the timer is gone either way
}

TEST_CASE("2.9: cancel racing cancel_and_free uses no freed memory", "[profile]") {
  auto o = run_on("4.9", "v5.15+2.9");
  CHECK(o.values.at("findings.use_after_free") == 0);
  const auto r = o.values.at("cancel_ret");
  CHECK((r == 0 || r == 1 || r == -model::kEINVAL));
  CHECK(o.values.at("live_objects") == 0);
}

TEST_CASE("2.11: two callbacks cancelling each other no longer lock up", "[profile]") {
  auto o = run_on("4.8", "v5.15+2.11");
  CHECK(o.values.at("stopped") == 0);
  CHECK(o.values.at("findings.deadlock") == 0);
  // timer_lockup's assertion: each cross-cancel returns 0 or -EDEADLK, at least one -EDEADLK.
  const auto a = o.values.at("cb1_cancel"), b = o.values.at("cb2_cancel");
  CHECK((a == 0 || a == -model::kEDEADLK));
  CHECK((b == 0 || b == -model::kEDEADLK));
  CHECK((a == -model::kEDEADLK || b == -model::kEDEADLK));
}

TEST_CASE("2.12: a callback that re-arms and then deletes its own element frees nothing early",
          "[profile]") {
  auto o = run_on("4.3-uaf", "v5.15+2.9+2.12");
  CHECK(o.values.at("findings.use_after_free") == 0);
  CHECK(o.values.at("live_objects") == 0);
  CHECK(o.world->events("queue_work") >= 1);  // the cancel and free went to a worker
}

TEST_CASE("the fixes leave every other catalogued outcome of the seed unchanged", "[profile]") {
  // 2.2, 2.8 and 2.9 close exactly their own races; all other cases behave as on the seed.
  const std::map<std::string, std::vector<std::string>> closes = {
      {"v5.15+2.2", {"4.12-copy-bug", "4.12-flock"}},
      {"v5.15+2.8", {"4.10"}},
      {"v5.15+2.9", {"4.9"}},
      {"v5.15+2.11", {"4.8"}},
      // 2.12 was written on top of 2.9, so its profile has 2.9 too.
      {"v5.15+2.9+2.12", {"4.3-uaf", "4.9"}},
  };
  for (const auto& [profile, closed] : closes) {
    for (const auto& c : native::race_catalogue()) {
      RunConfig cfg;
      cfg.profile = *model::profile_by_name(profile);
      const bool seen = c.run(cfg).as_expected;
      const bool is_closed = std::find(closed.begin(), closed.end(), c.id) != closed.end();
      INFO(profile << " " << c.id);
      CHECK(seen == !is_closed);
    }
  }
}
