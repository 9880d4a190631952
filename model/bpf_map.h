// struct bpf_map (include/linux/bpf.h) and its reference counting (kernel/bpf/syscall.c):
// `refcnt` keeps the map alive; `usercnt` counts user-space holders (fds, bpffs pins) and, when
// it drops to zero, map_release_uref cancels and frees every timer of the map. Map types implement
// the operations of struct bpf_map_ops as coroutines, so each lock and each timer cancel inside a
// map operation is its own step.
//
// Map memory: values (and, for hash maps, keys) live in a ValueArena registered in the kernel's
// AddressSpace, so BPF programs and helpers address them exactly like the VM does. Element
// memory is never given back while the map lives (preallocated maps reuse elements; non-
// preallocated elements are never reused by the model), so stale pointers stay inspectable.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/bpf_vm.h"
#include "model/slab.h"
#include "model/spinlock.h"
#include "model/uapi.h"
#include "sim/co.h"
#include "sim/context.h"

namespace bpftsim::model {

class Kernel;

struct MapDef {
  std::string name;
  std::uint32_t type = 0;  // kBpfMapType* (model/uapi.h)
  std::uint32_t key_size = 4;
  std::uint32_t value_size = 0;
  std::uint32_t max_entries = 1;
  std::uint32_t map_flags = 0;
  std::int32_t timer_off = -1;      // struct bpf_timer in the value
  std::int32_t spin_lock_off = -1;  // struct bpf_spin_lock in the value
  std::shared_ptr<MapDef> inner;    // map-in-map: the inner map template
  // A global-data map (.data/.bss/.rodata as libbpf creates them): its memory is addressed as
  // global data (kGlobalData, or kRodata when map_flags has BPF_F_RDONLY_PROG).
  bool global_data = false;
};

// copy_map_value: copies a value, skipping the bpf_spin_lock and bpf_timer bytes. v5.15: when a
// value has both, only the lock is skipped, so the timer bytes are overwritten (reference 2.2);
// `skip_both` is the v5.17 fix.
void copy_map_value(const MapDef& def, std::uint8_t* dst, const std::uint8_t* src,
                    bool skip_both = false);

class ValueArena {
 public:
  ValueArena() = default;
  ValueArena(const ValueArena&) = delete;
  ValueArena& operator=(const ValueArena&) = delete;

  // `kind`: how BPF sees the memory; kRodata regions are never writable from BPF (the kernel
  // code paths write through host pointers and are unaffected).
  void init(Kernel& k, std::uint32_t owner_map_id, std::string name, std::uint32_t stride,
            std::uint32_t chunk_elems, RegionKind kind = RegionKind::kMapValue);
  std::uint32_t grow();  // adds a chunk; returns the index of its first element
  std::uint32_t size() const { return static_cast<std::uint32_t>(chunks_.size()) * chunk_elems_; }
  std::uint32_t stride() const { return stride_; }
  std::uint8_t* elem(std::uint32_t i) const;
  std::uint64_t addr(std::uint32_t i) const;
  // Element index and offset inside it for a guest address in this arena.
  std::optional<std::uint32_t> index_of(std::uint64_t addr, std::uint32_t* off) const;
  // The lock of the struct bpf_timer in element `i` (bpf_timer_kern.lock, 8 bytes into the
  // timer field; `timer_addr`/`field`: the field's guest address and bytes). It lives here, next
  // to the value, for the map's lifetime: created with the first use in its block of elements,
  // the same lock for every bpf_hrtimer the value holds in turn.
  KLock& timer_lock(std::uint32_t i, std::uint64_t timer_addr, std::uint8_t* field);

 private:
  Kernel* k_ = nullptr;
  std::uint32_t map_id_ = 0;
  std::string name_;
  std::uint32_t stride_ = 0;
  std::uint32_t chunk_elems_ = 0;
  RegionKind kind_ = RegionKind::kMapValue;
  std::vector<std::unique_ptr<std::uint8_t[]>> chunks_;
  std::vector<std::uint32_t> regions_;
  // By blocks of lock_block() elements (at most kTimerLockBlock, at most a chunk: a map of one
  // element makes one lock, not 256), each allocated on the first use of one of its locks (a
  // large map with a few timers pays for a few blocks, a dense one ~nothing beyond the locks).
  static constexpr std::uint32_t kTimerLockBlock = 256;
  std::uint32_t lock_block() const {
    return chunk_elems_ < kTimerLockBlock ? chunk_elems_ : kTimerLockBlock;
  }
  std::vector<std::unique_ptr<KLock[]>> timer_locks_;
};

class BpfMap {
 public:
  BpfMap(Kernel& k, MapDef def, ObjId obj, std::uint32_t id);
  virtual ~BpfMap();
  BpfMap(const BpfMap&) = delete;
  BpfMap& operator=(const BpfMap&) = delete;

  Kernel& k;
  const MapDef def;
  const ObjId obj;
  const std::uint32_t id;  // map id (BPF_MAP_GET_FD_BY_ID)
  std::int64_t refcnt = 1;
  std::int64_t usercnt = 1;
  std::uint64_t handle_addr = 0;  // what BPF sees as `struct bpf_map *`
  bool freed = false;

  bool has_timer() const { return def.timer_off >= 0; }
  const std::string& name() const { return def.name; }

  // --- struct bpf_map_ops ---
  // Address of the value for `key`, or 0.
  virtual sim::Co<std::uint64_t> lookup_elem(sim::Context& ctx, const std::uint8_t* key) = 0;
  virtual sim::Co<int> update_elem(sim::Context& ctx, const std::uint8_t* key,
                                   const std::uint8_t* value, std::uint64_t flags) = 0;
  virtual sim::Co<int> delete_elem(sim::Context& ctx, const std::uint8_t* key) = 0;
  // map_release_uref: usercnt reached zero.
  virtual sim::Co<void> release_uref(sim::Context& ctx) = 0;
  // map_free: refcnt reached zero (runs from a workqueue).
  virtual sim::Co<void> free(sim::Context& ctx) = 0;

  // The key bpf_timer_cb passes for the value at `value_addr` (array: a u32 index in a per-CPU
  // scratch slot; hash: the key stored in the element just before the value).
  virtual std::uint64_t callback_key(sim::Context& ctx, std::uint64_t value_addr) = 0;
  // Every value slot currently holding live data, in index order: (value address, bytes).
  virtual void for_each_value(
      const std::function<void(std::uint64_t, std::uint8_t*)>& fn) const = 0;
  // Map-in-map: the inner maps this map holds a reference on.
  virtual void for_each_inner(const std::function<void(BpfMap*)>&) const {}
  // Observer access for checkers and scenario expectations (no step, no side effect such as an
  // LRU touch): true when `key` has an element; *value gets its bytes as stored (map-in-map: the
  // u32 id of the inner map).
  virtual bool peek_elem(const std::uint8_t* key, std::vector<std::uint8_t>* value) const {
    (void)key;
    (void)value;
    return false;
  }
  // Address of the value of element `i` of the arena, and the arena itself.
  const ValueArena& arena() const { return arena_; }
  ValueArena& arena() { return arena_; }
  std::uint32_t value_off() const { return value_off_; }

 protected:
  ValueArena arena_;
  std::uint32_t value_off_ = 0;  // offset of the value inside an arena element
};

}  // namespace bpftsim::model
