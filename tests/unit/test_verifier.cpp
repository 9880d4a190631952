// The verifier's timer and spin-lock rules (model/verifier.h, kernel/bpf/verifier.c v5.15): each
// rule refuses its verifier_* / selftest-mirroring object at load with the program, the
// instruction (pc and function) and the rule's name, while the accepted counterparts and every
// other program of the repository load. The pcs asserted are found in the compiled instructions
// (the call or exit the rule is about), not written down.
#include <catch2/catch.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "model/bpf_compile.h"
#include "model/bpf_object.h"
#include "model/errno.h"
#include "model/kernel.h"
#include "model/libbpf_loader.h"
#include "model/uapi.h"
#include "model/verifier.h"
#include "tests/unit/bpf_asm.h"
#include "tests/unit/tool_harness.h"
#include "tests/unit/world.h"

using namespace bpftsim;
using namespace bpftsim::testing;

namespace {

std::string prog_path(const std::string& stem) {
  return std::string(BPFTSIM_PROGS_DIR) + "/" + stem + ".bpf.o";
}

model::ObjectSpec open_spec(const std::string& path) {
  auto r = model::load_bpf_object(path);
  if (auto* e = std::get_if<model::LoadError>(&r)) FAIL(e->message);
  return std::get<model::ObjectSpec>(std::move(r));
}

const model::ProgSpec& prog_of(const model::ObjectSpec& s, const std::string& name) {
  const model::ProgSpec* p = s.find_prog(name);
  REQUIRE(p != nullptr);
  return *p;
}

// The pcs of `p` holding a helper call to `helper` (src_reg 0, imm = id).
std::vector<std::uint32_t> helper_calls(const model::ProgSpec& p, std::int32_t helper) {
  std::vector<std::uint32_t> out;
  for (std::size_t i = 0; i < p.insns.size(); ++i)
    if (p.insns[i].code == (BPF_JMP | BPF_CALL) && p.insns[i].src() == 0 &&
        p.insns[i].imm == helper)
      out.push_back(static_cast<std::uint32_t>(i));
  return out;
}

bool is_code(const model::ProgSpec& p, std::uint32_t pc, std::uint8_t code) {
  return pc < p.insns.size() && p.insns[pc].code == code;
}

// bpf_object_load into a fresh World: the LoadError's message, or "" when it loaded.
std::string load_error(const model::ObjectSpec& spec, const model::BpfObjectOptions& opts = {}) {
  World w;
  auto r = model::bpf_object_load(w.k, w.proc, spec, opts);
  if (auto* e = std::get_if<model::LoadError>(&r)) {
    CHECK(w.k.maps().empty());  // refused before anything was created
    return e->message;
  }
  return "";
}

// The message's head: program, instruction, its function and (BTF line info) source line, rule.
std::string expected_head(const model::ProgSpec& p, const model::VerifierError& e) {
  const model::SourceLine* l = p.source_at(e.pc);
  REQUIRE(l != nullptr);  // every object here is built with -g
  return fmt::format("program '{}' insn {} (in {}, {}:{}): rule {}: ", p.name, e.pc, e.func,
                     l->file, l->line, e.rule);
}

}  // namespace

TEST_CASE("timer_mim_reject: bpf_timer_init given another lookup's inner map is refused",
          "[verifier]") {
  const model::ObjectSpec spec = open_spec(prog_path("timer_mim_reject"));
  const model::ProgSpec& p = prog_of(spec, "test1");
  const auto e = model::verify_prog(spec, p);
  REQUIRE(e);
  CHECK(e->rule == "timer_map_uid");
  CHECK(e->func == "test1");
  CHECK(helper_calls(p, model::kHelperTimerInit) == std::vector<std::uint32_t>{e->pc});
  // Both sides are inner maps of outer_arr, from two different lookups.
  CHECK_THAT(e->detail, Catch::Contains("inner map of 'outer_arr' looked up at insn"));
  const std::string msg = load_error(spec);
  CHECK_THAT(msg, Catch::Contains(spec.path +
                                  ": section 'fentry/bpf_fentry_test1': " + expected_head(p, *e) +
                                  "bpf_timer_init's map is not the map "
                                  "that holds the timer"));
  // The source line named is the call's.
  const model::SourceLine* line = p.source_at(e->pc);
  REQUIRE(line != nullptr);
  CHECK(line->file == "timer_mim_reject.bpf.c");
  CHECK_THAT(line->text, Catch::Contains("bpf_timer_init"));
}

