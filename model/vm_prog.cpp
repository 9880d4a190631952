#include "model/vm_prog.h"

#include <fmt/format.h>

#include <algorithm>

#include "model/kernel.h"
#include "sim/assert.h"

namespace bpftsim::model {

using helpers::HelperOutcome;

namespace {
constexpr HelperOutcome kAborted{true, 0};
}  // namespace

// One VM with the context buffer its runs pass in r1. A run holds it from start to exit; the
// bpf_loop callbacks of that run are entered on the same VM.
struct VmProg::Exec final : helpers::SubprogRunner {
  Exec(VmProg& p, std::size_t index) : prog(p), vm(p.code_, p.k.mem, p.insn_budget_), ctx_args{} {
    ctx_region = p.k.mem.add(RegionKind::kContext,
                             "context " + std::to_string(index) + " of prog '" + p.name + "'",
                             reinterpret_cast<std::uint8_t*>(ctx_args.data()),
                             static_cast<std::uint32_t>(sizeof(ctx_args)), false);
    ctx_addr = AddressSpace::base(ctx_region);
  }
  ~Exec() { prog.k.mem.retire(ctx_region); }
  Exec(const Exec&) = delete;
  Exec& operator=(const Exec&) = delete;

  sim::Co<HelperOutcome> call_subprog(sim::Context& ctx, std::uint32_t pc,
                                      std::array<std::uint64_t, 5> args) override {
    vm.start_callback(pc, args);
    co_return co_await prog.drive(ctx, *this);
  }

