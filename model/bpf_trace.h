// Programs attached to kernel hook points, run nested in the kernel code that hits the hook:
// kernel/bpf/trampoline.c (fentry/fexit: __bpf_prog_enter/__bpf_prog_exit around the traced
// function), kernel/trace/bpf_trace.c (kprobe and tracepoint programs through trace_call_bpf;
// raw_tp and tp_btf through bpf_trace_run<N>).
//
// A program is attached by its ELF section name, as libbpf's bpf_program__attach does:
//   fentry/<fn>  fexit/<fn>  kprobe/<fn>      a modelled kernel function (kHookFunctions)
//   tp_btf/<tp>  raw_tp/<tp>  raw_tracepoint/<tp>  tracepoint/timer/<tp>  a modelled tracepoint
//                                                   (kHookTracepoints)
// Where the model's kernel code reaches the function or the tracepoint it calls
// function_entry / function_exit / tracepoint, and every attached program whose link is still
// open runs there, in the calling context, in attach order, with that context's locks held and
// interrupts as they are (so a program on tracepoint hrtimer_start runs under the CPU's hrtimer
// base lock, as trace_hrtimer_start in enqueue_hrtimer does).
//
// The context every kind of program gets (r1) is the fentry one: the traced function's (or the
// tracepoint's TP_PROTO) arguments as u64s, fexit with the return value after them. The kernel
// passes a kprobe a struct pt_regs and a tracepoint/ program the event's record; the model passes
// both the same u64 array (a documented simplification: no scenario program reads those layouts).
// Kernel object pointers among the arguments (struct hrtimer *, struct hrtimer_sleeper *) are the
// model's object ids, not dereferenceable.
//
// Recursion (as the kernel cuts it): a kprobe/tracepoint program does not run while another
// kprobe/tracepoint program runs on the same CPU (the per-CPU bpf_prog_active of
// trace_call_bpf); a fentry/fexit/raw_tp/tp_btf program does not run while the same program runs
// on the same CPU (prog->active). A skipped run leaves a "bpf_prog_recursion_miss" record.
//
// With nothing attached to a hook, reaching it costs nothing and leaves no record.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sim/co.h"
#include "sim/context.h"

namespace bpftsim::model {

class Kernel;
class BpfProg;

enum class HookKind : std::uint8_t { kFentry, kFexit, kKprobe, kTracepoint, kRawTp, kTpBtf };
const char* hook_kind_name(HookKind kind);  // "fentry", ..., "tp_btf"

// The kernel functions and tracepoints the model reaches (and so can attach to).
inline constexpr const char* kHookFunctions[] = {
    "do_nanosleep",     "hrtimer_start_range_ns", "hrtimer_try_to_cancel", "hrtimer_cancel",
    "bpf_fentry_test1", "bpf_fentry_test2",       "bpf_fentry_test3",      "bpf_fentry_test4",
    "bpf_fentry_test5", "bpf_fentry_test6",       "bpf_fentry_test7",      "bpf_fentry_test8",
};
inline constexpr const char* kHookTracepoints[] = {
    "hrtimer_start",
    "hrtimer_cancel",
    "hrtimer_expire_entry",
    "hrtimer_expire_exit",
};

struct HookPoint {
  HookKind kind = HookKind::kFentry;
  std::string target;  // function or tracepoint name
  bool operator<(const HookPoint& o) const {
    return kind != o.kind ? kind < o.kind : target < o.target;
  }
};

// The hook a section names. nullopt and *error empty: the section is no hook kind ("syscall",
// "tc", ...: programs run by test_run or an interrupt). nullopt and *error set: a hook kind whose
// target the model does not have (the message names the section and lists what it has).
std::optional<HookPoint> parse_hook_section(const std::string& section, std::string* error);

using HookArgs = std::array<std::uint64_t, 5>;

class BpfTrace {
 public:
  explicit BpfTrace(Kernel& k) : k_(k) {}

  // Attaches `prog` at `hook` through link fd `link_fd` of process `pid`: the program runs there
  // as long as that fd is open and refers to it.
  void attach(const HookPoint& hook, BpfProg& prog, int pid, int link_fd);
  // Whether anything was ever attached anywhere: hot paths test it before calling the hooks
  // below (coroutines that do nothing without attachments), so that they cost no frame.
  bool any() const { return !hooks_.empty(); }
  // Whether anything was ever attached at the hook (links may have been closed since).
  bool attached(HookKind kind, std::string_view target) const;

  // The kernel enters function `fn` (fentry and kprobe programs) / returns from it with `ret`
  // (fexit programs; their context is the arguments, then the return value).
  sim::Co<void> function_entry(sim::Context& ctx, const char* fn, HookArgs args);
  sim::Co<void> function_exit(sim::Context& ctx, const char* fn, HookArgs args, std::int64_t ret);
  // The kernel hits tracepoint `tp` (tp_btf, raw_tp and tracepoint/timer/ programs).
  sim::Co<void> tracepoint(sim::Context& ctx, const char* tp, HookArgs args);

 private:
  struct Attachment {
    BpfProg* prog = nullptr;
    int pid = 0;
    int link_fd = -1;
  };
  sim::Co<void> fire(sim::Context& ctx, HookKind kind, const char* target, HookArgs args);
  bool link_open(const Attachment& a) const;

  Kernel& k_;
  std::map<HookPoint, std::vector<Attachment>> hooks_;
  std::map<int, int> prog_active_;  // per CPU: kprobe/tracepoint programs running
  std::map<std::pair<std::uint32_t, int>, int> active_;  // (prog id, CPU): runs of that prog
};

}  // namespace bpftsim::model
