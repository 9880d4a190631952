// kernel/bpf/bpf_lru_list.c (v5.15): the common LRU of BPF_MAP_TYPE_LRU_HASH (no
// BPF_F_NO_COMMON_LRU). One global list set (active, inactive, free) under one raw spin lock, and
// per CPU a local list pair (free, pending) under a per-CPU raw spin lock:
//   bpf_lru_pop_free / bpf_common_lru_pop_free: this CPU's local lock (irqsave); a node from the
//     local free list, else bpf_lru_list_pop_free_to_local refills it under the global lock
//     (flush this CPU's pending nodes into active/inactive, rotate, move up to LOCAL_FREE_TARGET =
//     128 free nodes, then shrink the inactive list - or force-shrink one node - evicting through
//     del_from_htab); the node goes to the local pending list. Without one, steal round-robin
//     from every CPU's local free, then pending list, starting at this CPU's next_steal.
//   bpf_lru_push_free / bpf_common_lru_push_free: a pending node back to its CPU's local free
//     list, any other to the global free list.
//   bpf_lru_populate: every node on the global free list (list_add: the last node first).
// Every list is a kernel list_head ring over node ids (list heads are ids past the nodes), so
// list_move, the reverse walks and next_inactive_rotation behave as in the kernel: the order of
// evictions is the kernel's, with no choice of its own. del_from_htab is a coroutine (the hash
// map's htab_lru_map_delete_node: bucket lock, unlink, timer cancel_and_free) run while the global
// list lock, or a local one when stealing, is held with interrupts off.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "model/spinlock.h"
#include "sim/co.h"
#include "sim/context.h"

namespace bpftsim::model {

class Kernel;

class BpfLru {
 public:
  // enum bpf_lru_list_type
  enum class NodeType : std::uint8_t { kActive, kInactive, kFree, kLocalFree, kLocalPending };
  static constexpr std::uint32_t kLocalFreeTarget = 128;  // LOCAL_FREE_TARGET
  static constexpr std::uint32_t kNrScans = 128;          // LOCAL_NR_SCANS
  // lru->del_from_htab: true if the node was unlinked from the hash table (and may be reused).
  using DelFromHtab = std::function<sim::Co<bool>(sim::Context&, std::uint32_t node)>;

  // bpf_lru_init + bpf_lru_populate of `nr_nodes` nodes.
  BpfLru(Kernel& k, std::uint32_t map_id, std::uint32_t nr_nodes, int ncpus, DelFromHtab del);
  BpfLru(const BpfLru&) = delete;
  BpfLru& operator=(const BpfLru&) = delete;

  sim::Co<std::optional<std::uint32_t>> pop_free(sim::Context& ctx, std::uint32_t hash);
  sim::Co<void> push_free(sim::Context& ctx, std::uint32_t node);
  void set_ref(std::uint32_t node) { nodes_[node].ref = true; }  // bpf_lru_node_set_ref

  std::uint32_t hash(std::uint32_t node) const { return nodes_[node].hash; }
  NodeType type(std::uint32_t node) const { return nodes_[node].type; }
  bool ref(std::uint32_t node) const { return nodes_[node].ref; }
  // The nodes of a list, head first (tests and inspection).
  std::vector<std::uint32_t> global_list(NodeType t) const;
  std::vector<std::uint32_t> local_list(int cpu, NodeType t) const;

 private:
  struct Node {
    NodeType type = NodeType::kFree;
    bool ref = false;
    int cpu = 0;
    std::uint32_t hash = 0;
  };
  // List heads: the three global lists, then two per CPU.
  std::uint32_t head(NodeType t) const { return nr_ + static_cast<std::uint32_t>(t); }
  std::uint32_t local_free(int cpu) const { return nr_ + 3 + 2 * static_cast<std::uint32_t>(cpu); }
  std::uint32_t local_pending(int cpu) const { return local_free(cpu) + 1; }
  std::vector<std::uint32_t> walk(std::uint32_t h) const;

  void list_del(std::uint32_t n);
  void list_add(std::uint32_t n, std::uint32_t h);  // after h (at the head)
  void list_move(std::uint32_t n, std::uint32_t h) {
    list_del(n);
    list_add(n, h);
  }
  bool list_empty(std::uint32_t h) const { return next_[h] == h; }
  void count_inc(NodeType t);
  void count_dec(NodeType t);

  void node_move_to_free(std::uint32_t n, std::uint32_t free_list, NodeType t);
  void node_move_in(std::uint32_t n, NodeType t);
  void node_move(std::uint32_t n, NodeType t);
  void rotate_active();
  void rotate_inactive();
  sim::Co<std::uint32_t> shrink_inactive(sim::Context& ctx, std::uint32_t tgt,
                                         std::uint32_t free_list, NodeType t);
  sim::Co<std::uint32_t> shrink(sim::Context& ctx, std::uint32_t tgt, std::uint32_t free_list,
                                NodeType t);
  void local_flush(int cpu);
  sim::Co<void> pop_free_to_local(sim::Context& ctx, int cpu);
  void local_add_pending(int cpu, std::uint32_t n, std::uint32_t hash);
  std::optional<std::uint32_t> local_pop_free(int cpu);
  sim::Co<std::optional<std::uint32_t>> local_pop_pending(sim::Context& ctx, int cpu);

  Kernel& k_;
  std::uint32_t map_id_;
  std::uint32_t nr_;
  int ncpus_;
  DelFromHtab del_;
  std::vector<Node> nodes_;
  std::vector<std::uint32_t> next_, prev_;  // nodes, then list heads
  std::uint32_t counts_[2] = {0, 0};        // active, inactive (NR_BPF_LRU_LIST_COUNT)
  std::uint32_t next_inactive_rotation_;
  KLock lock_;                     // bpf_lru_list.lock
  std::vector<KLock> local_lock_;  // bpf_lru_locallist.lock, per CPU
  std::vector<int> next_steal_;
};

}  // namespace bpftsim::model
