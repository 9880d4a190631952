// Unit tests of the BPF interpreter (model/bpf_vm): each fault kind stops the VM cleanly with the
// right pc, the resumable helper-call protocol, bpf-to-bpf calls, callbacks (bpf_loop style),
// atomics, sign extension, and garbage bytecode that must never crash the host.
#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <array>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "model/bpf_vm.h"
#include "tests/unit/bpf_asm.h"

using bpftsim::model::AddressSpace;
using bpftsim::model::BpfInsn;
using bpftsim::model::BpfProgramImage;
using bpftsim::model::BpfVm;
using bpftsim::model::Fault;
using bpftsim::model::FaultKind;
using bpftsim::model::RegionKind;
using bpftsim::testing::assemble;

namespace {

constexpr std::uint64_t kVmBudget = 100000;

// Runs `img` from pc 0 with no arguments; it must stop at a fault, which is returned.
Fault run_to_fault(const BpfProgramImage& img, AddressSpace& space) {
  BpfVm vm(img, space, kVmBudget);
  vm.start(0, {});
  REQUIRE(vm.run() == BpfVm::Stop::kFault);
  return vm.fault();
}

BpfProgramImage image_of(const std::string& source) {
  return BpfProgramImage{"test", assemble(source)};
}

// Runs to the first stop that is not a helper call; helper calls return `helper_r0`.
BpfVm::Stop run_to_end(BpfVm& vm, std::uint64_t helper_r0 = 0) {
  for (;;) {
    const auto stop = vm.run();
    if (stop != BpfVm::Stop::kHelperCall) return stop;
    vm.complete_helper(helper_r0);
  }
}

struct Fixture {
  AddressSpace space;
  std::array<std::uint8_t, 16> ctx{};
  std::uint32_t ctx_id = space.add(RegionKind::kContext, "ctx", ctx.data(), ctx.size(), true);
  std::uint64_t ctx_addr = AddressSpace::base(ctx_id);
};

}  // namespace

TEST_CASE("address space: translate checks region, bounds, writability and liveness", "[vm]") {
  AddressSpace space;
  std::array<std::uint8_t, 8> data{1, 2, 3, 4, 5, 6, 7, 8};
  const auto ro = space.add(RegionKind::kRodata, ".rodata", data.data(), 8, true);
  const auto rw = space.add(RegionKind::kMapValue, "map m value", data.data(), 8, true);
  CHECK(ro == 1);
  CHECK(rw == 2);
  std::string why;
  CHECK(space.translate(AddressSpace::base(ro) + 4, 4, false, &why) == data.data() + 4);
  CHECK(space.translate(AddressSpace::base(ro) + 5, 4, false, &why) == nullptr);
  CHECK(why.find("out of bounds") != std::string::npos);
  CHECK(why.find(".rodata") != std::string::npos);
  CHECK(space.translate(AddressSpace::base(ro), 1, true, &why) == nullptr);
  CHECK(why.find("read-only") != std::string::npos);
  CHECK(space.translate(AddressSpace::base(rw), 8, true, &why) == data.data());
  CHECK(space.translate(16, 8, false, &why) == nullptr);
  CHECK(why.find("null") != std::string::npos);
  space.retire(rw);
  CHECK(space.translate(AddressSpace::base(rw), 1, false, &why) == nullptr);
  CHECK(why.find("retired") != std::string::npos);
  CHECK_FALSE(space.find(rw)->live);
  CHECK(space.add(RegionKind::kMapKey, "key", data.data(), 4, false) == 3);  // ids never reused
  CHECK(space.find(0) == nullptr);
  CHECK(space.find(99) == nullptr);
}

TEST_CASE("vm: arithmetic program returns r0 and counts instructions", "[vm]") {
  AddressSpace space;
  const auto img = image_of(R"(
    mov %r0, 7
    mul %r0, 6
    div32 %r0, 0      # division by zero gives 0
    add %r0, 42
    mov %r2, 5
    mod %r2, 0        # modulo by zero leaves the dividend
    add %r0, %r2
    exit
  )");
  BpfVm vm(img, space, kVmBudget);
  vm.start(0, {});
  REQUIRE(vm.run() == BpfVm::Stop::kExit);
  CHECK(vm.r0() == 47);
  CHECK(vm.executed_total() == 8);
  CHECK(vm.take_executed() == 8);
  CHECK(vm.take_executed() == 0);
}

