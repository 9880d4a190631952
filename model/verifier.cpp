#include "model/verifier.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <limits>
#include <map>
#include <set>
#include <vector>

#include "model/helpers.h"
#include "model/uapi.h"

namespace bpftsim::model {

namespace {

constexpr std::uint64_t kU64Max = std::numeric_limits<std::uint64_t>::max();
constexpr std::uint64_t kU32Max = std::numeric_limits<std::uint32_t>::max();
constexpr std::uint64_t kS64Max =
    static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
constexpr std::uint64_t kS32Max =
    static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max());
// Identical states kept per prune point (past it the point stops pruning; the step cap bounds).
constexpr std::size_t kMaxStatesPerPoint = 64;

// Instruction fields (include/uapi/linux/bpf_common.h, bpf.h).
constexpr std::uint8_t cls(std::uint8_t code) {
  return code & 0x07;
}
constexpr std::uint8_t op(std::uint8_t code) {
  return code & 0xf0;
}
constexpr std::uint8_t mode(std::uint8_t code) {
  return code & 0xe0;
}
constexpr bool src_x(std::uint8_t code) {
  return (code & 0x08) != 0;
}
std::uint32_t size_bytes(std::uint8_t code) {
  switch (code & 0x18) {
    case BPF_W:
      return 4;
    case BPF_H:
      return 2;
    case BPF_B:
      return 1;
    default:
      return 8;
  }
}

// A map as the kernel's verifier tells maps apart: a map of the object (lookup_pc < 0), or the
// inner map returned by the lookup of map-in-map `map` at instruction lookup_pc (its map_uid).
struct MapRef {
  std::int32_t map = -1;
  std::int32_t lookup_pc = -1;
  bool operator==(const MapRef&) const = default;
};

enum class Kind : std::uint8_t {
  kLost,      // the analysis does not know (nothing is refused about it)
  kScalar,    // a number in [umin, umax]
  kMapPtr,    // struct bpf_map * of `map`
  kMapValue,  // pointer into a value of `map`, at `off` when off_known
  kStack,     // pointer into the root's stack frame, at `off` from r10 when off_known
  kFunc,      // a subprogram's address, pc `off`
};

struct Reg {
  Kind kind = Kind::kLost;
  // Scalars: true when the kernel's verifier knows no more than [umin, umax] (a helper's
  // result, a load, a constant); false once an operation the kernel tracks more precisely
  // (bit patterns, signed bounds) touched it.
  bool exact = false;
  std::uint64_t umin = 0;
  std::uint64_t umax = kU64Max;
  MapRef map;
  bool off_known = false;
  std::int64_t off = 0;
  bool maybe_null = false;  // a lookup's result before its NULL check
  std::uint32_t id = 0;     // copies of one value share it (creating pc + 1); 0: none
  bool operator==(const Reg&) const = default;

  bool is_const() const { return kind == Kind::kScalar && umin == umax; }
  bool is_ptr() const {
    return kind == Kind::kMapPtr || kind == Kind::kMapValue || kind == Kind::kStack ||
           kind == Kind::kFunc;
  }
};

Reg lost() {
  return Reg{};
}
Reg scalar_const(std::uint64_t v) {
  Reg r;
  r.kind = Kind::kScalar;
  r.exact = true;
  r.umin = r.umax = v;
  return r;
}
Reg scalar_range(std::uint64_t lo, std::uint64_t hi, bool exact) {
  Reg r;
  r.kind = Kind::kScalar;
  r.exact = exact;
  r.umin = lo;
  r.umax = hi;
  return r;
}

struct State {
  std::array<Reg, 11> r{};
  std::map<std::int64_t, Reg> slots;  // 8-byte spills by offset from r10; absent: unknown
  bool lock = false;                  // a bpf_spin_lock is held
  bool tainted = false;  // a branch was taken that the kernel might have known to be dead
  bool operator==(const State&) const = default;
};

// A hash of everything State's operator== compares (equal states hash equally), so a pruning
// point compares a state in full only with the stored ones of the same hash.
std::uint64_t state_hash(const State& st) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  const auto mix = [&h](std::uint64_t v) {
    h ^= v;
    h *= 0x100000001b3ULL;
    h ^= h >> 29;
  };
  const auto mix_reg = [&mix](const Reg& r) {
    mix(static_cast<std::uint64_t>(r.kind) | (std::uint64_t{r.exact} << 8) |
        (std::uint64_t{r.off_known} << 9) | (std::uint64_t{r.maybe_null} << 10) |
        (std::uint64_t{r.id} << 32));
    mix(r.umin);
    mix(r.umax);
    mix(static_cast<std::uint32_t>(r.map.map) |
        (std::uint64_t{static_cast<std::uint32_t>(r.map.lookup_pc)} << 32));
    mix(static_cast<std::uint64_t>(r.off));
  };
  for (const Reg& r : st.r)
    mix_reg(r);
  for (const auto& [off, r] : st.slots) {
    mix(static_cast<std::uint64_t>(off));
    mix_reg(r);
  }
  mix(std::uint64_t{st.lock} | (std::uint64_t{st.tainted} << 1) | (st.slots.size() << 2));
  return h;
}

bool is_tracing_section(const std::string& s) {
  // libbpf's section names for BPF_PROG_TYPE_KPROBE, TRACEPOINT, PERF_EVENT, RAW_TRACEPOINT
  // (the verifier's is_tracing_prog_type; fentry/fexit/tp_btf are BPF_PROG_TYPE_TRACING).
  static const char* const kPrefixes[] = {
      "kprobe/",      "kretprobe/",      "uprobe/",          "uretprobe/", "ksyscall/",
      "kretsyscall/", "kprobe.multi/",   "kretprobe.multi/", "usdt/",      "tracepoint/",
      "tp/",          "raw_tracepoint/", "raw_tp/",
  };
  static const char* const kExact[] = {"kprobe",         "kretprobe",  "uprobe",
                                       "uretprobe",      "perf_event", "raw_tp",
                                       "raw_tracepoint", "tracepoint", "tp"};
  for (const char* e : kExact)
    if (s == e) return true;
  for (const char* p : kPrefixes)
    if (s.rfind(p, 0) == 0) return true;
  return false;
}

