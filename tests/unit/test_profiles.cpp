// Kernel profiles: kernel versions (eras) and single changes on top of them, named canonically.
// What each fix closes is stated by the scenarios (races/*.json "closed_by", fixes/*.json) and
// checked by tests/unit/test_catalogue.cpp.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

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
  CHECK(p->version == "v5.15");
  std::string err;
  CHECK(!model::profile_by_name("v5.15+9.9", &err));
  CHECK(err.find("unknown fix '9.9'") != std::string::npos);
  CHECK(!model::profile_by_name("v6.2", &err));
  CHECK(err.find("unknown kernel profile 'v6.2'") != std::string::npos);
  CHECK(err.find("v6.14") != std::string::npos);
  for (const auto& n : model::profile_names()) {
    INFO(n);
    REQUIRE(model::profile_by_name(n));
    CHECK(model::profile_by_name(n)->name == n);  // listed names are canonical
  }
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
  CHECK(!model::profile_by_name("v6.7+2.12", &err));
  CHECK(err == "fix 2.12 needs fix 2.9 (it landed on top of it): name both, e.g. 'v6.7+2.9+2.12'");
  CHECK(model::profile_by_name("v6.8+2.12")->name == "v6.8+2.12");  // v6.8 holds 2.9
  auto q = model::profile_by_name("v5.15+2.12+2.9");
  REQUIRE(q);
  CHECK(q->name == "v5.15+2.9+2.12");
  CHECK(q->defer_free_in_callback);
  CHECK(q->cancel_and_free_kfree_rcu);
}

// Each version is the seed plus the changes of reference sections 0.2 and 2 up to it.
TEST_CASE("kernel versions hold the changes of every version up to them", "[profile]") {
  using P = model::KernelProfile;
  struct Row {
    const char* name;
    std::vector<bool P::*> on;
  };
  const std::vector<bool P::*> all = {&P::tracing_progs_no_timer,
                                      &P::copy_skips_lock_and_timer,
                                      &P::has_bpf_loop,
                                      &P::timer_start_abs,
                                      &P::timer_start_cpu_pin,
                                      &P::init_checks_usercnt_after_publish,
                                      &P::cancel_and_free_kfree_rcu,
                                      &P::cancelling_counters,
                                      &P::defer_free_in_callback,
                                      &P::htab_noprealloc_free_at_once};
  // v7.0's rework (2.20-2.22) on top of all of them.
  std::vector<bool P::*> v70 = all;
  for (auto f : {&P::timer_nolock, &P::timer_any_context, &P::timer_defer_irqs_off})
    v70.push_back(f);
  const std::vector<Row> rows = {
      {"v5.15", {}},
      {"v5.16", {all[0]}},
      {"v5.17", {all[0], all[1], all[2]}},
      {"v6.1", {all[0], all[1], all[2], all[9]}},
      {"v6.4", {all[0], all[1], all[2], all[9], all[3]}},
      {"v6.7", {all[0], all[1], all[2], all[9], all[3], all[4], all[5]}},
      {"v6.8", {all[0], all[1], all[2], all[9], all[3], all[4], all[5], all[6]}},
      {"v6.10", all},
      {"v6.14", all},
      {"v7.0", v70},
  };
  REQUIRE(rows.size() == model::kernel_versions().size());
  for (const Row& r : rows) {
    INFO(r.name);
    auto p = model::profile_by_name(r.name);
    REQUIRE(p);
    CHECK(p->name == r.name);
    CHECK(p->version == r.name);
    for (auto f : v70) {
      const bool want = std::find(r.on.begin(), r.on.end(), f) != r.on.end();
      CHECK((*p).*f == want);
    }
  }
}

TEST_CASE("a version plus single changes: canonical as the version when it holds the same",
          "[profile]") {
  // The spelling of a version's change set prints as the version.
  CHECK(model::profile_by_name("v5.15+2.1")->name == "v5.16");
  CHECK(model::profile_by_name("v5.16+bpf_loop+2.2")->name == "v5.17");
  CHECK(model::profile_by_name("v5.15+2.1+2.2+bpf_loop+2.4+2.6")->name == "v6.4");
  CHECK(model::profile_by_name("v5.15+2.1+2.2+bpf_loop+2.6")->name == "v5.17+2.6");
  CHECK(model::profile_by_name("v6.8+2.9")->name == "v6.8");
  CHECK(model::profile_by_name("v6.10+2.12+2.11")->name == "v6.10");
  CHECK(model::profile_by_name("v5.17+2.4")->name == "v6.1");
  CHECK(model::profile_by_name("v5.15+2.4")->name == "v5.15+2.4");
  // Versions that hold the same changes keep the name the user gave.
  CHECK(model::profile_by_name("v6.1")->name == "v6.1");
  CHECK(model::profile_by_name("v5.17")->name == "v5.17");
  CHECK(model::profile_by_name("v6.14")->name == "v6.14");
  // A fix on top of an era (a backport): the era's name, then the fix.
  auto p = model::profile_by_name("v6.1+2.9");
  REQUIRE(p);
  CHECK(p->name == "v6.1+2.9");
  CHECK(p->version == "v6.1");
  CHECK(p->cancel_and_free_kfree_rcu);
  CHECK(!p->init_checks_usercnt_after_publish);
  CHECK(p->has_bpf_loop);
  CHECK(model::profile_by_name("v5.15+2.1+2.9")->name == "v5.16+2.9");
  CHECK(model::profile_by_name("v6.4+2.11")->name == "v6.4+2.11");
  // The existing single-fix spellings stay canonical (scenarios and run files use them).
  for (const char* n : {"v5.15+2.2", "v5.15+2.8", "v5.15+2.9", "v5.15+2.11", "v5.15+2.9+2.12",
                        "v5.15+2.2+2.8+2.9+2.11+2.12"})
    CHECK(model::profile_by_name(n)->name == n);
  const std::vector<std::string> listed = model::profile_names();
  const std::set<std::string> names(listed.begin(), listed.end());
  CHECK(names.count("v6.10"));
  CHECK(names.count("v5.15+2.9+2.12"));
  CHECK(names.count("v5.15+2.6"));
  CHECK(!names.count("v5.15+2.1"));  // that is v5.16
}

