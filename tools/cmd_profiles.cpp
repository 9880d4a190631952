// `bpftsim profiles`: the kernel profiles a scenario's "profile" or --profile may name. Each
// kernel version with the changes it adds to the one before (fixes of reference section 2 and
// features, by id and commit title) and what of that version the model leaves out; then every
// single change, which may be added to any version ("v6.1+2.9").
#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "model/profile.h"
#include "tools/commands.h"

namespace bpftsim::tools {
namespace {

const model::ProfileFix* change(const std::string& id) {
  for (const model::ProfileFix& f : model::profile_changes())
    if (f.id == id) return &f;
  return nullptr;
}

std::string kind(const model::ProfileFix& f) {
  return f.feature ? "feature" : "fix";
}

int profiles() {
  std::string out =
      "Kernel versions (each holds the changes of the versions before it; v5.15 is the seed, "
      "also 'seed'):\n";
  for (const model::KernelVersion& v : model::kernel_versions()) {
    out += fmt::format("{}\n", v.name);
    if (v.name == "v5.15") out += "  the seed: \"bpf: Introduce bpf timers.\"\n";
    for (const std::string& id : v.adds) {
      const model::ProfileFix* f = change(id);
      out += fmt::format("  +{:<9} {:<8} {}\n", id, f ? kind(*f) : "?", f ? f->title : "?");
    }
    if (v.adds.empty() && v.name != "v5.15")
      out += "  no change the model implements (same behaviour as the version before)\n";
    if (!v.not_modelled.empty()) out += fmt::format("  not modelled: {}\n", v.not_modelled);
  }
  out +=
      "\nSingle changes, added to any version with '+' (v5.15+2.9, v6.1+2.9; a change needs the "
      "ones it was written on):\n";
  for (const model::ProfileFix& f : model::profile_changes()) {
    out += fmt::format("  +{:<9} {:<8} {}", f.id, kind(f), f.title);
    if (!f.requires_fixes.empty())
      out += fmt::format(" (needs +{})", fmt::join(f.requires_fixes, " +"));
    out += "\n";
  }
  out +=
      "\nCanonical names: the latest version whose changes a profile holds (the one named when "
      "versions hold the same), then the further changes in the order above: v5.15+2.1 is "
      "v5.16, v6.8+2.9 is v6.8, v5.15+2.9+2.8 is v5.15+2.8+2.9.\n";
  std::fputs(out.c_str(), stdout);
  return kExitOk;
}

const Registrar kRegisterProfiles{
    "profiles", [](CLI::App& app) {
      app.add_subcommand("profiles",
                         "List the kernel profiles: each version and the changes it holds, and "
                         "the single changes that can be added to one");
      return std::function<int()>([] { return profiles(); });
    }};

}  // namespace
}  // namespace bpftsim::tools