// Helpers whose pointer arguments are only read (so spilled values on the stack survive them).
bool helper_reads_only(std::int32_t id) {
  switch (id) {
    case kHelperMapLookupElem:
    case kHelperMapUpdateElem:
    case kHelperMapDeleteElem:
    case kHelperSpinLock:
    case kHelperSpinUnlock:
    case kHelperTimerInit:
    case kHelperTimerSetCallback:
    case kHelperTimerStart:
    case kHelperTimerCancel:
    case kHelperTracePrintk:
      return true;
    default:
      return false;
  }
}

// Helpers returning a plain integer (RET_INTEGER) the kernel knows nothing about.
bool helper_returns_scalar(std::int32_t id) {
  switch (id) {
    case kHelperMapUpdateElem:
    case kHelperMapDeleteElem:
    case kHelperKtimeGetNs:
    case kHelperTracePrintk:
    case kHelperGetPrandomU32:
    case kHelperGetSmpProcessorId:
    case kHelperKtimeGetBootNs:
    case kHelperTimerInit:
    case kHelperTimerSetCallback:
    case kHelperTimerStart:
    case kHelperTimerCancel:
    case kHelperLoop:
      return true;
    default:
      return false;
  }
}

bool is_timer_helper(std::int32_t id) {
  return id == kHelperTimerInit || id == kHelperTimerSetCallback || id == kHelperTimerStart ||
         id == kHelperTimerCancel;
}

// Constant folding of one ALU operation (BPF semantics: shifts masked, x/0 = 0, x%0 = x).
std::optional<std::uint64_t> fold(std::uint8_t alu_op, bool is64, std::uint64_t a,
                                  std::uint64_t b) {
  if (!is64) {
    a &= kU32Max;
    b &= kU32Max;
  }
  const unsigned mask = is64 ? 63 : 31;
  std::uint64_t v = 0;
  switch (alu_op) {
    case BPF_ADD:
      v = a + b;
      break;
    case BPF_SUB:
      v = a - b;
      break;
    case BPF_MUL:
      v = a * b;
      break;
    case BPF_DIV:
      v = b == 0 ? 0 : a / b;
      break;
    case BPF_MOD:
      v = b == 0 ? a : a % b;
      break;
    case BPF_OR:
      v = a | b;
      break;
    case BPF_AND:
      v = a & b;
      break;
    case BPF_XOR:
      v = a ^ b;
      break;
    case BPF_LSH:
      v = a << (b & mask);
      break;
    case BPF_RSH:
      v = a >> (b & mask);
      break;
    case BPF_ARSH:
      if (is64) {
        v = static_cast<std::uint64_t>(static_cast<std::int64_t>(a) >> (b & mask));
      } else {
        v = static_cast<std::uint32_t>(static_cast<std::int32_t>(static_cast<std::uint32_t>(a)) >>
                                       (b & mask));
      }
      break;
    case BPF_NEG:
      v = 0 - a;
      break;
    default:
      return std::nullopt;
  }
  return is64 ? v : (v & kU32Max);
}

// Pointer offsets: two's-complement addition, and the range within which they are followed (a
// larger one is an unknown offset, so that offset sums never overflow).
std::int64_t wrap_add(std::int64_t a, std::uint64_t b) {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(a) + b);
}
bool offset_sane(std::int64_t off) {
  constexpr std::int64_t kLimit = std::int64_t{1} << 40;
  return off > -kLimit && off < kLimit;
}

enum class Outcome : std::uint8_t { kTrue, kFalse, kUnknown };

// a OP c for a scalar range a and a constant c (unsigned comparisons and equality).
Outcome decide_range(std::uint8_t jop, std::uint64_t lo, std::uint64_t hi, std::uint64_t c) {
  switch (jop) {
    case BPF_JEQ:
      if (lo == hi && lo == c) return Outcome::kTrue;
      if (c < lo || c > hi) return Outcome::kFalse;
      return Outcome::kUnknown;
    case BPF_JNE:
      if (lo == hi && lo == c) return Outcome::kFalse;
      if (c < lo || c > hi) return Outcome::kTrue;
      return Outcome::kUnknown;
    case BPF_JGT:
      if (lo > c) return Outcome::kTrue;
      if (hi <= c) return Outcome::kFalse;
      return Outcome::kUnknown;
    case BPF_JGE:
      if (lo >= c) return Outcome::kTrue;
      if (hi < c) return Outcome::kFalse;
      return Outcome::kUnknown;
    case BPF_JLT:
      if (hi < c) return Outcome::kTrue;
      if (lo >= c) return Outcome::kFalse;
      return Outcome::kUnknown;
    case BPF_JLE:
      if (hi <= c) return Outcome::kTrue;
      if (lo > c) return Outcome::kFalse;
      return Outcome::kUnknown;
    default:
      return Outcome::kUnknown;
  }
}

// The range of `lo..hi` where `x OP c` holds (taken) or not; nullopt when empty.
std::optional<std::pair<std::uint64_t, std::uint64_t>> refine_range(std::uint8_t jop, bool taken,
                                                                    std::uint64_t lo,
                                                                    std::uint64_t hi,
                                                                    std::uint64_t c) {
  // Turn "not taken" into the complementary operation.
  if (!taken) {
    switch (jop) {
      case BPF_JEQ:
        jop = BPF_JNE;
        break;
      case BPF_JNE:
        jop = BPF_JEQ;
        break;
      case BPF_JGT:
        jop = BPF_JLE;
        break;
      case BPF_JGE:
        jop = BPF_JLT;
        break;
      case BPF_JLT:
        jop = BPF_JGE;
        break;
      case BPF_JLE:
        jop = BPF_JGT;
        break;
      default:
        return std::make_pair(lo, hi);
    }
  }
  switch (jop) {
    case BPF_JEQ:
      lo = hi = c;
      break;
    case BPF_JNE:
      if (lo == c && lo != kU64Max) ++lo;
      if (hi == c && hi != 0) --hi;
      break;
    case BPF_JGT:
      if (c == kU64Max) return std::nullopt;
      lo = std::max(lo, c + 1);
      break;
    case BPF_JGE:
      lo = std::max(lo, c);
      break;
    case BPF_JLT:
      if (c == 0) return std::nullopt;
      hi = std::min(hi, c - 1);
      break;
    case BPF_JLE:
      hi = std::min(hi, c);
      break;
    default:
      break;
  }
  if (lo > hi) return std::nullopt;
  return std::make_pair(lo, hi);
}

