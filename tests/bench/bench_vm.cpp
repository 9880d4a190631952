// Interpreter throughput: ns per executed BPF instruction of model/bpf_vm (BpfVm) on the two
// helper-free programs of scenarios/progs/vm_bench.bpf.c, compiled by clang:
//   arith_loop  ALU64 heavy (xorshift, multiply, unsigned div/mod), one branch per round;
//   stack_loop  loads and stores on a 64-slot array on the BPF stack.
//
// When CMake is given -DBPFTSIM_UBPF_DIR=<uBPF install or build>, the same instruction words run
// in uBPF's interpreter (ubpf_load + ubpf_exec, default legacy profile with its bounds checks on)
// in the same binary, so the two are measured side by side. Before any timing, every runtime must
// return the r0 the program's source comment promises; a mismatch aborts the binary.
//
// Counters: items_per_second counts executed instructions (the count our VM reports for one run;
// both runtimes execute the same bytecode along the same path), ns_per_insn is its inverse.
//
//   build-bench/tests/bench_vm --benchmark_repetitions=7 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <variant>
#include <vector>

#include "model/bpf_vm.h"
#include "model/libbpf_loader.h"

#if defined(BPFTSIM_HAVE_UBPF)
#include <ubpf.h>
#endif

namespace {

using bpftsim::model::AddressSpace;
using bpftsim::model::BpfProgramImage;
using bpftsim::model::BpfVm;
using bpftsim::model::RegionKind;

constexpr const char* kObject = BPFTSIM_PROGS_DIR "/vm_bench.bpf.o";
constexpr std::uint64_t kBudget = 1'000'000;  // far above one run of either program

struct BenchProg {
  const char* name;
  std::uint32_t expect_r0_low32;  // from the comment above the program in vm_bench.bpf.c
};
constexpr std::array<BenchProg, 2> kProgs{
    {{"arith_loop", 0x9735263fu}, {"stack_loop", 0xf9747071u}}};

[[noreturn]] void bench_die(const std::string& what) {
  std::fprintf(stderr, "bench_vm: %s\n", what.c_str());
  std::exit(1);
}

// The program's instructions as clang emitted them; it must need nothing a bare interpreter
// lacks (no helpers, no maps, no global data), so that uBPF can run the very same words.
BpfProgramImage load_image(const char* prog_name) {
  auto loaded = bpftsim::model::load_bpf_object(kObject);
  if (const auto* err = std::get_if<bpftsim::model::LoadError>(&loaded)) {
    bench_die("load " + std::string(kObject) + ": " + err->message);
  }
  const auto& spec = std::get<bpftsim::model::ObjectSpec>(loaded);
  const bpftsim::model::ProgSpec* prog = spec.find_prog(prog_name);
  if (prog == nullptr) bench_die(std::string(kObject) + ": no program " + prog_name);
  if (!prog->helpers.empty() || !prog->relocs.empty()) {
    bench_die(std::string(prog_name) + ": calls helpers or references maps; not self-contained");
  }
  return BpfProgramImage{prog->name, prog->insns};
}

// Fixed context handed to both runtimes in r1 (the programs ignore it).
struct Context {
  std::array<std::uint64_t, 4> words{};
};

// One BpfVm ready to run a program from the top, as the simulator would use it.
class OurRunner {
 public:
  explicit OurRunner(const BpfProgramImage& image) : vm_(image, space_, kBudget) {
    ctx_addr_ = AddressSpace::base(space_.add(RegionKind::kContext, "bench ctx",
                                              reinterpret_cast<std::uint8_t*>(ctx_.words.data()),
                                              sizeof ctx_.words, false));
  }
  // r0 of one run; aborts on anything but a clean exit.
  std::uint64_t run_once() {
    vm_.start(0, {ctx_addr_, 0, 0, 0, 0});
    if (vm_.run() != BpfVm::Stop::kExit) [[unlikely]] {
      bench_die("our VM did not exit: " + vm_.fault().message);
    }
    return vm_.r0();
  }
  std::uint64_t take_executed() { return vm_.take_executed(); }

