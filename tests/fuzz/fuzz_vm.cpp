// libFuzzer harness: the BPF interpreter (model/bpf_vm.h), differentially. The input is a small
// header (instruction budget, context bytes, r3..r5) and then raw bytecode, 8 bytes an
// instruction. The program runs twice, in fresh address spaces holding the same memory: once with
// the small budget from the input and once with a large one. Helper calls are answered from their
// id and arguments alone; a call with a function address in r2 enters that callback once, as
// bpf_loop would. Properties:
//   * the VM never crashes the host: every bad program ends in a Fault (ASan/UBSan check the rest);
//   * when the small budget did not run out, both runs are identical: every helper call and
//     callback with its arguments, the result (r0 or the fault's kind, pc and message), the
//     number of instructions executed and the bytes of writable memory;
//   * when it ran out, the small run is a prefix of the large one (same calls in the same order)
//     and stopped after exactly its budget of instructions.
// Seeds: with BPFTSIM_FUZZ_VM_SEEDS=DIR in the environment, the harness first writes every
// program of the built scenarios/progs objects into DIR in its input format.
#include <fuzzer/FuzzedDataProvider.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <variant>
#include <vector>

#include "model/bpf_vm.h"
#include "model/libbpf_loader.h"
#include "tests/fuzz/fuzz_common.h"