std::uint8_t swap_cmp(std::uint8_t jop) {
  switch (jop) {
    case BPF_JGT:
      return BPF_JLT;
    case BPF_JGE:
      return BPF_JLE;
    case BPF_JLT:
      return BPF_JGT;
    case BPF_JLE:
      return BPF_JGE;
    case BPF_JSGT:
      return BPF_JSLT;
    case BPF_JSGE:
      return BPF_JSLE;
    case BPF_JSLT:
      return BPF_JSGT;
    case BPF_JSLE:
      return BPF_JSGE;
    default:
      return jop;
  }
}

std::uint8_t unsigned_cmp(std::uint8_t jop) {
  switch (jop) {
    case BPF_JSGT:
      return BPF_JGT;
    case BPF_JSGE:
      return BPF_JGE;
    case BPF_JSLT:
      return BPF_JLT;
    case BPF_JSLE:
      return BPF_JLE;
    default:
      return jop;
  }
}

bool is_signed_cmp(std::uint8_t jop) {
  return jop == BPF_JSGT || jop == BPF_JSGE || jop == BPF_JSLT || jop == BPF_JSLE;
}

class Analyzer {
 public:
  Analyzer(const ObjectSpec& spec, const ProgSpec& p, const VerifierOptions& opts)
      : spec_(spec), p_(p), opts_(opts) {
    for (const LdImm64Reloc& r : p.relocs)
      relocs_[r.insn_idx] = &r;
    prune_.assign(p.insns.size() + 1, false);
    for (std::size_t pc = 0; pc < p.insns.size(); ++pc) {
      const BpfInsn& in = p.insns[pc];
      const std::uint8_t c = cls(in.code);
      if (c != BPF_JMP && c != BPF_JMP32) continue;
      const std::uint8_t o = op(in.code);
      if (o == BPF_CALL || o == BPF_EXIT) continue;
      const std::int64_t delta = (c == BPF_JMP32 && o == BPF_JA) ? in.imm : in.off;
      const std::int64_t target = static_cast<std::int64_t>(pc) + 1 + delta;
      if (target >= 0 && target < static_cast<std::int64_t>(p.insns.size()))
        prune_[static_cast<std::size_t>(target)] = true;
      prune_[pc + 1] = true;
    }
  }

  std::optional<VerifierError> run() {
    if (auto e = check_map_uses()) return e;
    // Roots: every function; the async ones (targets of bpf_timer_set_callback on a path the
    // kernel walks) get the return-value rule, found by iterating to a fixpoint.
    // A root's walk depends only on (root, async), so a round walks again only the roots whose
    // async flag changed; what the others found is already in `async`.
    std::set<std::uint32_t> async;
    std::vector<int> walked_as(p_.functions.size(), -1);  // the async flag of the last walk
    for (std::size_t round = 0; round <= p_.functions.size(); ++round) {
      found_async_.clear();
      for (std::size_t f = 0; f < p_.functions.size(); ++f) {
        const bool is_async = async.count(p_.functions[f].first) != 0;
        if (walked_as[f] == static_cast<int>(is_async)) continue;
        walked_as[f] = static_cast<int>(is_async);
        analyze_root(f, is_async);
        if (err_) return err_;
      }
      const std::size_t before = async.size();
      async.insert(found_async_.begin(), found_async_.end());
      if (async.size() == before) break;
    }
    return std::nullopt;
  }

 private:
  // ---- check_map_prog_compatibility -------------------------------------------------------
  std::optional<VerifierError> check_map_uses() {
    if (!is_tracing_section(p_.section)) return std::nullopt;
    std::vector<const LdImm64Reloc*> rs;
    for (const LdImm64Reloc& r : p_.relocs)
      if (r.kind != LdImm64Reloc::Kind::kFunc && r.map_idx < spec_.maps.size()) rs.push_back(&r);
    std::sort(rs.begin(), rs.end(),
              [](const auto* a, const auto* b) { return a->insn_idx < b->insn_idx; });
    for (const LdImm64Reloc* r : rs) {
      const MapSpec& m = spec_.maps[r->map_idx];
      if (m.spin_lock_off >= 0)
        return make_error(r->insn_idx, "tracing_spin_lock",
                          fmt::format("a {} program uses map '{}', whose value holds a "
                                      "bpf_spin_lock (tracing progs cannot use bpf_spin_lock)",
                                      p_.section, m.name));
      if (opts_.tracing_progs_no_timer && m.timer_off >= 0)
        return make_error(r->insn_idx, "tracing_timer",
                          fmt::format("a {} program uses map '{}', whose value holds a bpf_timer "
                                      "(tracing progs cannot use bpf_timer, v5.16+)",
                                      p_.section, m.name));
    }
    return std::nullopt;
  }

  // ---- helpers ------------------------------------------------------------------------------
  VerifierError make_error(std::uint32_t pc, std::string rule, std::string detail) const {
    VerifierError e;
    e.rule = std::move(rule);
    e.pc = pc;
    e.func = func_of(pc);
    e.detail = std::move(detail);
    return e;
  }

  std::string func_of(std::uint32_t pc) const {
    std::string name = p_.name;
    for (const auto& [start, fname] : p_.functions)
      if (start <= pc) name = fname;
    return name;
  }

  void refuse(const State& st, std::uint32_t pc, const char* rule, std::string detail) {
    if (st.tainted || err_) return;
    err_ = make_error(pc, rule, std::move(detail));
  }

  const MapSpec* map_spec(const MapRef& m) const {
    if (m.map < 0 || static_cast<std::size_t>(m.map) >= spec_.maps.size()) return nullptr;
    const MapSpec& s = spec_.maps[static_cast<std::size_t>(m.map)];
    if (m.lookup_pc < 0) return &s;
    return s.inner.empty() ? nullptr : &s.inner.front();
  }

  std::string map_desc(const MapRef& m) const {
    const MapSpec* s = map_spec(m);
    if (!s) return "an unknown map";
    if (m.lookup_pc < 0) return fmt::format("map '{}'", s->name);
    return fmt::format("the inner map of '{}' looked up at insn {}",
                       spec_.maps[static_cast<std::size_t>(m.map)].name, m.lookup_pc);
  }