TEST_CASE("timer_mim (one lookup's inner map for both) loads", "[verifier]") {
  const model::ObjectSpec spec = open_spec(prog_path("timer_mim"));
  CHECK_FALSE(model::verify_prog(spec, prog_of(spec, "test1")));
  CHECK(load_error(spec).empty());
}

TEST_CASE("timer_failure: a callback returning bpf_get_prandom_u32() on a path is refused",
          "[verifier]") {
  const model::ObjectSpec spec = open_spec(prog_path("timer_failure"));
  const model::ProgSpec& p = prog_of(spec, "test_bad_ret");
  const auto e = model::verify_prog(spec, p);
  REQUIRE(e);
  CHECK(e->rule == "timer_callback_ret");
  CHECK(e->func == "timer_cb_ret_bad");
  CHECK(is_code(p, e->pc, BPF_JMP | BPF_EXIT));
  CHECK_THAT(e->detail, Catch::Contains("should have been in [0, 0]"));
  CHECK_THAT(load_error(spec), Catch::Contains(expected_head(p, *e)));
}

TEST_CASE("timer callbacks of the repository's programs return 0 and load", "[verifier]") {
  for (const char* stem : {"timer_seed", "timer_mim", "race_mutual_cancel", "timer_errors"}) {
    INFO(stem);
    const model::ObjectSpec spec = open_spec(prog_path(stem));
    CHECK(load_error(spec).empty());
  }
}

TEST_CASE("spin lock: a helper call while holding the lock is refused, loads and stores are not",
          "[verifier]") {
  const model::ObjectSpec spec = open_spec(prog_path("verifier_lock_call"));
  CHECK_FALSE(model::verify_prog(spec, prog_of(spec, "ok_locked")));
  const model::ProgSpec& p = prog_of(spec, "bad_locked");
  const auto e = model::verify_prog(spec, p);
  REQUIRE(e);
  CHECK(e->rule == "spin_lock_call");
  CHECK(helper_calls(p, model::kHelperKtimeGetNs) == std::vector<std::uint32_t>{e->pc});
  CHECK_THAT(e->detail, Catch::Contains("bpf_ktime_get_ns"));
  CHECK_THAT(load_error(spec), Catch::Contains(expected_head(p, *e)));
}

TEST_CASE("spin lock: a bpf-to-bpf call while holding the lock is refused", "[verifier]") {
  const model::ObjectSpec spec = open_spec(prog_path("verifier_lock_subprog"));
  const model::ProgSpec& p = prog_of(spec, "bad_subprog");
  const auto e = model::verify_prog(spec, p);
  REQUIRE(e);
  CHECK(e->rule == "spin_lock_call");
  REQUIRE(e->pc < p.insns.size());
  CHECK(p.insns[e->pc].code == (BPF_JMP | BPF_CALL));
  CHECK(p.insns[e->pc].src() == BPF_PSEUDO_CALL);
  CHECK_THAT(e->detail, Catch::Contains("bpf-to-bpf call to bump"));
}

