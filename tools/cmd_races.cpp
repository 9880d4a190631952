// `bpftsim races`: replays the built-in race catalogue (reference section 4, v5.15 profile) and
// says, case by case, whether the outcome the reference states was observed.
#include <fmt/format.h>

#include <cstdio>
#include <string>
#include <vector>

#include "scenarios/native/races.h"
#include "tools/commands.h"

namespace bpftsim::tools {
namespace {

struct RacesOptions {
  std::uint64_t seed = 1;
  std::string profile = "v5.15";
  std::vector<std::string> cases;
  bool list = false;
  bool digest_only = false;
  bool trace = false;
};

int run_races(const RacesOptions& opt) {
  const auto& all = native::race_catalogue();
  if (opt.list) {
    for (const auto& c : all)
      std::printf("%-16s %s\n", c.id.c_str(), c.title.c_str());
    return kExitOk;
  }
  std::string perr;
  auto profile = model::profile_by_name(opt.profile, &perr);
  if (!profile) {
    std::fprintf(stderr, "bpftsim races: --profile: %s\n", perr.c_str());
    return kExitBadInput;
  }
  std::vector<const native::RaceCase*> chosen;
  for (const auto& id : opt.cases) {
    const auto* c = native::find_race(id);
    if (!c) {
      std::fprintf(stderr, "bpftsim races: unknown case '%s' (see --list)\n", id.c_str());
      return kExitBadInput;
    }
    chosen.push_back(c);
  }
  if (chosen.empty())
    for (const auto& c : all)
      chosen.push_back(&c);

  int failed = 0;
  if (!opt.digest_only)
    std::printf("bpftsim races: %zu case(s), profile %s, seed %llu%s\n\n", chosen.size(),
                profile->name.c_str(), static_cast<unsigned long long>(opt.seed),
                profile->name == "v5.15"
                    ? ""
                    : " (expected outcomes are the seed's: NOT SEEN means a fix closed the race)");
  for (const auto* c : chosen) {
    native::RaceOutcome o = c->run(native::RunConfig{opt.seed, nullptr, *profile});
    const auto& trace = o.world->sim.trace();
    if (opt.digest_only) {
      std::printf("%s %016llx %llu\n", c->id.c_str(),
                  static_cast<unsigned long long>(trace.digest()),
                  static_cast<unsigned long long>(trace.count()));
      continue;
    }
    failed += o.as_expected ? 0 : 1;
    std::printf("%-16s %-12s %s\n", c->id.c_str(), o.as_expected ? "REPRODUCED" : "NOT SEEN",
                c->title.c_str());
    std::printf("%-16s %-12s expected: %s\n", "", "", c->expected.c_str());
    std::printf("%-16s %-12s observed: %s\n", "", "", o.observed.c_str());
    for (const auto& f : o.world->sim.findings()) {
      std::printf("%-16s %-12s finding:  %s at t=%lld ns on cpu %d: %s\n", "", "", f.kind.c_str(),
                  static_cast<long long>(f.t_ns), f.cpu, f.message.c_str());
      for (const auto& d : f.details)
        std::printf("%-29s   %s\n", "", d.c_str());
    }
    if (!o.as_expected)
      std::printf("%-16s %-12s reproduce: bpftsim races --case %s --seed %llu --trace\n", "", "",
                  c->id.c_str(), static_cast<unsigned long long>(opt.seed));
    if (opt.trace)
      for (const auto& r : trace.records())
        std::printf("    %s\n", sim::Trace::format_text(r).c_str());
    std::printf("\n");
  }
  if (!opt.digest_only)
    std::printf("%zu reproduced, %d not seen\n", chosen.size() - failed, failed);
  return failed ? kExitFailed : kExitOk;
}

const Registrar reg{"races", [](CLI::App& app) {
                      auto opt = std::make_shared<RacesOptions>();
                      auto* sub = app.add_subcommand(
                          "races",
                          "Replay the built-in race catalogue (reference section 4) on the v5.15 "
                          "profile and check each outcome");
                      sub->add_option("--seed", opt->seed, "scheduler seed (default 1)")
                          ->check(unsigned_in(0, kMaxU64));
                      sub->add_option(
                          "--profile", opt->profile,
                          "kernel profile: v5.15, optionally +2.2 +2.8 +2.9 +2.11 +2.12 "
                          "(later fixes, by reference section)");
                      sub->add_option("--case", opt->cases, "only these case ids (repeatable)");
                      sub->add_flag("--list", opt->list, "list the cases and exit");
                      sub->add_flag("--trace", opt->trace, "print each run's trace as text");
                      sub->add_flag("--digest-only", opt->digest_only,
                                    "print 'id digest records' per case (determinism checks)");
                      return [opt] { return run_races(*opt); };
                    }};

}  // namespace
}  // namespace bpftsim::tools
