// BPF interpreter: executes eBPF bytecode as defined by RFC 9669 (the whole ISA clang emits at any
// -mcpu, including the v4 sign-extending moves/loads, signed division, bswap and ja32).
// Mirrors the role of kernel/bpf/core.c (___bpf_prog_run), but is resumable: run() stops at every
// helper call so that the caller (a coroutine in model/helpers) can interleave the helper's kernel
// steps with other CPUs, then complete_helper() resumes the program.
//
// Memory is addressed through tagged regions (AddressSpace): a guest address is
// (region_id << 32) | offset. Region 0 is never mapped, so NULL and small integers fault.
// Every bad access, a runaway loop past the instruction budget, an unknown instruction or an
// unsupported call is a Fault carrying the pc and the instruction; the VM never crashes the host.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "model/address_space.h"

namespace bpftsim::model {

struct BpfInsn {
  std::uint8_t code = 0;
  std::uint8_t regs = 0;  // dst in the low nibble, src in the high nibble (little-endian layout)
  std::int16_t off = 0;
  std::int32_t imm = 0;

  std::uint8_t dst() const { return regs & 0x0f; }
  std::uint8_t src() const { return regs >> 4; }
};
static_assert(sizeof(BpfInsn) == 8);

enum class FaultKind : std::uint8_t {
  kBadAccess,       // outside every region, or past the end of one
  kNullDeref,       // address in region 0 (NULL and small integers)
  kReadOnlyWrite,   // store to .rodata or another read-only region
  kDeadRegion,      // region was retired (freed memory)
  kBudget,          // instruction budget exhausted (runaway loop)
  kBadInstruction,  // unknown opcode, bad register, jump out of the program
  kBadCall,         // unknown helper / kfunc / bad call target, call depth exceeded
};

const char* fault_kind_name(FaultKind kind);

struct Fault {
  FaultKind kind = FaultKind::kBadAccess;
  std::uint32_t pc = 0;  // instruction index of the faulting instruction
  BpfInsn insn;
  std::uint64_t addr = 0;  // faulting address, if a memory access
  std::string message;     // one line: what happened, the region and offset where known
};

// One executable image: instructions after relocation (ld_imm64 immediates already hold final
// addresses; BPF_PSEUDO_CALL calls are pc-relative as in the ELF).
struct BpfProgramImage {
  std::string name;
  std::vector<BpfInsn> insns;
};

class BpfVm {
 public:
  static constexpr std::uint32_t kStackSize = 512;
  static constexpr std::uint32_t kMaxCallDepth = 8;

  enum class Stop : std::uint8_t {
    kExit,        // the entry frame returned: r0() holds the result
    kHelperCall,  // a `call imm` to a helper: helper_id()/arg(i); resume with complete_helper()
    kFault,       // fault() describes it; the VM must not be resumed
  };

  // An image checked and made ready to run (every instruction that can never execute replaced by
  // an invalid-op marker, a sentinel appended), immutable: VMs of the same program, in one run or
  // in many runs of one loaded scenario, share it.
  struct Code;
  static std::shared_ptr<const Code> prepare(const BpfProgramImage& image);
  // The instructions `code` was prepared from (as given, relocations applied).
  static const std::vector<BpfInsn>& insns_of(const Code& code);

  // `space` must outlive the VM; stack frames are registered in it as kStack regions.
  BpfVm(const BpfProgramImage& image, AddressSpace& space, std::uint64_t insn_budget);
  BpfVm(std::shared_ptr<const Code> code, AddressSpace& space, std::uint64_t insn_budget);
  ~BpfVm();
  BpfVm(const BpfVm&) = delete;
  BpfVm& operator=(const BpfVm&) = delete;

  // Begins a run at instruction `entry_pc` with r1..r5 = args and r10 = top of a fresh stack.
  void start(std::uint32_t entry_pc, std::array<std::uint64_t, 5> args);
  // Enters a callback subprogram on top of the current frames (bpf_loop, for_each): the next
  // run() returns kExit when that callback returns, and the interrupted frames resume after
  // complete_helper(). Nesting is allowed up to kMaxCallDepth frames in all.
  void start_callback(std::uint32_t entry_pc, std::array<std::uint64_t, 5> args);

  // Executes until exit, a helper call or a fault. Each executed instruction is counted.
  Stop run();
  void complete_helper(std::uint64_t r0);

  std::int32_t helper_id() const;
  std::uint64_t arg(unsigned i) const;  // r1..r5 at a helper call, i in 1..5
  std::uint64_t r0() const;
  std::uint32_t pc() const;
  const Fault& fault() const;
  // Instructions executed since construction / since the last call to take_executed().
  std::uint64_t executed_total() const;
  std::uint64_t take_executed();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The address a BPF_PSEUDO_FUNC ld_imm64 materializes for subprogram `pc` of a program whose code
// token is `code_token` (see model/loader.h): callbacks travel through helpers as this value.
inline std::uint64_t bpf_func_address(std::uint32_t code_token, std::uint32_t pc) {
  return (std::uint64_t{0xFFFF0000u | (code_token & 0xFFFFu)} << 32) | pc;
}
inline bool bpf_is_func_address(std::uint64_t v) {
  return (v >> 48) == 0xFFFF;
}
inline std::uint32_t bpf_func_code_token(std::uint64_t v) {
  return static_cast<std::uint32_t>((v >> 32) & 0xFFFF);
}
inline std::uint32_t bpf_func_pc(std::uint64_t v) {
  return static_cast<std::uint32_t>(v);
}

}  // namespace bpftsim::model