TEST_CASE("vm: signed division, modulo and shifts follow RFC 9669", "[vm]") {
  AddressSpace space;
  const auto probe = image_of(R"(
    mov %r1, -7
    sdiv %r1, 2
    mov %r2, -7
    smod %r2, 2
    lddw %r3, 0x8000000000000000
    sdiv %r3, -1
    mov %r4, -1
    lsh %r4, 65
    mov32 %r5, -16
    arsh32 %r5, 2
    call 1
    exit
  )");
  BpfVm vm2(probe, space, kVmBudget);
  vm2.start(0, {});
  REQUIRE(vm2.run() == BpfVm::Stop::kHelperCall);
  CHECK(vm2.arg(1) == static_cast<std::uint64_t>(-3));
  CHECK(vm2.arg(2) == static_cast<std::uint64_t>(-1));
  CHECK(vm2.arg(3) == 0x8000000000000000ULL);
  CHECK(vm2.arg(4) == 0xfffffffffffffffeULL);
  CHECK(vm2.arg(5) == 0xfffffffcULL);
}

TEST_CASE("vm: sign-extending loads and moves", "[vm]") {
  AddressSpace space;
  const auto img = image_of(R"(
    stb [%r10-1], 0x80
    ldxsb %r1, [%r10-1]
    sth [%r10-4], 0x8001
    ldxsh %r2, [%r10-4]
    stw [%r10-8], 0x80000000
    ldxsw %r3, [%r10-8]
    mov32 %r6, 0x80
    movsx832 %r4, %r6
    mov32 %r7, 0x80000001
    movsx3264 %r5, %r7
    call 1
    exit
  )");
  BpfVm vm(img, space, kVmBudget);
  vm.start(0, {});
  REQUIRE(vm.run() == BpfVm::Stop::kHelperCall);
  CHECK(vm.arg(1) == 0xffffffffffffff80ULL);
  CHECK(vm.arg(2) == 0xffffffffffff8001ULL);
  CHECK(vm.arg(3) == 0xffffffff80000000ULL);
  CHECK(vm.arg(4) == 0x00000000ffffff80ULL);
  CHECK(vm.arg(5) == 0xffffffff80000001ULL);
}

TEST_CASE("vm: byte swaps", "[vm]") {
  AddressSpace space;
  const auto img = image_of(R"(
    lddw %r1, 0x1122334455667788
    be16 %r1
    lddw %r2, 0x1122334455667788
    le32 %r2
    lddw %r3, 0x1122334455667788
    bswap64 %r3
    lddw %r4, 0x1122334455667788
    be32 %r4
    call 1
    exit
  )");
  BpfVm vm(img, space, kVmBudget);
  vm.start(0, {});
  REQUIRE(vm.run() == BpfVm::Stop::kHelperCall);
  CHECK(vm.arg(1) == 0x8877);
  CHECK(vm.arg(2) == 0x55667788);
  CHECK(vm.arg(3) == 0x8877665544332211ULL);
  CHECK(vm.arg(4) == 0x88776655);
}

TEST_CASE("vm: atomics on the stack and in a map value", "[vm]") {
  Fixture f;
  std::uint64_t value = 10;
  std::memcpy(f.ctx.data(), &value, 8);
  const auto img = image_of(R"(
    mov %r2, 5
    lock fetch add [%r1+0], %r2     # ctx = 15, r2 = 10
    mov %r3, 3
    lock or [%r1+0], %r3            # ctx = 15 | 3 = 15
    stw [%r10-4], 100
    mov %r4, 7
    lock fetch add32 [%r10-4], %r4  # stack = 107, r4 = 100
    mov %r0, 107
    mov %r5, 1
    lock cmpxchg32 [%r10-4], %r5    # equal: stack = 1, r0 = 107
    ldxw %r6, [%r10-4]
    mov %r7, 99
    lock xchg [%r1+8], %r7          # ctx[8] = 99, r7 = 0
    mov %r1, %r2
    mov %r2, %r4
    mov %r3, %r6
    mov %r4, %r7
    mov %r5, %r0
    call 1
    exit
  )");
  BpfVm vm(img, f.space, kVmBudget);
  vm.start(0, {f.ctx_addr});
  REQUIRE(vm.run() == BpfVm::Stop::kHelperCall);
  CHECK(vm.arg(1) == 10);
  CHECK(vm.arg(2) == 100);
  CHECK(vm.arg(3) == 1);
  CHECK(vm.arg(4) == 0);
  CHECK(vm.arg(5) == 107);
  std::uint64_t now = 0, second = 0;
  std::memcpy(&now, f.ctx.data(), 8);
  std::memcpy(&second, f.ctx.data() + 8, 8);
  CHECK(now == 15);
  CHECK(second == 99);
}