// "bpf: Allow calling static subprogs while holding a bpf_spin_lock" (v6.9): check_func_call
// refuses only global subprograms under the lock; do_check walks a static one with the lock held,
// so a helper call inside it is still refused, at the helper's pc.
TEST_CASE("spin lock: from v6.9 a static subprogram may be called under the lock, a global not",
          "[verifier][eras]") {
  model::VerifierOptions v69;
  v69.static_subprog_calls_under_lock = true;
  const model::ObjectSpec ok = open_spec(prog_path("verifier_lock_subprog"));
  CHECK_FALSE(model::verify_prog(ok, prog_of(ok, "bad_subprog"), v69));
  CHECK(model::verify_prog(ok, prog_of(ok, "bad_subprog")));  // v5.15..v6.8

  const model::ObjectSpec spec = open_spec(prog_path("verifier_lock_global_subprog"));
  const model::ProgSpec& g = prog_of(spec, "bad_global");
  const auto ge = model::verify_prog(spec, g, v69);
  REQUIRE(ge);
  CHECK(ge->rule == "spin_lock_call");
  REQUIRE(ge->pc < g.insns.size());
  CHECK(g.insns[ge->pc].src() == BPF_PSEUDO_CALL);
  CHECK_THAT(ge->detail, Catch::Contains("global function bump_global"));

  const model::ProgSpec& sh = prog_of(spec, "bad_static_helper");
  const auto se = model::verify_prog(spec, sh, v69);
  REQUIRE(se);
  CHECK(se->rule == "spin_lock_call");
  CHECK(se->func == "stamp");
  CHECK(helper_calls(sh, model::kHelperKtimeGetNs) == std::vector<std::uint32_t>{se->pc});
  // Before v6.9 the call itself (in the entry function) is what is refused.
  const auto old = model::verify_prog(spec, sh);
  REQUIRE(old);
  CHECK(old->func == "bad_static_helper");
  CHECK(sh.insns[old->pc].src() == BPF_PSEUDO_CALL);
}

TEST_CASE("spin lock: an exit while holding the lock is refused", "[verifier]") {
  const model::ObjectSpec spec = open_spec(prog_path("verifier_lock_exit"));
  const model::ProgSpec& p = prog_of(spec, "bad_exit");
  const auto e = model::verify_prog(spec, p);
  REQUIRE(e);
  CHECK(e->rule == "spin_lock_exit");
  CHECK(e->func == "bad_exit");
  CHECK(is_code(p, e->pc, BPF_JMP | BPF_EXIT));
  CHECK_THAT(load_error(spec), Catch::Contains(expected_head(p, *e)));
}

TEST_CASE("timer helpers: arg1 off the bpf_timer, or bpf_timer_init given another map",
          "[verifier]") {
  {
    const model::ObjectSpec spec = open_spec(prog_path("verifier_timer_offset"));
    const model::ProgSpec& p = prog_of(spec, "bad_offset");
    const auto e = model::verify_prog(spec, p);
    REQUIRE(e);
    CHECK(e->rule == "timer_arg");
    CHECK(helper_calls(p, model::kHelperTimerInit) == std::vector<std::uint32_t>{e->pc});
    CHECK_THAT(e->detail, Catch::Contains("offset 0 of a value of map 'timers'"));
    CHECK_THAT(e->detail, Catch::Contains("bpf_timer is at 8"));
  }
  {
    const model::ObjectSpec spec = open_spec(prog_path("verifier_timer_wrong_map"));
    const model::ProgSpec& p = prog_of(spec, "bad_map");
    const auto e = model::verify_prog(spec, p);
    REQUIRE(e);
    CHECK(e->rule == "timer_map_uid");
    CHECK(helper_calls(p, model::kHelperTimerInit) == std::vector<std::uint32_t>{e->pc});
    CHECK_THAT(e->detail, Catch::Contains("map 'timers'"));
    CHECK_THAT(e->detail, Catch::Contains("map 'locked'"));
  }
}

TEST_CASE("a bpf_timer in a per-CPU array is refused at map creation (-EOPNOTSUPP)", "[verifier]") {
  const model::ObjectSpec spec = open_spec(prog_path("verifier_timer_percpu"));
  const std::string msg = load_error(spec);
  CHECK_THAT(msg, Catch::Contains("map 'pcpu': rule timer_map_type"));
  CHECK_THAT(msg, Catch::Contains("EOPNOTSUPP"));
}