 private:
  Context ctx_;
  AddressSpace space_;
  BpfVm vm_;
  std::uint64_t ctx_addr_ = 0;
};

#if defined(BPFTSIM_HAVE_UBPF)
class UbpfRunner {
 public:
  explicit UbpfRunner(const BpfProgramImage& image) : vm_(ubpf_create()) {
    if (vm_ == nullptr) bench_die("ubpf_create failed");
    char* err = nullptr;
    const auto bytes = static_cast<std::uint32_t>(image.insns.size() * sizeof(image.insns[0]));
    if (ubpf_load(vm_, image.insns.data(), bytes, &err) != 0) {
      const std::string why = err != nullptr ? err : "unknown error";
      std::free(err);
      bench_die("ubpf_load " + image.name + ": " + why);
    }
  }
  ~UbpfRunner() { ubpf_destroy(vm_); }
  UbpfRunner(const UbpfRunner&) = delete;
  UbpfRunner& operator=(const UbpfRunner&) = delete;

  std::uint64_t run_once() {
    std::uint64_t r0 = 0;
    if (ubpf_exec(vm_, ctx_.words.data(), sizeof ctx_.words, &r0) != 0) [[unlikely]] {
      bench_die("ubpf_exec failed");
    }
    return r0;
  }

 private:
  Context ctx_;
  struct ubpf_vm* vm_;
};
#endif

// Instructions one run of `image` executes, measured by our VM (deterministic).
std::uint64_t insns_per_run(const BpfProgramImage& image) {
  OurRunner runner(image);
  runner.run_once();
  return runner.take_executed();
}

// CPU time of the calling thread: what Google Benchmark's own CPU column measures, and robust to
// the other processes sharing the machine.
std::int64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

template <typename Runner>
void bench_runner(benchmark::State& state, const BpfProgramImage& image,
                  std::uint64_t insns_per_iteration) {
  Runner runner(image);
  const std::int64_t cpu_start_ns = thread_cpu_ns();
  for (auto _ : state) {
    benchmark::DoNotOptimize(runner.run_once());
  }
  const std::int64_t cpu_ns = thread_cpu_ns() - cpu_start_ns;
  const double insns =
      static_cast<double>(insns_per_iteration) * static_cast<double>(state.iterations());
  state.SetItemsProcessed(static_cast<std::int64_t>(insns));
  // A plain number (not a rate counter) so that console, JSON and CSV all show nanoseconds.
  state.counters["ns_per_insn"] = benchmark::Counter(static_cast<double>(cpu_ns) / insns);
}

// Checks every runtime's r0 against the program's documented result, then registers the
// benchmarks. Runs before any timing.
void register_all() {
  for (const BenchProg& p : kProgs) {
    const BpfProgramImage image = load_image(p.name);
    const std::uint64_t insns = insns_per_run(image);
    const std::uint64_t ours = OurRunner(image).run_once();
    if (static_cast<std::uint32_t>(ours) != p.expect_r0_low32) {
      bench_die(std::string(p.name) + ": our r0 " + std::to_string(ours) + " is not the expected " +
                std::to_string(p.expect_r0_low32));
    }
    benchmark::RegisterBenchmark(
        (std::string("ours/") + p.name).c_str(),
        [image, insns](benchmark::State& state) { bench_runner<OurRunner>(state, image, insns); });
#if defined(BPFTSIM_HAVE_UBPF)
    const std::uint64_t theirs = UbpfRunner(image).run_once();
    if (theirs != ours) {
      bench_die(std::string(p.name) + ": uBPF r0 " + std::to_string(theirs) +
                " differs from ours " + std::to_string(ours));
    }
    benchmark::RegisterBenchmark(
        (std::string("ubpf/") + p.name).c_str(),
        [image, insns](benchmark::State& state) { bench_runner<UbpfRunner>(state, image, insns); });
#endif
    std::fprintf(stderr,
                 "bench_vm: %s: %zu insns in the image, %llu executed per run, r0 %#llx%s\n",
                 p.name, image.insns.size(), static_cast<unsigned long long>(insns),
                 static_cast<unsigned long long>(ours),
#if defined(BPFTSIM_HAVE_UBPF)
                 " (uBPF agrees)"
#else
                 " (uBPF peer not built: -DBPFTSIM_UBPF_DIR)"
#endif
    );
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