TEST_CASE("vm: a helper call stops the VM and complete_helper resumes it", "[vm]") {
  AddressSpace space;
  const auto img = image_of(R"(
    mov %r6, 1000
    mov %r1, 11
    mov %r2, 12
    mov %r3, 13
    mov %r4, 14
    mov %r5, 15
    call 130
    add %r0, %r6
    exit
  )");
  BpfVm vm(img, space, kVmBudget);
  vm.start(0, {});
  REQUIRE(vm.run() == BpfVm::Stop::kHelperCall);
  CHECK(vm.helper_id() == 130);
  CHECK(vm.pc() == 6);
  for (unsigned i = 1; i <= 5; ++i)
    CHECK(vm.arg(i) == 10 + i);
  CHECK(vm.executed_total() == 7);
  vm.complete_helper(23);
  REQUIRE(vm.run() == BpfVm::Stop::kExit);
  CHECK(vm.r0() == 1023);
  CHECK(vm.executed_total() == 9);
}

TEST_CASE("vm: bpf-to-bpf calls preserve r6-r9 and use a fresh stack frame", "[vm]") {
  AddressSpace space;
  const auto img = image_of(R"(
    mov %r6, 6
    mov %r7, 7
    mov %r8, 8
    mov %r9, 9
    stdw [%r10-8], 77
    mov %r1, 5
    call local square
    ldxdw %r1, [%r10-8]     # our stack slot survived the callee's store
    jne %r1, 77, bad
    jne %r6, 6, bad
    jne %r7, 7, bad
    jne %r8, 8, bad
    jne %r9, 9, bad
    exit
  bad:
    mov %r0, -1
    exit
  square:
    mov %r6, 0
    mov %r7, 0
    mov %r8, 0
    mov %r9, 0
    stdw [%r10-8], 1        # the callee's own frame
    mov %r0, %r1
    mul %r0, %r1
    exit
  )");
  BpfVm vm(img, space, kVmBudget);
  vm.start(0, {});
  REQUIRE(vm.run() == BpfVm::Stop::kExit);
  CHECK(vm.r0() == 25);
}

TEST_CASE("vm: runs reuse their stack regions (no allocation after the first run)", "[vm]") {
  AddressSpace space;
  const auto img = image_of(R"(
    call local f
    exit
  f:
    mov %r0, 3
    exit
  )");
  BpfVm vm(img, space, kVmBudget);
  vm.start(0, {});
  REQUIRE(vm.run() == BpfVm::Stop::kExit);
  const std::uint32_t probe1 = space.add(RegionKind::kMapKey, "probe", nullptr, 0, false);
  for (int i = 0; i < 3; ++i) {
    vm.start(0, {});
    REQUIRE(vm.run() == BpfVm::Stop::kExit);
    CHECK(vm.r0() == 3);
  }
  const std::uint32_t probe2 = space.add(RegionKind::kMapKey, "probe", nullptr, 0, false);
  CHECK(probe2 == probe1 + 1);  // no stack region was registered by the later runs
}

TEST_CASE("vm: callbacks run on top of the frames of a helper call (bpf_loop)", "[vm]") {
  AddressSpace space;
  // main: r6 = 100; r0 = bpf_loop(3, cb, ctx=&stack, 0); return r0 + r6 + *(u64 *)(r10-8)
  // cb(i, ctx): *(u64 *)ctx += i + 1; return 0
  const auto img = image_of(R"(
    mov %r6, 100
    stdw [%r10-8], 0
    mov %r1, 3
    mov %r2, 0          # callback address, resolved by the test
    mov %r3, %r10
    add %r3, -8
    mov %r4, 0
    call 181
    add %r0, %r6
    ldxdw %r1, [%r10-8]
    add %r0, %r1
    exit
  cb:
    mov %r6, 0          # callee-saved registers of the caller must survive
    ldxdw %r3, [%r2+0]
    add %r3, %r1
    add %r3, 1
    stxdw [%r2+0], %r3
    mov %r0, 0
    exit
  )");
  const std::uint32_t cb_pc = 12;
  BpfVm vm(img, space, kVmBudget);
  vm.start(0, {});
  REQUIRE(vm.run() == BpfVm::Stop::kHelperCall);
  REQUIRE(vm.helper_id() == 181);
  const std::uint64_t n = vm.arg(1);
  const std::uint64_t ctx = vm.arg(3);
  CHECK(n == 3);
  for (std::uint64_t i = 0; i < n; ++i) {
    vm.start_callback(cb_pc, {i, ctx, 0, 0, 0});
    REQUIRE(vm.run() == BpfVm::Stop::kExit);
    CHECK(vm.r0() == 0);
    // The interrupted helper call is still described by helper_id() and arg().
    CHECK(vm.helper_id() == 181);
    CHECK(vm.arg(1) == 3);
    CHECK(vm.arg(3) == ctx);
  }
  vm.complete_helper(n);
  REQUIRE(vm.run() == BpfVm::Stop::kExit);
  CHECK(vm.r0() == 3 + 100 + (1 + 2 + 3));
}