TEST_CASE("timer_map_type agrees with Kernel::create_map, and covers inner map templates",
          "[verifier]") {
  // Per-CPU hash/array/lru (5, 6, 10), map-in-map outers, and the three that may hold a timer.
  for (const std::uint32_t type :
       {model::kBpfMapTypeHash, model::kBpfMapTypeArray, model::kBpfMapTypeLruHash, 5u, 6u, 10u,
        model::kBpfMapTypeArrayOfMaps, model::kBpfMapTypeHashOfMaps}) {
    CAPTURE(type);
    World w;
    const bool created = w.map(type, 4, 16, 0) != nullptr;
    CHECK(model::map_type_holds_timer(type) == created);
    model::MapSpec m;
    m.name = "m";
    m.type = type;
    m.timer_off = 0;
    CHECK(model::check_map_timer_type(m).has_value() == !created);
    // The same value as a map-in-map's inner template: libbpf creates the template first.
    model::MapSpec outer;
    outer.name = "outer";
    outer.type = model::kBpfMapTypeArrayOfMaps;
    m.name = "outer.inner";
    outer.inner.push_back(m);
    const auto why = model::check_map_timer_type(outer);
    CHECK(why.has_value() == !created);
    if (why) CHECK_THAT(*why, Catch::Contains("rule timer_map_type: its inner map 'outer.inner'"));
  }
}

TEST_CASE("tracing programs: timer maps refused only with the v5.16 switch, spin locks always",
          "[verifier]") {
  const model::ObjectSpec spec = open_spec(prog_path("verifier_tracing_timer"));
  const model::ProgSpec& p = prog_of(spec, "on_hrtimer_start");
  CHECK_FALSE(model::verify_prog(spec, p));  // v5.15
  CHECK(load_error(spec).empty());
  model::BpfObjectOptions v516;
  v516.verifier.tracing_progs_no_timer = true;
  const auto e = model::verify_prog(spec, p, v516.verifier);
  REQUIRE(e);
  CHECK(e->rule == "tracing_timer");
  // The instruction is the ld_imm64 of the timer map.
  const auto timers = spec.find_map("timers");
  REQUIRE(timers);
  bool at_reloc = false;
  for (const model::LdImm64Reloc& r : p.relocs)
    at_reloc = at_reloc || (r.insn_idx == e->pc && r.map_idx == *timers);
  CHECK(at_reloc);
  CHECK_THAT(load_error(spec, v516), Catch::Contains(expected_head(p, *e)));
  // fentry programs are BPF_PROG_TYPE_TRACING, which the restriction does not cover.
  const model::ObjectSpec seed = open_spec(prog_path("timer_seed"));
  CHECK(load_error(seed, v516).empty());

  const model::ObjectSpec lock = open_spec(prog_path("verifier_tracing_lock"));
  const model::ProgSpec& lp = prog_of(lock, "on_nanosleep");
  const auto le = model::verify_prog(lock, lp);
  REQUIRE(le);
  CHECK(le->rule == "tracing_spin_lock");
}

TEST_CASE("every other program of the repository loads", "[verifier]") {
  // Refused on purpose: one object per rule, and the selftest mirrors. Any other object that the
  // verifier refused would be a false refusal.
  const std::set<std::string> refused = {"timer_mim_reject",
                                         "timer_failure",
                                         "verifier_lock_call",
                                         "verifier_lock_subprog",
                                         "verifier_lock_exit",
                                         "verifier_timer_offset",
                                         "verifier_lock_global_subprog",
                                         "verifier_timer_wrong_map",
                                         "verifier_timer_percpu",
                                         "verifier_tracing_lock"};
  // With the v5.16 restriction on, the tracing-type programs using a timer map go too (the
  // interrupt-context programs of the scenarios are fentry programs, which keep timers; so does
  // race_tp_btf_hrtimer's tp_btf program): the rule's own object and the 2.1 race's tracepoint
  // program.
  std::set<std::string> expected_v516 = refused;
  expected_v516.insert("verifier_tracing_timer");
  expected_v516.insert("race_tracing_hrtimer");
  model::VerifierOptions v516;
  v516.tracing_progs_no_timer = true;
  std::set<std::string> seen_v516;
  std::set<std::string> seen_refused;
  std::size_t loaded = 0;
  for (const auto& entry : std::filesystem::directory_iterator(BPFTSIM_PROGS_DIR)) {
    const std::string name = entry.path().filename().string();
    if (name.size() < 6 || name.substr(name.size() - 6) != ".bpf.o") continue;
    const std::string stem = name.substr(0, name.size() - 6);
    INFO(stem);
    auto r = model::load_bpf_object(entry.path().string());
    if (std::holds_alternative<model::LoadError>(r)) continue;  // refused by the loader itself
    const auto& spec = std::get<model::ObjectSpec>(r);
    if (model::bpf_object_check(spec)) continue;  // e.g. an unimplemented helper
    const auto err = model::bpf_object_verify(spec);
    if (model::bpf_object_verify(spec, v516)) seen_v516.insert(stem);
    if (refused.count(stem)) {
      CHECK(err);
      seen_refused.insert(stem);
    } else {
      if (err) FAIL_CHECK(err->message);
      ++loaded;
    }
  }
  CHECK(seen_refused == refused);
  CHECK(seen_v516 == expected_v516);
  CHECK(loaded >= 20);
  // tests/data programs.
  for (const char* stem : {"spin_rearm"}) {
    INFO(stem);
    auto r =
        model::load_bpf_input(std::string(BPFTSIM_SOURCE_DIR) + "/tests/data/" + stem + ".bpf.c");
    REQUIRE(std::holds_alternative<model::ObjectSpec>(r));
    CHECK_FALSE(model::bpf_object_verify(std::get<model::ObjectSpec>(r)));
  }
}

