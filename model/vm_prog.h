// A BPF program loaded from a clang-built ELF object and run by the interpreter (model/bpf_vm.h):
// the bytecode counterpart of NativeProg. Stands for struct bpf_prog as bpf_prog_load leaves it
// (kernel/bpf/syscall.c) and for its execution (___bpf_prog_run, kernel/bpf/core.c).
//
// A run starts the VM at the entry with r1 = the context (fentry-style u64 arguments, in a
// read-only kContext region), then alternates: the VM runs until a helper call, exit or fault;
// the instructions it executed are charged as one step (insn_ns each); a helper call goes to
// helpers::dispatch, whose kernel steps interleave with the other CPUs; its r0 resumes the VM.
// So helper calls (and the lock steps inside them) are the interleaving points of a program.
// A fault (bad access, NULL dereference, write to .rodata, budget exhausted, ...) is reported as a
// program_fault finding naming the program, function, pc and instruction, and ends the run;
// the finding stops the simulation cleanly.
//
// Callbacks (bpf_timer_cb in softirq) are fresh runs of the subprogram bpf_func_pc(fn) in the
// calling context. bpf_loop's callbacks run on the VM of the run that called it. Each concurrent
// run (another CPU, a softirq on top of a task) gets its own VM; idle VMs are reused.
//
// Function addresses (BPF_PSEUDO_FUNC) are bpf_func_address(prog id, pc): bpf_timer_cb finds
// the program again with k.prog_by_id(bpf_func_code_token(fn)).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/bpf_prog.h"
#include "model/bpf_vm.h"
#include "model/helpers.h"
#include "model/libbpf_loader.h"

namespace bpftsim::model {

class VmProg final : public BpfProg {
 public:
  // Instructions one run (with the callbacks it enters through bpf_loop) may execute before it
  // is stopped as a runaway loop. The kernel has no such limit at run time (its verifier proves
  // termination); the model does not verify, so this stands in for that proof.
  static constexpr std::uint64_t kDefaultInsnBudget = 1'000'000;

  // `spec` with its ld_imm64 relocations already patched (model/bpf_object.h does that).
  VmProg(Kernel& k, ProgSpec spec, ObjId obj, std::uint32_t id,
         std::uint64_t insn_budget = kDefaultInsnBudget);
  // The same from an immutable `spec` (shared, e.g. with a loaded scenario) and its relocated
  // code already prepared for the VM (BpfVm::prepare; shared between runs when identical).
  VmProg(Kernel& k, std::shared_ptr<const ProgSpec> spec, std::shared_ptr<const BpfVm::Code> code,
         ObjId obj, std::uint32_t id, std::uint64_t insn_budget = kDefaultInsnBudget);
  ~VmProg() override;

  // The program as loaded; its instructions are those of the ELF (relocated ones: code()).
  const ProgSpec& spec() const { return *spec_; }
  const std::vector<BpfInsn>& code() const { return BpfVm::insns_of(*code_); }
  std::uint64_t insn_budget() const { return insn_budget_; }
  // Instructions executed by all runs so far.
  std::uint64_t executed_insns() const { return executed_; }
  // The name of the function (entry or subprogram) whose code holds `pc`.
  std::string function_at(std::uint32_t pc) const;

  sim::Co<std::int64_t> run(sim::Context& ctx, std::array<std::uint64_t, 5> args) override;
  sim::Co<std::int64_t> run_callback(sim::Context& ctx, std::uint64_t fn,
                                     std::array<std::uint64_t, 5> args) override;
  bool owns_callback(std::uint64_t fn) const override;
  std::string callback_name(std::uint64_t fn) const override;

 private:
  struct Exec;

  Exec& acquire();
  void release(Exec& ex);
  // Runs `ex`'s VM until the current frame returns (kExit) or the run aborts.
  sim::Co<helpers::HelperOutcome> drive(sim::Context& ctx, Exec& ex);
  void report_fault(sim::Context& ctx, const Exec& ex);

  std::shared_ptr<const ProgSpec> spec_;
  std::shared_ptr<const BpfVm::Code> code_;
  std::uint64_t insn_budget_;
  std::uint64_t executed_ = 0;
  std::vector<std::unique_ptr<Exec>> execs_;  // every VM made so far
  std::vector<Exec*> idle_;                   // those not in a run, reused last-in first-out
};

}  // namespace bpftsim::model
