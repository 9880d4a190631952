#include "model/syscall.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <string_view>

#include "model/errno.h"
#include "model/kernel.h"
#include "model/uapi.h"
#include "sim/assert.h"

namespace bpftsim::model {

namespace {

// A counter track's trace key, "counter:<kind><id>.<what>" ("counter:map3.refcnt"). Ids restart
// at 1 in every run, so the keys of the first kCachedIds ids are made once per thread and kept
// (text and id); a larger id's key is built in place (no heap string per record), and lives until
// the end of the emitting statement's scope.
enum class Counter : std::uint8_t { kMapRefcnt, kMapUsercnt, kProgRefcnt };

class CounterKey {
 public:
  CounterKey(Counter which, std::uint32_t id) {
    if (id < kCachedIds) {
      key_ = cached(which, id);
      return;
    }
    key_ = sim::TraceKey(std::string_view(buf_, build(which, id, buf_)));
  }
  sim::TraceKey key() const { return key_; }

 private:
  static constexpr std::uint32_t kCachedIds = 64;
  static constexpr std::size_t kMaxLen = 48;  // "counter:" + "prog" + 10 digits + ".usercnt"

  // Writes the text into out (kMaxLen bytes); returns its length.
  static std::size_t build(Counter which, std::uint32_t id, char* out) {
    constexpr std::string_view kPrefix = "counter:";
    const std::string_view kind = which == Counter::kProgRefcnt ? "prog" : "map";
    const std::string_view what = which == Counter::kMapUsercnt ? "usercnt" : "refcnt";
    char* p = out;
    p = std::copy(kPrefix.begin(), kPrefix.end(), p);
    p = std::copy(kind.begin(), kind.end(), p);
    p = std::to_chars(p, out + kMaxLen, id).ptr;
    *p++ = '.';
    p = std::copy(what.begin(), what.end(), p);
    return static_cast<std::size_t>(p - out);
  }

  static sim::TraceKey cached(Counter which, std::uint32_t id) {
    struct Entry {
      std::string text;
      sim::TraceKey key{""};
    };
    thread_local std::array<Entry, 3 * kCachedIds> cache;
    Entry& e = cache[static_cast<std::size_t>(which) * kCachedIds + id];
    if (e.text.empty()) {
      char buf[kMaxLen];
      e.text.assign(buf, build(which, id, buf));
      e.key = sim::TraceKey(std::string_view(e.text));
    }
    return e.key;
  }

