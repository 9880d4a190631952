#include "model/arraymap.h"

#include <fmt/format.h>

#include <cstring>

#include "model/errno.h"
#include "model/kernel.h"
#include "model/uapi.h"
#include "sim/assert.h"

namespace bpftsim::model {

namespace {
std::uint32_t round_up8(std::uint32_t v) {
  return (v + 7) & ~7u;
}
// BPF_F_RDONLY_PROG (libbpf sets it on .rodata): BPF programs may only read the values.
RegionKind region_kind(const MapDef& def) {
  if (def.map_flags & kBpfFRdonlyProg) return RegionKind::kRodata;
  return def.global_data ? RegionKind::kGlobalData : RegionKind::kMapValue;
}
std::uint32_t load_u32(const std::uint8_t* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
}  // namespace

ArrayMap::ArrayMap(Kernel& kernel, MapDef d, ObjId o, std::uint32_t map_id)
    : BpfMap(kernel, std::move(d), o, map_id) {
  arena_.init(k, id, def.name, round_up8(def.value_size), def.max_entries, region_kind(def));
  arena_.grow();
}

sim::Co<std::uint64_t> ArrayMap::lookup_elem(sim::Context& ctx, const std::uint8_t* key) {
  const std::uint32_t index = load_u32(key);
  co_await ctx.step(k.cost.map_op_ns);
  if (index >= def.max_entries) co_return 0;
  co_return arena_.addr(index);
}

sim::Co<int> ArrayMap::update_elem(sim::Context& ctx, const std::uint8_t* key,
                                   const std::uint8_t* value, std::uint64_t flags) {
  const std::uint32_t index = load_u32(key);
  if ((flags & ~kBpfFLock) > kBpfExist) co_return -kEINVAL;
  if (index >= def.max_entries) co_return -kE2BIG;
  if (flags & kBpfNoexist) co_return -kEEXIST;  // all elements always exist
  if ((flags & kBpfFLock) && def.spin_lock_off < 0) co_return -kEINVAL;
  std::uint8_t* val = arena_.elem(index);
  if (flags & kBpfFLock) {
    KLock& lock = k.value_lock(arena_.addr(index) + def.spin_lock_off, val + def.spin_lock_off,
                               "bpf_spin_lock");
    co_await spin_lock_irqsave(k, ctx, lock);
    copy_map_value(def, val, value, k.profile.copy_skips_lock_and_timer);
    co_await spin_unlock_irqrestore(k, ctx, lock);
  } else {
    copy_map_value(def, val, value, k.profile.copy_skips_lock_and_timer);
  }
  ctx.trace("map_update", {{"map", id}, {"index", index}});
  co_await ctx.step(k.cost.map_op_ns);
  // check_and_free_timer_in_array
  if (has_timer()) co_await k.timers.cancel_and_free(ctx, arena_.addr(index) + def.timer_off);
  co_return 0;
}

sim::Co<int> ArrayMap::delete_elem(sim::Context& ctx, const std::uint8_t*) {
  co_await ctx.step(k.cost.map_op_ns);
  co_return -kEINVAL;
}

// array_map_free_timers
sim::Co<void> ArrayMap::release_uref(sim::Context& ctx) {
  if (!has_timer()) co_return;
  for (std::uint32_t i = 0; i < def.max_entries; ++i)
    co_await k.timers.cancel_and_free(ctx, arena_.addr(i) + def.timer_off);
}

sim::Co<void> ArrayMap::free(sim::Context& ctx) {
  // The seed's array_map_free does not walk timers: one left initialized here leaks.
  co_await ctx.step(k.cost.alloc_ns);
}

std::uint64_t ArrayMap::callback_key(sim::Context& ctx, std::uint64_t value_addr) {
  std::uint32_t off = 0;
  auto idx = arena_.index_of(value_addr, &off);
  SIM_ASSERT(idx && off == 0, "array callback value {:#x} is not an element", value_addr);
  const std::uint64_t key = k.key_scratch(ctx.cpu());
  std::uint8_t* p = k.ptr(&ctx, key, 4, false, "bpf_timer_cb key");
  const std::uint32_t index = *idx;
  std::memcpy(p, &index, 4);
  return key;
}

void ArrayMap::for_each_value(const std::function<void(std::uint64_t, std::uint8_t*)>& fn) const {
  for (std::uint32_t i = 0; i < def.max_entries; ++i)
    fn(arena_.addr(i), arena_.elem(i));
}

// ---- BPF_MAP_TYPE_ARRAY_OF_MAPS -----------------------------------------------------------------

ArrayOfMaps::ArrayOfMaps(Kernel& kernel, MapDef d, ObjId o, std::uint32_t map_id)
    : BpfMap(kernel, std::move(d), o, map_id), slots_(def.max_entries, nullptr) {
  arena_.init(k, id, def.name, 8, def.max_entries);
  arena_.grow();
}

void ArrayOfMaps::init_slot(std::uint32_t index, BpfMap* inner) {
  SIM_ASSERT(index < slots_.size() && !slots_[index], "bad init slot {}", index);
  k.sys.map_inc(nullptr, *inner);
  slots_[index] = inner;
}

sim::Co<std::uint64_t> ArrayOfMaps::lookup_elem(sim::Context& ctx, const std::uint8_t* key) {
  const std::uint32_t index = load_u32(key);
  co_await ctx.step(k.cost.map_op_ns);
  if (index >= def.max_entries || !slots_[index]) co_return 0;
  co_return slots_[index]->handle_addr;
}

sim::Co<int> ArrayOfMaps::update_elem(sim::Context& ctx, const std::uint8_t* key,
                                      const std::uint8_t* value, std::uint64_t flags) {
  const std::uint32_t index = load_u32(key);
  if (flags > kBpfExist) co_return -kEINVAL;
  if (index >= def.max_entries) co_return -kE2BIG;
  if (flags == kBpfNoexist) co_return -kEEXIST;
  BpfMap* inner = k.map_by_id(load_u32(value));
  if (!inner || inner->freed) co_return -kEBADF;
  k.sys.map_inc(&ctx, *inner);  // bpf_map_fd_get_ptr: a refcnt, not a uref
  BpfMap* old = slots_[index];
  slots_[index] = inner;
  co_await ctx.step(k.cost.map_op_ns);
  if (old) co_await k.sys.map_put(ctx, *old);
  co_return 0;
}

sim::Co<int> ArrayOfMaps::delete_elem(sim::Context& ctx, const std::uint8_t* key) {
  const std::uint32_t index = load_u32(key);
  co_await ctx.step(k.cost.map_op_ns);
  if (index >= def.max_entries) co_return -kE2BIG;
  BpfMap* old = slots_[index];
  if (!old) co_return -kENOENT;
  slots_[index] = nullptr;
  co_await k.sys.map_put(ctx, *old);
  co_return 0;
}

sim::Co<void> ArrayOfMaps::release_uref(sim::Context& ctx) {
  co_await ctx.step(0);
}

sim::Co<void> ArrayOfMaps::free(sim::Context& ctx) {
  for (auto& slot : slots_) {
    if (!slot) continue;
    BpfMap* inner = slot;
    slot = nullptr;
    co_await k.sys.map_put(ctx, *inner);
  }
}

void ArrayOfMaps::for_each_inner(const std::function<void(BpfMap*)>& fn) const {
  for (BpfMap* m : slots_)
    if (m) fn(m);
}

bool ArrayMap::peek_elem(const std::uint8_t* key, std::vector<std::uint8_t>* value) const {
  const std::uint32_t index = load_u32(key);
  if (index >= def.max_entries) return false;
  const std::uint8_t* v = arena_.elem(index) + value_off_;
  value->assign(v, v + def.value_size);
  return true;
}

bool ArrayOfMaps::peek_elem(const std::uint8_t* key, std::vector<std::uint8_t>* value) const {
  const std::uint32_t index = load_u32(key);
  if (index >= def.max_entries || !slots_[index]) return false;
  const std::uint32_t id = slots_[index]->id;
  value->assign(4, 0);
  std::memcpy(value->data(), &id, 4);
  return true;
}

}  // namespace bpftsim::model
