// Kernel profiles: the seed plus later fixes as switches, named canonically. What each fix closes
// is stated by the scenarios (races/*.json "closed_by", fixes/*.json) and checked by
// tests/unit/test_catalogue.cpp.
#include <catch2/catch.hpp>

#include "model/profile.h"

using namespace bpftsim;

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
