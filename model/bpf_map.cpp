#include "model/bpf_map.h"

#include <fmt/format.h>

#include <cstring>
#include <utility>

#include "model/kernel.h"
#include "sim/assert.h"

namespace bpftsim::model {

void ValueArena::init(Kernel& k, std::uint32_t owner_map_id, std::string name, std::uint32_t stride,
                      std::uint32_t chunk_elems, RegionKind kind) {
  SIM_ASSERT(stride > 0 && chunk_elems > 0, "empty arena for {}", name);
  k_ = &k;
  map_id_ = owner_map_id;
  name_ = std::move(name);
  stride_ = stride;
  chunk_elems_ = chunk_elems;
  kind_ = kind;
}

std::uint32_t ValueArena::grow() {
  const std::uint32_t first = size();
  const std::size_t bytes = std::size_t{stride_} * chunk_elems_;
  SIM_ASSERT(bytes <= 0xffffffffu, "arena chunk of {} bytes is too large", bytes);
  chunks_.push_back(std::make_unique<std::uint8_t[]>(bytes));
  const std::uint32_t region = k_->mem.add(kind_, "map " + name_ + " memory", chunks_.back().get(),
                                           static_cast<std::uint32_t>(bytes), true);
  regions_.push_back(region);
  k_->own_region(region, map_id_);
  return first;
}

std::uint8_t* ValueArena::elem(std::uint32_t i) const {
  SIM_ASSERT(i < size(), "arena {} element {} of {}", name_, i, size());
  // An array is one chunk: no division (a 32-bit divide is tens of cycles) on its lookups.
  if (i < chunk_elems_) [[likely]]
    return chunks_[0].get() + std::size_t{i} * stride_;
  return chunks_[i / chunk_elems_].get() + std::size_t{i % chunk_elems_} * stride_;
}

std::uint64_t ValueArena::addr(std::uint32_t i) const {
  SIM_ASSERT(i < size(), "arena {} element {} of {}", name_, i, size());
  if (i < chunk_elems_) [[likely]]
    return AddressSpace::base(regions_[0]) + std::uint64_t{i} * stride_;
  return AddressSpace::base(regions_[i / chunk_elems_]) + std::uint64_t{i % chunk_elems_} * stride_;
}

KLock& ValueArena::timer_lock(std::uint32_t i, std::uint64_t timer_addr, std::uint8_t* field) {
  SIM_ASSERT(i < size(), "arena {} element {} of {}", name_, i, size());
  const std::uint32_t per_block = lock_block();
  const std::size_t block = i < per_block ? 0 : i / per_block;
  if (timer_locks_.size() <= block) timer_locks_.resize(block + 1);
  if (!timer_locks_[block]) timer_locks_[block] = std::make_unique<KLock[]>(per_block);
  KLock& lock = timer_locks_[block][i < per_block ? i : i % per_block];
  if (lock.word == nullptr) {
    lock.kind = "bpf_timer_lock";
    lock.id = timer_addr + 8;
    lock.word = field + 8;
  }
  return lock;
}

std::optional<std::uint32_t> ValueArena::index_of(std::uint64_t a, std::uint32_t* off) const {
  const std::uint32_t region = AddressSpace::region_of(a);
  for (std::size_t c = 0; c < regions_.size(); ++c) {
    if (regions_[c] != region) continue;
    const std::uint64_t rel = a - AddressSpace::base(region);
    if (rel >= std::uint64_t{stride_} * chunk_elems_) return std::nullopt;
    // A chunk is at most 2^32 - 1 bytes (grow): a 32-bit division, not a 64-bit one.
    const auto rel32 = static_cast<std::uint32_t>(rel);
    if (off) *off = rel32 % stride_;
    return static_cast<std::uint32_t>(c * chunk_elems_ + rel32 / stride_);
  }
  return std::nullopt;
}

// copy_map_value (include/linux/bpf.h, v5.15): everything but the spin lock and the timer; the
// seed's if/else-if skips only the lock when a value has both (fixed in v5.17, reference 2.2).
void copy_map_value(const MapDef& def, std::uint8_t* dst, const std::uint8_t* src, bool skip_both) {
  if (skip_both && def.spin_lock_off >= 0 && def.timer_off >= 0) {
    // v5.17: copy around both special fields, in offset order.
    auto a = static_cast<std::uint32_t>(def.spin_lock_off), a_len = 4u;
    auto b = static_cast<std::uint32_t>(def.timer_off), b_len = 16u;
    if (b < a) {
      std::swap(a, b);
      std::swap(a_len, b_len);
    }
    std::memcpy(dst, src, a);
    std::memcpy(dst + a + a_len, src + a + a_len, b - a - a_len);
    std::memcpy(dst + b + b_len, src + b + b_len, def.value_size - b - b_len);
    return;
  }
  // v5.15: `if (lock) ... else if (timer) ...` -- with both, only the lock is skipped.
  if (def.spin_lock_off >= 0) {
    const auto off = static_cast<std::uint32_t>(def.spin_lock_off);
    std::memcpy(dst, src, off);
    std::memcpy(dst + off + 4, src + off + 4, def.value_size - off - 4);
  } else if (def.timer_off >= 0) {
    const auto off = static_cast<std::uint32_t>(def.timer_off);
    std::memcpy(dst, src, off);
    std::memcpy(dst + off + 16, src + off + 16, def.value_size - off - 16);
  } else {
    std::memcpy(dst, src, def.value_size);
  }
}

BpfMap::BpfMap(Kernel& kernel, MapDef d, ObjId o, std::uint32_t map_id)
    : k(kernel), def(std::move(d)), obj(o), id(map_id) {}

BpfMap::~BpfMap() = default;

}  // namespace bpftsim::model
