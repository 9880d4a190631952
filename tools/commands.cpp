#include "tools/commands.h"

#include <fmt/format.h>

#include "model/profile.h"

namespace bpftsim::tools {

std::string profile_help() {
  std::string versions;
  for (const model::KernelVersion& v : model::kernel_versions())
    versions += (versions.empty() ? "" : " ") + v.name;
  std::string s = fmt::format(
      "kernel profile (overrides the scenario's): a kernel version ({}; v5.15 is the seed, also "
      "'seed'), plus any single changes joined with '+', e.g. v5.15+2.9+2.12 or v6.1+2.9 (a "
      "change needs the ones it was written on); `bpftsim profiles` lists what each version "
      "holds; changes:",
      versions);
  for (const model::ProfileFix& f : model::profile_changes()) {
    s += fmt::format("\n  +{}  {}", f.id, f.title);
    if (!f.requires_fixes.empty())
      s += fmt::format(" (needs +{})", fmt::join(f.requires_fixes, " +"));
  }
  return s;
}

std::map<std::string, CommandSetup>& command_registry() {
  static std::map<std::string, CommandSetup> commands;
  return commands;
}

Registrar::Registrar(std::string name, CommandSetup setup) {
  command_registry().emplace(std::move(name), std::move(setup));
}

}  // namespace bpftsim::tools