  VmProg& prog;
  BpfVm vm;
  std::array<std::uint64_t, 5> ctx_args;  // fentry-style: the traced function's arguments
  std::uint32_t ctx_region = 0;
  std::uint64_t ctx_addr = 0;
};

VmProg::VmProg(Kernel& kernel, ProgSpec spec, ObjId o, std::uint32_t prog_id,
               std::uint64_t insn_budget)
    : BpfProg(kernel, spec.name, o, prog_id),
      spec_(std::make_shared<const ProgSpec>(std::move(spec))),
      code_(BpfVm::prepare(BpfProgramImage{spec_->name, spec_->insns})),
      insn_budget_(insn_budget) {
  SIM_ASSERT(!spec_->functions.empty() && spec_->functions.front().first == 0,
             "prog '{}' has no entry function", name);
}

VmProg::VmProg(Kernel& kernel, std::shared_ptr<const ProgSpec> spec,
               std::shared_ptr<const BpfVm::Code> code, ObjId o, std::uint32_t prog_id,
               std::uint64_t insn_budget)
    : BpfProg(kernel, spec->name, o, prog_id),
      spec_(std::move(spec)),
      code_(std::move(code)),
      insn_budget_(insn_budget) {
  SIM_ASSERT(!spec_->functions.empty() && spec_->functions.front().first == 0,
             "prog '{}' has no entry function", name);
  SIM_ASSERT(BpfVm::insns_of(*code_).size() == spec_->insns.size(),
             "prog '{}': code of {} instructions for a spec of {}", name,
             BpfVm::insns_of(*code_).size(), spec_->insns.size());
}

VmProg::~VmProg() = default;

std::string VmProg::function_at(std::uint32_t pc) const {
  auto it = std::upper_bound(spec_->functions.begin(), spec_->functions.end(), pc,
                             [](std::uint32_t p, const auto& f) { return p < f.first; });
  if (it == spec_->functions.begin()) return "?";
  return std::prev(it)->second;
}

bool VmProg::owns_callback(std::uint64_t fn) const {
  if (!bpf_is_func_address(fn) || bpf_func_code_token(fn) != (id & 0xFFFF)) return false;
  const std::uint32_t pc = bpf_func_pc(fn);
  return std::any_of(spec_->functions.begin(), spec_->functions.end(),
                     [pc](const auto& f) { return f.first == pc; });
}

std::string VmProg::callback_name(std::uint64_t fn) const {
  return owns_callback(fn) ? function_at(bpf_func_pc(fn)) : fmt::format("{:#x}", fn);
}

VmProg::Exec& VmProg::acquire() {
  if (idle_.empty()) {
    execs_.push_back(std::make_unique<Exec>(*this, execs_.size()));
    return *execs_.back();
  }
  Exec* ex = idle_.back();
  idle_.pop_back();
  return *ex;
}

void VmProg::release(Exec& ex) {
  idle_.push_back(&ex);
}

void VmProg::report_fault(sim::Context& ctx, const Exec& ex) {
  const Fault& f = ex.vm.fault();
  k.note_bpf_pc(ctx, spec_.get(), f.pc);
  const std::string func = function_at(f.pc);
  ctx.trace("bpf_prog_fault",
            {{"prog", id}, {"pc", f.pc}, {"kind", fault_kind_name(f.kind)}, {"func", func}});
  k.program_fault(&ctx, fmt::format("prog {} '{}' ({}): {} fault in {}: {} [insn code {:#04x} "
                                    "regs {:#04x} off {} imm {}]",
                                    id, name, spec_->section, fault_kind_name(f.kind), func,
                                    f.message, f.insn.code, f.insn.regs, f.insn.off, f.insn.imm));
}

sim::Co<HelperOutcome> VmProg::drive(sim::Context& ctx, Exec& ex) {
  ProgRun r{k, ctx, *this};
  for (;;) {
    const BpfVm::Stop stop = ex.vm.run();
    const std::uint64_t n = ex.vm.take_executed();
    executed_ += n;
    k.insns_executed += n;
    if (k.insns_executed > k.max_insns) {
      k.sim.stop_at_limit(
          sim::Finding{.kind = sim::FindingKind::kLiveness,
                       .message = fmt::format("BPF instruction limit of {} reached (in program "
                                              "'{}'){}",
                                              k.max_insns, name, k.insn_limit_hint),
                       .t_ns = k.sim.now(),
                       .cpu = ctx.cpu()});
      co_return kAborted;
    }
    if (stop == BpfVm::Stop::kFault) {
      report_fault(ctx, ex);
      co_return kAborted;
    }
    // The segment's instructions happened at the start of this step; the helper call (or the
    // return) comes after it.
    if (n > 0) co_await ctx.step(sim::mul_sat(k.cost.insn_ns, n));
    if (k.sim.stopped()) co_return kAborted;
    if (stop == BpfVm::Stop::kExit) co_return HelperOutcome{false, ex.vm.r0()};
    const std::int32_t helper = ex.vm.helper_id();
    const std::array<std::uint64_t, 5> args{ex.vm.arg(1), ex.vm.arg(2), ex.vm.arg(3), ex.vm.arg(4),
                                            ex.vm.arg(5)};
    k.note_bpf_pc(ctx, spec_.get(), ex.vm.pc());
    const HelperOutcome out = co_await helpers::dispatch(r, helper, args, ex);
    if (out.aborted) co_return kAborted;
    ex.vm.complete_helper(out.r0);
  }
}

sim::Co<std::int64_t> VmProg::run(sim::Context& ctx, std::array<std::uint64_t, 5> args) {
  Exec& ex = acquire();
  ex.ctx_args = args;
  ex.vm.start(0, {ex.ctx_addr, 0, 0, 0, 0});
  const HelperOutcome out = co_await drive(ctx, ex);
  release(ex);
  co_return static_cast<std::int64_t>(out.r0);
}

sim::Co<std::int64_t> VmProg::run_callback(sim::Context& ctx, std::uint64_t fn,
                                           std::array<std::uint64_t, 5> args) {
  SIM_ASSERT(owns_callback(fn), "prog {} runs foreign callback {:#x}", name, fn);
  Exec& ex = acquire();
  ex.vm.start(bpf_func_pc(fn), args);
  const HelperOutcome out = co_await drive(ctx, ex);
  release(ex);
  co_return static_cast<std::int64_t>(out.r0);
}

}  // namespace bpftsim::model
