// Differential test of the BPF interpreter against the host CPU: the functions of
// scenarios/progs/diff_funcs.h are compiled twice, by clang -target bpf into diff_progs.bpf.o (run
// here in BpfVm) and natively into this test, and must agree on r0 for every input. Inputs are
// drawn from sim::Prng with fixed seeds (edge values, small signed values, 32-bit boundaries and
// uniform words), passed in a kContext region through r1. A mismatch prints the seed, the
// program, the inputs and both results.
#include <catch2/catch.hpp>

#include <fmt/format.h>
#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <variant>
#include <vector>

#include "model/bpf_vm.h"
#include "model/libbpf_loader.h"
#include "scenarios/progs/diff_funcs.h"
#include "sim/prng.h"

using bpftsim::model::AddressSpace;
using bpftsim::model::BpfProgramImage;
using bpftsim::model::BpfVm;
using bpftsim::model::RegionKind;

namespace {

constexpr std::uint64_t kDifferentialBudget = 1'000'000;
constexpr int kRandomInputs = 4000;

struct DiffProg {
  const char* name;  // program (function) name in diff_progs.bpf.o
  __u64 (*native)(const struct diff_args*);
  std::uint64_t seed;
};

const std::array<DiffProg, 8> kDiffProgs{{
    {"prog_hash_mix", diff_hash_mix, 0xd1ff0001},
    {"prog_divmod", diff_divmod, 0xd1ff0002},
    {"prog_bswap", diff_bswap, 0xd1ff0003},
    {"prog_sext", diff_sext, 0xd1ff0004},
    {"prog_wrap32", diff_wrap32, 0xd1ff0005},
    {"prog_shifts", diff_shifts, 0xd1ff0006},
    {"prog_compare", diff_compare, 0xd1ff0007},
    {"prog_stack", diff_stack, 0xd1ff0008},
}};

// Values where signed/unsigned, 32/64-bit and division corner cases live.
constexpr std::array<std::uint64_t, 16> kEdges{
    0,
    1,
    2,
    3,
    ~std::uint64_t{0},      // -1
    ~std::uint64_t{0} - 1,  // -2
    0x7fffffffffffffffULL,  // INT64_MAX
    0x8000000000000000ULL,  // INT64_MIN
    0x000000007fffffffULL,  // INT32_MAX
    0x0000000080000000ULL,  // INT32_MIN as u32
    0xffffffff80000000ULL,  // INT32_MIN sign-extended
    0x00000000ffffffffULL,  // UINT32_MAX
    0x0000000100000000ULL,  // 2^32
    0x00000000000000ffULL,  // byte boundaries
    0x0000000000008000ULL,  // INT16_MIN as u16
    0x0123456789abcdefULL,  // distinct bytes (byte swaps)
};

// One input word: a mix of uniform words, edge values, edge +/- small and small signed values.
std::uint64_t draw_word(bpftsim::sim::Prng& prng) {
  switch (prng.below(6)) {
    case 0:
      return kEdges[prng.below(kEdges.size())];
    case 1:
      return kEdges[prng.below(kEdges.size())] + static_cast<std::uint64_t>(prng.between(-3, 3));
    case 2:
      return static_cast<std::uint64_t>(prng.between(-300, 300));
    case 3:
      return prng.next_u32();  // zero-extended 32-bit
    case 4:
      return static_cast<std::uint64_t>(std::int64_t{static_cast<std::int32_t>(prng.next_u32())});
    default:
      return prng.next_u64();
  }
}

// All inputs of one program: every pair of edge values in (a, b) with c, d drawn, then
// kRandomInputs fully drawn ones.
std::vector<diff_args> inputs_for(std::uint64_t seed) {
  bpftsim::sim::Prng prng(seed);
  std::vector<diff_args> out;
  for (std::uint64_t a : kEdges) {
    for (std::uint64_t b : kEdges) {
      out.push_back(diff_args{a, b, draw_word(prng), draw_word(prng)});
    }
  }
  for (int i = 0; i < kRandomInputs; ++i) {
    out.push_back(diff_args{draw_word(prng), draw_word(prng), draw_word(prng), draw_word(prng)});
  }
  return out;
}

const bpftsim::model::ObjectSpec& diff_object() {
  static const bpftsim::model::ObjectSpec spec = [] {
    const std::string path = std::string(BPFTSIM_PROGS_DIR) + "/diff_progs.bpf.o";
    auto loaded = bpftsim::model::load_bpf_object(path);
    if (const auto* err = std::get_if<bpftsim::model::LoadError>(&loaded)) {
      FAIL("load " << path << ": " << err->message);
    }
    return std::get<bpftsim::model::ObjectSpec>(std::move(loaded));
  }();
  return spec;
}

}  // namespace

TEST_CASE("differential: clang-built BPF in BpfVm agrees with the same C compiled natively",
          "[differential]") {
  const auto& spec = diff_object();
  for (const DiffProg& p : kDiffProgs) {
    const bpftsim::model::ProgSpec* prog = spec.find_prog(p.name);
    REQUIRE(prog != nullptr);
    REQUIRE(prog->helpers.empty());
    REQUIRE(prog->relocs.empty());

    AddressSpace space;
    diff_args ctx{};
    const std::uint64_t ctx_addr =
        AddressSpace::base(space.add(RegionKind::kContext, "diff_args",
                                     reinterpret_cast<std::uint8_t*>(&ctx), sizeof ctx, false));
    BpfVm vm(BpfProgramImage{prog->name, prog->insns}, space, kDifferentialBudget);

    const std::vector<diff_args> inputs = inputs_for(p.seed);
    int mismatches = 0;
    std::string first;
    for (const diff_args& in : inputs) {
      ctx = in;
      vm.start(0, {ctx_addr, 0, 0, 0, 0});
      const BpfVm::Stop stop = vm.run();
      if (stop != BpfVm::Stop::kExit) {
        FAIL(fmt::format("seed {:#x} {}: did not exit: {}", p.seed, p.name, vm.fault().message));
      }
      const std::uint64_t want = p.native(&in);
      if (vm.r0() != want && mismatches++ == 0) {
        first = fmt::format(
            "seed {:#x} {}(a={:#x}, b={:#x}, c={:#x}, d={:#x}): BpfVm r0 {:#x}, native {:#x}",
            p.seed, p.name, in.a, in.b, in.c, in.d, vm.r0(), want);
      }
    }
    INFO(first);
    INFO(p.name << ": " << mismatches << " of " << inputs.size() << " inputs differ");
    CHECK(mismatches == 0);
  }
}