TEST_CASE("vm: a callback may itself call helpers", "[vm]") {
  AddressSpace space;
  const auto img = image_of(R"(
    call 181
    exit
  cb:
    mov %r1, 9
    call 5
    add %r0, 1
    exit
  )");
  BpfVm vm(img, space, kVmBudget);
  vm.start(0, {});
  REQUIRE(vm.run() == BpfVm::Stop::kHelperCall);
  vm.start_callback(2, {});
  REQUIRE(vm.run() == BpfVm::Stop::kHelperCall);
  CHECK(vm.helper_id() == 5);
  CHECK(vm.arg(1) == 9);
  vm.complete_helper(40);
  REQUIRE(vm.run() == BpfVm::Stop::kExit);
  CHECK(vm.r0() == 41);
  CHECK(vm.helper_id() == 181);
  vm.complete_helper(vm.r0());
  REQUIRE(vm.run() == BpfVm::Stop::kExit);
  CHECK(vm.r0() == 41);
}

// ---- one test per fault kind

TEST_CASE("vm fault: null pointer dereference", "[vm]") {
  AddressSpace space;
  const auto img = image_of(R"(
    mov %r1, 0
    ldxdw %r0, [%r1+16]
    exit
  )");
  BpfVm vm(img, space, kVmBudget);
  vm.start(0, {});
  REQUIRE(vm.run() == BpfVm::Stop::kFault);
  CHECK(vm.fault().kind == FaultKind::kNullDeref);
  CHECK(vm.fault().pc == 1);
  CHECK(vm.fault().addr == 16);
  CHECK(vm.fault().insn.code == 0x79);
  CHECK(vm.fault().message.find("pc 1") != std::string::npos);
  CHECK(vm.run() == BpfVm::Stop::kFault);  // stays faulted
}

TEST_CASE("vm fault: access past the end of a region", "[vm]") {
  Fixture f;
  const auto img = image_of(R"(
    ldxw %r0, [%r1+14]
    exit
  )");
  BpfVm vm(img, f.space, kVmBudget);
  vm.start(0, {f.ctx_addr});
  REQUIRE(vm.run() == BpfVm::Stop::kFault);
  CHECK(vm.fault().kind == FaultKind::kBadAccess);
  CHECK(vm.fault().pc == 0);
  CHECK(vm.fault().addr == f.ctx_addr + 14);
  CHECK(vm.fault().message.find("context 'ctx'") != std::string::npos);
  CHECK(vm.fault().message.find("offset 14") != std::string::npos);
}

TEST_CASE("vm fault: stack overflow below r10-512 and unmapped regions", "[vm]") {
  AddressSpace space;
  const auto img = image_of(R"(
    stdw [%r10-520], 1
    exit
  )");
  const Fault f = run_to_fault(img, space);
  CHECK(f.kind == FaultKind::kBadAccess);
  CHECK(f.message.find("stack") != std::string::npos);

  const auto img2 = image_of(R"(
    lddw %r1, 0x0000007700000000
    ldxb %r0, [%r1]
    exit
  )");
  BpfVm vm2(img2, space, kVmBudget);
  vm2.start(0, {});
  REQUIRE(vm2.run() == BpfVm::Stop::kFault);
  CHECK(vm2.fault().kind == FaultKind::kBadAccess);
  CHECK(vm2.fault().pc == 2);  // ld_imm64 takes two slots
}