  static std::string reg_desc(const Reg& r) {
    switch (r.kind) {
      case Kind::kLost:
        return "unknown";
      case Kind::kScalar:
        if (r.umin == r.umax)
          return fmt::format("the scalar {}", static_cast<std::int64_t>(r.umin));
        return fmt::format("a scalar in [{}, {}]", r.umin, r.umax);
      case Kind::kMapPtr:
        return "a map pointer";
      case Kind::kMapValue:
        return "a map value pointer";
      case Kind::kStack:
        return "a stack pointer";
      case Kind::kFunc:
        return "a function address";
    }
    return "?";
  }

  // Gives `r` the identity of a value created at pc, dropping stale copies of an older one.
  static void fresh_id(State& st, Reg& r, std::uint32_t pc) {
    const std::uint32_t id = pc + 1;
    for (Reg& x : st.r)
      if (x.id == id) x.id = 0;
    for (auto& [o, x] : st.slots)
      if (x.id == id) x.id = 0;
    r.id = id;
  }

  template <class F>
  static void for_each_copy(State& st, const Reg& r, std::size_t regno, F&& f) {
    if (r.id == 0) {
      f(st.r[regno]);
      return;
    }
    const std::uint32_t id = r.id;
    for (Reg& x : st.r)
      if (x.id == id) f(x);
    for (auto& [o, x] : st.slots)
      if (x.id == id) f(x);
  }

  // ---- the walk -----------------------------------------------------------------------------
  void analyze_root(std::size_t f, bool async) {
    const std::uint32_t entry = p_.functions[f].first;
    const std::uint32_t end = f + 1 < p_.functions.size()
                                  ? p_.functions[f + 1].first
                                  : static_cast<std::uint32_t>(p_.insns.size());
    State init;
    init.r[10].kind = Kind::kStack;
    init.r[10].off_known = true;
    std::vector<std::pair<std::uint32_t, State>> work;
    work.emplace_back(entry, std::move(init));
    std::map<std::uint32_t, std::vector<std::pair<std::uint64_t, State>>> seen;  // (hash, state)
    std::uint64_t steps = 0;
    while (!work.empty() && !err_) {
      auto [pc, st] = std::move(work.back());
      work.pop_back();
      for (;;) {
        if (++steps > opts_.max_steps_per_root) return;  // give up: accept this root
        if (pc < entry || pc >= end || pc >= p_.insns.size()) break;
        if (prune_[pc]) {
          auto& v = seen[pc];
          const std::uint64_t h = state_hash(st);
          const State& cur = st;  // a structured binding: clang 14 cannot capture it
          const auto same = [&](const auto& e) { return e.first == h && e.second == cur; };
          if (std::find_if(v.begin(), v.end(), same) != v.end()) break;
          if (v.size() < kMaxStatesPerPoint) v.emplace_back(h, st);
        }
        std::optional<std::uint32_t> next = step(st, pc, async, work, entry);
        if (err_ || !next) break;
        pc = *next;
      }
    }
  }

  // Executes insn pc on st; returns the next pc, or nothing when the path ends. A second
  // successor of a conditional jump is pushed on `work`.
  std::optional<std::uint32_t> step(State& st, std::uint32_t pc, bool async,
                                    std::vector<std::pair<std::uint32_t, State>>& work,
                                    std::uint32_t entry) {
    const BpfInsn& in = p_.insns[pc];
    const std::uint8_t c = cls(in.code);
    if (in.dst() > 10 || in.src() > 10) return std::nullopt;
    switch (c) {
      case BPF_ALU:
      case BPF_ALU64:
        if (in.dst() == 10) return std::nullopt;
        alu(st, pc, in, c == BPF_ALU64);
        return pc + 1;
      case BPF_LD:
        if (in.code == (BPF_LD | BPF_IMM | BPF_DW)) {
          if (in.dst() == 10 || pc + 1 >= p_.insns.size()) return std::nullopt;
          st.r[in.dst()] = ld_imm64(pc);
          return pc + 2;
        }
        // LD_ABS / LD_IND: r0 gets packet data, r1-r5 are clobbered.
        for (int i = 0; i <= 5; ++i)
          st.r[static_cast<std::size_t>(i)] = lost();
        return pc + 1;
      case BPF_LDX:
        if (in.dst() == 10) return std::nullopt;
        ldx(st, pc, in);
        return pc + 1;
      case BPF_ST:
      case BPF_STX:
        store(st, in, c == BPF_ST);
        return pc + 1;
      case BPF_JMP:
      case BPF_JMP32:
        return jump(st, pc, in, c == BPF_JMP32, async, work, entry);
      default:
        return std::nullopt;
    }
  }

  Reg ld_imm64(std::uint32_t pc) {
    auto it = relocs_.find(pc);
    if (it == relocs_.end()) {
      const BpfInsn& a = p_.insns[pc];
      const BpfInsn& b = p_.insns[pc + 1];
      if (a.src() != 0) return lost();
      return scalar_const(static_cast<std::uint32_t>(a.imm) |
                          (std::uint64_t{static_cast<std::uint32_t>(b.imm)} << 32));
    }
    const LdImm64Reloc& r = *it->second;
    Reg v;
    switch (r.kind) {
      case LdImm64Reloc::Kind::kMapAddr:
        v.kind = Kind::kMapPtr;
        v.map.map = static_cast<std::int32_t>(r.map_idx);
        break;
      case LdImm64Reloc::Kind::kMapValue:
        v.kind = Kind::kMapValue;
        v.map.map = static_cast<std::int32_t>(r.map_idx);
        v.off_known = true;
        v.off = r.offset;
        break;
      case LdImm64Reloc::Kind::kFunc:
        v.kind = Kind::kFunc;
        v.off_known = true;
        v.off = r.target_pc;
        break;
    }
    return v;
  }

