// kernel/bpf/arraymap.c (v5.15): BPF_MAP_TYPE_ARRAY and BPF_MAP_TYPE_ARRAY_OF_MAPS.
//   update: copy_map_value (the timer and spin-lock bytes are skipped), then
//           check_and_free_timer_in_array -> bpf_timer_cancel_and_free on the slot's timer.
//   delete: -EINVAL.  release_uref: array_map_free_timers over every index.
//   map_free: does not touch timers (the seed removed that second loop).
// Array of maps: the slots hold inner maps with a refcnt (not a uref) each (map_in_map.c).
#pragma once

#include <vector>

#include "model/bpf_map.h"

namespace bpftsim::model {

class ArrayMap final : public BpfMap {
 public:
  ArrayMap(Kernel& k, MapDef def, ObjId obj, std::uint32_t id);

  sim::Co<std::uint64_t> lookup_elem(sim::Context& ctx, const std::uint8_t* key) override;
  sim::Co<int> update_elem(sim::Context& ctx, const std::uint8_t* key, const std::uint8_t* value,
                           std::uint64_t flags) override;
  sim::Co<int> delete_elem(sim::Context& ctx, const std::uint8_t* key) override;
  sim::Co<void> release_uref(sim::Context& ctx) override;
  sim::Co<void> free(sim::Context& ctx) override;
  std::uint64_t callback_key(sim::Context& ctx, std::uint64_t value_addr) override;
  void for_each_value(const std::function<void(std::uint64_t, std::uint8_t*)>& fn) const override;
  bool peek_elem(const std::uint8_t* key, std::vector<std::uint8_t>* value) const override;
};

class ArrayOfMaps final : public BpfMap {
 public:
  ArrayOfMaps(Kernel& k, MapDef def, ObjId obj, std::uint32_t id);

  // BPF lookup returns the inner map's `struct bpf_map *` (as a value address would be).
  sim::Co<std::uint64_t> lookup_elem(sim::Context& ctx, const std::uint8_t* key) override;
  // `value` holds a u32 map id standing for the user's inner map fd (resolved by the syscall).
  sim::Co<int> update_elem(sim::Context& ctx, const std::uint8_t* key, const std::uint8_t* value,
                           std::uint64_t flags) override;
  sim::Co<int> delete_elem(sim::Context& ctx, const std::uint8_t* key) override;
  sim::Co<void> release_uref(sim::Context& ctx) override;
  sim::Co<void> free(sim::Context& ctx) override;
  std::uint64_t callback_key(sim::Context&, std::uint64_t) override { return 0; }
  void for_each_value(const std::function<void(std::uint64_t, std::uint8_t*)>&) const override {}
  void for_each_inner(const std::function<void(BpfMap*)>& fn) const override;
  bool peek_elem(const std::uint8_t* key, std::vector<std::uint8_t>* value) const override;
  // Setup-time slot initialisation (libbpf's static `.values = { [i] = &inner }`).
  void init_slot(std::uint32_t index, BpfMap* inner);

 private:
  std::vector<BpfMap*> slots_;
};

}  // namespace bpftsim::model