// Loads and stores at a constant offset from r10 take a shortcut when the offset keeps them in
// the frame (BpfVm::prepare); at the frame's two edges they must behave as any other access: in,
// the bytes written are read back; one byte past either edge, a bad access at that pc.
TEST_CASE("vm: r10-relative accesses at the edges of the frame", "[vm]") {
  AddressSpace space;
  const auto img = image_of(R"(
    stdw [%r10-512], -2
    stw [%r10-4], 0x11223344
    sth [%r10-6], 0x5566
    stb [%r10-7], 0x77
    ldxdw %r0, [%r10-512]   # -2
    ldxw %r2, [%r10-4]
    ldxh %r3, [%r10-6]
    ldxb %r4, [%r10-7]
    mov %r6, %r10
    stxdw [%r10-504], %r6   # r10 itself, through a non-constant address below
    add %r6, -504
    ldxdw %r7, [%r6]
    sub %r7, %r10           # 0
    add %r0, %r7
    add %r0, %r2
    add %r0, %r3
    add %r0, %r4
    exit
  )");
  BpfVm vm(img, space, kVmBudget);
  vm.start(0, {});
  REQUIRE(vm.run() == BpfVm::Stop::kExit);
  CHECK(vm.r0() == std::uint64_t{0x11223344} + 0x5566 + 0x77 - 2);

  // The top 8 bytes, written by four store sizes and read back as one little-endian word.
  const auto word = image_of(R"(
    stdw [%r10-8], 0
    stw [%r10-4], 0x11223344
    sth [%r10-6], 0x5566
    stb [%r10-7], 0x77
    mov %r1, 0x7f
    stxb [%r10-8], %r1
    ldxdw %r0, [%r10-8]
    exit
  )");
  BpfVm vm2(word, space, kVmBudget);
  vm2.start(0, {});
  REQUIRE(vm2.run() == BpfVm::Stop::kExit);
  CHECK(vm2.r0() == 0x112233445566777fULL);

  for (const char* past : {"ldxdw %r0, [%r10-7]", "ldxw %r0, [%r10-513]", "stb [%r10+0], 1",
                           "stxh [%r10-1], %r1", "stdw [%r10-513], 1"}) {
    CAPTURE(past);
    const auto bad = image_of(std::string("mov %r1, 0\n") + past + "\nexit\n");
    const Fault f = run_to_fault(bad, space);
    CHECK(f.kind == FaultKind::kBadAccess);
    CHECK(f.pc == 1);
  }
}

TEST_CASE("vm fault: write to a read-only region", "[vm]") {
  AddressSpace space;
  std::array<std::uint8_t, 8> ro{};
  const auto id = space.add(RegionKind::kRodata, ".rodata", ro.data(), ro.size(), false);
  const auto img = image_of(R"(
    ldxdw %r0, [%r1]    # reading is fine
    stb [%r1+3], 1
    exit
  )");
  BpfVm vm(img, space, kVmBudget);
  vm.start(0, {AddressSpace::base(id)});
  REQUIRE(vm.run() == BpfVm::Stop::kFault);
  CHECK(vm.fault().kind == FaultKind::kReadOnlyWrite);
  CHECK(vm.fault().pc == 1);
  CHECK(vm.fault().addr == AddressSpace::base(id) + 3);
  CHECK(vm.fault().message.find("rodata '.rodata'") != std::string::npos);
  CHECK(ro[3] == 0);
}

TEST_CASE("vm fault: access to a retired region", "[vm]") {
  AddressSpace space;
  std::array<std::uint8_t, 8> value{};
  const auto id = space.add(RegionKind::kMapValue, "map m value", value.data(), 8, true);
  const auto img = image_of(R"(
    call 1
    ldxdw %r0, [%r6]
    exit
  )");
  BpfVm vm(img, space, kVmBudget);
  vm.start(0, {});
  REQUIRE(vm.run() == BpfVm::Stop::kHelperCall);
  space.retire(id);  // the helper freed the element meanwhile
  vm.complete_helper(0);
  // r6 was never set: first show a null deref, then use a program that keeps the pointer.
  REQUIRE(vm.run() == BpfVm::Stop::kFault);
  CHECK(vm.fault().kind == FaultKind::kNullDeref);

  std::array<std::uint8_t, 8> value2{};
  const auto id2 = space.add(RegionKind::kMapValue, "map m value", value2.data(), 8, true);
  const auto img2 = image_of(R"(
    mov %r6, %r1
    call 1
    ldxdw %r0, [%r6+0]
    exit
  )");
  BpfVm vm2(img2, space, kVmBudget);
  vm2.start(0, {AddressSpace::base(id2)});
  REQUIRE(vm2.run() == BpfVm::Stop::kHelperCall);
  space.retire(id2);
  vm2.complete_helper(0);
  REQUIRE(vm2.run() == BpfVm::Stop::kFault);
  CHECK(vm2.fault().kind == FaultKind::kDeadRegion);
  CHECK(vm2.fault().pc == 2);
  CHECK(vm2.fault().message.find("retired") != std::string::npos);
}