  void alu(State& st, std::uint32_t pc, const BpfInsn& in, bool is64) {
    Reg& dst = st.r[in.dst()];
    const std::uint8_t o = op(in.code);
    Reg src;
    if (src_x(in.code)) {
      src = st.r[in.src()];
    } else {
      src = scalar_const(is64 ? static_cast<std::uint64_t>(static_cast<std::int64_t>(in.imm))
                              : static_cast<std::uint32_t>(in.imm));
    }
    if (o == BPF_END) {
      dst = lost();
      return;
    }
    if (o == BPF_MOV) {
      if (in.off != 0) {  // movsx: sign extension of the low 8/16/32 bits
        if (src.is_const() && (in.off == 8 || in.off == 16 || in.off == 32)) {
          const unsigned sh = 64u - static_cast<unsigned>(in.off);
          auto v = static_cast<std::uint64_t>(static_cast<std::int64_t>(src.umin << sh) >> sh);
          dst = scalar_const(is64 ? v : (v & kU32Max));
        } else {
          dst = lost();
        }
        return;
      }
      if (is64) {
        dst = src;
        return;
      }
      if (src.is_const()) {
        dst = scalar_const(src.umin & kU32Max);
      } else if (src.kind == Kind::kScalar && src.umax <= kU32Max) {
        dst = src;
      } else if (src.kind == Kind::kLost) {
        dst = lost();
      } else {
        // Zero extension of the low half: the kernel knows no more than [0, U32_MAX] when it
        // knew nothing of the source; of a pointer or a partly known scalar it may know more.
        const bool exact =
            src.kind == Kind::kScalar && src.exact && src.umin == 0 && src.umax == kU64Max;
        dst = scalar_range(0, kU32Max, exact);
        fresh_id(st, dst, pc);
      }
      return;
    }
    const bool signed_divmod = (o == BPF_DIV || o == BPF_MOD) && in.off != 0;
    // Pointer arithmetic: a map value or stack pointer plus or minus a scalar.
    if (is64 && (o == BPF_ADD || o == BPF_SUB) &&
        (dst.kind == Kind::kMapValue || dst.kind == Kind::kStack) && src.kind == Kind::kScalar) {
      Reg r = dst;
      if (src.is_const() && r.off_known) {
        r.off = o == BPF_ADD ? wrap_add(r.off, src.umin) : wrap_add(r.off, 0 - src.umin);
        r.off_known = offset_sane(r.off);
      } else {
        r.off_known = false;
      }
      dst = r;
      fresh_id(st, dst, pc);
      return;
    }
    if (is64 && o == BPF_ADD && dst.kind == Kind::kScalar &&
        (src.kind == Kind::kMapValue || src.kind == Kind::kStack)) {
      Reg r = src;
      if (dst.is_const() && r.off_known) {
        r.off = wrap_add(r.off, dst.umin);
        r.off_known = offset_sane(r.off);
      } else {
        r.off_known = false;
      }
      dst = r;
      fresh_id(st, dst, pc);
      return;
    }
    if (dst.kind != Kind::kScalar || (o != BPF_NEG && src.kind != Kind::kScalar)) {
      dst = lost();
      return;
    }
    if (signed_divmod) {
      dst = lost();
      return;
    }
    if (dst.is_const() && (o == BPF_NEG || src.is_const())) {
      if (auto v = fold(o, is64, dst.umin, src.umin)) {
        dst = scalar_const(*v);
        return;
      }
      dst = lost();
      return;
    }
    // AND / MUL with zero is zero whatever the other side (the kernel knows it too).
    if ((o == BPF_AND || o == BPF_MUL) &&
        ((src.is_const() && src.umin == 0) || (dst.is_const() && dst.umin == 0))) {
      dst = scalar_const(0);
      return;
    }
    dst = scalar_range(0, is64 ? kU64Max : kU32Max, false);
    fresh_id(st, dst, pc);
  }

  void ldx(State& st, std::uint32_t pc, const BpfInsn& in) {
    const Reg base = st.r[in.src()];
    Reg& dst = st.r[in.dst()];
    const std::uint32_t size = size_bytes(in.code);
    const bool sx = mode(in.code) == 0x80;  // BPF_MEMSX (not in every uapi header)
    if (mode(in.code) != BPF_MEM && !sx) {
      dst = lost();
      return;
    }
    if (base.kind == Kind::kStack && base.off_known) {
      const std::int64_t addr = base.off + in.off;
      if (size == 8 && addr % 8 == 0) {
        auto it = st.slots.find(addr);
        dst = it == st.slots.end() ? lost() : it->second;
      } else {
        dst = lost();
      }
      return;
    }
    if (base.kind == Kind::kMapValue && !sx) {
      const MapSpec* m = map_spec(base.map);
      if (m && m->origin == MapOrigin::kRodata) {
        // .rodata is frozen by libbpf, and the kernel reads a constant-offset load from a
        // frozen read-only map (bpf_map_direct_read): the value is known.
        const std::int64_t at =
            base.off_known ? wrap_add(base.off, static_cast<std::uint64_t>(std::int64_t{in.off}))
                           : -1;
        if (at >= 0 && static_cast<std::uint64_t>(at) + size <= m->initial_data.size()) {
          std::uint64_t v = 0;
          for (std::uint32_t i = 0; i < size; ++i)
            v |= std::uint64_t{m->initial_data[static_cast<std::size_t>(at) + i]} << (8 * i);
          dst = scalar_const(v);
        } else {
          dst = lost();
        }
        return;
      }
      dst = scalar_range(0, size == 8 ? kU64Max : (std::uint64_t{1} << (size * 8)) - 1, true);
      fresh_id(st, dst, pc);
      return;
    }
    dst = lost();
  }

  static void forget_overlapping(State& st, std::int64_t addr, std::uint32_t size) {
    for (auto it = st.slots.begin(); it != st.slots.end();) {
      if (it->first < addr + static_cast<std::int64_t>(size) && it->first + 8 > addr)
        it = st.slots.erase(it);
      else
        ++it;
    }
  }

  void store(State& st, const BpfInsn& in, bool imm) {
    const Reg base = st.r[in.dst()];
    const std::uint32_t size = size_bytes(in.code);
    const bool atomic = mode(in.code) == BPF_ATOMIC;
    if (atomic) {
      if (in.imm & BPF_FETCH) st.r[in.src()] = lost();
      if (in.imm == BPF_CMPXCHG) st.r[0] = lost();
    }
    if (base.kind == Kind::kStack && base.off_known) {
      const std::int64_t addr = base.off + in.off;
      if (!atomic && mode(in.code) == BPF_MEM && size == 8 && addr % 8 == 0) {
        st.slots[addr] =
            imm ? scalar_const(static_cast<std::uint64_t>(static_cast<std::int64_t>(in.imm)))
                : st.r[in.src()];
      } else {
        forget_overlapping(st, addr, size);
      }
      return;
    }
    if (base.kind == Kind::kLost || base.kind == Kind::kStack) st.slots.clear();
  }

