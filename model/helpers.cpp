#include "model/helpers.h"

#include <fmt/format.h>

#include <cstring>
#include <string_view>

#include "model/errno.h"
#include "model/kernel.h"
#include "model/uapi.h"

namespace bpftsim::model::helpers {

namespace {
// The helper's record: its result, and how long it ran when the dispatcher knows (dur_ns).
// Emitted from views (no record built unless the trace keeps it).
void trace_helper(ProgRun& r, const char* name, const sim::TraceArg& ret) {
  const sim::TimeNs now = r.k.sim.now();
  if (r.call_ns >= 0) {
    r.k.sim.trace().emit(now, r.ctx.cpu(), r.ctx.id(), "bpf_helper",
                         {{"prog", r.prog.id}, {"helper", name}, ret, {"dur_ns", now - r.call_ns}});
  } else {
    r.k.sim.trace().emit(now, r.ctx.cpu(), r.ctx.id(), "bpf_helper",
                         {{"prog", r.prog.id}, {"helper", name}, ret});
  }
}
void trace_ret(ProgRun& r, const char* name, std::int64_t ret) {
  trace_helper(r, name, {"ret", ret});
}
}  // namespace

std::vector<std::uint8_t> u32_key(std::uint32_t k) {
  std::vector<std::uint8_t> v(4);
  std::memcpy(v.data(), &k, 4);
  return v;
}

std::uint64_t timer_of(const BpfMap& map, std::uint64_t value_addr) {
  return value_addr + static_cast<std::uint64_t>(map.def.timer_off);
}

sim::Co<std::uint64_t> map_lookup(ProgRun& r, BpfMap& map, const std::vector<std::uint8_t>& key) {
  co_await r.ctx.step(r.k.cost.helper_ns);
  const std::uint64_t v = co_await map.lookup_elem(r.ctx, key.data());
  // A pointer is printed as what it points at ("&m[0]"); NULL as 0.
  const std::string elem = v != 0 ? r.k.element_text(v) : std::string();
  if (elem.empty()) {
    trace_ret(r, "bpf_map_lookup_elem", static_cast<std::int64_t>(v));
  } else {
    const std::string ptr = "&" + elem;
    trace_helper(r, "bpf_map_lookup_elem", {"ret", ptr});
  }
  co_return v;
}

sim::Co<std::int64_t> map_update(ProgRun& r, BpfMap& map, const std::vector<std::uint8_t>& key,
                                 const std::vector<std::uint8_t>& value, std::uint64_t flags) {
  co_await r.ctx.step(r.k.cost.helper_ns);
  const std::int64_t ret = co_await map.update_elem(r.ctx, key.data(), value.data(), flags);
  trace_ret(r, "bpf_map_update_elem", ret);
  co_return ret;
}

sim::Co<std::int64_t> map_delete(ProgRun& r, BpfMap& map, const std::vector<std::uint8_t>& key) {
  co_await r.ctx.step(r.k.cost.helper_ns);
  const std::int64_t ret = co_await map.delete_elem(r.ctx, key.data());
  trace_ret(r, "bpf_map_delete_elem", ret);
  co_return ret;
}

sim::Co<std::int64_t> timer_init(ProgRun& r, std::uint64_t timer, BpfMap& map,
                                 std::uint64_t flags) {
  const std::int64_t ret = co_await r.k.timers.init(r.ctx, timer, map.handle_addr, flags);
  trace_ret(r, "bpf_timer_init", ret);
  co_return ret;
}

sim::Co<std::int64_t> timer_set_callback(ProgRun& r, std::uint64_t timer, std::uint64_t callback) {
  const std::int64_t ret = co_await r.k.timers.set_callback(r.ctx, timer, callback, r.prog);
  trace_ret(r, "bpf_timer_set_callback", ret);
  co_return ret;
}

sim::Co<std::int64_t> timer_start(ProgRun& r, std::uint64_t timer, std::uint64_t nsecs,
                                  std::uint64_t flags) {
  const std::int64_t ret = co_await r.k.timers.start(r.ctx, timer, nsecs, flags);
  trace_ret(r, "bpf_timer_start", ret);
  co_return ret;
}

sim::Co<std::int64_t> timer_cancel(ProgRun& r, std::uint64_t timer) {
  const std::int64_t ret = co_await r.k.timers.cancel(r.ctx, timer);
  trace_ret(r, "bpf_timer_cancel", ret);
  co_return ret;
}

sim::Co<std::int64_t> timer_cancel_async(ProgRun& r, std::uint64_t timer) {
  const std::int64_t ret = co_await r.k.timers.cancel_async(r.ctx, timer);
  trace_ret(r, "bpf_timer_cancel_async", ret);
  co_return ret;
}

// ---- Bytecode dispatch --------------------------------------------------------------------------

namespace {

constexpr std::uint32_t kBpfMaxLoops = 1u << 23;  // BPF_MAX_LOOPS (kernel/bpf/bpf_iter.c)

#define BPFTSIM_HELPER_NAME(x) "bpf_" #x
constexpr const char* kHelperNames[] = {__BPF_FUNC_MAPPER(BPFTSIM_HELPER_NAME)};
#undef BPFTSIM_HELPER_NAME

HelperOutcome done(std::uint64_t r0) {
  return HelperOutcome{false, r0};
}
HelperOutcome done_signed(std::int64_t r0) {
  return HelperOutcome{false, static_cast<std::uint64_t>(r0)};
}
constexpr HelperOutcome kAborted{true, 0};

// A program fault for an argument the verifier would have rejected.
HelperOutcome reject(ProgRun& r, std::int32_t id, const std::string& what) {
  r.k.program_fault(&r.ctx, fmt::format("prog {} '{}': {}: {} (the verifier would reject this "
                                        "program)",
                                        r.prog.id, r.prog.name, helper_name(id), what));
  return kAborted;
}

// The map behind a `struct bpf_map *` argument, or nullptr after reporting a fault.
BpfMap* map_arg(ProgRun& r, std::int32_t id, std::uint64_t addr) {
  BpfMap* map = r.k.map_by_addr(addr);
  if (!map) {
    reject(r, id, fmt::format("r1 = {:#x} is not a struct bpf_map *", addr));
    return nullptr;
  }
  if (!r.k.slab.access(&r.ctx, map->obj, "bpf map helper")) return nullptr;
  return map;
}

bool is_map_in_map(const BpfMap& map) {
  return map.def.type == kBpfMapTypeArrayOfMaps || map.def.type == kBpfMapTypeHashOfMaps;
}

// Copies `size` guest bytes at `addr` (a fault is reported when they are not readable).
bool read_arg(ProgRun& r, std::uint64_t addr, std::uint32_t size, const char* what,
              std::vector<std::uint8_t>* out) {
  const std::uint8_t* p = r.k.ptr(&r.ctx, addr, size, false, what);
  if (!p) return false;
  out->assign(p, p + size);
  return true;
}

// The KLock of the bpf_spin_lock at `addr`, which must be a map value's lock field.
KLock* spin_lock_arg(ProgRun& r, std::int32_t id, std::uint64_t addr) {
  auto ref = r.k.resolve(addr);
  if (!ref || ref->map->def.spin_lock_off < 0 ||
      ref->off != ref->map->value_off() + static_cast<std::uint32_t>(ref->map->def.spin_lock_off)) {
    reject(r, id, fmt::format("{:#x} is not the struct bpf_spin_lock of a map value", addr));
    return nullptr;
  }
  std::uint8_t* word = ref->map->arena().elem(ref->elem) + ref->off;
  return &r.k.value_lock(addr, word, "bpf_spin_lock");
}

sim::Co<HelperOutcome> do_map_lookup(ProgRun& r, std::array<std::uint64_t, 5> a) {
  BpfMap* map = map_arg(r, kHelperMapLookupElem, a[0]);
  if (!map) co_return kAborted;
  std::vector<std::uint8_t> key;
  if (!read_arg(r, a[1], map->def.key_size, "bpf_map_lookup_elem key", &key)) co_return kAborted;
  const std::uint64_t v = co_await map_lookup(r, *map, key);
  co_return done(v);
}

sim::Co<HelperOutcome> do_map_update(ProgRun& r, std::array<std::uint64_t, 5> a) {
  BpfMap* map = map_arg(r, kHelperMapUpdateElem, a[0]);
  if (!map) co_return kAborted;
  if (is_map_in_map(*map)) co_return reject(r, kHelperMapUpdateElem, "map-in-map updated from BPF");
  if (map->def.map_flags & kBpfFRdonlyProg)
    co_return reject(r, kHelperMapUpdateElem,
                     fmt::format("map '{}' is read-only to BPF", map->name()));
  std::vector<std::uint8_t> key, value;
  if (!read_arg(r, a[1], map->def.key_size, "bpf_map_update_elem key", &key) ||
      !read_arg(r, a[2], map->def.value_size, "bpf_map_update_elem value", &value))
    co_return kAborted;
  const std::uint64_t flags = a[3];
  const std::int64_t ret = co_await map_update(r, *map, key, value, flags);
  co_return done_signed(ret);
}

sim::Co<HelperOutcome> do_map_delete(ProgRun& r, std::array<std::uint64_t, 5> a) {
  BpfMap* map = map_arg(r, kHelperMapDeleteElem, a[0]);
  if (!map) co_return kAborted;
  if (is_map_in_map(*map)) co_return reject(r, kHelperMapDeleteElem, "map-in-map updated from BPF");
  if (map->def.map_flags & kBpfFRdonlyProg)
    co_return reject(r, kHelperMapDeleteElem,
                     fmt::format("map '{}' is read-only to BPF", map->name()));
  std::vector<std::uint8_t> key;
  if (!read_arg(r, a[1], map->def.key_size, "bpf_map_delete_elem key", &key)) co_return kAborted;
  const std::int64_t ret = co_await map_delete(r, *map, key);
  co_return done_signed(ret);
}

sim::Co<HelperOutcome> do_trace_printk(ProgRun& r, std::array<std::uint64_t, 5> a) {
  co_await r.ctx.step(r.k.cost.helper_ns);
  const std::uint64_t size = a[1];
  std::int64_t ret = -kEINVAL;
  std::string fmt_text, msg;
  if (size > 0 && size <= 0xffff) {
    const std::uint8_t* p =
        r.k.ptr(&r.ctx, a[0], static_cast<std::uint32_t>(size), false, "bpf_trace_printk fmt");
    if (!p) co_return kAborted;
    // The format must be NUL-terminated within fmt_size (bpf_bprintf_prepare).
    if (p[size - 1] == 0) {
      fmt_text.assign(reinterpret_cast<const char*>(p));
      if (format_trace_printk(r.k.mem, fmt_text, {a[2], a[3], a[4]}, &msg)) {
        ret = static_cast<std::int64_t>(msg.size());
        while (!msg.empty() && msg.back() == '\n')
          msg.pop_back();
        r.ctx.trace("bpf_trace_printk", {{"prog", r.prog.id}, {"msg", msg}});
      }
    }
  }
  trace_ret(r, "bpf_trace_printk", ret);
  co_return done_signed(ret);
}

sim::Co<HelperOutcome> do_spin_lock(ProgRun& r, std::array<std::uint64_t, 5> a) {
  KLock* lock = spin_lock_arg(r, kHelperSpinLock, a[0]);
  if (!lock) co_return kAborted;
  if (lock->owner == &r.ctx) co_return reject(r, kHelperSpinLock, "bpf_spin_lock taken twice");
  co_await r.ctx.step(r.k.cost.helper_ns);
  co_await spin_lock_irqsave(r.k, r.ctx, *lock);  // __bpf_spin_lock_irqsave
  trace_ret(r, "bpf_spin_lock", 0);
  co_return done(0);
}

sim::Co<HelperOutcome> do_spin_unlock(ProgRun& r, std::array<std::uint64_t, 5> a) {
  KLock* lock = spin_lock_arg(r, kHelperSpinUnlock, a[0]);
  if (!lock) co_return kAborted;
  if (lock->owner != &r.ctx)
    co_return reject(r, kHelperSpinUnlock, "unlocking a lock it does not hold");
  co_await spin_unlock_irqrestore(r.k, r.ctx, *lock);
  trace_ret(r, "bpf_spin_unlock", 0);
  co_return done(0);
}

// bpf_loop (kernel/bpf/bpf_iter.c): callback(i, ctx) for i < nr_loops until it returns 1;
// returns the number of iterations run.
sim::Co<HelperOutcome> do_loop(ProgRun& r, std::array<std::uint64_t, 5> a, SubprogRunner& runner) {
  co_await r.ctx.step(r.k.cost.helper_ns);
  const std::uint64_t nr_loops = static_cast<std::uint32_t>(a[0]);
  const std::uint64_t fn = a[1];
  std::int64_t ret = 0;
  if (a[3] != 0) {
    ret = -kEINVAL;
  } else if (nr_loops > kBpfMaxLoops) {
    ret = -kE2BIG;
  } else if (!r.prog.owns_callback(fn)) {
    co_return reject(r, kHelperLoop,
                     fmt::format("callback {:#x} is no subprogram of the program", fn));
  } else {
    std::uint64_t i = 0;
    for (; i < nr_loops; ++i) {
      const HelperOutcome cb =
          co_await runner.call_subprog(r.ctx, bpf_func_pc(fn), {i, a[2], 0, 0, 0});
      if (cb.aborted) co_return kAborted;
      if (cb.r0 != 0) {
        ++i;
        break;
      }
    }
    ret = static_cast<std::int64_t>(i);
  }
  trace_ret(r, "bpf_loop", ret);
  co_return done_signed(ret);
}

sim::Co<HelperOutcome> do_simple(ProgRun& r, std::int32_t id, std::uint64_t value) {
  co_await r.ctx.step(r.k.cost.helper_ns);
  trace_ret(r, kHelperNames[id], static_cast<std::int64_t>(value));
  co_return done(value);
}

using Args = std::array<std::uint64_t, 5>;

// The entry of one helper: the kernel's bpf_func_proto->func, as the dispatcher calls it.
using Handler = sim::Co<HelperOutcome> (*)(ProgRun&, std::int32_t id, Args, SubprogRunner&);

// Helpers whose whole effect is one model call returning a long: the call, then its trace record.
template <sim::Co<std::int64_t> (*Call)(ProgRun&, Args)>
sim::Co<HelperOutcome> returning(ProgRun& r, std::int32_t id, Args a, SubprogRunner&) {
  const std::int64_t ret = co_await Call(r, a);
  trace_ret(r, kHelperNames[id], ret);
  co_return done_signed(ret);
}
sim::Co<std::int64_t> timer_init_call(ProgRun& r, Args a) {
  return r.k.timers.init(r.ctx, a[0], a[1], a[2]);
}
sim::Co<std::int64_t> timer_set_callback_call(ProgRun& r, Args a) {
  return r.k.timers.set_callback(r.ctx, a[0], a[1], r.prog);
}
sim::Co<std::int64_t> timer_start_call(ProgRun& r, Args a) {
  return r.k.timers.start(r.ctx, a[0], a[1], a[2]);
}
sim::Co<std::int64_t> timer_cancel_call(ProgRun& r, Args a) {
  return r.k.timers.cancel(r.ctx, a[0]);
}

// Helpers whose result is a value of the running context.
template <std::uint64_t (*Value)(ProgRun&)>
sim::Co<HelperOutcome> valued(ProgRun& r, std::int32_t id, Args, SubprogRunner&) {
  return do_simple(r, id, Value(r));
}
std::uint64_t now_ns(ProgRun& r) {  // no suspend in the model: boot time is monotonic time
  return static_cast<std::uint64_t>(r.ctx.now());
}
std::uint64_t prandom_u32(ProgRun& r) {
  return r.k.sim.data_prng().next_u32();
}
std::uint64_t cpu_id(ProgRun& r) {
  return static_cast<std::uint64_t>(r.ctx.cpu());
}
// bpf_get_current_pid_tgid (kernel/bpf/helpers.c): tgid << 32 | pid of current; the idle task
// (a context that runs for no process: model/syscall.h) is 0.
std::uint64_t current_pid_tgid(ProgRun& r) {
  const Process* p = r.k.sys.current(r.ctx);
  if (!p) return 0;
  const auto pid = static_cast<std::uint32_t>(p->pid);
  return (std::uint64_t{pid} << 32) | pid;
}
// bpf_get_current_task_btf (kernel/trace/bpf_trace.c, v5.11): current as a BTF pointer, read-only
// (the model's task_struct layout: model/syscall.h TaskStruct).
std::uint64_t current_task_btf(ProgRun& r) {
  return r.k.sys.task_struct_addr(r.k.sys.current(r.ctx), r.ctx.cpu());
}

template <sim::Co<HelperOutcome> (*Fn)(ProgRun&, Args)>
sim::Co<HelperOutcome> plain(ProgRun& r, std::int32_t, Args a, SubprogRunner&) {
  return Fn(r, a);
}
sim::Co<HelperOutcome> loop(ProgRun& r, std::int32_t, Args a, SubprogRunner& runner) {
  return do_loop(r, a, runner);
}

// kfuncs (model/uapi.h kKfuncBase): named by their own table.
struct KfuncName {
  std::int32_t id;
  const char* name;
};
constexpr KfuncName kKfuncNames[] = {{kKfuncTimerCancelAsync, "bpf_timer_cancel_async"}};

sim::Co<HelperOutcome> kfunc_timer_cancel_async(ProgRun& r, std::int32_t, Args a, SubprogRunner&) {
  const std::int64_t ret = co_await timer_cancel_async(r, a[0]);
  co_return done_signed(ret);
}

struct HelperProto {
  std::int32_t id;
  Handler handler;
};

// Every helper the model implements, one row each (as the kernel's bpf_func_proto table); its
// name is the UAPI's (kHelperNames). Programs calling any other id are refused at load.
constexpr HelperProto kHelperProtos[] = {
    {kHelperMapLookupElem, plain<do_map_lookup>},
    {kHelperMapUpdateElem, plain<do_map_update>},
    {kHelperMapDeleteElem, plain<do_map_delete>},
    {kHelperKtimeGetNs, valued<now_ns>},
    {kHelperTracePrintk, plain<do_trace_printk>},
    {kHelperGetPrandomU32, valued<prandom_u32>},
    {kHelperGetSmpProcessorId, valued<cpu_id>},
    {kHelperSpinLock, plain<do_spin_lock>},
    {kHelperSpinUnlock, plain<do_spin_unlock>},
    {kHelperKtimeGetBootNs, valued<now_ns>},
    {kHelperTimerInit, returning<timer_init_call>},
    {kHelperTimerSetCallback, returning<timer_set_callback_call>},
    {kHelperTimerStart, returning<timer_start_call>},
    {kHelperTimerCancel, returning<timer_cancel_call>},
    {kHelperLoop, loop},
    {kKfuncTimerCancelAsync, kfunc_timer_cancel_async},
    {kHelperGetCurrentPidTgid, valued<current_pid_tgid>},
    {kHelperGetCurrentTaskBtf, valued<current_task_btf>},
};

const HelperProto* proto_of(std::int32_t id) {
  for (const HelperProto& p : kHelperProtos)
    if (p.id == id) return &p;
  return nullptr;
}

}  // namespace

bool dispatch_supported(std::int32_t id) {
  return proto_of(id) != nullptr;
}

bool helper_in_profile(std::int32_t id, const KernelProfile& profile) {
  if (!dispatch_supported(id)) return false;
  if (id == kHelperLoop) return profile.has_bpf_loop;
  if (id == kKfuncTimerCancelAsync) return profile.timer_any_context;
  // bpf_get_current_task_btf arrived in v5.11, bpf_get_current_pid_tgid long before: both are in
  // every profile (v5.15 on).
  return true;
}

std::optional<std::int32_t> kfunc_by_name(const std::string& name) {
  for (const KfuncName& k : kKfuncNames)
    if (name == k.name) return k.id;
  return std::nullopt;
}

bool is_kfunc(std::int32_t id) {
  for (const KfuncName& k : kKfuncNames)
    if (id == k.id) return true;
  return false;
}

std::string helper_name(std::int32_t id) {
  for (const KfuncName& k : kKfuncNames)
    if (id == k.id) return k.name;
  constexpr auto n = static_cast<std::int32_t>(std::size(kHelperNames));
  if (id > 0 && id < n) return kHelperNames[id];
  return fmt::format("helper {}", id);
}

sim::Co<HelperOutcome> dispatch(ProgRun& r, std::int32_t id, Args a, SubprogRunner& runner) {
  HelperOutcome out = kAborted;
  r.call_ns = r.k.sim.now();
  if (const HelperProto* proto = proto_of(id)) {
    out = co_await proto->handler(r, id, a, runner);
  } else {
    r.k.program_fault(&r.ctx, fmt::format("prog {} '{}' calls {}, which the model does not "
                                          "implement (the loader should have refused it)",
                                          r.prog.id, r.prog.name, helper_name(id)));
  }
  // A helper that reported a fault (or any stopping finding) ends the run.
  if (r.k.sim.stopped()) out.aborted = true;
  co_return out;
}

// ---- bpf_trace_printk formatting ---------------------------------------------------------------

namespace {

// A NUL-terminated string at `addr`, at most `max` bytes; empty when unreadable.
std::string guest_string(const AddressSpace& mem, std::uint64_t addr, std::size_t max) {
  std::string s;
  std::string why;
  for (std::size_t i = 0; i < max; ++i) {
    const std::uint8_t* p = mem.translate(addr + i, 1, false, &why);
    if (!p) return {};
    if (*p == 0) break;
    s.push_back(static_cast<char>(*p));
  }
  return s;
}

}  // namespace

bool format_trace_printk(const AddressSpace& mem, const std::string& fmt_text,
                         std::array<std::uint64_t, 3> args, std::string* out) {
  constexpr std::size_t kMaxString = 512;
  out->clear();
  std::size_t next_arg = 0;
  for (std::size_t i = 0; i < fmt_text.size(); ++i) {
    const char c = fmt_text[i];
    if (c != '%') {
      out->push_back(c);
      continue;
    }
    if (++i >= fmt_text.size()) return false;
    if (fmt_text[i] == '%') {
      out->push_back('%');
      continue;
    }
    int longs = 0;
    while (i < fmt_text.size() && fmt_text[i] == 'l' && longs < 2) {
      ++longs;
      ++i;
    }
    if (i >= fmt_text.size() || next_arg >= args.size()) return false;
    const std::uint64_t raw = args[next_arg++];
    // Without a length modifier the argument is an int (bpf_bprintf_prepare's casts).
    const std::uint64_t v = longs == 0 ? static_cast<std::uint32_t>(raw) : raw;
    const auto sv =
        longs == 0 ? std::int64_t{static_cast<std::int32_t>(raw)} : static_cast<std::int64_t>(raw);
    switch (fmt_text[i]) {
      case 'd':
      case 'i':
        *out += fmt::format("{}", sv);
        break;
      case 'u':
        *out += fmt::format("{}", v);
        break;
      case 'x':
        *out += fmt::format("{:x}", v);
        break;
      case 'X':
        *out += fmt::format("{:X}", v);
        break;
      case 's':
        if (longs != 0) return false;
        *out += guest_string(mem, raw, kMaxString);
        break;
      default:
        return false;
    }
  }
  return true;
}

}  // namespace bpftsim::model::helpers