TEST_CASE("vm fault: opaque regions are not dereferenceable", "[vm]") {
  AddressSpace space;
  std::array<std::uint8_t, 8> obj{};
  const auto id = space.add(RegionKind::kOpaque, "struct bpf_map m", obj.data(), 8, false);
  const auto img = image_of(R"(
    ldxdw %r0, [%r1]
    exit
  )");
  BpfVm vm(img, space, kVmBudget);
  vm.start(0, {AddressSpace::base(id)});
  REQUIRE(vm.run() == BpfVm::Stop::kFault);
  CHECK(vm.fault().kind == FaultKind::kBadAccess);
  CHECK(vm.fault().message.find("not dereferenceable") != std::string::npos);
  const auto img2 = image_of(R"(
    stdw [%r1], 1
    exit
  )");
  BpfVm vm2(img2, space, kVmBudget);
  vm2.start(0, {AddressSpace::base(id)});
  REQUIRE(vm2.run() == BpfVm::Stop::kFault);
  CHECK(vm2.fault().kind == FaultKind::kReadOnlyWrite);
}

TEST_CASE("vm fault: instruction budget stops a runaway loop", "[vm]") {
  AddressSpace space;
  const auto img = image_of(R"(
    mov %r0, 0
  loop:
    add %r0, 1
    ja loop
  )");
  BpfVm vm(img, space, 1001);
  vm.start(0, {});
  REQUIRE(vm.run() == BpfVm::Stop::kFault);
  CHECK(vm.fault().kind == FaultKind::kBudget);
  CHECK(vm.fault().pc == 1);
  CHECK(vm.executed_total() == 1001);
  // The budget is per start(): a second run gets a full budget again.
  vm.start(0, {});
  REQUIRE(vm.run() == BpfVm::Stop::kFault);
  CHECK(vm.executed_total() == 2002);
}