  // ---- jumps, calls, exits ------------------------------------------------------------------
  std::optional<std::uint32_t> jump(State& st, std::uint32_t pc, const BpfInsn& in, bool is32,
                                    bool async, std::vector<std::pair<std::uint32_t, State>>& work,
                                    std::uint32_t entry) {
    const std::uint8_t o = op(in.code);
    if (o == BPF_JA) {
      const std::int64_t delta = is32 ? in.imm : in.off;
      const std::int64_t t = static_cast<std::int64_t>(pc) + 1 + delta;
      if (t < 0) return std::nullopt;
      return static_cast<std::uint32_t>(t);
    }
    if (o == BPF_CALL) {
      if (is32) return std::nullopt;
      call(st, pc, in);
      return pc + 1;
    }
    if (o == BPF_EXIT) {
      if (is32) return std::nullopt;
      exit(st, pc, async, entry);
      return std::nullopt;
    }
    const std::int64_t t = static_cast<std::int64_t>(pc) + 1 + in.off;
    if (t < 0) return std::nullopt;
    const auto target = static_cast<std::uint32_t>(t);
    const std::size_t dreg = in.dst();
    const Reg a = st.r[dreg];
    Reg b;
    std::size_t sreg = 11;
    if (src_x(in.code)) {
      sreg = in.src();
      b = st.r[sreg];
    } else {
      b = scalar_const(static_cast<std::uint64_t>(static_cast<std::int64_t>(in.imm)));
    }

    // Pointer vs NULL.
    const bool eq_op = o == BPF_JEQ || o == BPF_JNE;
    if (eq_op && b.is_const() && b.umin == 0 && a.is_ptr()) {
      if (!a.maybe_null) return (o == BPF_JNE) ? target : pc + 1;
      // Both ways: NULL on one side, non-NULL on the other (mark_ptr_or_null_regs).
      State null_st = st;
      for_each_copy(null_st, a, dreg, [](Reg& x) { x = scalar_const(0); });
      for_each_copy(st, a, dreg, [](Reg& x) { x.maybe_null = false; });
      if (o == BPF_JEQ) {
        work.emplace_back(target, std::move(null_st));
        return pc + 1;
      }
      work.emplace_back(pc + 1, std::move(null_st));
      return target;
    }

    // Scalars: reduce to "reg OP const".
    std::size_t reg = dreg;
    Reg x = a;
    std::uint8_t jop = o;
    std::optional<std::uint64_t> cst;
    if (a.kind == Kind::kScalar && b.is_const()) {
      cst = b.umin;
    } else if (b.kind == Kind::kScalar && a.is_const() && sreg < 11) {
      cst = a.umin;
      reg = sreg;
      x = b;
      jop = swap_cmp(o);
    }
    Outcome out = Outcome::kUnknown;
    if (cst && x.kind == Kind::kScalar) {
      std::uint64_t c = *cst;
      const std::uint64_t lo = x.umin;
      const std::uint64_t hi = x.umax;
      const bool sgn = is_signed_cmp(jop);
      bool usable = true;  // "x OP c" is an unsigned test of the 64-bit range against c
      if (lo == hi) {
        usable = false;
        out = const_outcome(jop, lo, c, is32);
      } else if (jop == BPF_JSET) {
        usable = false;
        if ((c & (is32 ? kU32Max : kU64Max)) == 0) out = Outcome::kFalse;
      } else if (is32) {
        // Only when the range fits the low 32 bits, so that the 32-bit test is the 64-bit one.
        c &= kU32Max;
        if (hi > (sgn ? kS32Max : kU32Max) || (sgn && c > kS32Max)) usable = false;
      } else if (sgn && (hi > kS64Max || c > kS64Max)) {
        usable = false;
      }
      if (usable) {
        const std::uint8_t uop = unsigned_cmp(jop);
        out = decide_range(uop, lo, hi, c);
        const bool precise = x.exact;  // the kernel's bounds are ours
        if (out == Outcome::kUnknown) {
          auto taken = refine_range(uop, true, lo, hi, c);
          auto fall = refine_range(uop, false, lo, hi, c);
          State tst = st;
          if (taken)
            for_each_copy(tst, x, reg, [&](Reg& y) {
              if (y.kind == Kind::kScalar) {
                y.umin = taken->first;
                y.umax = taken->second;
              }
            });
          if (fall)
            for_each_copy(st, x, reg, [&](Reg& y) {
              if (y.kind == Kind::kScalar) {
                y.umin = fall->first;
                y.umax = fall->second;
              }
            });
          if (!precise) {
            tst.tainted = true;
            st.tainted = true;
          }
          if (!taken) return pc + 1;
          if (!fall) {
            st = std::move(tst);
            return target;
          }
          work.emplace_back(target, std::move(tst));
          return pc + 1;
        }
      }
    }
    if (out == Outcome::kTrue) return target;
    if (out == Outcome::kFalse) return pc + 1;
    // Undecided and not refined: both ways, neither as precise as the kernel might be.
    State tst = st;
    tst.tainted = true;
    st.tainted = true;
    work.emplace_back(target, std::move(tst));
    return pc + 1;
  }

