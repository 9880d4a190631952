#include "model/bpf_lru_list.h"

#include "model/kernel.h"
#include "sim/assert.h"

namespace bpftsim::model {

namespace {
bool is_local(BpfLru::NodeType t) {
  return t == BpfLru::NodeType::kLocalFree || t == BpfLru::NodeType::kLocalPending;
}
}  // namespace

BpfLru::BpfLru(Kernel& k, std::uint32_t map_id, std::uint32_t nr_nodes, int ncpus, DelFromHtab del)
    : k_(k), map_id_(map_id), nr_(nr_nodes), ncpus_(ncpus), del_(std::move(del)) {
  nodes_.resize(nr_);
  const std::uint32_t total = nr_ + 3 + 2 * static_cast<std::uint32_t>(ncpus_);
  next_.resize(total);
  prev_.resize(total);
  for (std::uint32_t h = nr_; h < total; ++h)
    next_[h] = prev_[h] = h;
  next_inactive_rotation_ = head(NodeType::kInactive);
  lock_.kind = "lru_list";
  lock_.id = map_id_;
  local_lock_.resize(static_cast<std::size_t>(ncpus_));
  next_steal_.resize(static_cast<std::size_t>(ncpus_));
  for (int c = 0; c < ncpus_; ++c) {
    local_lock_[c].kind = "lru_local";
    local_lock_[c].id = (std::uint64_t{map_id_} << 32) | static_cast<std::uint32_t>(c);
    next_steal_[c] = c;
  }
  // bpf_lru_populate
  for (std::uint32_t n = 0; n < nr_; ++n) {
    nodes_[n].type = NodeType::kFree;
    list_add(n, head(NodeType::kFree));
  }
}

std::vector<std::uint32_t> BpfLru::walk(std::uint32_t h) const {
  std::vector<std::uint32_t> out;
  for (std::uint32_t n = next_[h]; n != h; n = next_[n])
    out.push_back(n);
  return out;
}

std::vector<std::uint32_t> BpfLru::global_list(NodeType t) const {
  SIM_ASSERT(!is_local(t), "global_list of a local list type");
  return walk(head(t));
}

std::vector<std::uint32_t> BpfLru::local_list(int cpu, NodeType t) const {
  SIM_ASSERT(is_local(t), "local_list of a global list type");
  return walk(t == NodeType::kLocalFree ? local_free(cpu) : local_pending(cpu));
}

void BpfLru::list_del(std::uint32_t n) {
  next_[prev_[n]] = next_[n];
  prev_[next_[n]] = prev_[n];
  next_[n] = prev_[n] = n;
}

void BpfLru::list_add(std::uint32_t n, std::uint32_t h) {
  const std::uint32_t first = next_[h];
  next_[n] = first;
  prev_[n] = h;
  prev_[first] = n;
  next_[h] = n;
}

void BpfLru::count_inc(NodeType t) {
  if (t == NodeType::kActive || t == NodeType::kInactive) ++counts_[static_cast<int>(t)];
}

void BpfLru::count_dec(NodeType t) {
  if (t == NodeType::kActive || t == NodeType::kInactive) --counts_[static_cast<int>(t)];
}

// __bpf_lru_node_move_to_free
void BpfLru::node_move_to_free(std::uint32_t n, std::uint32_t free_list, NodeType t) {
  SIM_ASSERT(!is_local(nodes_[n].type), "lru node {} of map {} moved to free from a local list", n,
             map_id_);
  if (n == next_inactive_rotation_) next_inactive_rotation_ = prev_[n];
  count_dec(nodes_[n].type);
  nodes_[n].type = t;
  list_move(n, free_list);
}

// __bpf_lru_node_move_in
void BpfLru::node_move_in(std::uint32_t n, NodeType t) {
  SIM_ASSERT(is_local(nodes_[n].type) && !is_local(t), "lru node {} of map {} moved in from {}", n,
             map_id_, static_cast<int>(nodes_[n].type));
  count_inc(t);
  nodes_[n].type = t;
  nodes_[n].ref = false;
  list_move(n, head(t));
}

// __bpf_lru_node_move
void BpfLru::node_move(std::uint32_t n, NodeType t) {
  SIM_ASSERT(!is_local(nodes_[n].type) && !is_local(t), "lru node {} of map {} moved locally", n,
             map_id_);
  if (nodes_[n].type != t) {
    count_dec(nodes_[n].type);
    count_inc(t);
    nodes_[n].type = t;
  }
  nodes_[n].ref = false;
  if (n == next_inactive_rotation_) next_inactive_rotation_ = prev_[n];
  list_move(n, head(t));
}

// __bpf_lru_list_rotate_active: from the tail, at most nr_scans nodes, up to the node first at
// the start; referenced ones back to the active head, the others to the inactive head.
void BpfLru::rotate_active() {
  const std::uint32_t active = head(NodeType::kActive);
  const std::uint32_t first = next_[active];
  std::uint32_t i = 0;
  for (std::uint32_t n = prev_[active], tmp = prev_[n]; n != active; n = tmp, tmp = prev_[n]) {
    node_move(n, nodes_[n].ref ? NodeType::kActive : NodeType::kInactive);
    if (++i == kNrScans || n == first) break;
  }
}

// __bpf_lru_list_rotate_inactive: from next_inactive_rotation towards the head, skipping the
// list head, at most nr_scans nodes; referenced ones move to the active list. Where it stopped
// is remembered.
void BpfLru::rotate_inactive() {
  const std::uint32_t inactive = head(NodeType::kInactive);
  if (list_empty(inactive)) return;
  std::uint32_t last = next_[next_inactive_rotation_];
  if (last == inactive) last = next_[last];
  std::uint32_t cur = next_inactive_rotation_;
  std::uint32_t next = cur;
  std::uint32_t i = 0;
  while (i < kNrScans) {
    if (cur == inactive) {
      cur = prev_[cur];
      continue;
    }
    next = prev_[cur];
    if (nodes_[cur].ref) node_move(cur, NodeType::kActive);
    if (cur == last) break;
    cur = next;
    ++i;
  }
  next_inactive_rotation_ = next;
}

// __bpf_lru_list_shrink_inactive: from the tail, at most nr_scans nodes; a referenced node goes
// to the active list, an unreferenced one is evicted (del_from_htab) and moved to `free_list`.
sim::Co<std::uint32_t> BpfLru::shrink_inactive(sim::Context& ctx, std::uint32_t tgt,
                                               std::uint32_t free_list, NodeType t) {
  const std::uint32_t inactive = head(NodeType::kInactive);
  std::uint32_t nshrinked = 0;
  std::uint32_t i = 0;
  for (std::uint32_t n = prev_[inactive], tmp = prev_[n]; n != inactive; n = tmp, tmp = prev_[n]) {
    if (nodes_[n].ref) {
      node_move(n, NodeType::kActive);
    } else {
      const bool deleted = co_await del_(ctx, n);
      if (deleted) {
        node_move_to_free(n, free_list, t);
        if (++nshrinked == tgt) break;
      }
    }
    if (++i == kNrScans) break;
  }
  co_return nshrinked;
}

// __bpf_lru_list_shrink: the inactive shrink; if it freed nothing, one node evicted from the tail
// side of the inactive list (or, when empty, the active one) whatever its reference bit.
sim::Co<std::uint32_t> BpfLru::shrink(sim::Context& ctx, std::uint32_t tgt, std::uint32_t free_list,
                                      NodeType t) {
  const std::uint32_t nshrinked = co_await shrink_inactive(ctx, tgt, free_list, t);
  if (nshrinked != 0) co_return nshrinked;
  std::uint32_t force = head(NodeType::kInactive);
  if (list_empty(force)) force = head(NodeType::kActive);
  for (std::uint32_t n = prev_[force], tmp = prev_[n]; n != force; n = tmp, tmp = prev_[n]) {
    const bool deleted = co_await del_(ctx, n);
    if (deleted) {
      node_move_to_free(n, free_list, t);
      co_return 1;
    }
  }
  co_return 0;
}

// __local_list_flush: the CPU's pending nodes, oldest first, to the head of the active list
// (referenced) or the inactive list.
void BpfLru::local_flush(int cpu) {
  const std::uint32_t pending = local_pending(cpu);
  for (std::uint32_t n = prev_[pending], tmp = prev_[n]; n != pending; n = tmp, tmp = prev_[n])
    node_move_in(n, nodes_[n].ref ? NodeType::kActive : NodeType::kInactive);
}

// bpf_lru_list_pop_free_to_local: under the global list lock (interrupts are already off).
sim::Co<void> BpfLru::pop_free_to_local(sim::Context& ctx, int cpu) {
  co_await spin_lock_irqsave(k_, ctx, lock_);
  local_flush(cpu);
  // __bpf_lru_list_rotate
  if (counts_[1] < counts_[0]) rotate_active();
  rotate_inactive();
  std::uint32_t nfree = 0;
  const std::uint32_t free = head(NodeType::kFree);
  for (std::uint32_t n = next_[free], tmp = next_[n]; n != free; n = tmp, tmp = next_[n]) {
    node_move_to_free(n, local_free(cpu), NodeType::kLocalFree);
    if (++nfree == kLocalFreeTarget) break;
  }
  std::uint32_t nshrinked = 0;
  if (nfree < kLocalFreeTarget)
    nshrinked =
        co_await shrink(ctx, kLocalFreeTarget - nfree, local_free(cpu), NodeType::kLocalFree);
  ctx.trace("lru_refill", {{"map", map_id_}, {"free", nfree}, {"evicted", nshrinked}});
  co_await ctx.step(k_.cost.map_op_ns);
  co_await spin_unlock_irqrestore(k_, ctx, lock_);
}

// __local_list_add_pending
void BpfLru::local_add_pending(int cpu, std::uint32_t n, std::uint32_t hash) {
  nodes_[n].hash = hash;
  nodes_[n].cpu = cpu;
  nodes_[n].type = NodeType::kLocalPending;
  nodes_[n].ref = false;
  list_add(n, local_pending(cpu));
}

// __local_list_pop_free: the first node of the local free list.
std::optional<std::uint32_t> BpfLru::local_pop_free(int cpu) {
  const std::uint32_t h = local_free(cpu);
  if (list_empty(h)) return std::nullopt;
  const std::uint32_t n = next_[h];
  list_del(n);
  return n;
}

// __local_list_pop_pending: from the tail (oldest) of the pending list, an unreferenced node the
// hash table lets go of; then any node.
sim::Co<std::optional<std::uint32_t>> BpfLru::local_pop_pending(sim::Context& ctx, int cpu) {
  const std::uint32_t h = local_pending(cpu);
  for (int pass = 0; pass < 2; ++pass) {
    const bool force = pass == 1;
    for (std::uint32_t n = prev_[h]; n != h; n = prev_[n]) {
      if (nodes_[n].ref && !force) continue;
      const bool deleted = co_await del_(ctx, n);
      if (deleted) {
        list_del(n);
        co_return n;
      }
    }
  }
  co_return std::nullopt;
}

// bpf_lru_pop_free (bpf_common_lru_pop_free)
sim::Co<std::optional<std::uint32_t>> BpfLru::pop_free(sim::Context& ctx, std::uint32_t hash) {
  const int cpu = ctx.cpu();
  KLock& loc = local_lock_[cpu];
  co_await spin_lock_irqsave(k_, ctx, loc);
  std::optional<std::uint32_t> n = local_pop_free(cpu);
  if (!n) {
    co_await pop_free_to_local(ctx, cpu);
    n = local_pop_free(cpu);
  }
  if (n) local_add_pending(cpu, *n, hash);
  co_await spin_unlock_irqrestore(k_, ctx, loc);
  if (n) co_return n;

  // Steal round-robin from the local lists, starting at this CPU's next_steal.
  const int first = next_steal_[cpu];
  int steal = first;
  do {
    KLock& sl = local_lock_[steal];
    co_await spin_lock_irqsave(k_, ctx, sl);
    n = local_pop_free(steal);
    if (!n) n = co_await local_pop_pending(ctx, steal);
    if (n) ctx.trace("lru_steal", {{"map", map_id_}, {"from_cpu", steal}, {"node", *n}});
    co_await spin_unlock_irqrestore(k_, ctx, sl);
    steal = (steal + 1) % ncpus_;  // get_next_cpu over the possible CPUs
  } while (!n && steal != first);
  next_steal_[cpu] = steal;
  if (n) {
    co_await spin_lock_irqsave(k_, ctx, loc);
    local_add_pending(cpu, *n, hash);
    co_await spin_unlock_irqrestore(k_, ctx, loc);
  }
  co_return n;
}

// bpf_lru_push_free (bpf_common_lru_push_free)
sim::Co<void> BpfLru::push_free(sim::Context& ctx, std::uint32_t n) {
  SIM_ASSERT(nodes_[n].type != NodeType::kFree && nodes_[n].type != NodeType::kLocalFree,
             "lru node {} of map {} freed twice", n, map_id_);
  if (nodes_[n].type == NodeType::kLocalPending) {
    KLock& loc = local_lock_[nodes_[n].cpu];
    co_await spin_lock_irqsave(k_, ctx, loc);
    // Still pending (a refill may have flushed it into the global lists meanwhile)?
    if (nodes_[n].type == NodeType::kLocalPending) {
      nodes_[n].type = NodeType::kLocalFree;
      nodes_[n].ref = false;
      list_move(n, local_free(nodes_[n].cpu));
      co_await spin_unlock_irqrestore(k_, ctx, loc);
      co_return;
    }
    co_await spin_unlock_irqrestore(k_, ctx, loc);
  }
  // bpf_lru_list_push_free
  co_await spin_lock_irqsave(k_, ctx, lock_);
  node_move(n, NodeType::kFree);
  co_await spin_unlock_irqrestore(k_, ctx, lock_);
}

}  // namespace bpftsim::model