// An add of an immediate followed by a jne of the same register (a counted loop's step) runs as
// one dispatch (BpfVm::prepare); it must count, stop on the budget, fault and take jumps into the
// jne exactly as the two instructions do one by one.
TEST_CASE("vm: a counted loop's add and jne, together and apart", "[vm]") {
  AddressSpace space;
  const auto run = [&](const std::string& src, std::uint64_t budget) {
    BpfVm vm(image_of(src), space, budget);
    vm.start(0, {});
    const BpfVm::Stop stop = vm.run();
    return std::tuple{stop, stop == BpfVm::Stop::kExit ? vm.r0() : 0, vm.executed_total(),
                      stop == BpfVm::Stop::kFault ? vm.fault() : Fault{}};
  };
  SECTION("32 and 64 bits: the add wraps at its own width, the jne compares at its own") {
    // 0xffffffff + 1: 0 in 32 bits (the jne falls through, r0 = 1), 0x100000000 in 64 (the jne
    // is taken, r0 = 2).
    for (const auto& [width, want] : {std::pair{"32", 1u}, std::pair{"", 2u}}) {
      CAPTURE(width);
      const auto [stop, r0, n, f] = run(fmt::format(R"(
        mov32 %r1, -1
        add{0} %r1, 1
        jne{0} %r1, 0, big
        mov %r0, 1
        exit
      big:
        mov %r0, 2
        exit
      )",
                                                    width),
                                        kVmBudget);
      CHECK(stop == BpfVm::Stop::kExit);
      CHECK(r0 == want);
      CHECK(n == 5);
    }
    // A negative immediate is sign-extended in both: r1 counts -3, -2, -1 and stops at -1.
    const auto [stop_n, r_n, n_n, f_n] = run(R"(
      mov %r1, -3
    loop:
      add %r1, 1
      jne %r1, -1, loop
      mov %r0, %r1
      exit
    )",
                                             kVmBudget);
    CHECK(stop_n == BpfVm::Stop::kExit);
    CHECK(r_n == ~std::uint64_t{0});
    CHECK(n_n == 1 + 2 * 2 + 2);
  }
  SECTION("the budget runs out between the add and its jne, or at the add") {
    const std::string loop = R"(
      mov32 %r1, 3
    loop:
      add32 %r1, -1
      jne32 %r1, 0, loop
      exit
    )";
    for (std::uint64_t budget = 1; budget <= 7; ++budget) {
      CAPTURE(budget);
      const auto [stop, r0, n, f] = run(loop, budget);
      REQUIRE(stop == BpfVm::Stop::kFault);
      CHECK(f.kind == FaultKind::kBudget);
      CHECK(n == budget);
      // Executed: mov (pc 0), then add (pc 1) and jne (pc 2) three times, then exit (pc 3); the
      // fault is at the instruction after the last one the budget allowed.
      CHECK(f.pc == (budget == 7 ? 3u : budget % 2 == 1 ? 1u : 2u));
    }
    const auto [stop, r0, n, f] = run(loop, 8);
    CHECK(stop == BpfVm::Stop::kExit);
    CHECK(n == 8);
  }
  SECTION("a jump into the jne runs it alone") {
    const auto [stop, r0, n, f] = run(R"(
      mov32 %r1, 5
      ja check
    loop:
      add32 %r1, -1
    check:
      jne32 %r1, 0, loop
      mov %r0, 42
      exit
    )",
                                      kVmBudget);
    CHECK(stop == BpfVm::Stop::kExit);
    CHECK(r0 == 42);
    CHECK(n == 2 + 1 + 5 * 2 + 2);
  }
  SECTION("the jne's bad target faults at the jne, only when taken") {
    BpfProgramImage img = image_of(R"(
      mov32 %r1, 2
      add32 %r1, -1
      jne32 %r1, 0, +0
      exit
    )");
    img.insns[2].off = 100;  // past the end
    BpfVm vm(img, space, kVmBudget);
    vm.start(0, {});
    REQUIRE(vm.run() == BpfVm::Stop::kFault);
    CHECK(vm.fault().kind == FaultKind::kBadInstruction);
    CHECK(vm.fault().pc == 2);
    img.insns[0].imm = 1;  // the add makes it 0: not taken
    BpfVm vm2(img, space, kVmBudget);
    vm2.start(0, {});
    CHECK(vm2.run() == BpfVm::Stop::kExit);
  }
  SECTION("different registers are two plain instructions") {
    // The jne tests r2 (0: not taken); r1, which the add changed, would have been taken.
    const auto [stop, r0, n, f] = run(R"(
      mov32 %r1, 0
      mov32 %r2, 0
      add32 %r1, 1
      jne32 %r2, 0, bad
      mov %r0, %r1
      exit
    bad:
      mov %r0, 99
      exit
    )",
                                      kVmBudget);
    CHECK(stop == BpfVm::Stop::kExit);
    CHECK(r0 == 1);
    CHECK(n == 6);
  }
}

TEST_CASE("vm fault: bad instructions", "[vm]") {
  AddressSpace space;
  SECTION("unknown opcode") {
    BpfProgramImage img{"garbage", {BpfInsn{0xb7, 0, 0, 1}, BpfInsn{0xff, 0, 0, 0}}};
    const Fault f = run_to_fault(img, space);
    CHECK(f.kind == FaultKind::kBadInstruction);
    CHECK(f.pc == 1);
    CHECK(f.insn.code == 0xff);
  }
  SECTION("register outside r0..r10") {
    BpfProgramImage img{"badreg", {BpfInsn{0xbf, 0x0c, 0, 0}, BpfInsn{0x95, 0, 0, 0}}};
    const Fault f = run_to_fault(img, space);
    CHECK(f.kind == FaultKind::kBadInstruction);
    CHECK(f.message.find("register") != std::string::npos);
  }
  SECTION("write to r10") {
    BpfProgramImage img{"fp", {BpfInsn{0xb7, 0x0a, 0, 0}, BpfInsn{0x95, 0, 0, 0}}};
    const Fault f = run_to_fault(img, space);
    CHECK(f.kind == FaultKind::kBadInstruction);
  }
  SECTION("jump out of the program") {
    const auto img = image_of("ja +5\nexit\n");
    const Fault f = run_to_fault(img, space);
    CHECK(f.kind == FaultKind::kBadInstruction);
    CHECK(f.pc == 0);
  }
  SECTION("falling off the end") {
    const auto img = image_of("mov %r0, 1\n");
    const Fault f = run_to_fault(img, space);
    CHECK(f.kind == FaultKind::kBadInstruction);
    CHECK(f.pc == 1);
  }
  SECTION("jump into the second half of ld_imm64") {
    const auto img = image_of("ja +1\nlddw %r0, 5\nexit\n");
    const Fault f = run_to_fault(img, space);
    CHECK(f.kind == FaultKind::kBadInstruction);
    CHECK(f.pc == 2);
  }
}

