// kernel/bpf/hashtab.c (v5.15): BPF_MAP_TYPE_HASH (preallocated, and BPF_F_NO_PREALLOC),
// BPF_MAP_TYPE_LRU_HASH and BPF_MAP_TYPE_HASH_OF_MAPS, with the timer call sites of patch 04:
//   prealloc update of an existing key: the new element comes from this CPU's extra element, the
//     old one becomes the extra element, and its timer is cancelled and freed under the bucket
//     lock (check_and_free_timer).
//   prealloc delete: free_htab_elem -> cancel_and_free, then back to the freelist, under the lock.
//   no-prealloc update/delete: the old element is unlinked and freed by call_rcu; its timer is
//     cancelled and freed from that RCU callback, one grace period later (it can still fire).
//   LRU update/delete: htab_lru_push_free after the bucket unlock. Free nodes come from the
//     common LRU (model/bpf_lru_list.h: per-CPU local lists, batch refills under the global list
//     lock); its evictions call htab_lru_map_delete_node, which takes the evicted element's bucket
//     lock (or skips the node on -EBUSY) and cancels and frees its timer there, with the LRU list
//     locks held and interrupts off.
//   release_uref (htab_map_free_timers): every preallocated element, linked or free, including
//     the per-CPU extra elements; no-prealloc: every linked element, under rcu_read_lock.
// Elements: key at offset 0 of the arena element, value at round_up(key_size, 8).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "model/bpf_lru_list.h"
#include "model/bpf_map.h"
#include "model/spinlock.h"

namespace bpftsim::model {

class HashMap final : public BpfMap {
 public:
  HashMap(Kernel& k, MapDef def, ObjId obj, std::uint32_t id);
  ~HashMap() override;

  sim::Co<std::uint64_t> lookup_elem(sim::Context& ctx, const std::uint8_t* key) override;
  sim::Co<int> update_elem(sim::Context& ctx, const std::uint8_t* key, const std::uint8_t* value,
                           std::uint64_t flags) override;
  sim::Co<int> delete_elem(sim::Context& ctx, const std::uint8_t* key) override;
  sim::Co<void> release_uref(sim::Context& ctx) override;
  sim::Co<void> free(sim::Context& ctx) override;
  std::uint64_t callback_key(sim::Context& ctx, std::uint64_t value_addr) override;
  void for_each_value(const std::function<void(std::uint64_t, std::uint8_t*)>& fn) const override;

  bool prealloc() const { return prealloc_; }
  bool lru() const { return lru_; }
  const BpfLru* lru_list() const { return lru_list_.get(); }
  std::size_t linked_count() const { return count_; }
  // For map-in-map outer hash maps: the inner map stored in a linked element, by value bytes.
  bool is_of_maps() const { return of_maps_; }
  void for_each_inner(const std::function<void(BpfMap*)>& fn) const override;
  bool peek_elem(const std::uint8_t* key, std::vector<std::uint8_t>* value) const override;

 private:
  struct Elem {
    bool linked = false;
    bool on_freelist = false;
    bool pending_rcu_free = false;  // no-prealloc: unlinked, waiting for its RCU callback
    std::uint32_t hash = 0;
    ObjId obj = 0;  // no-prealloc: the kmalloc'ed element
  };
  struct Bucket {
    std::vector<std::uint32_t> elems;  // head first
    KLock lock;
  };

  std::uint32_t hash_key(const std::uint8_t* key) const;
  Bucket& bucket_of(std::uint32_t hash) { return buckets_[hash & (buckets_.size() - 1)]; }
  std::optional<std::uint32_t> find(const Bucket& b, std::uint32_t hash,
                                    const std::uint8_t* key) const;
  std::uint8_t* key_ptr(std::uint32_t e) const { return arena_.elem(e); }
  std::uint8_t* value_ptr(std::uint32_t e) const { return arena_.elem(e) + value_off_; }
  std::uint64_t value_addr(std::uint32_t e) const { return arena_.addr(e) + value_off_; }
  std::uint64_t timer_addr(std::uint32_t e) const { return value_addr(e) + def.timer_off; }
  void copy_value(std::uint32_t e, const std::uint8_t* value);
  sim::Co<void> copy_value_locked(sim::Context& ctx, std::uint32_t e, const std::uint8_t* value);
  void unlink(Bucket& b, std::uint32_t e);
  // `old`: the linked element the new one replaces (prealloc: it becomes the extra element).
  sim::Co<std::optional<std::uint32_t>> alloc_elem(sim::Context& ctx,
                                                   std::optional<std::uint32_t> old);
  sim::Co<void> free_timer(sim::Context& ctx, std::uint32_t e);
  sim::Co<void> free_elem(sim::Context& ctx, std::uint32_t e);  // free_htab_elem
  // htab_lru_map_delete_node: the LRU's del_from_htab.
  sim::Co<bool> lru_delete_node(sim::Context& ctx, std::uint32_t e);
  // htab_lock_bucket / htab_unlock_bucket: the bucket's lock behind this CPU's map_locked counter
  // of the bucket's lock slot (0 or -EBUSY).
  sim::Co<int> lock_bucket(sim::Context& ctx, Bucket& b, std::uint32_t hash);
  sim::Co<void> unlock_bucket(sim::Context& ctx, Bucket& b, std::uint32_t hash);
  static constexpr std::uint32_t kMapLockSlots = 8;  // HASHTAB_MAP_LOCK_COUNT
  std::vector<std::uint8_t> map_locked_;             // [cpu * kMapLockSlots + slot]

  bool prealloc_;
  bool lru_;
  bool of_maps_;
  std::vector<Elem> elems_;
  std::vector<Bucket> buckets_;
  std::deque<std::uint32_t> freelist_;  // prealloc free elements (LIFO at the front)
  std::vector<std::uint32_t> extra_;    // per-CPU extra elements (non-LRU prealloc)
  std::size_t count_ = 0;               // linked elements
  std::size_t allocated_ = 0;           // no-prealloc: elements counted against max_entries
  std::unique_ptr<BpfLru> lru_list_;    // LRU: htab->lru
};

}  // namespace bpftsim::model