namespace {

using bpftsim::model::AddressSpace;
using bpftsim::model::BpfInsn;
using bpftsim::model::BpfProgramImage;
using bpftsim::model::BpfVm;
using bpftsim::model::FaultKind;
using bpftsim::model::RegionKind;

constexpr std::uint64_t kLargeBudget = 1u << 14;
constexpr std::size_t kMaxInsns = 4096;
constexpr std::size_t kMaxEvents = 4096;  // helper calls answered per run
constexpr std::int32_t kBpfLoop = 181;    // enters its callback (arg 2) once

struct Input {
  std::uint64_t small_budget = 1;
  std::vector<std::uint8_t> ctx;  // read-only context, 64 bytes
  std::vector<std::uint8_t> mem;  // writable map value, 256 bytes
  std::array<std::uint64_t, 3> args{};
  BpfProgramImage image;
};

struct Outcome {
  std::vector<std::string> events;  // helper calls, callback entries and returns, in order
  BpfVm::Stop stop = BpfVm::Stop::kExit;
  std::string result;  // "r0=..." or "fault <kind> pc <pc>: <message>"
  bool budget_out = false;
  std::uint64_t executed = 0;
  std::vector<std::uint8_t> mem;
  bool truncated = false;  // kMaxEvents helper calls answered: the run was abandoned
};

std::uint64_t answer(std::int32_t id, const BpfVm& vm) {
  std::uint64_t h = 0xcbf29ce484222325ull ^ static_cast<std::uint32_t>(id);
  for (unsigned i = 1; i <= 5; ++i)
    h = (h ^ vm.arg(i)) * 0x100000001b3ull;
  // Small results too, so that programs branch on them both ways.
  return (h & 1) != 0 ? h : h % 8;
}

Outcome run(const Input& in, std::uint64_t budget) {
  Outcome out;
  AddressSpace space;
  std::vector<std::uint8_t> ctx = in.ctx;
  out.mem = in.mem;
  const std::uint32_t ctx_id = space.add(RegionKind::kContext, "ctx", ctx.data(),
                                         static_cast<std::uint32_t>(ctx.size()), false);
  const std::uint32_t mem_id = space.add(RegionKind::kMapValue, "mem", out.mem.data(),
                                         static_cast<std::uint32_t>(out.mem.size()), true);
  BpfVm vm(in.image, space, budget);
  vm.start(0, {AddressSpace::base(ctx_id), AddressSpace::base(mem_id), in.args[0], in.args[1],
               in.args[2]});
  int callbacks_open = 0;
  bool entered = false;  // one callback entry per run keeps runs short
  for (;;) {
    const BpfVm::Stop stop = vm.run();
    if (stop == BpfVm::Stop::kFault) {
      const auto& f = vm.fault();
      out.stop = stop;
      out.budget_out = f.kind == FaultKind::kBudget;
      out.result =
          fmt::format("fault {} pc {} insn {:#04x}: {}", bpftsim::model::fault_kind_name(f.kind),
                      f.pc, f.insn.code, f.message);
      break;
    }
    if (out.events.size() >= kMaxEvents) {
      out.truncated = true;
      break;
    }
    if (stop == BpfVm::Stop::kExit) {
      if (callbacks_open == 0) {
        out.stop = stop;
        out.result = fmt::format("r0={:#x}", vm.r0());
        break;
      }
      --callbacks_open;
      out.events.push_back(fmt::format("callback returned {:#x}", vm.r0()));
      vm.complete_helper(vm.r0() % 2);
      continue;
    }
    const std::int32_t id = vm.helper_id();
    out.events.push_back(fmt::format("call {} pc {} ({:#x}, {:#x}, {:#x}, {:#x}, {:#x})", id,
                                     vm.pc(), vm.arg(1), vm.arg(2), vm.arg(3), vm.arg(4),
                                     vm.arg(5)));
    if (id == kBpfLoop && !entered && bpftsim::model::bpf_is_func_address(vm.arg(2))) {
      entered = true;
      ++callbacks_open;
      vm.start_callback(bpftsim::model::bpf_func_pc(vm.arg(2)), {0, vm.arg(3), 0, 0, 0});
      continue;
    }
    vm.complete_helper(answer(id, vm));
  }
  out.executed = vm.executed_total();
  return out;
}

// Input layout (FuzzedDataProvider takes bytes from the front and integers from the back):
// ctx (64) | mem (32) | instructions | r5 r4 r3 (8 each) | budget (2).
void write_seeds(const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<fs::path> objects;
  for (const auto& e : fs::directory_iterator(BPFTSIM_PROGS_DIR))
    if (e.path().extension() == ".o") objects.push_back(e.path());
  std::sort(objects.begin(), objects.end());
  int written = 0;
  for (const auto& path : objects) {
    auto loaded = bpftsim::model::load_bpf_object(path.string());
    if (!std::holds_alternative<bpftsim::model::ObjectSpec>(loaded)) continue;
    for (const auto& p : std::get<bpftsim::model::ObjectSpec>(loaded).progs) {
      std::vector<std::uint8_t> bytes(96, 0);
      const auto* code = reinterpret_cast<const std::uint8_t*>(p.insns.data());
      bytes.insert(bytes.end(), code, code + p.insns.size() * sizeof(BpfInsn));
      bytes.resize(bytes.size() + 24, 0);
      bytes.push_back(0x00);  // budget 1 + 0x2000 (the last byte is read first)
      bytes.push_back(0x20);
      const std::string name = dir + "/" + path.stem().string() + "-" + p.name;
      bpftsim::fuzz::write_file(name, bytes.data(), bytes.size());
      ++written;
    }
  }
  if (written == 0) bpftsim::fuzz::fail("no programs found in " BPFTSIM_PROGS_DIR);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("BPFTSIM_FUZZ_VM_SEEDS"); dir != nullptr && *dir != '\0')
    write_seeds(dir);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using bpftsim::fuzz::fail;
  FuzzedDataProvider fdp(data, size);
  Input in;
  in.small_budget = fdp.ConsumeIntegralInRange<std::uint64_t>(1, kLargeBudget - 1);
  in.ctx = fdp.ConsumeBytes<std::uint8_t>(64);
  in.ctx.resize(64);
  in.mem = fdp.ConsumeBytes<std::uint8_t>(32);
  in.mem.resize(256);
  for (auto& a : in.args)
    a = fdp.ConsumeIntegral<std::uint64_t>();
  const std::vector<std::uint8_t> code = fdp.ConsumeRemainingBytes<std::uint8_t>();
  const std::size_t n = std::min(code.size() / sizeof(BpfInsn), kMaxInsns);
  if (n == 0) return -1;  // nothing to run: not added to the corpus
  in.image.name = "fuzz";
  in.image.insns.resize(n);
  std::memcpy(in.image.insns.data(), code.data(), n * sizeof(BpfInsn));

  const Outcome small = run(in, in.small_budget);
  const Outcome large = run(in, kLargeBudget);
  if (small.truncated || large.truncated) return 0;
  if (!small.budget_out) {
    if (small.events != large.events) fail("helper calls differ between the two budgets");
    if (small.result != large.result)
      fail(fmt::format("results differ: budget {}: {}; budget {}: {}", in.small_budget,
                       small.result, kLargeBudget, large.result));
    if (small.executed != large.executed)
      fail(fmt::format("instruction counts differ: {} vs {}", small.executed, large.executed));
    if (small.mem != large.mem) fail("writable memory differs between the two budgets");
    if (small.executed > in.small_budget)
      fail(fmt::format("{} instructions executed within a budget of {}", small.executed,
                       in.small_budget));
    return 0;
  }
  if (small.executed != in.small_budget)
    fail(fmt::format("budget {} ran out after {} instructions", in.small_budget, small.executed));
  if (large.executed < small.executed)
    fail(fmt::format("the larger budget ran fewer instructions ({} < {})", large.executed,
                     small.executed));
  if (small.events.size() > large.events.size() ||
      !std::equal(small.events.begin(), small.events.end(), large.events.begin()))
    fail("the budget-limited run is not a prefix of the full run");
  return 0;
}
