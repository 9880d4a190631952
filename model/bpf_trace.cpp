#include "model/bpf_trace.h"

#include <fmt/format.h>

#include <cstring>

#include "model/kernel.h"

namespace bpftsim::model {

namespace {

struct SectionPrefix {
  const char* prefix;
  HookKind kind;
  bool function;  // the target is a function (else a tracepoint)
};
// libbpf's section_defs for these program types (tools/lib/bpf/libbpf.c), "tracepoint/" with
// the timer subsystem, the only one the model has tracepoints of.
constexpr SectionPrefix kPrefixes[] = {
    {"fentry/", HookKind::kFentry, true},
    {"fexit/", HookKind::kFexit, true},
    {"kprobe/", HookKind::kKprobe, true},
    {"tracepoint/timer/", HookKind::kTracepoint, false},
    {"tp/timer/", HookKind::kTracepoint, false},
    {"raw_tracepoint/", HookKind::kRawTp, false},
    {"raw_tp/", HookKind::kRawTp, false},
    {"tp_btf/", HookKind::kTpBtf, false},
};
// Prefixes of hook kinds whose subsystem or flavour the model lacks: named, so that such a
// section is an error rather than a program nobody ever runs.
constexpr const char* kOtherHookPrefixes[] = {
    "tracepoint/", "tp/", "kretprobe/", "fmod_ret/", "uprobe/", "uretprobe/", "lsm/", "perf_event"};

// The number of arguments of each hooked function (fexit's return value comes after them).
int nargs_of(const std::string& fn) {
  if (fn == "do_nanosleep") return 2;            // (struct hrtimer_sleeper *t, mode)
  if (fn == "hrtimer_start_range_ns") return 4;  // (timer, tim, delta_ns, mode)
  if (fn == "hrtimer_try_to_cancel" || fn == "hrtimer_cancel") return 1;  // (timer)
  if (fn.rfind("bpf_fentry_test", 0) == 0) {
    const int n = fn.back() - '0';
    return n <= 6 ? n : 1;
  }
  return 0;
}

template <std::size_t N>
std::string joined(const char* const (&names)[N]) {
  std::string s;
  for (const char* n : names)
    s += (s.empty() ? "" : ", ") + std::string(n);
  return s;
}

}  // namespace

const char* hook_kind_name(HookKind kind) {
  switch (kind) {
    case HookKind::kFentry:
      return "fentry";
    case HookKind::kFexit:
      return "fexit";
    case HookKind::kKprobe:
      return "kprobe";
    case HookKind::kTracepoint:
      return "tracepoint";
    case HookKind::kRawTp:
      return "raw_tp";
    case HookKind::kTpBtf:
      return "tp_btf";
  }
  return "?";
}

std::optional<HookPoint> parse_hook_section(const std::string& section, std::string* error) {
  error->clear();
  for (const SectionPrefix& p : kPrefixes) {
    const std::size_t n = std::strlen(p.prefix);
    if (section.compare(0, n, p.prefix) != 0) continue;
    const std::string target = section.substr(n);
    bool known = false;
    if (p.function) {
      for (const char* f : kHookFunctions)
        known = known || target == f;
    } else {
      for (const char* t : kHookTracepoints)
        known = known || target == t;
    }
    if (known) return HookPoint{p.kind, target};
    *error = p.function ? fmt::format(
                              "section '{}': the model has no kernel function '{}' to attach to "
                              "(it has: {})",
                              section, target, joined(kHookFunctions))
                        : fmt::format(
                              "section '{}': the model has no tracepoint '{}' (it has the timer "
                              "tracepoints {})",
                              section, target, joined(kHookTracepoints));
    return std::nullopt;
  }
  for (const char* p : kOtherHookPrefixes)
    if (section.rfind(p, 0) == 0) {
      *error = fmt::format(
          "section '{}': the model cannot attach {} programs (it attaches "
          "fentry/, fexit/, kprobe/ to {}; tp_btf/, raw_tp/, tracepoint/timer/ "
          "to {})",
          section, p, joined(kHookFunctions), joined(kHookTracepoints));
      return std::nullopt;
    }
  return std::nullopt;
}

void BpfTrace::attach(const HookPoint& hook, BpfProg& prog, int pid, int link_fd) {
  hooks_[hook].push_back(Attachment{&prog, pid, link_fd});
}

bool BpfTrace::attached(HookKind kind, std::string_view target) const {
  if (hooks_.empty()) return false;  // the common case: no string made per hook reached
  return hooks_.count(HookPoint{kind, std::string(target)}) != 0;
}

bool BpfTrace::link_open(const Attachment& a) const {
  const Process* p = k_.sys.process(a.pid);
  if (!p) return false;
  auto it = p->fds.find(a.link_fd);
  return it != p->fds.end() && it->second.kind == FdEntry::Kind::kLink && it->second.prog == a.prog;
}

sim::Co<void> BpfTrace::fire(sim::Context& ctx, HookKind kind, const char* target, HookArgs args) {
  if (hooks_.empty()) co_return;
  auto it = hooks_.find(HookPoint{kind, target});
  if (it == hooks_.end()) co_return;
  const bool per_cpu_guard = kind == HookKind::kKprobe || kind == HookKind::kTracepoint;
  // Index loop: a program may attach nothing, but the vector may grow meanwhile.
  for (std::size_t i = 0; i < it->second.size(); ++i) {
    const Attachment a = it->second[i];
    if (!link_open(a)) continue;
    int& guard = per_cpu_guard ? prog_active_[ctx.cpu()] : active_[{a.prog->id, ctx.cpu()}];
    if (guard > 0) {
      ctx.trace(
          "bpf_prog_recursion_miss",
          {{"prog", a.prog->id}, {"hook", fmt::format("{}/{}", hook_kind_name(kind), target)}});
      continue;
    }
    ++guard;
    const std::int64_t r = co_await k_.run_prog(ctx, *a.prog, args);
    (void)r;  // the return value of a tracing program does not change the kernel's path
    // The map entry is stable (std::map); look it up again, the reference may not be.
    --(per_cpu_guard ? prog_active_[ctx.cpu()] : active_[{a.prog->id, ctx.cpu()}]);
    if (k_.sim.stopped()) co_return;
  }
}

sim::Co<void> BpfTrace::function_entry(sim::Context& ctx, const char* fn, HookArgs args) {
  if (hooks_.empty()) co_return;
  co_await fire(ctx, HookKind::kFentry, fn, args);
  co_await fire(ctx, HookKind::kKprobe, fn, args);
}

sim::Co<void> BpfTrace::function_exit(sim::Context& ctx, const char* fn, HookArgs args,
                                      std::int64_t ret) {
  if (hooks_.empty()) co_return;
  const int n = nargs_of(fn);
  if (n < static_cast<int>(args.size())) args[n] = static_cast<std::uint64_t>(ret);
  co_await fire(ctx, HookKind::kFexit, fn, args);
}

sim::Co<void> BpfTrace::tracepoint(sim::Context& ctx, const char* tp, HookArgs args) {
  if (hooks_.empty()) co_return;
  co_await fire(ctx, HookKind::kTpBtf, tp, args);
  co_await fire(ctx, HookKind::kRawTp, tp, args);
  co_await fire(ctx, HookKind::kTracepoint, tp, args);
}

}  // namespace bpftsim::model
