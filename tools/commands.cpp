#include "tools/commands.h"

#include <fmt/format.h>

#include "model/profile.h"

namespace bpftsim::tools {

std::string profile_help() {
  std::string s =
      "kernel profile (overrides the scenario's): v5.15 (the seed, also 'seed'), plus any fixes "
      "joined with '+', e.g. v5.15+2.9+2.12 (a fix needs the ones it was written on); fixes:";
  for (const model::ProfileFix& f : model::profile_fixes()) {
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