  // a OP c for two constants (JMP32: their low 32 bits).
  static Outcome const_outcome(std::uint8_t jop, std::uint64_t a, std::uint64_t c, bool is32) {
    if (is32) {
      a &= kU32Max;
      c &= kU32Max;
    }
    const auto sa = is32 ? std::int64_t{static_cast<std::int32_t>(static_cast<std::uint32_t>(a))}
                         : static_cast<std::int64_t>(a);
    const auto sc = is32 ? std::int64_t{static_cast<std::int32_t>(static_cast<std::uint32_t>(c))}
                         : static_cast<std::int64_t>(c);
    bool r = false;
    switch (jop) {
      case BPF_JEQ:
        r = a == c;
        break;
      case BPF_JNE:
        r = a != c;
        break;
      case BPF_JGT:
        r = a > c;
        break;
      case BPF_JGE:
        r = a >= c;
        break;
      case BPF_JLT:
        r = a < c;
        break;
      case BPF_JLE:
        r = a <= c;
        break;
      case BPF_JSET:
        r = (a & c) != 0;
        break;
      case BPF_JSGT:
        r = sa > sc;
        break;
      case BPF_JSGE:
        r = sa >= sc;
        break;
      case BPF_JSLT:
        r = sa < sc;
        break;
      case BPF_JSLE:
        r = sa <= sc;
        break;
      default:
        return Outcome::kUnknown;
    }
    return r ? Outcome::kTrue : Outcome::kFalse;
  }

  bool is_global_function(std::uint32_t entry) const {
    return std::binary_search(p_.global_functions.begin(), p_.global_functions.end(), entry);
  }

  std::uint32_t function_end(std::uint32_t entry) const {
    for (const auto& [start, fname] : p_.functions)
      if (start > entry) return start;
    return static_cast<std::uint32_t>(p_.insns.size());
  }

  // check_func_call under a bpf_spin_lock from v6.9: a global subprogram is refused (the kernel
  // does not walk it, so what it does with the lock is unknown); a static one is walked with the
  // lock held. Here that walk is a scan of the callee and of the static subprograms it calls, in
  // instruction order: a helper other than the lock's, a kfunc or a global call is refused at its
  // own pc (as the kernel's walk would, for code it reaches); a bpf_spin_lock / bpf_spin_unlock
  // in them leaves the lock state unknown, so the path is tainted (nothing more reported on it).
  void locked_subprog_call(State& st, std::uint32_t pc, const BpfInsn& in) {
    const std::int64_t t = static_cast<std::int64_t>(pc) + 1 + in.imm;
    if (t < 0 || t >= static_cast<std::int64_t>(p_.insns.size())) {
      st.tainted = true;
      return;
    }
    const auto target = static_cast<std::uint32_t>(t);
    if (is_global_function(target)) {
      refuse(st, pc, "spin_lock_call",
             fmt::format("a bpf-to-bpf call to global function {} while holding a bpf_spin_lock "
                         "(global function calls are not allowed while holding a lock, use "
                         "static function instead)",
                         func_of(target)));
      return;
    }
    std::vector<std::uint32_t> todo{target};
    std::set<std::uint32_t> seen{target};
    while (!todo.empty()) {
      const std::uint32_t f = todo.back();
      todo.pop_back();
      const std::uint32_t end = function_end(f);
      for (std::uint32_t q = f; q < end; ++q) {
        const BpfInsn& c = p_.insns[q];
        if (c.code != (BPF_JMP | BPF_CALL)) continue;
        if (c.src() == BPF_PSEUDO_CALL) {
          const std::int64_t t2 = static_cast<std::int64_t>(q) + 1 + c.imm;
          if (t2 < 0 || t2 >= static_cast<std::int64_t>(p_.insns.size())) {
            st.tainted = true;
            return;
          }
          const auto callee = static_cast<std::uint32_t>(t2);
          if (is_global_function(callee)) {
            refuse(st, q, "spin_lock_call",
                   fmt::format("a bpf-to-bpf call to global function {} while holding a "
                               "bpf_spin_lock (taken before the call at insn {})",
                               func_of(callee), pc));
            return;
          }
          if (seen.insert(callee).second) todo.push_back(callee);
          continue;
        }
        if (c.src() == BPF_PSEUDO_KFUNC_CALL) {
          refuse(st, q, "spin_lock_call",
                 fmt::format("a kfunc while holding a bpf_spin_lock (taken before the call to "
                             "{} at insn {})",
                             func_of(f), pc));
          return;
        }
        if (c.imm == kHelperSpinUnlock || c.imm == kHelperSpinLock) {
          st.tainted = true;
          return;
        }
        refuse(st, q, "spin_lock_call",
               fmt::format("{} called while holding a bpf_spin_lock (in static function {}, "
                           "called under the lock at insn {})",
                           helpers::helper_name(c.imm), func_of(f), pc));
        return;
      }
    }
  }

  void call(State& st, std::uint32_t pc, const BpfInsn& in) {
    const bool pseudo = in.src() == BPF_PSEUDO_CALL || in.src() == BPF_PSEUDO_KFUNC_CALL;
    bool stack_arg = false;
    for (std::size_t i = 1; i <= 5; ++i)
      stack_arg = stack_arg || st.r[i].kind == Kind::kStack || st.r[i].kind == Kind::kLost;
    if (pseudo) {
      if (st.lock && in.src() == BPF_PSEUDO_CALL && opts_.static_subprog_calls_under_lock) {
        locked_subprog_call(st, pc, in);
        if (err_) return;
      } else if (st.lock) {
        std::string what = "a kfunc";
        if (in.src() == BPF_PSEUDO_CALL) {
          const std::int64_t t = static_cast<std::int64_t>(pc) + 1 + in.imm;
          what = fmt::format("a bpf-to-bpf call to {}",
                             t >= 0 ? func_of(static_cast<std::uint32_t>(t)) : "?");
        }
        refuse(st, pc, "spin_lock_call",
               fmt::format("{} while holding a bpf_spin_lock (function calls are not allowed "
                           "while holding a lock)",
                           what));
        return;
      }
      // The callee may write through stack pointers it is given and returns an unknown r0.
      if (stack_arg) st.slots.clear();
      for (std::size_t i = 0; i <= 5; ++i)
        st.r[i] = lost();
      return;
    }
    const std::int32_t id = in.imm;
    const std::string name = helpers::helper_name(id);
    if (st.lock && id != kHelperSpinUnlock) {
      refuse(st, pc, "spin_lock_call",
             fmt::format("{} called while holding a bpf_spin_lock (function calls are not allowed "
                         "while holding a lock)",
                         name));
      return;
    }
    Reg r0;
    switch (id) {
      case kHelperMapLookupElem: {
        const Reg& m = st.r[1];
        if (m.kind != Kind::kMapPtr) break;
        const MapSpec* s = map_spec(m.map);
        if (!s) break;
        if (!s->inner.empty()) {
          if (m.map.lookup_pc >= 0) break;  // nested map-in-map: not followed
          r0.kind = Kind::kMapPtr;
          r0.map = MapRef{m.map.map, static_cast<std::int32_t>(pc)};
        } else {
          r0.kind = Kind::kMapValue;
          r0.map = m.map;
          r0.off_known = true;
        }
        r0.maybe_null = true;
        break;
      }
      case kHelperSpinLock:
        st.lock = true;
        break;
      case kHelperSpinUnlock:
        if (!st.lock) {
          refuse(st, pc, "spin_unlock_unheld", "bpf_spin_unlock without a bpf_spin_lock held");
          return;
        }
        st.lock = false;
        break;
      default:
        break;
    }
    if (is_timer_helper(id)) {
      check_timer_arg(st, pc, name);
      if (err_) return;
      if (id == kHelperTimerInit) {
        check_timer_init_map(st, pc);
        if (err_) return;
      }
      if (id == kHelperTimerSetCallback && st.r[2].kind == Kind::kFunc && !st.tainted)
        found_async_.insert(static_cast<std::uint32_t>(st.r[2].off));
    }
    if (helper_returns_scalar(id)) r0 = scalar_range(0, kU64Max, true);
    if (stack_arg && !helper_reads_only(id)) st.slots.clear();
    for (std::size_t i = 1; i <= 5; ++i)
      st.r[i] = lost();
    st.r[0] = r0;
    if (r0.kind != Kind::kLost) fresh_id(st, st.r[0], pc);
  }