TEST_CASE("profile_fixes are the changes that are not features", "[profile]") {
  std::vector<std::string> fixes;
  for (const auto& f : model::profile_fixes())
    fixes.push_back(f.id);
  CHECK(fixes == std::vector<std::string>{"2.1", "2.2", "2.8", "2.9", "2.11", "2.12", "2.14",
                                          "2.21", "2.22"});
  std::size_t features = 0;
  for (const auto& c : model::profile_changes())
    features += c.feature ? 1 : 0;
  CHECK(features == 6);  // bpf_loop, 2.4 (a map change), 2.6, 2.7, lock_subprog (verifier),
                         // 2.20 (the lock-free unit)
}

// v7.0 (reference 2.20-2.22): the lock-free unit and its two follow-ups, each needing the one
// before; v6.14+2.20 is the intermediate revision of reference 4.15.
TEST_CASE("v7.0 is v6.14 plus 2.20, 2.21 and 2.22, each on top of the one before", "[profile]") {
  CHECK(model::profile_by_name("v6.14+2.20+2.21+2.22")->name == "v7.0");
  CHECK(model::profile_by_name("v6.14+2.22+2.21+2.20")->name == "v7.0");
  auto mid = model::profile_by_name("v6.14+2.20");
  REQUIRE(mid);
  CHECK(mid->name == "v6.14+2.20");
  CHECK(mid->timer_nolock);
  CHECK(!mid->timer_any_context);
  CHECK(!mid->timer_defer_irqs_off);
  CHECK(model::profile_by_name("v6.14+2.20+2.21")->name == "v6.14+2.20+2.21");
  std::string err;
  CHECK(!model::profile_by_name("v6.14+2.21", &err));
  CHECK(err ==
        "fix 2.21 needs fix 2.20 (it landed on top of it): name both, e.g. 'v6.14+2.20+2.21'");
  CHECK(!model::profile_by_name("v6.14+2.20+2.22", &err));
  CHECK(err ==
        "fix 2.22 needs fix 2.21 (it landed on top of it): name both, e.g. 'v6.14+2.21+2.22'");
  const auto v7 = model::profile_by_name("v7.0");
  REQUIRE(v7);
  CHECK(v7->version == "v7.0");
  CHECK(v7->tracing_progs_no_timer);  // 2.1 stays in the profile; 2.21 lifts the rule it set
  CHECK(v7->timer_any_context);
  const std::vector<std::string> listed = model::profile_names();
  const std::set<std::string> names(listed.begin(), listed.end());
  CHECK(names.count("v7.0"));
  CHECK(names.count("v5.15+2.20"));
  CHECK(names.count("v5.15+2.20+2.21"));
  CHECK(names.count("v5.15+2.20+2.21+2.22"));
}

TEST_CASE("profiles are remembered by name: asked again, the same profile or the same error",
          "[profile]") {
  // Asked twice each (the second answer comes from the cache): equal fields, equal errors.
  for (const std::string name : {"v5.15+2.9+2.8", "seed+2.11+2.2", "v6.8+2.12"}) {
    INFO(name);
    const auto a = model::profile_by_name(name);
    const auto b = model::profile_by_name(name);
    REQUIRE(a);
    REQUIRE(b);
    CHECK(a->name == b->name);
    CHECK(a->version == b->version);
    CHECK(a->cancel_and_free_kfree_rcu == b->cancel_and_free_kfree_rcu);
    CHECK(a->copy_skips_lock_and_timer == b->copy_skips_lock_and_timer);
  }
  for (int i = 0; i < 2; ++i) {  // a failing name is not cached: its error is said each time
    std::string err;
    CHECK(!model::profile_by_name("v5.15+2.12", &err));
    CHECK(err.find("needs fix 2.9") != std::string::npos);
  }
}
