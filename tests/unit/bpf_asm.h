// Test support: our own reader for the BPF ISA conformance suite's .data files and an assembler
// for the suite's assembly syntax (bpf_conformance, see /work/shared/conformance/README.md).
//
// Assembly syntax, one instruction per line, `#` starts a comment, `name:` defines a label:
//   mov %r0, 1 | mov32 %r1, -3 | add %r0, %r1 | add64 ...   ALU64 (no suffix or 64) / ALU (32)
//   sdiv / smod (off = 1), neg %r0, movsx832 %r0, %r1 (movsx<from><width>)
//   be16/be32/be64, le16/le32/le64 %r0; swap16/bswap16 ... (ALU64 unconditional bswap)
//   ldxb/ldxh/ldxw/ldxdw %r0, [%r1+2]; ldxsb/ldxsh/ldxsw; stb/sth/stw/stdw [%r10-8], imm;
//   stxb/stxh/stxw/stxdw [%r10-8], %r1; lddw %r0, 0x1122334455667788
//   lock [fetch] add|or|and|xor|xchg|cmpxchg[32] [%r10-8], %r1
//   ja label|+N; ja32 label; jeq %r1, imm|%r2, label|+N (and jne, jgt, jge, jlt, jle, jset,
//   jsgt, jsge, jslt, jsle, each with a 32 suffix for JMP32)
//   call N (helper) | call helper N | call local label | call %r2 (callx) | exit
// Numbers are decimal or 0x-hex with an optional sign. The label `exit` names the first exit
// instruction unless the program defines it.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "model/bpf_vm.h"

namespace bpftsim::testing {

// Thrown for malformed assembly or .data files; what() names the line.
struct AsmError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::vector<model::BpfInsn> assemble(std::string_view source);

struct ConformanceCase {
  std::string asm_text;             // the `-- asm` section
  std::vector<model::BpfInsn> raw;  // the `-- raw` section (each line a 64-bit instruction)
  bool has_raw = false;
  std::vector<std::uint8_t> mem;        // the `-- mem` section
  std::optional<std::uint64_t> result;  // the `-- result` section
  std::optional<std::string> error;     // the `-- error` section
};

// Parses the text of one .data file. Unknown sections (`-- c`, `-- no register offset`) are
// ignored.
ConformanceCase parse_conformance(std::string_view text);

// The program of a case: `-- raw` when present, else the assembled `-- asm`.
std::vector<model::BpfInsn> conformance_program(const ConformanceCase& c);

// Parses an integer literal (decimal or 0x-hex, optional sign), wrapping to 64 bits.
std::uint64_t parse_number(std::string_view text);

}  // namespace bpftsim::testing
