#include "tools/commands.h"

namespace bpftsim::tools {

std::map<std::string, CommandSetup>& command_registry() {
  static std::map<std::string, CommandSetup> commands;
  return commands;
}

Registrar::Registrar(std::string name, CommandSetup setup) {
  command_registry().emplace(std::move(name), std::move(setup));
}

}  // namespace bpftsim::tools