TEST_CASE("vm fault: bad calls", "[vm]") {
  AddressSpace space;
  SECTION("call target outside the program") {
    BpfProgramImage img{"call", {BpfInsn{0x85, 0x10, 0, 40}, BpfInsn{0x95, 0, 0, 0}}};
    const Fault f = run_to_fault(img, space);
    CHECK(f.kind == FaultKind::kBadCall);
    CHECK(f.pc == 0);
  }
  SECTION("unbounded recursion exceeds the call depth") {
    const auto img = image_of(R"(
    self:
      call local self
      exit
    )");
    BpfVm vm(img, space, kVmBudget);
    vm.start(0, {});
    REQUIRE(vm.run() == BpfVm::Stop::kFault);
    CHECK(vm.fault().kind == FaultKind::kBadCall);
    CHECK(vm.executed_total() == BpfVm::kMaxCallDepth);
  }
  SECTION("kfunc calls are not patched") {
    BpfProgramImage img{"kfunc", {BpfInsn{0x85, 0x20, 0, 7}, BpfInsn{0x95, 0, 0, 0}}};
    const Fault f = run_to_fault(img, space);
    CHECK(f.kind == FaultKind::kBadCall);
  }
  SECTION("callback nesting beyond the call depth") {
    const auto img = image_of("call 181\nexit\n");
    BpfVm vm(img, space, kVmBudget);
    vm.start(0, {});
    REQUIRE(vm.run() == BpfVm::Stop::kHelperCall);
    for (std::uint32_t i = 1; i < BpfVm::kMaxCallDepth; ++i) {
      vm.start_callback(0, {});
      REQUIRE(vm.run() == BpfVm::Stop::kHelperCall);
    }
    vm.start_callback(0, {});
    REQUIRE(vm.run() == BpfVm::Stop::kFault);
    CHECK(vm.fault().kind == FaultKind::kBadCall);
  }
}

TEST_CASE("vm: callx enters a subprogram address or calls a helper id", "[vm]") {
  AddressSpace space;
  const auto img = image_of(R"(
    lddw %r2, 0xffff000100000006
    call %r2
    mov %r3, 9
    call %r3
    exit
    mov %r0, 70
    exit
  )");
  BpfVm vm(img, space, kVmBudget);
  vm.start(0, {});
  REQUIRE(vm.run() == BpfVm::Stop::kHelperCall);
  CHECK(vm.helper_id() == 9);
  vm.complete_helper(vm.r0() + 1);
  REQUIRE(vm.run() == BpfVm::Stop::kExit);
  CHECK(vm.r0() == 71);
}

TEST_CASE("vm: garbage bytecode never crashes the host", "[vm]") {
  // A fixed-seed LCG over instructions biased toward real opcodes, registers r0..r15 and small
  // offsets, run from a context pointer. Sanitizer builds turn any UB into a failure.
  AddressSpace space;
  std::array<std::uint8_t, 64> ctx{};
  const auto ctx_id = space.add(RegionKind::kContext, "ctx", ctx.data(), ctx.size(), true);
  std::uint64_t state = 0x2545f4914f6cdd1dULL;
  auto next = [&state] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<std::uint32_t>(state >> 33);
  };
  int exits = 0, faults = 0;
  for (int prog = 0; prog < 400; ++prog) {
    BpfProgramImage img{"fuzz", {}};
    const std::uint32_t len = 1 + next() % 24;
    for (std::uint32_t i = 0; i < len; ++i) {
      BpfInsn in;
      in.code = static_cast<std::uint8_t>(next());
      in.regs = static_cast<std::uint8_t>(next() % 3 == 0 ? next()
                                                          : (next() % 11) | ((next() % 11) << 4));
      in.off = static_cast<std::int16_t>(static_cast<std::int32_t>(next() % 16) - 8);
      in.imm =
          next() % 2 ? static_cast<std::int32_t>(next() % 64) : static_cast<std::int32_t>(next());
      img.insns.push_back(in);
    }
    img.insns.push_back(BpfInsn{0x95, 0, 0, 0});
    BpfVm vm(img, space, 2000);
    vm.start(0, {AddressSpace::base(ctx_id), ctx.size()});
    auto stop = run_to_end(vm, 1);
    if (stop == BpfVm::Stop::kExit) ++exits;
    if (stop == BpfVm::Stop::kFault) {
      ++faults;
      CHECK_FALSE(vm.fault().message.empty());
    }
  }
  CHECK(exits + faults == 400);
  CHECK(faults > 0);
}
