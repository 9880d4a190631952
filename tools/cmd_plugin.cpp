// `bpftsim plugin [MEMORY] [OPTIONS] [--program HEX] [--budget N]`: runs one BPF program through
// BpfVm, speaking the bpf_conformance runner's plugin protocol, so that the public ISA
// conformance suite can drive our interpreter exactly as it drives uBPF or the kernel:
//   - MEMORY: the program's memory as hex bytes (spaces allowed, may be empty or absent); it is
//     mapped as a writable context region, r1 = its address and r2 = its length (0 and 0 when
//     empty). OPTIONS are the runner's --plugin_options words, accepted and ignored (dashed ones
//     too). The runner omits MEMORY when a test has none, so its options then come first: the
//     first argument is MEMORY only if it is hex bytes. `--elf` (ELF on stdin) is refused.
//   - the program: hex instruction bytes on stdin, or after --program.
//   - success: r0 in lowercase hex without 0x on stdout (the runner parses it base 16), exit 0.
//   - fault: the one-line fault message on stdout (the runner compares stdout with a test's
//     `-- error` text when the exit code is not 0) and, prefixed, on stderr; exit 1.
// Helper calls are faults here: the suite's test-only helpers belong to its reference plugin.
// --budget N (1..10^10, default 10^8): instructions a run may execute before it is stopped as a
// `budget` fault (exit 1); 0, a sign or a value out of range is bad input (exit 2).
#include <cctype>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "model/bpf_vm.h"
#include "tools/commands.h"

namespace bpftsim::tools {
namespace {

using model::AddressSpace;
using model::BpfInsn;
using model::BpfProgramImage;
using model::BpfVm;

struct PluginArgs {
  std::string memory;
  std::vector<std::string> words;  // [MEMORY] OPTIONS..., as the runner orders them
  std::string program;
  bool has_program = false;
  std::uint64_t budget = 100'000'000;
};

// The largest --budget: about 40 s of the interpreter at full speed (Release build). 0 is refused
// too: with no instruction to spend, every program would fault at its first one.
constexpr std::uint64_t kMaxPluginBudget = 10'000'000'000;

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Hex bytes with any whitespace between them (the runner writes "b7  00  ..."), or one run.
std::optional<std::vector<std::uint8_t>> parse_hex(const std::string& text, std::string* why) {
  std::vector<std::uint8_t> out;
  int high = -1;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    const int d = hex_digit(c);
    if (d < 0) {
      *why = fmt::format("bad hex character '{}' at position {}", c, i);
      return std::nullopt;
    }
    if (high < 0) {
      high = d;
    } else {
      out.push_back(static_cast<std::uint8_t>(high << 4 | d));
      high = -1;
    }
  }
  if (high >= 0) {
    *why = "odd number of hex digits";
    return std::nullopt;
  }
  return out;
}

std::vector<BpfInsn> decode_insns(const std::vector<std::uint8_t>& bytes) {
  std::vector<BpfInsn> insns(bytes.size() / sizeof(BpfInsn));
  for (std::size_t i = 0; i < insns.size(); ++i) {
    const std::uint8_t* p = bytes.data() + i * sizeof(BpfInsn);
    BpfInsn& in = insns[i];
    in.code = p[0];
    in.regs = p[1];
    in.off = static_cast<std::int16_t>(static_cast<std::uint16_t>(p[2] | (p[3] << 8)));
    in.imm = static_cast<std::int32_t>(
        static_cast<std::uint32_t>(p[4]) | (static_cast<std::uint32_t>(p[5]) << 8) |
        (static_cast<std::uint32_t>(p[6]) << 16) | (static_cast<std::uint32_t>(p[7]) << 24));
  }
  return insns;
}

int run_plugin(const PluginArgs& args) {
  std::string why;
  auto memory = parse_hex(args.memory, &why);
  if (!memory) {
    std::fprintf(stderr, "bpftsim plugin: memory argument: %s\n", why.c_str());
    return kExitBadInput;
  }
  std::string program_text;
  if (args.has_program) {
    program_text = args.program;
  } else {
    program_text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  auto bytes = parse_hex(program_text, &why);
  if (!bytes) {
    std::fprintf(stderr, "bpftsim plugin: program: %s\n", why.c_str());
    return kExitBadInput;
  }
  if (bytes->empty() || bytes->size() % sizeof(BpfInsn) != 0) {
    std::fprintf(stderr,
                 "bpftsim plugin: program: %zu bytes is not a whole number (>0) of "
                 "8-byte instructions\n",
                 bytes->size());
    return kExitBadInput;
  }

  BpfProgramImage image{"plugin", decode_insns(*bytes)};
  AddressSpace space;
  std::uint64_t mem_addr = 0;
  if (!memory->empty()) {
    const auto id = space.add(model::RegionKind::kContext, "mem", memory->data(),
                              static_cast<std::uint32_t>(memory->size()), true);
    mem_addr = AddressSpace::base(id);
  }
  BpfVm vm(image, space, args.budget);
  vm.start(0, {mem_addr, memory->size(), 0, 0, 0});
  std::string failure;
  switch (vm.run()) {
    case BpfVm::Stop::kExit:
      std::printf("%llx\n", static_cast<unsigned long long>(vm.r0()));
      return kExitOk;
    case BpfVm::Stop::kHelperCall:
      failure =
          fmt::format("pc {}: helper {} is not available in the plugin", vm.pc(), vm.helper_id());
      break;
    case BpfVm::Stop::kFault:
      failure = fmt::format("{}: {}", model::fault_kind_name(vm.fault().kind), vm.fault().message);
      break;
  }
  std::printf("%s\n", failure.c_str());
  std::fprintf(stderr, "bpftsim plugin: %s\n", failure.c_str());
  return kExitFailed;
}

const Registrar kRegisterPlugin{
    "plugin", [](CLI::App& app) {
      auto args = std::make_shared<PluginArgs>();
      auto* sub = app.add_subcommand(
          "plugin", "Run one BPF program as a bpf_conformance plugin (program hex on stdin)");
      sub->add_option("memory", args->words,
                      "Program memory as hex bytes (may be empty or absent), then the runner's "
                      "plugin options (ignored)");
      sub->allow_extras();  // dashed plugin options, e.g. --plugin_options "--jit"
      auto* program =
          sub->add_option("--program", args->program, "Program as hex bytes instead of stdin");
      sub->add_option("--budget", args->budget,
                      "Instruction budget (runaway-loop guard): 1 to 10^10 instructions")
          ->check(unsigned_in(1, kMaxPluginBudget))
          ->capture_default_str();
      return std::function<int()>([args, program, sub] {
        args->has_program = program->count() > 0;
        for (const auto& extra : sub->remaining()) {
          if (extra == "--elf") {
            std::fprintf(stderr, "bpftsim plugin: --elf (ELF program input) is not supported\n");
            return kExitBadInput;
          }
        }
        // The runner passes MEMORY only when it is not empty; otherwise the first word is an
        // option.
        std::string why;
        if (!args->words.empty() && parse_hex(args->words.front(), &why)) {
          args->memory = args->words.front();
        }
        return run_plugin(*args);
      });
    }};

}  // namespace
}  // namespace bpftsim::tools
