// The Kernel: every modeled kernel object wired to one Simulator. It owns the address space that
// BPF programs see, the object allocator, RCU, the hrtimer bases, the BPF timer code, the maps,
// the programs and user space's processes, and it judges a run: invariants after steps,
// use-after-free / double free / refcount underflow as they happen, leaks at quiescence.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "model/arraymap.h"
#include "model/bpf_map.h"
#include "model/bpf_prog.h"
#include "model/bpf_timer.h"
#include "model/bpf_trace.h"
#include "model/bpf_vm.h"
#include "model/fault_inject.h"
#include "model/hashtab.h"
#include "model/hrtimer.h"
#include "model/libbpf_loader.h"
#include "model/profile.h"
#include "model/rcu.h"
#include "model/slab.h"
#include "model/spinlock.h"
#include "model/syscall.h"
#include "sim/simulator.h"

namespace bpftsim::model {

class Kernel {
 public:
  Kernel(sim::Simulator& sim, KernelProfile profile = default_profile(), CostModel cost = {});
  ~Kernel();
  Kernel(const Kernel&) = delete;
  Kernel& operator=(const Kernel&) = delete;

  sim::Simulator& sim;
  const KernelProfile profile;
  const CostModel cost;
  AddressSpace mem;
  Slab slab;
  Rcu rcu;
  // The timer unit of the profile's locking design (bpf_timer.h / bpf_async.h); before hrtimers:
  // the bases unlink queued timers when destroyed first.
  std::unique_ptr<BpfTimerOps> timers_unit;
  BpfTimerOps& timers;
  Hrtimers hrtimers;
  Syscalls sys;
  BpfTrace hooks;  // programs attached to kernel functions and tracepoints
  FaultInjection faults;

  // --- objects ---
  // Creates a map (BPF_MAP_CREATE's checks: a timer needs ARRAY/HASH/LRU_HASH, at most one).
  // Returns nullptr and *err (an -errno) on refusal.
  BpfMap* create_map(const sim::Context* ctx, const MapDef& def, int* err);
  NativeProg* create_native_prog(std::string name, NativeProg::Entry entry,
                                 std::vector<NativeProg::Callback> callbacks,
                                 std::vector<BpfMap*> used_maps);
  BpfProg* adopt_prog(std::unique_ptr<BpfProg> prog, std::vector<BpfMap*> used_maps);
  std::uint32_t next_prog_id() const { return next_prog_id_; }
  ObjId alloc_prog_obj(const std::string& name);
  BpfMap* map_by_id(std::uint32_t id) const;
  BpfMap* map_by_addr(std::uint64_t addr) const;  // from a `struct bpf_map *` value
  BpfProg* prog_by_id(std::uint32_t id) const;
  const std::map<std::uint32_t, std::unique_ptr<BpfMap>>& maps() const { return maps_; }
  const std::map<std::uint32_t, std::unique_ptr<BpfProg>>& progs() const { return progs_; }

  // --- memory ---
  struct ValueRef {
    BpfMap* map = nullptr;
    std::uint32_t elem = 0;  // arena element index
    std::uint32_t off = 0;   // offset inside the arena element
  };
  std::optional<ValueRef> resolve(std::uint64_t addr) const;
  void own_region(std::uint32_t region, std::uint32_t map_id);
  // Host memory for [addr, addr+size); on a bad address reports a program fault (stopping the run)
  // naming `what`, and returns nullptr.
  std::uint8_t* ptr(sim::Context* ctx, std::uint64_t addr, std::uint32_t size, bool write,
                    const char* what);
  std::uint64_t key_scratch(int cpu) const { return key_scratch_addr_[cpu]; }
  // The bpf_spin_lock whose 4-byte word is at `addr` in map memory (created on first use).
  KLock& value_lock(std::uint64_t addr, std::uint8_t* word, const char* kind);
  // The lock of the struct bpf_timer at `timer_addr` (bytes `field`), kept by the map's arena
  // (ValueArena::timer_lock); identified in traces by timer_addr + 8 like a value lock.
  KLock& timer_lock(std::uint64_t timer_addr, std::uint8_t* field);

  // --- execution ---
  // Runs `prog` as a BPF program invocation in `ctx` (rcu_read_lock around it, as bpf_prog_run).
  sim::Co<std::int64_t> run_prog(sim::Context& ctx, BpfProg& prog,
                                 std::array<std::uint64_t, 5> args);
  // queue_work on `cpu` (a kworker task) of a per-CPU workqueue (system_wq): the work runs on
  // `cpu`, unless the scenario lets the scheduler choose (work_on_any_cpu).
  void queue_work(int cpu, std::string name, std::function<sim::Co<void>(sim::Context&)> fn);
  // queue_work on an unbound workqueue (system_unbound_wq): the work runs on any CPU, always a
  // `cpu` decision of the scheduler (the queuing CPU its first candidate).
  void queue_work_unbound(int cpu, std::string name,
                          std::function<sim::Co<void>(sim::Context&)> fn);
  // A BPF program misbehaved: a program_fault finding that stops the run cleanly.
  void program_fault(const sim::Context* ctx, std::string message);
  // A refcount went below zero.
  void refcount_underflow(const sim::Context* ctx, ObjId obj, const std::string& what);