namespace {

// A hand-assembled program: `main` arms a timer of map 0 (an ARRAY, timer at 0) with the
// callback `cb`, whose body is `cb_src`.
model::ObjectSpec asm_object(const std::string& cb_src) {
  const std::vector<model::BpfInsn> main_insns = assemble(R"(
    lddw %r1, 0
    mov %r2, %r10
    add %r2, -8
    stdw [%r10-8], 0
    call 1
    jeq %r0, 0, out
    mov %r1, %r0
    lddw %r2, 0
    call 170
  out:
    mov %r0, 0
    exit
  )");
  const std::vector<model::BpfInsn> cb_insns = assemble(cb_src);
  model::ObjectSpec spec;
  spec.path = "asm.o";
  model::MapSpec m;
  m.name = "m";
  m.type = model::kBpfMapTypeArray;
  m.key_size = 4;
  m.value_size = 16;
  m.max_entries = 1;
  m.timer_off = 0;
  spec.maps.push_back(m);
  model::ProgSpec p;
  p.name = "main";
  p.section = "syscall";
  p.insns = main_insns;
  p.insns.insert(p.insns.end(), cb_insns.begin(), cb_insns.end());
  const auto cb_pc = static_cast<std::uint32_t>(main_insns.size());
  p.functions = {{0, "main"}, {cb_pc, "cb"}};
  std::vector<std::uint32_t> lddw;
  for (std::uint32_t i = 0; i < main_insns.size(); ++i)
    if (main_insns[i].code == (BPF_LD | BPF_IMM | BPF_DW)) lddw.push_back(i);
  REQUIRE(lddw.size() == 2);
  model::LdImm64Reloc map_reloc;
  map_reloc.insn_idx = lddw[0];
  map_reloc.kind = model::LdImm64Reloc::Kind::kMapAddr;
  p.relocs.push_back(map_reloc);
  model::LdImm64Reloc func_reloc;
  func_reloc.insn_idx = lddw[1];
  func_reloc.kind = model::LdImm64Reloc::Kind::kFunc;
  func_reloc.target_pc = cb_pc;
  p.relocs.push_back(func_reloc);
  p.callbacks = {cb_pc};
  spec.progs.push_back(p);
  return spec;
}

std::optional<std::string> rule_of(const model::ObjectSpec& s) {
  const auto e = model::verify_prog(s, s.progs.front());
  if (!e) return std::nullopt;
  return e->rule;
}

}  // namespace