  void check_timer_arg(const State& st, std::uint32_t pc, const std::string& name) {
    const Reg& r1 = st.r[1];
    switch (r1.kind) {
      case Kind::kLost:
        return;
      case Kind::kMapValue: {
        const MapSpec* s = map_spec(r1.map);
        if (!s || !r1.off_known) return;
        if (s->timer_off < 0) {
          refuse(st, pc, "timer_arg",
                 fmt::format("{}'s timer (R1) points into a value of {}, which holds no "
                             "bpf_timer",
                             name, map_desc(r1.map)));
        } else if (r1.off != s->timer_off) {
          refuse(st, pc, "timer_arg",
                 fmt::format("{}'s timer (R1) is at offset {} of a value of {}; its struct "
                             "bpf_timer is at {}",
                             name, r1.off, map_desc(r1.map), s->timer_off));
        }
        return;
      }
      default:
        refuse(st, pc, "timer_arg",
               fmt::format("{}'s timer (R1) is {}, not a pointer to a map value's bpf_timer", name,
                           reg_desc(r1)));
        return;
    }
  }

  void check_timer_init_map(const State& st, std::uint32_t pc) {
    const Reg& r1 = st.r[1];
    const Reg& r2 = st.r[2];
    if (r2.kind == Kind::kLost) return;
    if (r2.kind != Kind::kMapPtr) {
      refuse(st, pc, "timer_arg",
             fmt::format("bpf_timer_init's map (R2) is {}, not a map pointer", reg_desc(r2)));
      return;
    }
    if (r1.kind != Kind::kMapValue || !map_spec(r1.map) || !map_spec(r2.map)) return;
    if (r1.map == r2.map) return;
    refuse(st, pc, "timer_map_uid",
           fmt::format("bpf_timer_init's map is not the map that holds the timer: the timer (R1) "
                       "is in a value of {}, the map (R2) is {}",
                       map_desc(r1.map), map_desc(r2.map)));
  }

  void exit(const State& st, std::uint32_t pc, bool async, std::uint32_t entry) {
    if (st.lock) {
      refuse(st, pc, "spin_lock_exit",
             "exit while holding a bpf_spin_lock (bpf_spin_unlock is missing)");
      return;
    }
    if (!async) return;
    const Reg& r0 = st.r[0];
    bool bad = false;
    if (r0.kind == Kind::kScalar)
      bad = r0.umin > 0 || (r0.exact && r0.umax != 0);
    else
      bad = r0.is_ptr();
    if (bad)
      refuse(st, pc, "timer_callback_ret",
             fmt::format("the bpf_timer callback {} may return {} (R0); an async callback must "
                         "return 0 (should have been in [0, 0])",
                         func_of(entry), reg_desc(r0)));
  }

  const ObjectSpec& spec_;
  const ProgSpec& p_;
  const VerifierOptions& opts_;
  std::map<std::uint32_t, const LdImm64Reloc*> relocs_;
  std::vector<bool> prune_;
  std::set<std::uint32_t> found_async_;
  std::optional<VerifierError> err_;
};

}  // namespace

std::string VerifierError::message(const ProgSpec& p) const {
  std::string where = fmt::format("insn {} (in {}", pc, func);
  if (const SourceLine* l = p.source_at(pc)) where += fmt::format(", {}:{}", l->file, l->line);
  where += ")";
  return fmt::format("program '{}' {}: rule {}: {}", p.name, where, rule, detail);
}

bool map_type_holds_timer(std::uint32_t type) {
  return type == kBpfMapTypeHash || type == kBpfMapTypeLruHash || type == kBpfMapTypeArray;
}

std::optional<std::string> check_map_timer_type(const MapSpec& m) {
  for (const MapSpec& inner : m.inner) {
    if (inner.timer_off >= 0 && !map_type_holds_timer(inner.type))
      return fmt::format(
          "rule timer_map_type: its inner map '{}' ({}) holds a bpf_timer, which only hash, "
          "lru_hash and array values may: BPF_MAP_CREATE of the inner map fails with -95 "
          "(EOPNOTSUPP)",
          inner.name, map_type_name(inner.type));
  }
  if (m.timer_off >= 0 && !map_type_holds_timer(m.type))
    return fmt::format(
        "rule timer_map_type: a bpf_timer in a {} value (only hash, lru_hash and array values "
        "may hold one): BPF_MAP_CREATE fails with -95 (EOPNOTSUPP)",
        map_type_name(m.type));
  return std::nullopt;
}

std::optional<VerifierError> verify_prog(const ObjectSpec& spec, const ProgSpec& p,
                                         const VerifierOptions& opts) {
  if (p.insns.empty() || p.functions.empty()) return std::nullopt;
  Analyzer a(spec, p, opts);
  return a.run();
}

}  // namespace bpftsim::model