  // --- judging ---
  // Structural invariants: hrtimer queues in order; at quiescence also refcounts balanced with
  // their holders (fds, pins, links, timers, programs' used maps, outer maps). Returns what is
  // violated (empty when all hold).
  std::vector<std::string> invariant_violations(bool quiescent) const;
  // At quiescence: every allocated object that no user reference reaches is a leak finding.
  void check_quiescence();
  std::set<ObjId> reachable() const;
  std::size_t armed_timers() const { return hrtimers.armed(); }

  // Bytes of the maps and global data loaded from objects so far (model/bpf_object.cpp), against
  // kMaxLoadedMapBytes: the same object listed many times must not take the host's memory.
  std::uint64_t loaded_map_bytes = 0;
  // BPF instructions executed by every program of the run, against max_insns (a re-arming
  // callback spinning a million instructions per run must not take hours); reaching it ends the
  // run at a limit, with `insn_limit_hint` (how to raise it) in the message.
  std::uint64_t insns_executed = 0;
  std::uint64_t max_insns = 1'000'000'000;
  std::string_view insn_limit_hint;  // text that outlives the kernel (a literal)

  // What BPF code runs in each context, innermost last (a program run, a timer callback with its
  // map element): findings reported there name it (the simulator's finding hook).
  // The names are views of strings that live as long as the Kernel (a program's and a map's
  // name: programs and maps are never destroyed before it; a callback's name: BpfTimerOps keeps
  // it), so pushing a frame copies no text but the key.
  struct BpfFrame {
    std::string_view program;
    std::string_view callback;
    std::string_view map;
    std::string key;  // the key's text (key_text), unless key_is_index
    // An array's u32 key kept as its number, made text only when a finding reads it (every
    // callback pushes a frame; few findings are made).
    bool key_is_index = false;
    std::uint32_t index = 0;
    // The instruction running there: set by the VM at each helper call and at a fault, so that
    // a finding names its source line (BTF line info). nullptr until then.
    const ProgSpec* code = nullptr;
    std::uint32_t pc = 0;
  };
  void push_bpf_frame(const sim::Context& ctx, BpfFrame f) {
    bpf_frames_.emplace_back(ctx.id(), std::move(f));
  }
  void pop_bpf_frame(const sim::Context& ctx);
  void note_bpf_pc(const sim::Context& ctx, const ProgSpec* code, std::uint32_t pc);
  // What a pointer into map memory points at, as the user names it: "m[0]" (the value of
  // element 0 of map m), "h[0x0a000000]+8" (8 bytes into a hash element's value); "" if none.
  std::string element_text(std::uint64_t addr) const;
  // "0" (an array index) or "0x0a000000" (a hash key's bytes): the key at `key_addr` of `map`.
  std::string key_text(const BpfMap& map, std::uint64_t key_addr) const;
  // Sets a frame's key to the key at `key_addr` of `map`, as key_text would render it.
  void set_frame_key(BpfFrame& f, const BpfMap& map, std::uint64_t key_addr) const;

 private:
  void queue_work_on(bool any_cpu, int cpu, std::string name,
                     std::function<sim::Co<void>(sim::Context&)> fn);
  // The innermost frame of a context, or nullptr.
  BpfFrame* top_bpf_frame(std::uint32_t ctx_id);
  // Every context's frames in push order (few: one or two per running context); a context's own
  // frames are pushed and popped last-in first-out, so its innermost one is its last entry.
  std::vector<std::pair<std::uint32_t, BpfFrame>> bpf_frames_;
  std::map<std::uint32_t, std::unique_ptr<BpfMap>> maps_;
  std::map<std::uint32_t, std::unique_ptr<BpfProg>> progs_;
  std::uint32_t next_map_id_ = 1;
  std::uint32_t next_prog_id_ = 1;
  std::vector<std::uint32_t> region_map_;  // region id -> map id (0: not a map region)
  std::vector<std::uint8_t> key_scratch_mem_;
  std::vector<std::uint64_t> key_scratch_addr_;
  std::map<std::uint64_t, std::uint32_t> handle_to_map_;
  // Looked up by address only, never iterated (so an unordered map cannot change a result).
  std::unordered_map<std::uint64_t, std::unique_ptr<KLock>> value_locks_;
};

}  // namespace bpftsim::model