TEST_CASE("callback return: branches on the helper's result refine it as the kernel does",
          "[verifier]") {
  // r0 == 0 on the fall-through of "if r0 != 0": provably 0.
  CHECK_FALSE(rule_of(asm_object(R"(
    call 7
    jne %r0, 0, other
    exit
  other:
    mov %r0, 0
    exit
  )")));
  // r0 in [0, 5] after "if r0 > 5": the kernel cannot prove 0 either.
  CHECK(rule_of(asm_object(R"(
    call 7
    jgt %r0, 5, other
    exit
  other:
    mov %r0, 0
    exit
  )")) == "timer_callback_ret");
  // A constant other than 0.
  CHECK(rule_of(asm_object(R"(
    mov %r0, 1
    exit
  )")) == "timer_callback_ret");
  // Bit operations the kernel tracks more precisely than this analysis (tnums): not refused.
  CHECK_FALSE(rule_of(asm_object(R"(
    call 7
    and %r0, 240
    and %r0, 15
    exit
  )")));
  // A subprogram's result is unknown to the analysis: not refused (documented limitation).
  CHECK_FALSE(rule_of(asm_object(R"(
    mov %r0, 0
    exit
  )")));
}

TEST_CASE("timer_map_uid follows map pointers spilled to the stack", "[verifier]") {
  model::ObjectSpec spec = asm_object("mov %r0, 0\nexit\n");
  model::MapSpec other = spec.maps.front();
  other.name = "other";
  spec.maps.push_back(other);
  // main2: the value of map 0's element, a map pointer spilled and filled back, bpf_timer_init.
  const std::vector<model::BpfInsn> insns = assemble(R"(
    lddw %r1, 0
    stxdw [%r10-16], %r1
    mov %r2, %r10
    add %r2, -8
    stdw [%r10-8], 0
    call 1
    jeq %r0, 0, out
    mov %r1, %r0
    ldxdw %r2, [%r10-16]
    mov %r3, 1
    call 169
  out:
    mov %r0, 0
    exit
  )");
  model::ProgSpec p;
  p.name = "main2";
  p.section = "syscall";
  p.insns = insns;
  p.functions = {{0, "main2"}};
  model::LdImm64Reloc r;
  r.insn_idx = 0;
  r.kind = model::LdImm64Reloc::Kind::kMapAddr;
  p.relocs.push_back(r);
  const model::ProgSpec same = p;
  CHECK_FALSE(model::verify_prog(spec, same));
  p.relocs.front().map_idx = 1;  // the spilled pointer is now `other`'s... and so is the value
  CHECK_FALSE(model::verify_prog(spec, p));
  // A second ld_imm64 for the spilled map: value from map 0, map pointer from map 1.
  model::ProgSpec mixed = same;
  mixed.insns = assemble(R"(
    lddw %r6, 0
    stxdw [%r10-16], %r6
    lddw %r1, 0
    mov %r2, %r10
    add %r2, -8
    stdw [%r10-8], 0
    call 1
    jeq %r0, 0, out
    mov %r1, %r0
    ldxdw %r2, [%r10-16]
    mov %r3, 1
    call 169
  out:
    mov %r0, 0
    exit
  )");
  mixed.relocs.clear();
  model::LdImm64Reloc r1;
  r1.insn_idx = 0;
  r1.map_idx = 1;
  mixed.relocs.push_back(r1);
  model::LdImm64Reloc r2;
  r2.insn_idx = 3;
  r2.map_idx = 0;
  mixed.relocs.push_back(r2);
  const auto e = model::verify_prog(spec, mixed);
  REQUIRE(e);
  CHECK(e->rule == "timer_map_uid");
  CHECK(e->pc == 13);
}

TEST_CASE("bpftsim run of a scenario whose object the verifier refuses exits 2", "[verifier]") {
  TempDir dir;
  dir.file("reject.json", R"({
  "name": "mim-reject", "description": "timer_mim_reject must not load", "cpus": 1,
  "objects": [{"name": "t", "path": ")" +
                              std::string(BPFTSIM_SOURCE_DIR) +
                              R"(/scenarios/progs/timer_mim_reject.bpf.c"}],
  "timeline": [{"at_ns": 10, "action": "exit"}], "expect": {}
})");
  const Cmd cmd = run_tool("run reject.json", dir.path);
  INFO(cmd.out);
  CHECK(cmd.code == 2);
  CHECK_THAT(cmd.out, Catch::Contains("reject.json"));
  CHECK_THAT(cmd.out, Catch::Contains("program 'test1' insn"));
  CHECK_THAT(cmd.out, Catch::Contains("(in test1, timer_mim_reject.bpf.c:") &&
                          Catch::Contains("): rule timer_map_uid"));
}

TEST_CASE("arbitrary instruction streams: the verifier ends, names a real pc and a known rule",
          "[verifier]") {
  // A splitmix64 sequence (fixed seed): opcodes from every class, registers past r10, offsets
  // and immediates large and small, ld_imm64 relocations to maps, map-in-maps and functions.
  std::uint64_t x = 0x5eed;
  auto next = [&x]() {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  static const std::uint8_t kCodes[] = {
      0x07, 0x0f, 0x17, 0x1f, 0x27, 0x37, 0x47, 0x57, 0x67, 0x77, 0x87, 0x97, 0xa7, 0xb7, 0xbf,
      0xc7, 0xd7, 0x04, 0x0c, 0x14, 0x24, 0x34, 0x54, 0x64, 0x74, 0x84, 0x94, 0xa4, 0xb4, 0xbc,
      0xc4, 0xd4, 0xdc, 0x18, 0x61, 0x69, 0x71, 0x79, 0x81, 0x89, 0x91, 0x62, 0x6a, 0x72, 0x7a,
      0x63, 0x6b, 0x73, 0x7b, 0xc3, 0xdb, 0x05, 0x06, 0x15, 0x1d, 0x25, 0x2d, 0x35, 0x3d, 0x45,
      0x4d, 0x55, 0x5d, 0x65, 0x6d, 0x75, 0x7d, 0xa5, 0xad, 0xb5, 0xbd, 0xc5, 0xcd, 0xd5, 0xdd,
      0x16, 0x1e, 0x26, 0x56, 0xa6, 0x85, 0x95, 0x20, 0x40, 0x00, 0xff};
  static const std::int32_t kHelpers[] = {1, 2, 3, 5, 7, 93, 94, 169, 170, 171, 172, 181, 14};
  static const std::set<std::string> kRules = {
      "timer_arg",      "timer_map_uid",  "timer_callback_ret",
      "spin_lock_call", "spin_lock_exit", "spin_unlock_unheld",
      "timer_map_type", "tracing_timer",  "tracing_spin_lock"};
  model::ObjectSpec spec = asm_object("mov %r0, 0\nexit\n");
  model::MapSpec outer;
  outer.name = "outer";
  outer.type = model::kBpfMapTypeArrayOfMaps;
  outer.inner.push_back(spec.maps.front());
  spec.maps.push_back(outer);
  std::size_t refused = 0;
  for (int round = 0; round < 3000; ++round) {
    model::ProgSpec p;
    p.name = "r";
    p.section = (round % 3 == 0) ? "kprobe/x" : "syscall";
    const std::size_t n = 1 + next() % 48;
    for (std::size_t i = 0; i < n; ++i) {
      model::BpfInsn in;
      in.code = kCodes[next() % std::size(kCodes)];
      in.regs =
          static_cast<std::uint8_t>(next() % 4 == 0 ? next() : next() % 11 | (next() % 11) << 4);
      in.off = static_cast<std::int16_t>(next() % 3 == 0 ? next() : next() % 16 - 8);
      in.imm = static_cast<std::int32_t>(next() % 3 == 0 ? next() : next() % 32 - 16);
      if (in.code == 0x85) {
        in.regs = static_cast<std::uint8_t>((next() % 3) << 4);
        if (in.src() == 0) in.imm = kHelpers[next() % std::size(kHelpers)];
      }
      p.insns.push_back(in);
    }
    p.functions = {{0, "r"}};
    if (n > 8 && next() % 2) p.functions.push_back({static_cast<std::uint32_t>(n / 2), "g"});
    for (std::uint32_t i = 0; i + 1 < n; ++i) {
      if (p.insns[i].code != 0x18 || next() % 4 == 0) continue;
      model::LdImm64Reloc r;
      r.insn_idx = i;
      r.kind = static_cast<model::LdImm64Reloc::Kind>(next() % 3);
      r.map_idx = static_cast<std::uint32_t>(next() % 3);  // 2 is past the maps
      r.offset = static_cast<std::uint32_t>(next() % 24);
      r.target_pc = p.functions.back().first;
      p.relocs.push_back(r);
      ++i;
    }
    model::VerifierOptions opts;
    opts.tracing_progs_no_timer = round % 2 == 0;
    opts.max_steps_per_root = 5000;
    const auto e = model::verify_prog(spec, p, opts);
    const auto again = model::verify_prog(spec, p, opts);
    REQUIRE(e.has_value() == again.has_value());
    if (!e) continue;
    ++refused;
    INFO(e->message(p));
    CHECK(e->pc < p.insns.size());
    CHECK(kRules.count(e->rule) == 1);
    CHECK_FALSE(e->func.empty());
    CHECK(again->message(p) == e->message(p));
  }
  CHECK(refused > 0);  // the streams reach the rules, not only early path ends
}

TEST_CASE("spin_unlock_unheld, and timer helpers given a stack pointer", "[verifier]") {
  model::ObjectSpec spec = asm_object("mov %r0, 0\nexit\n");
  spec.maps.front().spin_lock_off = 0;
  spec.maps.front().timer_off = 8;
  spec.maps.front().value_size = 24;
  auto one = [&spec](const std::string& src) {
    model::ProgSpec p;
    p.name = "p";
    p.section = "syscall";
    p.insns = assemble(src);
    p.functions = {{0, "p"}};
    model::LdImm64Reloc r;
    r.insn_idx = 0;
    p.relocs.push_back(r);
    return model::verify_prog(spec, p);
  };
  const std::string lookup = R"(
    lddw %r1, 0
    mov %r2, %r10
    add %r2, -8
    stdw [%r10-8], 0
    call 1
    jeq %r0, 0, out
  )";
  // The lock is taken on one path only (r6 is the helper's result), released on both.
  const auto unheld = one(lookup + R"(
    mov %r7, %r0
    call 7
    mov %r6, %r0
    jeq %r6, 0, skip
    mov %r1, %r7
    call 93
  skip:
    mov %r1, %r7
    call 94
  out:
    mov %r0, 0
    exit
  )");
  REQUIRE(unheld);
  CHECK(unheld->rule == "spin_unlock_unheld");
  CHECK(unheld->pc == 14);
  // Taken and released on the same condition: the kernel follows r6 and so does the analysis.
  CHECK_FALSE(one(lookup + R"(
    mov %r7, %r0
    call 7
    mov %r6, %r0
    jeq %r6, 0, out
    mov %r1, %r7
    call 93
    jeq %r6, 0, out
    mov %r1, %r7
    call 94
  out:
    mov %r0, 0
    exit
  )"));
  // A stack pointer as the timer.
  const auto stack = one(lookup + R"(
    mov %r1, %r10
    add %r1, -24
    call 172
  out:
    mov %r0, 0
    exit
  )");
  REQUIRE(stack);
  CHECK(stack->rule == "timer_arg");
  CHECK_THAT(stack->detail, Catch::Contains("bpf_timer_cancel's timer (R1) is a stack pointer"));
  // The value at the timer's offset is accepted.
  CHECK_FALSE(one(lookup + R"(
    mov %r1, %r0
    add %r1, 8
    call 172
  out:
    mov %r0, 0
    exit
  )"));
}

TEST_CASE("callback return: a .rodata constant is known, as bpf_map_direct_read makes it",
          "[verifier]") {
  for (const std::uint8_t v : {std::uint8_t{0}, std::uint8_t{3}}) {
    CAPTURE(int{v});
    model::ObjectSpec spec = asm_object("lddw %r1, 0\nldxw %r0, [%r1+4]\nexit\n");
    model::MapSpec ro;
    ro.name = ".rodata";
    ro.origin = model::MapOrigin::kRodata;
    ro.type = model::kBpfMapTypeArray;
    ro.key_size = 4;
    ro.value_size = 8;
    ro.max_entries = 1;
    ro.initial_data = {0, 0, 0, 0, v, 0, 0, 0};
    spec.maps.push_back(ro);
    model::ProgSpec& p = spec.progs.front();
    model::LdImm64Reloc r;
    r.insn_idx = p.functions[1].first;
    r.kind = model::LdImm64Reloc::Kind::kMapValue;
    r.map_idx = 1;
    p.relocs.push_back(r);
    const auto e = model::verify_prog(spec, p);
    if (v == 0) {
      CHECK_FALSE(e);
    } else {
      REQUIRE(e);
      CHECK(e->rule == "timer_callback_ret");
      CHECK_THAT(e->detail, Catch::Contains("the scalar 3"));
    }
  }
}
