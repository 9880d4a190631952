// BPF interpreter (RFC 9669), the counterpart of kernel/bpf/core.c ___bpf_prog_run, made resumable
// at helper calls. See model/bpf_vm.h for the contract.
//
// Design notes:
// - The program is copied once at construction into `code_`, where every instruction that can
//   never execute correctly (unknown opcode, register outside r0..r10, a write to r10, a bad
//   byte-swap width, ...) has its opcode replaced by kInvalidOp, and one kInvalidOp sentinel is
//   appended. The hot loop therefore needs no register or end-of-program checks: only taken jumps
//   and calls check their target. The registers live in a 16-entry array so that no nibble can
//   index outside it even in principle.
// - Memory goes through AddressSpace::translate (model/address_space.h), whose fast path is inline:
//   one vector index and three compares; the message is only built on the fault path.
// - Each call depth owns one 512-byte stack region, registered the first time that depth is used
//   and reused afterwards, so a run allocates nothing once the deepest frame has been seen. The
//   regions are retired when the VM is destroyed. Stacks are not cleared between runs (the
//   verifier forbids reading uninitialized stack; what is left there is deterministic anyway).
// - Choices the header leaves open:
//   * the instruction budget is per run: start() refills it, callbacks entered with
//     start_callback() draw from the run they belong to;
//   * the image is copied at construction (later edits to it are not seen);
//   * callx (BPF_JMP|BPF_CALL|BPF_X, target register in dst) enters the subprogram when the
//     register holds a bpf_func_address(), and otherwise treats the value as a helper id, which
//     is what the conformance suite's callx test expects of a runtime (code tokens are not
//     checked: the VM does not know its own);
//   * call with src 2 (kfunc) is a kBadCall fault: the loader must have patched it;
//   * kRodata and kOpaque regions are never writable, whatever add() is told; kOpaque regions
//     are not readable either.
#include "model/bpf_vm.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <type_traits>

