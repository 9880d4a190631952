// bpftsim command line: each subcommand lives in its own tools/cmd_<name>.cpp and registers itself
// with a static Registrar, so that adding a subcommand never touches main.cpp.
//
// Exit codes (every subcommand): 0 all expectations hold, 1 an expectation or a checker failed,
// 2 bad input (scenario JSON, BPF ELF, CLI flags). Input errors print one message naming the file
// and the place in it (JSON pointer, ELF section, instruction) on stderr.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

namespace bpftsim::tools {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitBadInput = 2;

// Adds the subcommand to `app`; returns the function main() calls when that subcommand was parsed.
using CommandSetup = std::function<std::function<int()>(CLI::App& app)>;

struct Registrar {
  Registrar(std::string name, CommandSetup setup);
};

}  // namespace bpftsim::tools