  char buf_[kMaxLen];
  sim::TraceKey key_{""};
};

}  // namespace

Process& Syscalls::new_process(std::string name) {
  const int pid = next_pid_++;
  Process& p = procs_[pid];
  p.pid = pid;
  p.name = std::move(name);
  return p;
}

Process* Syscalls::process(int pid) {
  auto it = procs_.find(pid);
  return it == procs_.end() ? nullptr : &it->second;
}

int Syscalls::install(Process& p, FdEntry e) {
  const int fd = p.next_fd++;
  p.fds.emplace(fd, e);
  return fd;
}

FdEntry* Syscalls::fd_entry(Process& p, int fd, FdEntry::Kind kind) {
  auto it = p.fds.find(fd);
  if (it == p.fds.end() || it->second.kind != kind) return nullptr;
  return &it->second;
}

int Syscalls::map_create(Process& p, BpfMap* map) {
  // The creating fd holds the initial refcnt and usercnt (both 1).
  return install(p, FdEntry{FdEntry::Kind::kMap, map, nullptr});
}

int Syscalls::prog_load(Process& p, BpfProg* prog) {
  return install(p, FdEntry{FdEntry::Kind::kProg, nullptr, prog});
}

void Syscalls::map_inc(const sim::Context* ctx, BpfMap& map) {
  k_.slab.access(ctx, map.obj, "bpf_map_inc");
  ++map.refcnt;
  k_.slab.note(ctx, map.obj, "refcnt+1 -> {}", map.refcnt);
  k_.sim.emit(ctx, "map_refcnt",
              {{"map", map.id},
               {"refcnt", map.refcnt},
               {"usercnt", map.usercnt},
               {CounterKey(Counter::kMapRefcnt, map.id).key(), map.refcnt},
               {CounterKey(Counter::kMapUsercnt, map.id).key(), map.usercnt}});
}

void Syscalls::map_inc_with_uref(const sim::Context* ctx, BpfMap& map) {
  k_.slab.access(ctx, map.obj, "bpf_map_inc_with_uref");
  ++map.refcnt;
  ++map.usercnt;
  k_.slab.note(ctx, map.obj, "refcnt+1 usercnt+1 -> {}/{}", map.refcnt, map.usercnt);
  k_.sim.emit(ctx, "map_refcnt",
              {{"map", map.id},
               {"refcnt", map.refcnt},
               {"usercnt", map.usercnt},
               {CounterKey(Counter::kMapRefcnt, map.id).key(), map.refcnt},
               {CounterKey(Counter::kMapUsercnt, map.id).key(), map.usercnt}});
}

// bpf_map_put: the last reference frees the map from a workqueue (bpf_map_free_deferred).
sim::Co<void> Syscalls::map_put(sim::Context& ctx, BpfMap& map) {
  if (!k_.slab.access(&ctx, map.obj, "bpf_map_put")) co_return;
  --map.refcnt;
  k_.slab.note(&ctx, map.obj, "refcnt-1 -> {}", map.refcnt);
  ctx.trace("map_refcnt", {{"map", map.id},
                           {"refcnt", map.refcnt},
                           {"usercnt", map.usercnt},
                           {CounterKey(Counter::kMapRefcnt, map.id).key(), map.refcnt},
                           {CounterKey(Counter::kMapUsercnt, map.id).key(), map.usercnt}});
  if (map.refcnt < 0) k_.refcount_underflow(&ctx, map.obj, "map refcnt");
  co_await ctx.step(k_.cost.refcnt_ns);
  if (map.refcnt != 0) co_return;
  BpfMap* m = &map;
  k_.queue_work(ctx.cpu(), "bpf_map_free_deferred map " + std::to_string(map.id),
                [this, m](sim::Context& c) -> sim::Co<void> {
                  co_await m->free(c);
                  m->freed = true;
                  k_.slab.free(&c, m->obj, "bpf_map_free_deferred");
                  co_await c.step(k_.cost.alloc_ns);
                });
}

// bpf_map_put_with_uref: usercnt reaching zero runs map_release_uref right here.
sim::Co<void> Syscalls::map_put_with_uref(sim::Context& ctx, BpfMap& map) {
  if (!k_.slab.access(&ctx, map.obj, "bpf_map_put_with_uref")) co_return;
  --map.usercnt;
  k_.slab.note(&ctx, map.obj, "usercnt-1 -> {}", map.usercnt);
  ctx.trace("map_usercnt", {{"map", map.id},
                            {"usercnt", map.usercnt},
                            {CounterKey(Counter::kMapUsercnt, map.id).key(), map.usercnt}});
  if (map.usercnt < 0) k_.refcount_underflow(&ctx, map.obj, "map usercnt");
  co_await ctx.step(k_.cost.refcnt_ns);
  if (map.usercnt == 0) {
    ctx.trace("map_release_uref", {{"map", map.id}});
    co_await map.release_uref(ctx);
  }
  co_await map_put(ctx, map);
}

void Syscalls::prog_inc(const sim::Context* ctx, BpfProg& prog) {
  k_.slab.access(ctx, prog.obj, "bpf_prog_inc");
  ++prog.refcnt;
  k_.slab.note(ctx, prog.obj, "refcnt+1 -> {}", prog.refcnt);
  k_.sim.emit(ctx, "prog_refcnt",
              {{"prog", prog.id},
               {"refcnt", prog.refcnt},
               {CounterKey(Counter::kProgRefcnt, prog.id).key(), prog.refcnt}});
}

int Syscalls::prog_inc_not_zero(const sim::Context* ctx, BpfProg& prog) {
  if (prog.refcnt <= 0) return -kENOENT;
  prog_inc(ctx, prog);
  return 0;
}

// bpf_prog_put: the last reference frees the program after an RCU grace period, then puts the
// maps it used.
sim::Co<void> Syscalls::prog_put(sim::Context& ctx, BpfProg& prog) {
  if (!k_.slab.access(&ctx, prog.obj, "bpf_prog_put")) co_return;
  --prog.refcnt;
  k_.slab.note(&ctx, prog.obj, "refcnt-1 -> {}", prog.refcnt);
  ctx.trace("prog_refcnt", {{"prog", prog.id},
                            {"refcnt", prog.refcnt},
                            {CounterKey(Counter::kProgRefcnt, prog.id).key(), prog.refcnt}});
  if (prog.refcnt < 0) k_.refcount_underflow(&ctx, prog.obj, "prog refcnt");
  co_await ctx.step(k_.cost.refcnt_ns);
  if (prog.refcnt != 0) co_return;
  BpfProg* p = &prog;
  k_.rcu.call_rcu(ctx, "__bpf_prog_put_rcu prog " + std::to_string(prog.id),
                  [this, p](sim::Context& c) -> sim::Co<void> {
                    p->freed = true;
                    k_.slab.free(&c, p->obj, "bpf_prog_free");
                    co_await c.step(k_.cost.alloc_ns);
                    auto maps = std::move(p->used_maps);
                    p->used_maps.clear();
                    for (BpfMap* m : maps)
                      co_await map_put(c, *m);
                  });
}

sim::Co<int> Syscalls::close(sim::Context& ctx, Process& p, int fd) {
  co_await ctx.step(k_.cost.syscall_ns);
  auto it = p.fds.find(fd);
  if (it == p.fds.end()) co_return -kEBADF;
  const FdEntry e = it->second;
  p.fds.erase(it);
  ctx.trace("close", {{"pid", p.pid}, {"fd", fd}});
  switch (e.kind) {
    case FdEntry::Kind::kMap:
      co_await map_put_with_uref(ctx, *e.map);
      break;
    case FdEntry::Kind::kProg:
    case FdEntry::Kind::kLink:
      co_await prog_put(ctx, *e.prog);
      break;
  }
  co_return 0;
}

sim::Co<int> Syscalls::obj_pin(sim::Context& ctx, Process& p, int fd, const std::string& path) {
  co_await ctx.step(k_.cost.syscall_ns);
  auto it = p.fds.find(fd);
  if (it == p.fds.end() || it->second.kind == FdEntry::Kind::kLink) co_return -kEBADF;
  if (pins_.count(path)) co_return -kEEXIST;
  const FdEntry e = it->second;
  if (e.kind == FdEntry::Kind::kMap) {
    map_inc_with_uref(&ctx, *e.map);
    pins_[path] = Pin{e.map, nullptr};
  } else {
    prog_inc(&ctx, *e.prog);
    pins_[path] = Pin{nullptr, e.prog};
  }
  ctx.trace("bpf_obj_pin", {{"path", path}});
  co_return 0;
}

// unlink in bpffs: v5.15 drops the pinned reference from the inode's RCU callback (free_inode),
// i.e. in softirq context one grace period later.
sim::Co<int> Syscalls::unlink(sim::Context& ctx, const std::string& path) {
  co_await ctx.step(k_.cost.syscall_ns);
  auto it = pins_.find(path);
  if (it == pins_.end()) co_return -kENOENT;
  const Pin pin = it->second;
  pins_.erase(it);
  ctx.trace("bpffs_unlink", {{"path", path}});
  k_.rcu.call_rcu(ctx, fmt::format("bpf_free_inode {}", path),
                  [this, pin](sim::Context& c) -> sim::Co<void> {
                    if (pin.map) co_await map_put_with_uref(c, *pin.map);
                    if (pin.prog) co_await prog_put(c, *pin.prog);
                  });
  co_return 0;
}

sim::Co<int> Syscalls::obj_get(sim::Context& ctx, Process& p, const std::string& path) {
  co_await ctx.step(k_.cost.syscall_ns);
  auto it = pins_.find(path);
  if (it == pins_.end()) co_return -kENOENT;
  const Pin pin = it->second;
  if (pin.map) {
    map_inc_with_uref(&ctx, *pin.map);
    co_return install(p, FdEntry{FdEntry::Kind::kMap, pin.map, nullptr});
  }
  prog_inc(&ctx, *pin.prog);
  co_return install(p, FdEntry{FdEntry::Kind::kProg, nullptr, pin.prog});
}

// BPF_MAP_GET_FD_BY_ID: __bpf_map_inc_not_zero(map, true) -- refcnt only if non-zero, and
// usercnt unconditionally, so usercnt can come back from zero.
sim::Co<int> Syscalls::map_get_fd_by_id(sim::Context& ctx, Process& p, std::uint32_t id) {
  co_await ctx.step(k_.cost.syscall_ns);
  BpfMap* map = k_.map_by_id(id);
  if (!map || map->freed || map->refcnt == 0) co_return -kENOENT;
  map_inc_with_uref(&ctx, *map);
  co_return install(p, FdEntry{FdEntry::Kind::kMap, map, nullptr});
}

sim::Co<int> Syscalls::map_lookup_elem(sim::Context& ctx, Process& p, int fd,
                                       const std::vector<std::uint8_t>& key,
                                       std::vector<std::uint8_t>* value) {
  co_await ctx.step(k_.cost.syscall_ns);
  FdEntry* e = fd_entry(p, fd, FdEntry::Kind::kMap);
  if (!e) co_return -kEBADF;
  BpfMap& map = *e->map;
  if (key.size() != map.def.key_size) co_return -kEINVAL;
  k_.rcu.read_lock(ctx);
  const std::uint64_t addr = co_await map.lookup_elem(ctx, key.data());
  int ret = -kENOENT;
  if (addr != 0 && map.def.type != kBpfMapTypeArrayOfMaps &&
      map.def.type != kBpfMapTypeHashOfMaps) {
    const std::uint8_t* src = k_.ptr(&ctx, addr, map.def.value_size, false, "map_lookup_elem");
    if (src) {
      value->assign(map.def.value_size, 0);
      copy_map_value(map.def, value->data(), src);  // check_and_init_map_value on the copy
      if (map.def.timer_off >= 0) std::fill_n(value->begin() + map.def.timer_off, 16, 0);
      if (map.def.spin_lock_off >= 0) std::fill_n(value->begin() + map.def.spin_lock_off, 4, 0);
      ret = 0;
    }
  } else if (addr != 0) {
    BpfMap* inner = k_.map_by_addr(addr);
    const std::uint32_t inner_id = inner ? inner->id : 0;
    value->assign(4, 0);
    std::memcpy(value->data(), &inner_id, 4);
    ret = 0;
  }
  k_.rcu.read_unlock(ctx);
  co_return ret;
}

sim::Co<int> Syscalls::map_update_elem(sim::Context& ctx, Process& p, int fd,
                                       const std::vector<std::uint8_t>& key,
                                       const std::vector<std::uint8_t>& value,
                                       std::uint64_t flags) {
  co_await ctx.step(k_.cost.syscall_ns);
  FdEntry* e = fd_entry(p, fd, FdEntry::Kind::kMap);
  if (!e) co_return -kEBADF;
  BpfMap& map = *e->map;
  const bool of_maps =
      map.def.type == kBpfMapTypeArrayOfMaps || map.def.type == kBpfMapTypeHashOfMaps;
  if (key.size() != map.def.key_size || value.size() != (of_maps ? 4u : map.def.value_size))
    co_return -kEINVAL;
  std::vector<std::uint8_t> v = value;
  if (of_maps) {
    // The value is an inner map fd of this process: pass its map id to the map.
    std::int32_t inner_fd;
    std::memcpy(&inner_fd, v.data(), 4);
    FdEntry* inner = fd_entry(p, inner_fd, FdEntry::Kind::kMap);
    if (!inner) co_return -kEBADF;
    const std::uint32_t inner_id = inner->map->id;
    std::memcpy(v.data(), &inner_id, 4);
  }
  // bpf_disable_instrumentation + rcu_read_lock around the map op, as map_update_elem does.
  k_.rcu.read_lock(ctx);
  const int ret = co_await map.update_elem(ctx, key.data(), v.data(), flags);
  k_.rcu.read_unlock(ctx);
  co_return ret;
}

sim::Co<int> Syscalls::map_delete_elem(sim::Context& ctx, Process& p, int fd,
                                       const std::vector<std::uint8_t>& key) {
  co_await ctx.step(k_.cost.syscall_ns);
  FdEntry* e = fd_entry(p, fd, FdEntry::Kind::kMap);
  if (!e) co_return -kEBADF;
  if (key.size() != e->map->def.key_size) co_return -kEINVAL;
  k_.rcu.read_lock(ctx);
  const int ret = co_await e->map->delete_elem(ctx, key.data());
  k_.rcu.read_unlock(ctx);
  co_return ret;
}

sim::Co<int> Syscalls::prog_test_run(sim::Context& ctx, Process& p, int fd,
                                     std::array<std::uint64_t, 5> args, std::int64_t* retval) {
  co_await ctx.step(k_.cost.syscall_ns);
  FdEntry* e = fd_entry(p, fd, FdEntry::Kind::kProg);
  if (!e) co_return -kEBADF;
  const std::int64_t r = co_await k_.run_prog(ctx, *e->prog, args);
  if (retval) *retval = r;
  co_return 0;
}

sim::Co<int> Syscalls::link_create(sim::Context& ctx, Process& p, int prog_fd) {
  co_await ctx.step(k_.cost.syscall_ns);
  FdEntry* e = fd_entry(p, prog_fd, FdEntry::Kind::kProg);
  if (!e) co_return -kEBADF;
  prog_inc(&ctx, *e->prog);
  co_return install(p, FdEntry{FdEntry::Kind::kLink, nullptr, e->prog});
}

sim::Co<void> Syscalls::exit(sim::Context& ctx, Process& p) {
  ctx.trace("process_exit", {{"pid", p.pid}});
  while (!p.fds.empty()) {
    const int fd = p.fds.begin()->first;
    co_await close(ctx, p, fd);
  }
  p.exited = true;
}

Syscalls::~Syscalls() {
  for (auto& [key, task] : tasks_)
    k_.mem.retire(task.region);
}

void Syscalls::set_current(const sim::Context& ctx, Process& p) {
  current_[ctx.id()] = p.pid;
}

Process* Syscalls::current(const sim::Context& ctx) {
  auto it = current_.find(ctx.id());
  return it == current_.end() ? nullptr : process(it->second);
}

std::uint64_t Syscalls::task_struct_addr(const Process* p, int cpu) {
  const std::pair<int, int> key{p ? p->pid : 0, p ? -1 : cpu};
  auto it = tasks_.find(key);
  if (it == tasks_.end()) {
    auto t = std::make_unique<TaskStruct>();
    t->pid = key.first;
    t->tgid = key.first;
    const std::string comm = p ? p->name : "swapper/" + std::to_string(cpu);
    std::memcpy(t->comm, comm.data(), std::min(comm.size(), sizeof(t->comm) - 1));
    const std::uint32_t region =
        k_.mem.add(RegionKind::kKernelObject,
                   "task_struct of pid " + std::to_string(key.first) + " (" + comm + ")",
                   reinterpret_cast<std::uint8_t*>(t.get()), sizeof(TaskStruct), false);
    it = tasks_.emplace(key, Task{std::move(t), region}).first;
  }
  return AddressSpace::base(it->second.region);
}

namespace {
// The hrtimer_sleeper's wake-up: a timed event that wakes the sleeping task.
struct Sleeper {
  sim::WaitQueue wq;
  bool expired = false;
};
}  // namespace

sim::Co<int> Syscalls::nanosleep(sim::Context& ctx, Process& p, sim::TimeNs ns) {
  co_await ctx.step(k_.cost.syscall_ns);
  const std::uint64_t sleeper = next_sleeper_++;
  // do_nanosleep(struct hrtimer_sleeper *t, enum hrtimer_mode mode): HRTIMER_MODE_REL.
  const std::array<std::uint64_t, 5> args{sleeper, 1, 0, 0, 0};
  co_await k_.hooks.function_entry(ctx, "do_nanosleep", args);
  ctx.trace("do_nanosleep", {{"pid", p.pid}, {"ns", ns}});
  auto s = std::make_shared<Sleeper>();
  if (ns > 0) {
    TaskStruct* t = nullptr;
    if (auto it = tasks_.find({p.pid, -1}); it != tasks_.end()) t = it->second.t.get();
    if (t) t->state = 1;
    k_.sim.at(sim::add_sat(ctx.now(), ns), (std::uint64_t{3} << 32) | sleeper,
              [s](sim::Simulator&) {
                s->expired = true;
                s->wq.wake_all();
              });
    while (!s->expired)
      co_await ctx.block(s->wq, sim::WaitFor{"do_nanosleep", "hrtimer_sleeper", sleeper, nullptr});
    if (t) t->state = 0;
  }
  co_await k_.hooks.function_exit(ctx, "do_nanosleep", args, 0);
  co_await ctx.step(k_.cost.syscall_ns);
  co_return 0;
}

}  // namespace bpftsim::model