namespace bpftsim::model {

namespace {

// Always-on check for misuse of the VM by the simulator (a simulator bug, never a BPF fault).
[[noreturn]] void vm_bug(const char* what) {
  std::fprintf(stderr, "bpftsim: BpfVm contract violated: %s\n", what);
  std::abort();
}

// Opcode fields (RFC 9669 section 3).
constexpr std::uint8_t kClsLd = 0x00, kClsLdx = 0x01, kClsSt = 0x02, kClsStx = 0x03, kClsAlu = 0x04,
                       kClsJmp = 0x05, kClsJmp32 = 0x06, kClsAlu64 = 0x07;
constexpr std::uint8_t kSrcX = 0x08;
constexpr std::uint8_t kModeImm = 0x00, kModeMem = 0x60, kModeMemSx = 0x80, kModeAtomic = 0xc0;
constexpr std::uint8_t kSizeW = 0x00, kSizeH = 0x08, kSizeB = 0x10, kSizeDw = 0x18;

// Atomic operations (imm field of BPF_ATOMIC).
constexpr std::int32_t kAtomicFetch = 0x01;
constexpr std::int32_t kAtomicAdd = 0x00, kAtomicOr = 0x40, kAtomicAnd = 0x50, kAtomicXor = 0xa0;
constexpr std::int32_t kAtomicXchg = 0xe0 | kAtomicFetch, kAtomicCmpxchg = 0xf0 | kAtomicFetch;
constexpr std::int32_t kLoadAcquire = 0x100, kStoreRelease = 0x110;

constexpr std::uint8_t kPseudoCall = 1;  // src of a bpf-to-bpf call

// Internal opcode of instructions that cannot execute; 0x00 (LD|IMM|W) is not an eBPF opcode.
constexpr std::uint8_t kInvalidOp = 0x00;
constexpr std::uint8_t kFp = 10;  // r10, the read-only frame pointer
// Internal mode of loads and stores at a constant offset from r10 that stays inside the stack
// frame (BpfVm::prepare): they need neither translate() nor a bounds check. The mode bits 0xe0 are
// not an eBPF load/store mode, so no instruction as given has these opcodes (any that did was
// rewritten to kInvalidOp first).
constexpr std::uint8_t kModeFp = 0xe0;
// Internal opcodes of a counted loop's step: an add of an immediate followed by a jne of the same
// register against an immediate (clang's `w1 += -1; if w1 != 0 goto`), executed as one dispatch
// (BpfVm::prepare rewrites the add). ALU operation 0xe0 is not an eBPF operation. The jne keeps
// its own opcode, so a jump to it runs it alone.
constexpr std::uint8_t kAddJne32 = kClsAlu | 0xe0;    // add32 imm, then jne32 imm
constexpr std::uint8_t kAddJne64 = kClsAlu64 | 0xe0;  // add64 imm, then jne imm

std::uint32_t size_of(std::uint8_t code) {
  switch (code & 0x18) {
    case kSizeW:
      return 4;
    case kSizeH:
      return 2;
    case kSizeB:
      return 1;
    default:
      return 8;
  }
}

bool valid_atomic_imm(std::int32_t imm, std::uint8_t size_bits) {
  if (imm == kLoadAcquire || imm == kStoreRelease) return true;
  if (size_bits != kSizeW && size_bits != kSizeDw) return false;
  switch (imm & ~kAtomicFetch) {
    case kAtomicAdd:
    case kAtomicOr:
    case kAtomicAnd:
    case kAtomicXor:
      return true;
    default:
      return imm == kAtomicXchg || imm == kAtomicCmpxchg;
  }
}

// Why `in` can never execute, or nullptr if it is a well-formed instruction. Only the
// instruction's own fields are looked at (jump and call targets are checked when taken).
const char* invalid_reason(const BpfInsn& in) {
  if (in.dst() > kFp || in.src() > kFp) return "register outside r0..r10";
  const std::uint8_t cls = in.code & 0x07;
  const std::uint8_t op = in.code & 0xf0;
  switch (cls) {
    case kClsAlu:
    case kClsAlu64: {
      if (in.dst() == kFp) return "write to the read-only frame pointer r10";
      if (op > 0xd0) return "unknown ALU operation";
      if (op == 0x80 && (in.code & kSrcX)) return "neg takes no source register";
      if (op == 0xd0) {
        if (cls == kClsAlu64 && (in.code & kSrcX)) return "unknown ALU64 byte-swap form";
        if (in.imm != 16 && in.imm != 32 && in.imm != 64) return "byte swap width not 16/32/64";
      }
      if (op == 0xb0 && (in.code & kSrcX) && in.off != 0) {
        const bool ok = in.off == 8 || in.off == 16 || (in.off == 32 && cls == kClsAlu64);
        if (!ok) return "movsx offset not 8/16/32";
      }
      return nullptr;
    }
    case kClsJmp:
    case kClsJmp32: {
      if (op == 0xe0 || op == 0xf0) return "unknown jump operation";
      if (cls == kClsJmp32 && (op == 0x80 || op == 0x90)) return "call/exit in the JMP32 class";
      if (op == 0x00 && (in.code & kSrcX)) return "unknown ja form";
      if (op == 0x90 && (in.code & kSrcX)) return "unknown exit form";
      return nullptr;
    }
    case kClsLd:
      if (in.code != (kClsLd | kModeImm | kSizeDw)) return "legacy or unknown BPF_LD form";
      if (in.dst() == kFp) return "write to the read-only frame pointer r10";
      return nullptr;
    case kClsLdx: {
      const std::uint8_t mode = in.code & 0xe0;
      if (mode != kModeMem && mode != kModeMemSx) return "unknown load mode";
      if (mode == kModeMemSx && (in.code & 0x18) == kSizeDw) return "no 64-bit sign-extending load";
      if (in.dst() == kFp) return "write to the read-only frame pointer r10";
      return nullptr;
    }
    case kClsSt:
      if ((in.code & 0xe0) != kModeMem) return "unknown store mode";
      return nullptr;
    default: {  // kClsStx
      const std::uint8_t mode = in.code & 0xe0;
      if (mode == kModeMem) return nullptr;
      if (mode != kModeAtomic) return "unknown store mode";
      if (!valid_atomic_imm(in.imm, in.code & 0x18)) return "unknown atomic operation";
      if (in.imm == kLoadAcquire && in.dst() == kFp) return "write to r10";
      const bool writes_src = (in.imm & kAtomicFetch) && in.imm != kAtomicCmpxchg;
      if (writes_src && in.imm != kLoadAcquire && in.imm != kStoreRelease && in.src() == kFp) {
        return "atomic fetch into the read-only frame pointer r10";
      }
      return nullptr;
    }
  }
}

template <typename T>
T load_as(const std::uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename T>
void store_as(std::uint8_t* p, T v) {
  std::memcpy(p, &v, sizeof v);
}

std::uint64_t load_sized(const std::uint8_t* p, std::uint32_t size) {
  switch (size) {
    case 1:
      return *p;
    case 2:
      return load_as<std::uint16_t>(p);
    case 4:
      return load_as<std::uint32_t>(p);
    default:
      return load_as<std::uint64_t>(p);
  }
}
void store_sized(std::uint8_t* p, std::uint32_t size, std::uint64_t v) {
  switch (size) {
    case 1:
      *p = static_cast<std::uint8_t>(v);
      break;
    case 2:
      store_as(p, static_cast<std::uint16_t>(v));
      break;
    case 4:
      store_as(p, static_cast<std::uint32_t>(v));
      break;
    default:
      store_as(p, v);
      break;
  }
}

std::uint64_t sext32(std::int32_t v) {
  return static_cast<std::uint64_t>(std::int64_t{v});
}

// Signed division and modulo without UB: INT_MIN / -1 wraps to INT_MIN, INT_MIN % -1 is 0, and a
// zero divisor gives 0 (div) or leaves the dividend (mod), as RFC 9669 section 4.1 specifies.
std::uint64_t sdiv64(std::uint64_t a, std::uint64_t b) {
  if (b == 0) return 0;
  if (static_cast<std::int64_t>(b) == -1) return 0 - a;
  return static_cast<std::uint64_t>(static_cast<std::int64_t>(a) / static_cast<std::int64_t>(b));
}
std::uint64_t smod64(std::uint64_t a, std::uint64_t b) {
  if (b == 0) return a;
  if (static_cast<std::int64_t>(b) == -1) return 0;
  return static_cast<std::uint64_t>(static_cast<std::int64_t>(a) % static_cast<std::int64_t>(b));
}
std::uint32_t sdiv32(std::uint32_t a, std::uint32_t b) {
  if (b == 0) return 0;
  if (static_cast<std::int32_t>(b) == -1) return 0 - a;
  return static_cast<std::uint32_t>(static_cast<std::int32_t>(a) / static_cast<std::int32_t>(b));
}
std::uint32_t smod32(std::uint32_t a, std::uint32_t b) {
  if (b == 0) return a;
  if (static_cast<std::int32_t>(b) == -1) return 0;
  return static_cast<std::uint32_t>(static_cast<std::int32_t>(a) % static_cast<std::int32_t>(b));
}

std::uint64_t swap_bytes(std::uint64_t v, std::int32_t width) {
  switch (width) {
    case 16:
      return __builtin_bswap16(static_cast<std::uint16_t>(v));
    case 32:
      return __builtin_bswap32(static_cast<std::uint32_t>(v));
    default:
      return __builtin_bswap64(v);
  }
}
std::uint64_t truncate_to(std::uint64_t v, std::int32_t width) {
  switch (width) {
    case 16:
      return static_cast<std::uint16_t>(v);
    case 32:
      return static_cast<std::uint32_t>(v);
    default:
      return v;
  }
}

// Jump conditions, for both widths (T is std::uint64_t or std::uint32_t).
template <typename T>
bool jeq(T a, T b) {
  return a == b;
}
template <typename T>
bool jne(T a, T b) {
  return a != b;
}
template <typename T>
bool jgt(T a, T b) {
  return a > b;
}
template <typename T>
bool jge(T a, T b) {
  return a >= b;
}
template <typename T>
bool jlt(T a, T b) {
  return a < b;
}
template <typename T>
bool jle(T a, T b) {
  return a <= b;
}
template <typename T>
bool jset(T a, T b) {
  return (a & b) != 0;
}
template <typename T>
bool jsgt(T a, T b) {
  return static_cast<std::make_signed_t<T>>(a) > static_cast<std::make_signed_t<T>>(b);
}
template <typename T>
bool jsge(T a, T b) {
  return static_cast<std::make_signed_t<T>>(a) >= static_cast<std::make_signed_t<T>>(b);
}
template <typename T>
bool jslt(T a, T b) {
  return static_cast<std::make_signed_t<T>>(a) < static_cast<std::make_signed_t<T>>(b);
}
template <typename T>
bool jsle(T a, T b) {
  return static_cast<std::make_signed_t<T>>(a) <= static_cast<std::make_signed_t<T>>(b);
}

// Threaded dispatch (computed goto, a GNU extension both g++ and clang++ implement) unless the
// compiler lacks it; then run() keeps the portable switch loop, same behaviour.
#if defined(__GNUC__)
#define BPF_VM_THREADED 1
#else
#define BPF_VM_THREADED 0
#endif

#if BPF_VM_THREADED
// Where run() continues for each opcode byte: a fast handler, or the full switch.
struct DispatchTable {
  std::array<const void*, 256> labels;
};
struct OpLabel {
  std::uint8_t code;
  const void* label;
};
DispatchTable make_dispatch_table(const void* slow, std::initializer_list<OpLabel> fast) {
  DispatchTable t;
  t.labels.fill(slow);
  for (const OpLabel& o : fast)
    t.labels[o.code] = o.label;
  return t;
}
#endif

}  // namespace

const char* fault_kind_name(FaultKind kind) {
  switch (kind) {
    case FaultKind::kBadAccess:
      return "bad_access";
    case FaultKind::kNullDeref:
      return "null_deref";
    case FaultKind::kReadOnlyWrite:
      return "read_only_write";
    case FaultKind::kDeadRegion:
      return "dead_region";
    case FaultKind::kBudget:
      return "budget";
    case FaultKind::kBadInstruction:
      return "bad_instruction";
    case FaultKind::kBadCall:
      return "bad_call";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------------------------
// BpfVm

struct BpfVm::Code {
  std::string name;
  std::vector<BpfInsn> orig;  // as given, for fault reports
  std::vector<BpfInsn> code;  // sanitized, plus the sentinel
};

std::shared_ptr<const BpfVm::Code> BpfVm::prepare(const BpfProgramImage& image) {
  if (image.insns.size() >= std::numeric_limits<std::uint32_t>::max()) {
    vm_bug("BpfVm: program too large");
  }
  auto c = std::make_shared<Code>();
  c->name = image.name;
  c->orig = image.insns;
  c->code.reserve(image.insns.size() + 1);
  c->code = image.insns;
  for (auto& in : c->code) {
    if (invalid_reason(in) != nullptr) {
      in.code = kInvalidOp;
      continue;
    }
    // r10 is read-only and always the top of the current frame, so `r10 + off` lands in the
    // frame [r10 - kStackSize, r10) or not whatever runs before: when it does, the load or store
    // gets the kModeFp opcode (same class and size).
    const std::uint8_t cls = in.code & 0x07;
    const bool ldx = cls == kClsLdx && (in.code & 0xe0) == kModeMem && in.src() == kFp;
    const bool st =
        (cls == kClsSt || cls == kClsStx) && (in.code & 0xe0) == kModeMem && in.dst() == kFp;
    const std::int64_t size = size_of(in.code);
    if ((ldx || st) && in.off >= -static_cast<std::int64_t>(kStackSize) && in.off <= -size)
      in.code = static_cast<std::uint8_t>((in.code & ~0xe0) | kModeFp);
  }
  for (std::size_t i = 0; i + 1 < c->code.size(); ++i) {
    BpfInsn& add = c->code[i];
    const BpfInsn& jne = c->code[i + 1];
    if (add.dst() != jne.dst()) continue;
    if (add.code == (kClsAlu | 0x00) && jne.code == (kClsJmp32 | 0x50)) add.code = kAddJne32;
    if (add.code == (kClsAlu64 | 0x00) && jne.code == (kClsJmp | 0x50)) add.code = kAddJne64;
  }
  c->code.push_back(BpfInsn{});  // sentinel: falling off the end is a bad instruction
  return c;
}

const std::vector<BpfInsn>& BpfVm::insns_of(const Code& code) {
  return code.orig;
}

struct BpfVm::Impl {
  enum class State : std::uint8_t { kIdle, kReady, kInHelper, kExited, kFaulted };

  // What a call pushes: the caller's registers and where to continue. A callback frame (entered
  // by start_callback) also keeps r1..r5 and the helper id of the interrupted helper call, so
  // that arg() and helper_id() still describe that call once the callback has returned.
  struct Frame {
    std::array<std::uint64_t, 11> saved{};
    std::uint32_t return_pc = 0;
    std::int32_t helper_id = 0;
    bool callback = false;
  };

  Impl(std::shared_ptr<const Code> c, AddressSpace& space, std::uint64_t budget)
      : prepared(std::move(c)),
        name(prepared->name),
        orig(prepared->orig),
        code(prepared->code),
        n(static_cast<std::uint32_t>(orig.size())),
        space(space),
        budget(budget) {}

  ~Impl() {
    for (std::uint32_t id : stack_ids)
      space.retire(id);
  }

  std::uint64_t stack_top(std::uint32_t depth) {
    while (stack_ids.size() <= depth) {
      const auto index = static_cast<std::uint32_t>(stack_ids.size());
      stacks.push_back(std::make_unique<std::uint8_t[]>(kStackSize));
      stack_ids.push_back(space.add(RegionKind::kStack,
                                    "stack frame " + std::to_string(index) + " of " + name,
                                    stacks.back().get(), kStackSize, true));
    }
    return AddressSpace::base(stack_ids[depth]) + kStackSize;
  }
  // r10 for a frame at call depth index `depth`, which becomes the current frame.
  std::uint64_t enter_frame(std::uint32_t depth) {
    const std::uint64_t top = stack_top(depth);
    frame_host = stacks[depth].get();
    return top;
  }

  BpfInsn insn_at(std::uint32_t at) const { return at < n ? orig[at] : BpfInsn{}; }

  Stop set_fault(FaultKind kind, std::uint32_t at, std::uint64_t addr, std::string message) {
    fault.kind = kind;
    fault.pc = at;
    fault.insn = insn_at(at);
    fault.addr = addr;
    fault.message = fmt::format("pc {}: {}", at, message);
    state = State::kFaulted;
    return Stop::kFault;
  }

  Stop fault_memory(std::uint32_t at, std::uint64_t addr, std::uint32_t size, bool write) {
    std::string why;
    space.translate(addr, size, write, &why);
    // Same order of checks as describe_bad_access, so kind and message agree.
    FaultKind kind = FaultKind::kBadAccess;
    const std::uint32_t id = AddressSpace::region_of(addr);
    const std::uint64_t end = std::uint64_t{static_cast<std::uint32_t>(addr)} + size;
    const bool underflow = static_cast<std::uint32_t>(addr) >= AddressSpace::kUnderflowWindow &&
                           space.find(id + 1) != nullptr;
    if (underflow) {
      kind = FaultKind::kBadAccess;
    } else if (id == 0) {
      kind = FaultKind::kNullDeref;
    } else if (const Region* r = space.find(id)) {
      if (!r->live) {
        kind = FaultKind::kDeadRegion;
      } else if (write && r->kind == RegionKind::kOpaque) {
        kind = FaultKind::kReadOnlyWrite;
      } else if (write && end <= r->size && !r->writable) {
        kind = FaultKind::kReadOnlyWrite;
      }
    }
    return set_fault(kind, at, addr, std::move(why));
  }

  Stop fault_invalid(std::uint32_t at) {
    if (at >= n) {
      return set_fault(FaultKind::kBadInstruction, at, 0,
                       fmt::format("fell off the end of the program ({} instructions)", n));
    }
    const BpfInsn in = orig[at];
    const char* reason = invalid_reason(in);
    return set_fault(
        FaultKind::kBadInstruction, at, 0,
        fmt::format("invalid instruction (code {:#04x} regs {:#04x} off {} imm {}): {}", in.code,
                    in.regs, in.off, in.imm, reason != nullptr ? reason : "unknown opcode"));
  }

  Stop fault_jump(std::uint32_t at, std::int64_t target) {
    return set_fault(FaultKind::kBadInstruction, at, 0,
                     fmt::format("jump to {} outside the program (0..{})", target, n - 1));
  }

  // Enters the subprogram at `target` from the instruction at `at` (a call or callx).
  bool push_frame(std::uint32_t at, std::int64_t target, std::uint32_t return_pc) {
    if (target < 0 || target >= n) {
      set_fault(FaultKind::kBadCall, at, 0,
                fmt::format("call to {} outside the program (0..{})", target, n - 1));
      return false;
    }
    if (depth >= kMaxCallDepth) {
      set_fault(FaultKind::kBadCall, at, 0,
                fmt::format("call depth exceeds {} frames", kMaxCallDepth));
      return false;
    }
    Frame& f = frames[depth];
    f.callback = false;
    f.return_pc = return_pc;
    for (unsigned i = 6; i <= 10; ++i)
      f.saved[i] = regs[i];
    regs[kFp] = enter_frame(depth);
    ++depth;
    pc = static_cast<std::uint32_t>(target);
    return true;
  }

  Stop run();

  std::shared_ptr<const Code> prepared;
  const std::string& name;
  const std::vector<BpfInsn>& orig;  // as given, for fault reports
  const std::vector<BpfInsn>& code;  // sanitized, plus the sentinel
  std::uint32_t n = 0;
  AddressSpace& space;
  std::uint64_t budget;
  std::uint64_t left = 0;  // instructions the current run may still execute
  std::uint64_t executed = 0;
  std::uint64_t executed_mark = 0;

  std::array<std::uint64_t, 16> regs{};
  std::uint32_t pc = 0;
  std::int32_t helper = 0;
  State state = State::kIdle;
  std::uint32_t depth = 0;  // frames in use; frames[i] is what entering frame i pushed
  std::array<Frame, kMaxCallDepth> frames{};
  std::vector<std::unique_ptr<std::uint8_t[]>> stacks;
  std::vector<std::uint32_t> stack_ids;
  // Host memory of the current frame's stack (the region r10 points to the end of): always live
  // and writable while the VM exists, so run()'s fast loads and stores into it skip translate().
  std::uint8_t* frame_host = nullptr;
  Fault fault;
};

#if BPF_VM_THREADED
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#ifdef __clang__
#pragma GCC diagnostic ignored "-Wgnu-label-as-value"
#endif
#endif
BpfVm::Stop BpfVm::Impl::run() {
  switch (state) {
    case State::kReady:
      break;
    case State::kFaulted:
      return Stop::kFault;
    case State::kIdle:
      vm_bug("run() before start()");
    case State::kInHelper:
      vm_bug("run() at a helper call before complete_helper()");
    case State::kExited:
      vm_bug("run() after the program exited");
  }

  const BpfInsn* const prog = code.data();
  std::uint64_t* const r = regs.data();
  // Copies in locals of what handlers read: a store through a uint8_t* may alias any member, so
  // members are reloaded after every store; locals are not. `frame` follows frame_host, which only
  // the slow path changes (calls and returns), at `next`.
  const std::uint64_t insn_count = n;
  [[maybe_unused]] std::uint8_t* frame = frame_host;
  std::uint32_t at = pc;
  std::uint64_t budget_left = left;
  const std::uint64_t budget_at_entry = budget_left;

  // Leaves the loop with `stop_expr`, publishing pc and the instruction count first.
#define BPF_STOP(stop_expr)                    \
  do {                                         \
    pc = at;                                   \
    executed += budget_at_entry - budget_left; \
    left = budget_left;                        \
    return (stop_expr);                        \
  } while (0)
#define BPF_MEM(ptr, addr, size, write)                                        \
  std::uint8_t* const ptr = space.translate((addr), (size), (write), nullptr); \
  if (ptr == nullptr) [[unlikely]]                                             \
  BPF_STOP(fault_memory(at, (addr), (size), (write)))
// Moves to `target`, or stops with a fault of the jump at `at` when it is outside the program.
#define BPF_GOTO(target)                                           \
  do {                                                             \
    const std::int64_t t_ = (target);                              \
    if (static_cast<std::uint64_t>(t_) >= insn_count) [[unlikely]] \
      BPF_STOP(fault_jump(at, t_));                                \
    at = static_cast<std::uint32_t>(t_);                           \
  } while (0)
#define BPF_JUMP(target) \
  do {                   \
    BPF_GOTO(target);    \
    goto next;           \
  } while (0)
#define BPF_COND(cond) \
  if (cond) BPF_JUMP(std::int64_t{at} + 1 + in.off);
#define BPF_JMP64(opc, cmp)                                                              \
  case kClsJmp | (opc):                                                                  \
    BPF_COND(cmp(r[d], sext32(in.imm)));                                                 \
    break;                                                                               \
  case kClsJmp | kSrcX | (opc):                                                          \
    BPF_COND(cmp(r[d], r[s]));                                                           \
    break;                                                                               \
  case kClsJmp32 | (opc):                                                                \
    BPF_COND(cmp(static_cast<std::uint32_t>(r[d]), static_cast<std::uint32_t>(in.imm))); \
    break;                                                                               \
  case kClsJmp32 | kSrcX | (opc):                                                        \
    BPF_COND(cmp(static_cast<std::uint32_t>(r[d]), static_cast<std::uint32_t>(r[s])));   \
    break;

  // The instruction at `at` and its registers. Fast handlers decode after the dispatch, which
  // keeps the dispatch short (GCC merges long copies of it; this form measured fastest).
  BpfInsn in;
  unsigned d = 0;
  unsigned s = 0;
#define BPF_DECODE() \
  in = prog[at];     \
  d = in.dst();      \
  s = in.src()
#if BPF_VM_THREADED
  // Threaded dispatch: every fast handler below ends with its own copy of BPF_DISPATCH, so the
  // host's branch predictor sees one indirect jump per handler instead of the switch's single
  // one. Opcodes without a fast handler go to `slow`, the full switch, which executes the one
  // instruction and dispatches again. Both paths count and check the budget identically.
  static const DispatchTable table =
      make_dispatch_table(&&slow, {
                                      {kClsAlu64 | 0x00, &&add64_k},
                                      {kClsAlu64 | kSrcX | 0x00, &&add64_x},
                                      {kClsAlu64 | 0x10, &&sub64_k},
                                      {kClsAlu64 | kSrcX | 0x10, &&sub64_x},
                                      {kClsAlu64 | 0x20, &&mul64_k},
                                      {kClsAlu64 | kSrcX | 0x20, &&mul64_x},
                                      {kClsAlu64 | 0x40, &&or64_k},
                                      {kClsAlu64 | kSrcX | 0x40, &&or64_x},
                                      {kClsAlu64 | 0x50, &&and64_k},
                                      {kClsAlu64 | kSrcX | 0x50, &&and64_x},
                                      {kClsAlu64 | 0x60, &&lsh64_k},
                                      {kClsAlu64 | kSrcX | 0x60, &&lsh64_x},
                                      {kClsAlu64 | 0x70, &&rsh64_k},
                                      {kClsAlu64 | kSrcX | 0x70, &&rsh64_x},
                                      {kClsAlu64 | 0xa0, &&xor64_k},
                                      {kClsAlu64 | kSrcX | 0xa0, &&xor64_x},
                                      {kClsAlu64 | 0xb0, &&mov64_k},
                                      {kClsAlu64 | kSrcX | 0xb0, &&mov64_x},
                                      {kClsAlu64 | 0xc0, &&arsh64_k},
                                      {kClsAlu | 0x00, &&add32_k},
                                      {kClsAlu | kSrcX | 0x00, &&add32_x},
                                      {kClsAlu | 0x10, &&sub32_k},
                                      {kClsAlu | kSrcX | 0x10, &&sub32_x},
                                      {kClsAlu | 0x20, &&mul32_k},
                                      {kClsAlu | kSrcX | 0x20, &&mul32_x},
                                      {kClsAlu | 0x40, &&or32_k},
                                      {kClsAlu | kSrcX | 0x40, &&or32_x},
                                      {kClsAlu | 0x50, &&and32_k},
                                      {kClsAlu | kSrcX | 0x50, &&and32_x},
                                      {kClsAlu | 0x60, &&lsh32_k},
                                      {kClsAlu | kSrcX | 0x60, &&lsh32_x},
                                      {kClsAlu | 0x70, &&rsh32_k},
                                      {kClsAlu | kSrcX | 0x70, &&rsh32_x},
                                      {kClsAlu | 0xa0, &&xor32_k},
                                      {kClsAlu | kSrcX | 0xa0, &&xor32_x},
                                      {kClsAlu | 0xc0, &&arsh32_k},
                                      {kClsAlu | kSrcX | 0xc0, &&arsh32_x},
                                      {kClsAlu | kSrcX | 0xb0, &&mov32_x},
                                      {kClsAlu64 | kSrcX | 0xc0, &&arsh64_x},
                                      {kClsAlu | 0xb0, &&mov32_k},
                                      {kClsJmp | 0x00, &&ja},
                                      {kClsJmp | 0x10, &&jeq_k},
                                      {kClsJmp | kSrcX | 0x10, &&jeq_x},
                                      {kClsJmp | 0x20, &&jgt_k},
                                      {kClsJmp | kSrcX | 0x20, &&jgt_x},
                                      {kClsJmp | 0x30, &&jge_k},
                                      {kClsJmp | kSrcX | 0x30, &&jge_x},
                                      {kClsJmp | 0x50, &&jne_k},
                                      {kClsJmp | kSrcX | 0x50, &&jne_x},
                                      {kClsJmp | 0x60, &&jsgt_k},
                                      {kClsJmp | kSrcX | 0x60, &&jsgt_x},
                                      {kClsJmp | 0xa0, &&jlt_k},
                                      {kClsJmp | kSrcX | 0xa0, &&jlt_x},
                                      {kClsJmp | 0xb0, &&jle_k},
                                      {kClsJmp | kSrcX | 0xb0, &&jle_x},
                                      {kClsJmp | 0xc0, &&jslt_k},
                                      {kClsJmp | kSrcX | 0xc0, &&jslt_x},
                                      {kClsJmp32 | 0x10, &&jeq32_k},
                                      {kClsJmp32 | kSrcX | 0x10, &&jeq32_x},
                                      {kClsJmp32 | 0x20, &&jgt32_k},
                                      {kClsJmp32 | kSrcX | 0x20, &&jgt32_x},
                                      {kClsJmp32 | 0x30, &&jge32_k},
                                      {kClsJmp32 | kSrcX | 0x30, &&jge32_x},
                                      {kClsJmp32 | 0x50, &&jne32_k},
                                      {kClsJmp32 | kSrcX | 0x50, &&jne32_x},
                                      {kClsJmp32 | 0x60, &&jsgt32_k},
                                      {kClsJmp32 | kSrcX | 0x60, &&jsgt32_x},
                                      {kClsJmp32 | 0xa0, &&jlt32_k},
                                      {kClsJmp32 | kSrcX | 0xa0, &&jlt32_x},
                                      {kClsJmp32 | 0xb0, &&jle32_k},
                                      {kClsJmp32 | kSrcX | 0xb0, &&jle32_x},
                                      {kClsJmp32 | 0xc0, &&jslt32_k},
                                      {kClsJmp32 | kSrcX | 0xc0, &&jslt32_x},
                                      {kClsLdx | kModeMem | kSizeB, &&ldxb},
                                      {kClsLdx | kModeMem | kSizeW, &&ldxw},
                                      {kClsLdx | kModeMem | kSizeDw, &&ldxdw},
                                      {kClsStx | kModeMem | kSizeB, &&stxb},
                                      {kClsStx | kModeMem | kSizeW, &&stxw},
                                      {kClsStx | kModeMem | kSizeDw, &&stxdw},
                                      {kClsSt | kModeMem | kSizeDw, &&stdw},
                                      {kClsLdx | kModeFp | kSizeB, &&ldxb_fp},
                                      {kClsLdx | kModeFp | kSizeH, &&ldxh_fp},
                                      {kClsLdx | kModeFp | kSizeW, &&ldxw_fp},
                                      {kClsLdx | kModeFp | kSizeDw, &&ldxdw_fp},
                                      {kClsStx | kModeFp | kSizeB, &&stxb_fp},
                                      {kClsStx | kModeFp | kSizeH, &&stxh_fp},
                                      {kClsStx | kModeFp | kSizeW, &&stxw_fp},
                                      {kClsStx | kModeFp | kSizeDw, &&stxdw_fp},
                                      {kClsSt | kModeFp | kSizeB, &&stb_fp},
                                      {kClsSt | kModeFp | kSizeH, &&sth_fp},
                                      {kClsSt | kModeFp | kSizeW, &&stw_fp},
                                      {kClsSt | kModeFp | kSizeDw, &&stdw_fp},
                                      {kAddJne32, &&add_jne32},
                                      {kAddJne64, &&add_jne64},
                                  });
  const void* const* const labels = table.labels.data();
#define BPF_DISPATCH()                 \
  do {                                 \
    if (budget_left == 0) [[unlikely]] \
      goto budget_exhausted;           \
    --budget_left;                     \
    goto* labels[prog[at].code];       \
  } while (0)
#define BPF_FAST(label, stmt) \
  label:                      \
  BPF_DECODE();               \
  stmt;                       \
  ++at;                       \
  BPF_DISPATCH();
#define BPF_FAST_COND(label, cond)           \
  label:                                     \
  BPF_DECODE();                              \
  if (cond) {                                \
    BPF_GOTO(std::int64_t{at} + 1 + in.off); \
  } else {                                   \
    ++at;                                    \
  }                                          \
  BPF_DISPATCH();
#define BPF_FAST_JMP(name, cmp)                                                            \
  BPF_FAST_COND(name##_k, cmp(r[d], sext32(in.imm)))                                       \
  BPF_FAST_COND(name##_x, cmp(r[d], r[s]))                                                 \
  BPF_FAST_COND(name##32_k,                                                                \
                cmp(static_cast<std::uint32_t>(r[d]), static_cast<std::uint32_t>(in.imm))) \
  BPF_FAST_COND(name##32_x, cmp(static_cast<std::uint32_t>(r[d]), static_cast<std::uint32_t>(r[s])))

  BPF_DISPATCH();

  BPF_FAST(add64_k, r[d] += sext32(in.imm))
  BPF_FAST(add64_x, r[d] += r[s])
  BPF_FAST(sub64_k, r[d] -= sext32(in.imm))
  BPF_FAST(sub64_x, r[d] -= r[s])
  BPF_FAST(mul64_k, r[d] *= sext32(in.imm))
  BPF_FAST(mul64_x, r[d] *= r[s])
  BPF_FAST(or64_k, r[d] |= sext32(in.imm))
  BPF_FAST(or64_x, r[d] |= r[s])
  BPF_FAST(and64_k, r[d] &= sext32(in.imm))
  BPF_FAST(and64_x, r[d] &= r[s])
  BPF_FAST(lsh64_k, r[d] <<= (in.imm & 63))
  BPF_FAST(lsh64_x, r[d] <<= (r[s] & 63))
  BPF_FAST(rsh64_k, r[d] >>= (in.imm & 63))
  BPF_FAST(rsh64_x, r[d] >>= (r[s] & 63))
  BPF_FAST(xor64_k, r[d] ^= sext32(in.imm))
  BPF_FAST(xor64_x, r[d] ^= r[s])
  BPF_FAST(mov64_k, r[d] = sext32(in.imm))
  BPF_FAST(mov64_x, if (in.off != 0) goto slow; r[d] = r[s])  // off != 0: movsx
  BPF_FAST(arsh64_k,
           r[d] = static_cast<std::uint64_t>(static_cast<std::int64_t>(r[d]) >> (in.imm & 63)))
// 32-bit ALU: operate on the low halves, zero-extend the result (as the switch's BPF_ALU32).
#define BPF_FAST_ALU32(name, expr)                              \
  BPF_FAST(name##_k, {                                          \
    const std::uint32_t a = static_cast<std::uint32_t>(r[d]);   \
    const std::uint32_t b = static_cast<std::uint32_t>(in.imm); \
    r[d] = static_cast<std::uint32_t>(expr);                    \
  })                                                            \
  BPF_FAST(name##_x, {                                          \
    const std::uint32_t a = static_cast<std::uint32_t>(r[d]);   \
    const std::uint32_t b = static_cast<std::uint32_t>(r[s]);   \
    r[d] = static_cast<std::uint32_t>(expr);                    \
  })
  BPF_FAST_ALU32(add32, a + b)
  BPF_FAST_ALU32(sub32, a - b)
  BPF_FAST_ALU32(mul32, a * b)
  BPF_FAST_ALU32(or32, a | b)
  BPF_FAST_ALU32(and32, a & b)
  BPF_FAST_ALU32(lsh32, a << (b & 31))
  BPF_FAST_ALU32(rsh32, a >> (b & 31))
  BPF_FAST_ALU32(xor32, a ^ b)
  BPF_FAST_ALU32(arsh32, static_cast<std::int32_t>(a) >> (b & 31))
#undef BPF_FAST_ALU32
  BPF_FAST(mov32_x, if (in.off != 0) goto slow;
           r[d] = static_cast<std::uint32_t>(r[s]))  // off != 0: movsx
  BPF_FAST(arsh64_x,
           r[d] = static_cast<std::uint64_t>(static_cast<std::int64_t>(r[d]) >> (r[s] & 63)))
  BPF_FAST(mov32_k, r[d] = static_cast<std::uint32_t>(in.imm))
  BPF_FAST_COND(ja, true)
  BPF_FAST_JMP(jeq, jeq)
  BPF_FAST_JMP(jgt, jgt)
  BPF_FAST_JMP(jge, jge)
  BPF_FAST_JMP(jne, jne)
  BPF_FAST_JMP(jsgt, jsgt)
  BPF_FAST_JMP(jlt, jlt)
  BPF_FAST_JMP(jle, jle)
  BPF_FAST_JMP(jslt, jslt)

// Like BPF_MEM, with a shortcut for the current stack frame [r10 - 512, r10), the same memory
// translate() would return for it.
#define BPF_FRAME_MEM(ptr, addr, size, write)                                                 \
  std::uint8_t* ptr;                                                                          \
  if (const std::uint64_t off_ = (addr) - (r[kFp] - kStackSize); off_ <= kStackSize - (size)) \
      [[likely]] {                                                                            \
    ptr = frame + off_;                                                                       \
  } else {                                                                                    \
    ptr = space.translate((addr), (size), (write), nullptr);                                  \
    if (ptr == nullptr) [[unlikely]]                                                          \
      BPF_STOP(fault_memory(at, (addr), (size), (write)));                                    \
  }
#define BPF_FAST_LDX(label, size)                     \
  label : {                                           \
    BPF_DECODE();                                     \
    const std::uint64_t addr = r[s] + sext32(in.off); \
    BPF_FRAME_MEM(p, addr, size_of(size), false);     \
    r[d] = load_sized(p, size_of(size));              \
  }                                                   \
  ++at;                                               \
  BPF_DISPATCH();
#define BPF_FAST_ST(label, size, value)               \
  label : {                                           \
    BPF_DECODE();                                     \
    const std::uint64_t addr = r[d] + sext32(in.off); \
    BPF_FRAME_MEM(p, addr, size_of(size), true);      \
    store_sized(p, size_of(size), (value));           \
  }                                                   \
  ++at;                                               \
  BPF_DISPATCH();
  BPF_FAST_LDX(ldxb, kSizeB)
  BPF_FAST_LDX(ldxw, kSizeW)
  BPF_FAST_LDX(ldxdw, kSizeDw)
  BPF_FAST_ST(stxb, kSizeB, r[s])
  BPF_FAST_ST(stxw, kSizeW, r[s])
  BPF_FAST_ST(stxdw, kSizeDw, r[s])
  BPF_FAST_ST(stdw, kSizeDw, sext32(in.imm))
  // kModeFp: the offset was checked once, by prepare().
#define BPF_FAST_LDX_FP(label, size)                             \
  label:                                                         \
  BPF_DECODE();                                                  \
  r[d] = load_sized(frame + kStackSize + in.off, size_of(size)); \
  ++at;                                                          \
  BPF_DISPATCH();
#define BPF_FAST_ST_FP(label, size, value)                          \
  label:                                                            \
  BPF_DECODE();                                                     \
  store_sized(frame + kStackSize + in.off, size_of(size), (value)); \
  ++at;                                                             \
  BPF_DISPATCH();
  BPF_FAST_LDX_FP(ldxb_fp, kSizeB)
  BPF_FAST_LDX_FP(ldxh_fp, kSizeH)
  BPF_FAST_LDX_FP(ldxw_fp, kSizeW)
  BPF_FAST_LDX_FP(ldxdw_fp, kSizeDw)
  BPF_FAST_ST_FP(stxb_fp, kSizeB, r[s])
  BPF_FAST_ST_FP(stxh_fp, kSizeH, r[s])
  BPF_FAST_ST_FP(stxw_fp, kSizeW, r[s])
  BPF_FAST_ST_FP(stxdw_fp, kSizeDw, r[s])
  BPF_FAST_ST_FP(stb_fp, kSizeB, sext32(in.imm))
  BPF_FAST_ST_FP(sth_fp, kSizeH, sext32(in.imm))
  BPF_FAST_ST_FP(stw_fp, kSizeW, sext32(in.imm))
  BPF_FAST_ST_FP(stdw_fp, kSizeDw, sext32(in.imm))
#undef BPF_FAST_LDX_FP
#undef BPF_FAST_ST_FP
  // kAddJne32/64: the add, then the jne at at + 1 as its own instruction (counted, and the fault
  // of a bad jump target at its pc); with no budget left for it, the dispatch at at + 1 stops.
#define BPF_FAST_ADD_JNE(label, T)                                              \
  label:                                                                        \
  BPF_DECODE();                                                                 \
  r[d] = static_cast<T>(static_cast<T>(r[d]) + static_cast<T>(sext32(in.imm))); \
  ++at;                                                                         \
  if (budget_left == 0) [[unlikely]]                                            \
    goto budget_exhausted;                                                      \
  --budget_left;                                                                \
  if (static_cast<T>(r[d]) != static_cast<T>(sext32(prog[at].imm))) {           \
    BPF_GOTO(std::int64_t{at} + 1 + prog[at].off);                              \
  } else {                                                                      \
    ++at;                                                                       \
  }                                                                             \
  BPF_DISPATCH();
  BPF_FAST_ADD_JNE(add_jne32, std::uint32_t)
  BPF_FAST_ADD_JNE(add_jne64, std::uint64_t)
#undef BPF_FAST_ADD_JNE
#undef BPF_FAST_LDX
#undef BPF_FAST_ST
#undef BPF_FRAME_MEM
#undef BPF_FAST_JMP
#undef BPF_FAST_COND
#undef BPF_FAST

budget_exhausted:
  BPF_STOP(set_fault(FaultKind::kBudget, at, 0,
                     fmt::format("instruction budget of {} exhausted (runaway loop?)", budget)));

slow:
#endif
  for (;;) {
#if !BPF_VM_THREADED
    if (budget_left == 0) [[unlikely]] {
      BPF_STOP(
          set_fault(FaultKind::kBudget, at, 0,
                    fmt::format("instruction budget of {} exhausted (runaway loop?)", budget)));
    }
    --budget_left;
#endif
    BPF_DECODE();
    {
      switch (in.code) {
        // ---- ALU64
        case kClsAlu64 | 0x00:
          r[d] += sext32(in.imm);
          break;
        case kClsAlu64 | kSrcX | 0x00:
          r[d] += r[s];
          break;
        case kClsAlu64 | 0x10:
          r[d] -= sext32(in.imm);
          break;
        case kClsAlu64 | kSrcX | 0x10:
          r[d] -= r[s];
          break;
        case kClsAlu64 | 0x20:
          r[d] *= sext32(in.imm);
          break;
        case kClsAlu64 | kSrcX | 0x20:
          r[d] *= r[s];
          break;
        case kClsAlu64 | 0x30: {
          const std::uint64_t b = sext32(in.imm);
          r[d] = in.off == 1 ? sdiv64(r[d], b) : (b == 0 ? 0 : r[d] / b);
          break;
        }
        case kClsAlu64 | kSrcX | 0x30: {
          const std::uint64_t b = r[s];
          r[d] = in.off == 1 ? sdiv64(r[d], b) : (b == 0 ? 0 : r[d] / b);
          break;
        }
        case kClsAlu64 | 0x40:
          r[d] |= sext32(in.imm);
          break;
        case kClsAlu64 | kSrcX | 0x40:
          r[d] |= r[s];
          break;
        case kClsAlu64 | 0x50:
          r[d] &= sext32(in.imm);
          break;
        case kClsAlu64 | kSrcX | 0x50:
          r[d] &= r[s];
          break;
        case kClsAlu64 | 0x60:
          r[d] <<= (in.imm & 63);
          break;
        case kClsAlu64 | kSrcX | 0x60:
          r[d] <<= (r[s] & 63);
          break;
        case kClsAlu64 | 0x70:
          r[d] >>= (in.imm & 63);
          break;
        case kClsAlu64 | kSrcX | 0x70:
          r[d] >>= (r[s] & 63);
          break;
        case kClsAlu64 | 0x80:
          r[d] = 0 - r[d];
          break;
        case kClsAlu64 | 0x90: {
          const std::uint64_t b = sext32(in.imm);
          r[d] = in.off == 1 ? smod64(r[d], b) : (b == 0 ? r[d] : r[d] % b);
          break;
        }
        case kClsAlu64 | kSrcX | 0x90: {
          const std::uint64_t b = r[s];
          r[d] = in.off == 1 ? smod64(r[d], b) : (b == 0 ? r[d] : r[d] % b);
          break;
        }
        case kClsAlu64 | 0xa0:
          r[d] ^= sext32(in.imm);
          break;
        case kClsAlu64 | kSrcX | 0xa0:
          r[d] ^= r[s];
          break;
        case kClsAlu64 | 0xb0:
          r[d] = sext32(in.imm);
          break;
        case kClsAlu64 | kSrcX | 0xb0:
          switch (in.off) {
            case 8:
              r[d] = static_cast<std::uint64_t>(std::int64_t{static_cast<std::int8_t>(r[s])});
              break;
            case 16:
              r[d] = static_cast<std::uint64_t>(std::int64_t{static_cast<std::int16_t>(r[s])});
              break;
            case 32:
              r[d] = static_cast<std::uint64_t>(std::int64_t{static_cast<std::int32_t>(r[s])});
              break;
            default:
              r[d] = r[s];
              break;
          }
          break;
        case kClsAlu64 | 0xc0:
          r[d] = static_cast<std::uint64_t>(static_cast<std::int64_t>(r[d]) >> (in.imm & 63));
          break;
        case kClsAlu64 | kSrcX | 0xc0:
          r[d] = static_cast<std::uint64_t>(static_cast<std::int64_t>(r[d]) >> (r[s] & 63));
          break;
        case kClsAlu64 | 0xd0:
          r[d] = swap_bytes(r[d], in.imm);
          break;  // bswap16/32/64

          // ---- ALU (32-bit: operate on the low halves, zero-extend the result)
#define BPF_ALU32(opc, expr_imm, expr_reg)                      \
  case kClsAlu | (opc): {                                       \
    const std::uint32_t a = static_cast<std::uint32_t>(r[d]);   \
    const std::uint32_t b = static_cast<std::uint32_t>(in.imm); \
    r[d] = static_cast<std::uint32_t>(expr_imm);                \
    break;                                                      \
  }                                                             \
  case kClsAlu | kSrcX | (opc): {                               \
    const std::uint32_t a = static_cast<std::uint32_t>(r[d]);   \
    const std::uint32_t b = static_cast<std::uint32_t>(r[s]);   \
    r[d] = static_cast<std::uint32_t>(expr_reg);                \
    break;                                                      \
  }
          BPF_ALU32(0x00, a + b, a + b)
        case kAddJne32:  // the add alone: the jne after it runs as the next instruction
          r[d] = static_cast<std::uint32_t>(static_cast<std::uint32_t>(r[d]) +
                                            static_cast<std::uint32_t>(in.imm));
          break;
        case kAddJne64:
          r[d] += sext32(in.imm);
          break;
          BPF_ALU32(0x10, a - b, a - b)
          BPF_ALU32(0x20, a * b, a * b)
          BPF_ALU32(0x30, in.off == 1 ? sdiv32(a, b) : (b == 0 ? 0u : a / b),
                    in.off == 1 ? sdiv32(a, b) : (b == 0 ? 0u : a / b))
          BPF_ALU32(0x40, a | b, a | b)
          BPF_ALU32(0x50, a & b, a & b)
          BPF_ALU32(0x60, a << (b & 31), a << (b & 31))
          BPF_ALU32(0x70, a >> (b & 31), a >> (b & 31))
          BPF_ALU32(0x90, in.off == 1 ? smod32(a, b) : (b == 0 ? a : a % b),
                    in.off == 1 ? smod32(a, b) : (b == 0 ? a : a % b))
          BPF_ALU32(0xa0, a ^ b, a ^ b)
          BPF_ALU32(0xc0, static_cast<std::int32_t>(a) >> (b & 31),
                    static_cast<std::int32_t>(a) >> (b & 31))
#undef BPF_ALU32
        case kClsAlu | 0x80:
          r[d] = 0u - static_cast<std::uint32_t>(r[d]);
          break;
        case kClsAlu | 0xb0:
          r[d] = static_cast<std::uint32_t>(in.imm);
          break;
        case kClsAlu | kSrcX | 0xb0:
          switch (in.off) {
            case 8:
              r[d] = static_cast<std::uint32_t>(std::int32_t{static_cast<std::int8_t>(r[s])});
              break;
            case 16:
              r[d] = static_cast<std::uint32_t>(std::int32_t{static_cast<std::int16_t>(r[s])});
              break;
            default:
              r[d] = static_cast<std::uint32_t>(r[s]);
              break;
          }
          break;
        case kClsAlu | 0xd0:
          r[d] = truncate_to(r[d], in.imm);
          break;  // to little endian (host)
        case kClsAlu | kSrcX | 0xd0:
          r[d] = swap_bytes(r[d], in.imm);
          break;  // to big endian

        // ---- JMP / JMP32
        case kClsJmp | 0x00:
          BPF_JUMP(std::int64_t{at} + 1 + in.off);
        case kClsJmp32 | 0x00:
          BPF_JUMP(std::int64_t{at} + 1 + in.imm);
          BPF_JMP64(0x10, jeq)
          BPF_JMP64(0x20, jgt)
          BPF_JMP64(0x30, jge)
          BPF_JMP64(0x40, jset)
          BPF_JMP64(0x50, jne)
          BPF_JMP64(0x60, jsgt)
          BPF_JMP64(0x70, jsge)
          BPF_JMP64(0xa0, jlt)
          BPF_JMP64(0xb0, jle)
          BPF_JMP64(0xc0, jslt)
          BPF_JMP64(0xd0, jsle)

        case kClsJmp | 0x80:  // call
          if (s == 0) {
            helper = in.imm;
            state = State::kInHelper;
            BPF_STOP(Stop::kHelperCall);
          }
          if (s != kPseudoCall) {
            BPF_STOP(set_fault(FaultKind::kBadCall, at, 0,
                               fmt::format("unsupported call kind src={} imm={} (kfunc calls are "
                                           "not patched)",
                                           s, in.imm)));
          }
          if (!push_frame(at, std::int64_t{at} + 1 + in.imm, at + 1)) BPF_STOP(Stop::kFault);
          at = pc;
          goto next;
        case kClsJmp | kSrcX | 0x80: {  // callx: target in dst
          // A callback address (bpf_func_address) enters that subprogram; any other value is a
          // helper id, which is how the conformance suite's runtimes read it.
          const std::uint64_t target = r[d];
          if (bpf_is_func_address(target)) {
            if (!push_frame(at, bpf_func_pc(target), at + 1)) BPF_STOP(Stop::kFault);
            at = pc;
            goto next;
          }
          if (target > static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max())) {
            BPF_STOP(set_fault(FaultKind::kBadCall, at, 0,
                               fmt::format("callx r{} = {:#x} is neither a helper id nor a "
                                           "subprogram address",
                                           d, target)));
          }
          helper = static_cast<std::int32_t>(target);
          state = State::kInHelper;
          BPF_STOP(Stop::kHelperCall);
        }
        case kClsJmp | 0x90: {  // exit
          if (depth <= 1) {
            state = State::kExited;
            BPF_STOP(Stop::kExit);
          }
          --depth;
          const Frame& f = frames[depth];
          if (f.callback) {
            for (unsigned i = 1; i <= 10; ++i)
              r[i] = f.saved[i];
            frame_host = stacks[depth - 1].get();
            helper = f.helper_id;
            at = f.return_pc;
            state = State::kInHelper;
            BPF_STOP(Stop::kExit);
          }
          for (unsigned i = 6; i <= 10; ++i)
            r[i] = f.saved[i];
          frame_host = stacks[depth - 1].get();
          at = f.return_pc;
          goto next;
        }

        // ---- loads and stores
#define BPF_LDX(size)                                 \
  case kClsLdx | kModeMem | (size): {                 \
    const std::uint64_t addr = r[s] + sext32(in.off); \
    BPF_MEM(p, addr, size_of(size), false);           \
    r[d] = load_sized(p, size_of(size));              \
    break;                                            \
  }
          BPF_LDX(kSizeB)
          BPF_LDX(kSizeH)
          BPF_LDX(kSizeW)
          BPF_LDX(kSizeDw)
#undef BPF_LDX
#define BPF_FP(size)                                                              \
  case kClsLdx | kModeFp | (size):                                                \
    r[d] = load_sized(frame_host + kStackSize + in.off, size_of(size));           \
    break;                                                                        \
  case kClsSt | kModeFp | (size):                                                 \
    store_sized(frame_host + kStackSize + in.off, size_of(size), sext32(in.imm)); \
    break;                                                                        \
  case kClsStx | kModeFp | (size):                                                \
    store_sized(frame_host + kStackSize + in.off, size_of(size), r[s]);           \
    break;
          BPF_FP(kSizeB)
          BPF_FP(kSizeH)
          BPF_FP(kSizeW)
          BPF_FP(kSizeDw)
#undef BPF_FP
        case kClsLdx | kModeMemSx | kSizeB: {
          const std::uint64_t addr = r[s] + sext32(in.off);
          BPF_MEM(p, addr, 1, false);
          r[d] = static_cast<std::uint64_t>(std::int64_t{static_cast<std::int8_t>(*p)});
          break;
        }
        case kClsLdx | kModeMemSx | kSizeH: {
          const std::uint64_t addr = r[s] + sext32(in.off);
          BPF_MEM(p, addr, 2, false);
          r[d] = static_cast<std::uint64_t>(std::int64_t{load_as<std::int16_t>(p)});
          break;
        }
        case kClsLdx | kModeMemSx | kSizeW: {
          const std::uint64_t addr = r[s] + sext32(in.off);
          BPF_MEM(p, addr, 4, false);
          r[d] = static_cast<std::uint64_t>(std::int64_t{load_as<std::int32_t>(p)});
          break;
        }
#define BPF_ST(size)                                  \
  case kClsSt | kModeMem | (size): {                  \
    const std::uint64_t addr = r[d] + sext32(in.off); \
    BPF_MEM(p, addr, size_of(size), true);            \
    store_sized(p, size_of(size), sext32(in.imm));    \
    break;                                            \
  }                                                   \
  case kClsStx | kModeMem | (size): {                 \
    const std::uint64_t addr = r[d] + sext32(in.off); \
    BPF_MEM(p, addr, size_of(size), true);            \
    store_sized(p, size_of(size), r[s]);              \
    break;                                            \
  }
          BPF_ST(kSizeB)
          BPF_ST(kSizeH)
          BPF_ST(kSizeW)
          BPF_ST(kSizeDw)
#undef BPF_ST

        case kClsLd | kModeImm | kSizeDw: {
          if (at + 1 >= n) [[unlikely]] {
            BPF_STOP(set_fault(FaultKind::kBadInstruction, at, 0,
                               "ld_imm64 without its second half at the end of the program"));
          }
          // Pseudo forms (src != 0) were patched by the loader: the immediate is final.
          r[d] = std::uint64_t{static_cast<std::uint32_t>(in.imm)} |
                 (std::uint64_t{static_cast<std::uint32_t>(prog[at + 1].imm)} << 32);
          at += 2;
          goto next;
        }

        // ---- atomics (single-threaded host: the CPU interleaving is the simulator's business)
        case kClsStx | kModeAtomic | kSizeW:
        case kClsStx | kModeAtomic | kSizeDw:
        case kClsStx | kModeAtomic | kSizeH:
        case kClsStx | kModeAtomic | kSizeB: {
          const std::uint32_t size = size_of(in.code);
          if (in.imm == kLoadAcquire) {
            const std::uint64_t addr = r[s] + sext32(in.off);
            BPF_MEM(p, addr, size, false);
            r[d] = load_sized(p, size);
            break;
          }
          const std::uint64_t addr = r[d] + sext32(in.off);
          BPF_MEM(p, addr, size, true);
          if (in.imm == kStoreRelease) {
            store_sized(p, size, r[s]);
            break;
          }
          const std::uint64_t old = load_sized(p, size);
          const std::uint64_t val = r[s];
          std::uint64_t result = old;
          switch (in.imm & ~kAtomicFetch) {
            case kAtomicAdd:
              result = old + val;
              break;
            case kAtomicOr:
              result = old | val;
              break;
            case kAtomicAnd:
              result = old & val;
              break;
            case kAtomicXor:
              result = old ^ val;
              break;
            default:
              break;
          }
          if (in.imm == kAtomicXchg) {
            result = val;
          } else if (in.imm == kAtomicCmpxchg) {
            const std::uint64_t expected = size == 4 ? static_cast<std::uint32_t>(r[0]) : r[0];
            result = old == expected ? val : old;
            r[0] = old;
            store_sized(p, size, result);
            break;
          }
          store_sized(p, size, result);
          if (in.imm & kAtomicFetch) r[s] = old;
          break;
        }

        default:
          BPF_STOP(fault_invalid(at));
      }
    }
    ++at;
  next:;
    frame = frame_host;
#if BPF_VM_THREADED
    BPF_DISPATCH();
#endif
  }
#undef BPF_DISPATCH
#undef BPF_DECODE
#undef BPF_STOP
#undef BPF_MEM
#undef BPF_JUMP
#undef BPF_GOTO
#undef BPF_COND
#undef BPF_JMP64
}
#if BPF_VM_THREADED
#pragma GCC diagnostic pop
#endif

BpfVm::BpfVm(const BpfProgramImage& image, AddressSpace& space, std::uint64_t insn_budget)
    : BpfVm(prepare(image), space, insn_budget) {}

BpfVm::BpfVm(std::shared_ptr<const Code> code, AddressSpace& space, std::uint64_t insn_budget)
    : impl_(std::make_unique<Impl>(std::move(code), space, insn_budget)) {}

BpfVm::~BpfVm() = default;

void BpfVm::start(std::uint32_t entry_pc, std::array<std::uint64_t, 5> args) {
  Impl& m = *impl_;
  m.regs.fill(0);
  for (unsigned i = 0; i < 5; ++i)
    m.regs[i + 1] = args[i];
  m.regs[kFp] = m.enter_frame(0);
  m.depth = 1;
  m.helper = 0;
  m.left = m.budget;
  m.pc = entry_pc;
  m.state = Impl::State::kReady;
  if (entry_pc >= m.n) {
    m.set_fault(FaultKind::kBadCall, entry_pc, 0,
                fmt::format("entry point {} outside the program (0..{})", entry_pc, m.n - 1));
  }
}

void BpfVm::start_callback(std::uint32_t entry_pc, std::array<std::uint64_t, 5> args) {
  Impl& m = *impl_;
  if (m.state != Impl::State::kInHelper) vm_bug("start_callback() outside a helper call");
  const std::uint32_t at = m.pc;
  if (entry_pc >= m.n) {
    m.set_fault(FaultKind::kBadCall, at, 0,
                fmt::format("callback entry {} outside the program (0..{})", entry_pc, m.n - 1));
    return;
  }
  if (m.depth >= kMaxCallDepth) {
    m.set_fault(FaultKind::kBadCall, at, 0,
                fmt::format("callback nesting exceeds {} frames", kMaxCallDepth));
    return;
  }
  Impl::Frame& f = m.frames[m.depth];
  f.callback = true;
  f.return_pc = at;
  f.helper_id = m.helper;
  for (unsigned i = 1; i <= 10; ++i)
    f.saved[i] = m.regs[i];
  for (unsigned i = 0; i < 5; ++i)
    m.regs[i + 1] = args[i];
  m.regs[kFp] = m.enter_frame(m.depth);
  ++m.depth;
  m.pc = entry_pc;
  m.state = Impl::State::kReady;
}

BpfVm::Stop BpfVm::run() {
  return impl_->run();
}

void BpfVm::complete_helper(std::uint64_t r0) {
  Impl& m = *impl_;
  if (m.state != Impl::State::kInHelper) vm_bug("complete_helper() without a pending helper call");
  m.regs[0] = r0;
  ++m.pc;
  m.state = Impl::State::kReady;
}

std::int32_t BpfVm::helper_id() const {
  return impl_->helper;
}

std::uint64_t BpfVm::arg(unsigned i) const {
  if (i < 1 || i > 5) vm_bug("arg(i) needs i in 1..5");
  return impl_->regs[i];
}

std::uint64_t BpfVm::r0() const {
  return impl_->regs[0];
}
std::uint32_t BpfVm::pc() const {
  return impl_->pc;
}
const Fault& BpfVm::fault() const {
  return impl_->fault;
}
std::uint64_t BpfVm::executed_total() const {
  return impl_->executed;
}

std::uint64_t BpfVm::take_executed() {
  const std::uint64_t since = impl_->executed - impl_->executed_mark;
  impl_->executed_mark = impl_->executed;
  return since;
}

}  // namespace bpftsim::model
