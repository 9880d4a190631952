// bpftsim command line: each subcommand lives in its own tools/cmd_<name>.cpp and registers itself
// with a static Registrar, so that adding a subcommand never touches main.cpp.
//
// Exit codes (every subcommand): 0 all expectations hold, 1 an expectation or a checker failed,
// 2 bad input (scenario JSON, BPF ELF, CLI flags). Input errors print one message naming the file
// and the place in it (JSON pointer, ELF section, instruction) on stderr.
#pragma once

#include <CLI/CLI.hpp>

#include <charconv>
#include <cstdint>
#include <functional>
#include <map>
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

// Every registered subcommand, ordered by name (so that --help lists them in a stable order).
std::map<std::string, CommandSetup>& command_registry();

// The check for an unsigned integer option (--seed, --budget): decimal digits only (no sign, no
// spaces, no base prefix) and a value in [min, max]. CLI11's own conversion would take "-1" and
// 99999999999999999999 as 2^64-1; this refuses them, so the option reads "--seed: expected an
// integer in [0, 18446744073709551615], got '-1'" and the command exits 2.
inline CLI::Validator unsigned_in(std::uint64_t min, std::uint64_t max) {
  return CLI::Validator(
      [min, max](std::string& text) -> std::string {
        std::uint64_t v = 0;
        const bool digits = !text.empty() && text.size() <= 20 &&
                            text.find_first_not_of("0123456789") == std::string::npos;
        if (digits &&
            std::from_chars(text.data(), text.data() + text.size(), v).ec == std::errc() &&
            v >= min && v <= max)
          return "";
        std::string shown = text.size() > 40 ? text.substr(0, 37) + "..." : text;
        return "expected an integer in [" + std::to_string(min) + ", " + std::to_string(max) +
               "], got '" + shown + "'";
      },
      "UINT in [" + std::to_string(min) + ", " + std::to_string(max) + "]", "unsigned_in");
}
inline constexpr std::uint64_t kMaxU64 = UINT64_MAX;

// The --profile help text: the seed and every fix with its title, and how fixes combine.
std::string profile_help();

}  // namespace bpftsim::tools
