#include "model/kernel.h"

#include <fmt/format.h>

#include <cstring>
#include <optional>

#include "model/errno.h"
#include "model/libbpf_loader.h"  // map_type_name
#include "model/uapi.h"
#include "sim/assert.h"
#include "sim/fifo.h"
#include "sim/hash.h"

namespace bpftsim::model {

namespace {
// "{:02x}" of one byte, without a format call (key text is made for every callback frame).
void append_hex_byte(std::string& s, std::uint8_t b) {
  s += "0123456789abcdef"[b >> 4];
  s += "0123456789abcdef"[b & 0xf];
}
}  // namespace

Kernel::Kernel(sim::Simulator& s, KernelProfile p, CostModel c)
    : sim(s),
      profile(std::move(p)),
      cost(c),
      slab(s),
      rcu(*this),
      timers_unit(make_bpf_timers(*this, profile)),
      timers(*timers_unit),
      hrtimers(*this),
      sys(*this),
      hooks(*this) {
  sim.set_softirq_handler(kHrtimerSoftirq, "HRTIMER", [this](sim::Context& ctx) -> sim::Co<void> {
    rcu.read_lock(ctx);  // softirqs are RCU(-BH) read-side sections
    co_await ctx.step(cost.softirq_ns);
    co_await hrtimers.run_softirq(ctx);
    rcu.read_unlock(ctx);
  });
  sim.set_softirq_handler(kRcuSoftirq, "RCU", [this](sim::Context& ctx) -> sim::Co<void> {
    rcu.read_lock(ctx);
    co_await ctx.step(cost.softirq_ns);
    co_await rcu.softirq(ctx);
    rcu.read_unlock(ctx);
  });
  key_scratch_mem_.assign(static_cast<std::size_t>(sim.ncpus()) * 8, 0);
  for (int cpu = 0; cpu < sim.ncpus(); ++cpu)
    key_scratch_addr_.push_back(AddressSpace::base(
        mem.add(RegionKind::kMapKey, "bpf_timer_cb key (cpu " + std::to_string(cpu) + ")",
                key_scratch_mem_.data() + 8 * cpu, 8, false)));
  sim.set_finding_hook([this](sim::Finding& f) {
    const BpfFrame* top = top_bpf_frame(f.ctx);
    if (top == nullptr) return;
    const BpfFrame& b = *top;
    if (f.program.empty()) f.program = b.program;
    if (f.callback.empty()) f.callback = b.callback;
    if (f.map.empty()) f.map = b.map;
    if (f.key.empty()) f.key = b.key_is_index ? std::to_string(b.index) : b.key;
    if (b.code != nullptr && f.source.empty()) {
      f.pc = static_cast<std::int64_t>(b.pc);
      if (const SourceLine* l = b.code->source_at(b.pc)) {
        f.source = fmt::format("{}:{}", l->file, l->line);
        f.source_text = l->text;
      }
    }
  });
}

Kernel::~Kernel() {
  sim.set_finding_hook(nullptr);
}

BpfMap* Kernel::create_map(const sim::Context* ctx, const MapDef& def, int* err) {
  *err = 0;
  if (def.max_entries == 0 || def.key_size == 0 || def.value_size == 0) {
    *err = -kEINVAL;
    return nullptr;
  }
  const bool timer_ok =
      def.type == kBpfMapTypeHash || def.type == kBpfMapTypeLruHash || def.type == kBpfMapTypeArray;
  if (def.timer_off >= 0) {
    // map_check_btf: a timer map must be writable by programs (-EACCES), checked first, and of
    // a type that can hold a timer: hash, lru_hash or array (-EOPNOTSUPP).
    if (def.map_flags & kBpfFRdonlyProg) {
      *err = -kEACCES;
      return nullptr;
    }
    if (!timer_ok) {
      *err = -kEOPNOTSUPP;
      return nullptr;
    }
    if (static_cast<std::uint32_t>(def.timer_off) + 16 > def.value_size) {
      *err = -kEINVAL;
      return nullptr;
    }
  }
  const std::uint32_t id = next_map_id_++;
  const ObjId obj =
      slab.alloc(ctx, ObjKind::kMap, "map " + std::to_string(id) + " '" + def.name + "'");
  std::unique_ptr<BpfMap> map;
  switch (def.type) {
    case kBpfMapTypeArray:
      map = std::make_unique<ArrayMap>(*this, def, obj, id);
      break;
    case kBpfMapTypeArrayOfMaps:
      map = std::make_unique<ArrayOfMaps>(*this, def, obj, id);
      break;
    case kBpfMapTypeHash:
    case kBpfMapTypeLruHash:
    case kBpfMapTypeHashOfMaps:
      map = std::make_unique<HashMap>(*this, def, obj, id);
      break;
    default:
      slab.free(ctx, obj, "map_create (unsupported type)");
      *err = -kEINVAL;
      return nullptr;
  }
  static std::uint8_t opaque_byte = 0;
  map->handle_addr = AddressSpace::base(
      mem.add(RegionKind::kOpaque, "struct bpf_map '" + def.name + "'", &opaque_byte, 0, false));
  handle_to_map_[map->handle_addr] = id;
  sim.emit(ctx, "map_create", {{"map", id}, {"name", def.name}, {"type", map_type_name(def.type)}});
  BpfMap* raw = map.get();
  maps_.emplace(id, std::move(map));
  return raw;
}

ObjId Kernel::alloc_prog_obj(const std::string& name) {
  return slab.alloc(nullptr, ObjKind::kProg,
                    "prog " + std::to_string(next_prog_id_) + " '" + name + "'");
}

BpfProg* Kernel::adopt_prog(std::unique_ptr<BpfProg> prog, std::vector<BpfMap*> used_maps) {
  SIM_ASSERT(prog->id == next_prog_id_, "prog id {} out of order (next {})", prog->id,
             next_prog_id_);
  ++next_prog_id_;
  for (BpfMap* m : used_maps)
    sys.map_inc(nullptr, *m);
  prog->used_maps = std::move(used_maps);
  BpfProg* raw = prog.get();
  sim.emit(nullptr, "prog_load", {{"prog", raw->id}, {"name", raw->name}});
  progs_.emplace(raw->id, std::move(prog));
  return raw;
}

NativeProg* Kernel::create_native_prog(std::string name, NativeProg::Entry entry,
                                       std::vector<NativeProg::Callback> callbacks,
                                       std::vector<BpfMap*> used_maps) {
  const ObjId obj = alloc_prog_obj(name);
  auto prog = std::make_unique<NativeProg>(*this, std::move(name), obj, next_prog_id_,
                                           std::move(entry), std::move(callbacks));
  NativeProg* raw = prog.get();
  adopt_prog(std::move(prog), std::move(used_maps));
  return raw;
}

BpfMap* Kernel::map_by_id(std::uint32_t id) const {
  auto it = maps_.find(id);
  return it == maps_.end() ? nullptr : it->second.get();
}

BpfMap* Kernel::map_by_addr(std::uint64_t addr) const {
  auto it = handle_to_map_.find(addr);
  return it == handle_to_map_.end() ? nullptr : map_by_id(it->second);
}

BpfProg* Kernel::prog_by_id(std::uint32_t id) const {
  auto it = progs_.find(id);
  return it == progs_.end() ? nullptr : it->second.get();
}

void Kernel::own_region(std::uint32_t region, std::uint32_t map_id) {
  if (region_map_.size() <= region) region_map_.resize(region + 1, 0);
  region_map_[region] = map_id;
}

std::optional<Kernel::ValueRef> Kernel::resolve(std::uint64_t addr) const {
  const std::uint32_t region = AddressSpace::region_of(addr);
  if (region >= region_map_.size() || region_map_[region] == 0) return std::nullopt;
  BpfMap* map = map_by_id(region_map_[region]);
  std::uint32_t off = 0;
  auto elem = map->arena().index_of(addr, &off);
  if (!elem) return std::nullopt;
  return ValueRef{map, *elem, off};
}

std::uint8_t* Kernel::ptr(sim::Context* ctx, std::uint64_t addr, std::uint32_t size, bool write,
                          const char* what) {
  std::string why;
  std::uint8_t* p = mem.translate(addr, size, write, &why);
  if (!p) program_fault(ctx, fmt::format("{}: {} bytes at {:#x}: {}", what, size, addr, why));
  return p;
}

KLock& Kernel::value_lock(std::uint64_t addr, std::uint8_t* word, const char* kind) {
  auto& slot = value_locks_[addr];
  if (!slot) {
    slot = std::make_unique<KLock>();
    slot->kind = kind;
    slot->id = addr;
    slot->word = word;
  }
  return *slot;
}

KLock& Kernel::timer_lock(std::uint64_t timer_addr, std::uint8_t* field) {
  auto ref = resolve(timer_addr);
  SIM_ASSERT(ref.has_value(), "timer lock at {:#x} outside every map", timer_addr);
  return ref->map->arena().timer_lock(ref->elem, timer_addr, field);
}

sim::Co<std::int64_t> Kernel::run_prog(sim::Context& ctx, BpfProg& prog,
                                       std::array<std::uint64_t, 5> args) {
  slab.access(&ctx, prog.obj, "bpf_prog_run");
  rcu.read_lock(ctx);
  ctx.trace("bpf_prog_run", {{"prog", prog.id}, {"name", prog.name}});
  push_bpf_frame(ctx, BpfFrame{prog.name, "", "", ""});
  const std::int64_t r = co_await prog.run(ctx, args);
  pop_bpf_frame(ctx);
  ctx.trace("bpf_prog_ret", {{"prog", prog.id}, {"ret", r}});
  rcu.read_unlock(ctx);
  co_return r;
}

Kernel::BpfFrame* Kernel::top_bpf_frame(std::uint32_t ctx_id) {
  for (auto it = bpf_frames_.rbegin(); it != bpf_frames_.rend(); ++it)
    if (it->first == ctx_id) return &it->second;
  return nullptr;
}

void Kernel::note_bpf_pc(const sim::Context& ctx, const ProgSpec* code, std::uint32_t pc) {
  BpfFrame* top = top_bpf_frame(ctx.id());
  if (top == nullptr) return;
  top->code = code;
  top->pc = pc;
}

void Kernel::pop_bpf_frame(const sim::Context& ctx) {
  for (auto it = bpf_frames_.rbegin(); it != bpf_frames_.rend(); ++it) {
    if (it->first != ctx.id()) continue;
    bpf_frames_.erase(std::next(it).base());
    return;
  }
}

std::string Kernel::element_text(std::uint64_t addr) const {
  const auto ref = resolve(addr);
  if (!ref || ref->map == nullptr) return "";
  const BpfMap& m = *ref->map;
  std::string key;
  if (m.def.type == kBpfMapTypeArray) {
    key = std::to_string(ref->elem);
  } else if (m.value_off() >= m.def.key_size) {
    const std::uint8_t* e = m.arena().elem(ref->elem);
    key = "0x";
    for (std::uint32_t i = 0; i < m.def.key_size; ++i)
      append_hex_byte(key, e[i]);
  } else {
    key = "?";
  }
  std::string s = m.def.name + "[" + key + "]";
  if (ref->off > m.value_off()) s += "+" + std::to_string(ref->off - m.value_off());
  return s;
}

namespace {

// An array's key (4 bytes, the index) as its number; nullopt for another map or an unreadable key.
std::optional<std::uint32_t> array_index_at(const AddressSpace& mem, const BpfMap& map,
                                            std::uint64_t key_addr) {
  if (map.def.type != kBpfMapTypeArray || map.def.key_size != 4) return std::nullopt;
  const std::uint8_t* p = mem.translate(key_addr, 4, false, nullptr);
  if (p == nullptr) return std::nullopt;
  std::uint32_t v = 0;
  std::memcpy(&v, p, 4);
  return v;
}

}  // namespace

std::string Kernel::key_text(const BpfMap& map, std::uint64_t key_addr) const {
  if (const auto index = array_index_at(mem, map, key_addr)) return std::to_string(*index);
  const std::uint8_t* p = mem.translate(key_addr, map.def.key_size, false, nullptr);
  if (p == nullptr) return "";
  std::string s = "0x";
  for (std::uint32_t i = 0; i < map.def.key_size; ++i)
    append_hex_byte(s, p[i]);
  return s;
}

void Kernel::set_frame_key(BpfFrame& f, const BpfMap& map, std::uint64_t key_addr) const {
  if (const auto index = array_index_at(mem, map, key_addr)) {
    f.index = *index;
    f.key_is_index = true;
  } else {
    f.key = key_text(map, key_addr);
  }
}

void Kernel::queue_work(int cpu, std::string name, std::function<sim::Co<void>(sim::Context&)> fn) {
  queue_work_on(sim.config().choose_work_cpu, cpu, std::move(name), std::move(fn));
}

void Kernel::queue_work_unbound(int cpu, std::string name,
                                std::function<sim::Co<void>(sim::Context&)> fn) {
  queue_work_on(true, cpu, std::move(name), std::move(fn));
}

void Kernel::queue_work_on(bool any_cpu, int cpu, std::string name,
                           std::function<sim::Co<void>(sim::Context&)> fn) {
  if (any_cpu && sim.ncpus() > 1) {
    // Where the work runs is the scheduler's: the asked CPU is the default candidate.
    std::vector<sim::Candidate> cpus;
    for (int i = 0; i < sim.ncpus(); ++i) {
      const int c = (cpu + i) % sim.ncpus();
      const std::uint64_t k = sim::Hasher().str("cpu").u64(static_cast<std::uint64_t>(c)).value();
      cpus.push_back(sim::Candidate{k, k});
    }
    const sim::Context* cur = sim.current();
    const std::uint64_t key =
        sim::Hasher().str("work").str(name).u64(cur ? cur->step_key() : 0).value();
    cpu = (cpu + static_cast<int>(sim.scheduler().choose(sim::DecisionKind::kCpu, key, cpus))) %
          sim.ncpus();
  }
  sim.emit(nullptr, "queue_work", {{"cpu", cpu}, {"work", name}});
  sim.spawn_task(cpu, "kworker/" + std::to_string(cpu) + ": " + name, std::move(fn));
}

void Kernel::program_fault(const sim::Context* ctx, std::string message) {
  sim.report(sim::Finding{.kind = sim::FindingKind::kProgramFault,
                          .message = std::move(message),
                          .cpu = ctx ? ctx->cpu() : -1},
             true);
}

void Kernel::refcount_underflow(const sim::Context* ctx, ObjId obj, const std::string& what) {
  sim.report(slab.finding_about(sim::FindingKind::kRefcountUnderflow, ctx, obj, what.c_str(),
                                fmt::format("{} of {} went below zero", what,
                                            slab.find(obj) ? slab.name(obj) : "?")),
             false);
}

std::set<ObjId> Kernel::reachable() const {
  std::set<ObjId> seen;
  sim::Fifo<const BpfMap*> maps;
  sim::Fifo<const BpfProg*> progs;
  auto add_map = [&](const BpfMap* m) {
    if (m && !m->freed && seen.insert(m->obj).second) maps.push_back(m);
  };
  auto add_prog = [&](const BpfProg* p) {
    if (p && !p->freed && seen.insert(p->obj).second) progs.push_back(p);
  };
  for (const auto& [pid, proc] : sys.processes())
    for (const auto& [fd, e] : proc.fds) {
      add_map(e.map);
      add_prog(e.prog);
    }
  for (const auto& [path, pin] : sys.pins()) {
    add_map(pin.map);
    add_prog(pin.prog);
  }
  while (!maps.empty() || !progs.empty()) {
    if (!maps.empty()) {
      const BpfMap* m = maps.front();
      maps.pop_front();
      m->for_each_inner([&](BpfMap* inner) { add_map(inner); });
      m->for_each_value([&](std::uint64_t, std::uint8_t* value) {
        if (!m->has_timer()) return;
        std::uint64_t ptr;
        std::memcpy(&ptr, value + m->def.timer_off, 8);
        if (ptr < kBpfHrtimerPtrBase || (ptr - kBpfHrtimerPtrBase) % 256) return;
        const BpfHrtimer* t = timers.all().find((ptr - kBpfHrtimerPtrBase) / 256);
        if (!t || !slab.live(t->obj())) return;
        seen.insert(t->obj());
        add_prog(t->prog);
      });
      continue;
    }
    const BpfProg* p = progs.front();
    progs.pop_front();
    for (const BpfMap* m : p->used_maps)
      add_map(m);
  }
  return seen;
}

void Kernel::check_quiescence() {
  std::set<ObjId> keep = reachable();
  // An owned object (a non-preallocated hash element) is reachable through its reachable owner.
  for (ObjId id : slab.live_objects()) {
    const ObjId owner = slab.owner(id);
    if (owner != 0 && slab.live(owner) && keep.count(owner)) keep.insert(id);
  }
  slab.report_leaks(keep);
}

std::vector<std::string> Kernel::invariant_violations(bool quiescent) const {
  std::vector<std::string> out;
  hrtimers.check_invariants();
  hrtimers.for_each_queued([&](const HrTimer& t) {
    if (!slab.live(t.owner) && slab.uaf_count() == 0)
      out.push_back(fmt::format("freed bpf_hrtimer {} is still queued", t.owner));
  });
  if (!quiescent) return out;
  std::map<const BpfMap*, std::int64_t> uref, ref;
  std::map<const BpfProg*, std::int64_t> pref;
  for (const auto& [pid, proc] : sys.processes())
    for (const auto& [fd, e] : proc.fds) {
      if (e.map) {
        ++uref[e.map];
        ++ref[e.map];
      }
      if (e.prog) ++pref[e.prog];
    }
  for (const auto& [path, pin] : sys.pins()) {
    if (pin.map) {
      ++uref[pin.map];
      ++ref[pin.map];
    }
    if (pin.prog) ++pref[pin.prog];
  }
  for (const auto& [id, p] : progs_)
    if (!p->freed)
      for (const BpfMap* m : p->used_maps)
        ++ref[m];
  for (const auto& [id, m] : maps_)
    if (!m->freed) m->for_each_inner([&](BpfMap* inner) { ++ref[inner]; });
  timers.all().for_each([&](const BpfHrtimer& t) {
    if (slab.live(t.obj()) && t.prog) ++pref[t.prog];
  });
  for (const auto& [id, m] : maps_) {
    if (m->freed) continue;
    if (m->usercnt != uref[m.get()])
      out.push_back(
          fmt::format("map {} usercnt {} but {} user references", id, m->usercnt, uref[m.get()]));
    if (m->refcnt != ref[m.get()])
      out.push_back(fmt::format("map {} refcnt {} but {} holders", id, m->refcnt, ref[m.get()]));
  }
  for (const auto& [id, p] : progs_) {
    if (p->freed) continue;
    if (p->refcnt != pref[p.get()])
      out.push_back(fmt::format("prog {} refcnt {} but {} holders", id, p->refcnt, pref[p.get()]));
  }
  return out;
}

}  // namespace bpftsim::model
