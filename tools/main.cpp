// bpftsim: entry point. Parses the command line and dispatches to the subcommand registered by
// its tools/cmd_*.cpp file.
#include <cstdio>
#include <map>
#include <memory>

#include "tools/commands.h"

namespace bpftsim::tools {
namespace {
// Ordered by name so that --help lists subcommands in a stable order.
std::map<std::string, CommandSetup>& registry() {
  static std::map<std::string, CommandSetup> commands;
  return commands;
}
}  // namespace

Registrar::Registrar(std::string name, CommandSetup setup) {
  registry().emplace(std::move(name), std::move(setup));
}

}  // namespace bpftsim::tools

int main(int argc, char** argv) {
  using namespace bpftsim::tools;
  CLI::App app{"bpftsim: a deterministic simulator of the Linux BPF timer subsystem"};
  app.set_version_flag("--version", std::string("bpftsim ") + BPFTSIM_VERSION);
  app.require_subcommand(1);
  std::map<std::string, std::function<int()>> runners;
  for (auto& [name, setup] : registry())
    runners.emplace(name, setup(app));
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitBadInput;
  }
  for (auto* sub : app.get_subcommands()) {
    auto it = runners.find(sub->get_name());
    if (it != runners.end()) return it->second();
  }
  std::fprintf(stderr, "bpftsim: no subcommand given (see --help)\n");
  return kExitBadInput;
}
