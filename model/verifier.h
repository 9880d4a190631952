// Verifier: the timer and spin-lock rules of the kernel's program verifier, checked when an object
// is loaded. Mirrors kernel/bpf/verifier.c (v5.15, plus the v5.16 tracing restriction behind a
// switch): process_timer_func and check_func_arg's ARG_CONST_MAP_PTR map_uid comparison (timer
// helpers), check_return_code's async-callback range (timer callbacks return 0),
// process_spin_lock and do_check's BPF_CALL / BPF_EXIT checks under an active spin lock,
// check_map_prog_compatibility (tracing programs and timers / spin locks), and syscall.c's
// map_check_btf (which map types may hold a bpf_timer).
//
// It is not the kernel's verifier: it proves no memory safety, bounds or termination. It is an
// abstract interpreter over the linked instructions of each program that REFUSES ONLY WHAT IS
// PROVABLY WRONG. Each function of the program (the entry, every subprogram, every callback) is a
// root analysed on its own with unknown arguments; paths are explored one by one as the kernel
// does (no joins), with pruning of identical states and a step cap (past it the root is accepted).
// A register is an unknown value ("lost": the analysis does not know, so nothing is refused about
// it), a scalar (a constant or an unsigned range), a map pointer (a map of the object, or the
// inner map returned by the lookup at pc X of a map-in-map: each lookup site is its own map_uid),
// a map value pointer (identity, constant offset), a stack pointer or a function address; 8-byte
// stack spills are tracked. A path whose branch the analysis could not decide as precisely as the
// kernel ("tainted") reports nothing. bpf-to-bpf calls clobber r0-r5 to unknown (the callee is
// analysed as its own root), so a callback returning a subprogram's result is accepted.
//
// Rules (stable names, used in messages and by scenarios' "load_error"):
//   timer_arg          a timer helper's arg1 is not a pointer to the bpf_timer field of a map
//                      value (wrong offset, a map without a timer, a stack or scalar value), or
//                      bpf_timer_init's arg2 is not a map pointer
//   timer_map_uid      bpf_timer_init's map (arg2) is not the map whose value holds the timer
//   timer_callback_ret an async (bpf_timer) callback may return something other than 0
//   spin_lock_call     a helper other than bpf_spin_unlock, or a bpf-to-bpf call / kfunc, while
//                      a bpf_spin_lock is held (with static_subprog_calls_under_lock, v6.9+: a
//                      call to a global subprogram, or a helper call inside a static one called
//                      under the lock, at the helper's pc)
//   spin_lock_exit     an exit while a bpf_spin_lock is held
//   spin_unlock_unheld bpf_spin_unlock without a held lock
//   timer_map_type     a bpf_timer in a map type other than hash, lru_hash, array (incl. an
//                      inner map template): BPF_MAP_CREATE fails with -EOPNOTSUPP
//   tracing_timer      (VerifierOptions::tracing_progs_no_timer, v5.16+) a kprobe, tracepoint,
//                      perf_event or raw_tracepoint program uses a map whose value holds a timer
//   tracing_spin_lock  such a program uses a map whose value holds a bpf_spin_lock (v5.15)
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "model/libbpf_loader.h"

namespace bpftsim::model {

struct VerifierOptions {
  // check_map_prog_compatibility's "tracing progs cannot use bpf_timer yet" (reference 2.1,
  // v5.16 to v6.x). Off: v5.15.
  bool tracing_progs_no_timer = false;
  // "bpf: Allow calling static subprogs while holding a bpf_spin_lock" (v6.9): check_func_call
  // refuses only a global subprogram under the lock; a static one is walked with the lock held
  // (here: its helper calls are refused as if inlined). Off: v5.15 to v6.8, any bpf-to-bpf call.
  bool static_subprog_calls_under_lock = false;
  // Abstract-interpretation steps per root function; past it the root is accepted unchecked.
  std::uint32_t max_steps_per_root = 200000;

  bool operator==(const VerifierOptions&) const = default;
};

struct VerifierError {
  std::string rule;      // one of the rule names above
  std::uint32_t pc = 0;  // instruction index in ProgSpec::insns (the map's: 0)
  std::string func;      // the function holding pc
  std::string detail;    // what is wrong, one line
  // "program 'P' insn N (in F): rule R: detail"
  std::string message(const ProgSpec& p) const;
};

// Checks one loaded program against the object's maps.
std::optional<VerifierError> verify_prog(const ObjectSpec& spec, const ProgSpec& p,
                                         const VerifierOptions& opts = {});

// map_check_btf's map-type check for a value holding a bpf_timer (the map, and the inner
// template of a map-in-map, which libbpf creates first): a one-line reason naming the rule, or
// nothing. The kernel's errno for it is -EOPNOTSUPP.
std::optional<std::string> check_map_timer_type(const MapSpec& m);

// The map types whose value may hold a bpf_timer in v5.15: hash, lru_hash, array.
bool map_type_holds_timer(std::uint32_t type);

}  // namespace bpftsim::model
