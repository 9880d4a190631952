// bpftsim: entry point. Parses the command line and dispatches to the subcommand registered by
// its tools/cmd_*.cpp file.
#include <fmt/format.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tools/commands.h"

int main(int argc, char** argv) {
  using namespace bpftsim::tools;
  CLI::App app{"bpftsim: a deterministic simulator of the Linux BPF timer subsystem"};
  app.set_version_flag("--version", std::string("bpftsim ") + BPFTSIM_VERSION);
  app.require_subcommand(1);
  std::map<std::string, std::function<int()>> runners;
  for (auto& [name, setup] : command_registry())
    runners.emplace(name, setup(app));
  // The first word that is no option must name a subcommand (the top level takes no values);
  // CLI11 would only say "A subcommand is required" or that the word was not expected.
  if (argc > 1 && argv[1][0] != '-' && !runners.count(argv[1])) {
    std::vector<std::string> names;
    for (const auto& [name, run] : runners)
      names.push_back(name);
    std::string shown = argv[1];
    if (shown.size() > 60) shown = shown.substr(0, 57) + "...";
    std::fprintf(stderr, "bpftsim: unknown subcommand '%s' (subcommands: %s; see --help)\n",
                 shown.c_str(), fmt::format("{}", fmt::join(names, ", ")).c_str());
    return kExitBadInput;
  }
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
