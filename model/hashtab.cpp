#include "model/hashtab.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "model/errno.h"
#include "model/kernel.h"
#include "model/uapi.h"
#include "sim/assert.h"
#include "sim/hash.h"

namespace bpftsim::model {

namespace {
std::uint32_t round_up8(std::uint32_t v) {
  return (v + 7) & ~7u;
}
std::uint32_t roundup_pow_of_two(std::uint32_t v) {
  std::uint32_t p = 1;
  while (p < v)
    p <<= 1;
  return p;
}
constexpr std::uint32_t kNoPreallocChunk = 64;
}  // namespace

HashMap::HashMap(Kernel& kernel, MapDef d, ObjId o, std::uint32_t map_id)
    : BpfMap(kernel, std::move(d), o, map_id),
      prealloc_(def.type == kBpfMapTypeLruHash || !(def.map_flags & kBpfFNoPrealloc)),
      lru_(def.type == kBpfMapTypeLruHash),
      of_maps_(def.type == kBpfMapTypeHashOfMaps) {
  value_off_ = round_up8(def.key_size);
  map_locked_.assign(static_cast<std::size_t>(k.sim.ncpus()) * kMapLockSlots, 0);
  const std::uint32_t stride = value_off_ + round_up8(def.value_size);
  buckets_.resize(roundup_pow_of_two(std::max<std::uint32_t>(def.max_entries, 1)));
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    buckets_[i].lock.kind = "htab_bucket";
    buckets_[i].lock.id = (std::uint64_t{id} << 32) | i;
  }
  if (prealloc_) {
    const std::uint32_t extra = lru_ ? 0 : static_cast<std::uint32_t>(k.sim.ncpus());
    arena_.init(k, id, def.name, stride, def.max_entries + extra);
    arena_.grow();
    elems_.resize(arena_.size());
    if (lru_) {
      // prealloc_init: bpf_lru_init, then bpf_lru_populate of every element.
      lru_list_ = std::make_unique<BpfLru>(
          k, id, def.max_entries, k.sim.ncpus(),
          [this](sim::Context& c, std::uint32_t e) { return lru_delete_node(c, e); });
    } else {
      for (std::uint32_t i = 0; i < def.max_entries; ++i) {
        freelist_.push_back(i);
        elems_[i].on_freelist = true;
      }
    }
    for (std::uint32_t c = 0; c < extra; ++c)
      extra_.push_back(def.max_entries + c);
  } else {
    arena_.init(k, id, def.name, stride, kNoPreallocChunk);
  }
}

HashMap::~HashMap() = default;

std::uint32_t HashMap::hash_key(const std::uint8_t* key) const {
  // sim::Hasher (FNV-1a) folded to 32 bits: a deterministic stand-in for jhash.
  return sim::Hasher().bytes(key, def.key_size).value32();
}

std::optional<std::uint32_t> HashMap::find(const Bucket& b, std::uint32_t hash,
                                           const std::uint8_t* key) const {
  for (std::uint32_t e : b.elems)
    if (elems_[e].hash == hash && std::memcmp(key_ptr(e), key, def.key_size) == 0) return e;
  return std::nullopt;
}

void HashMap::unlink(Bucket& b, std::uint32_t e) {
  auto it = std::find(b.elems.begin(), b.elems.end(), e);
  SIM_ASSERT(it != b.elems.end(), "map {} element {} not in its bucket", id, e);
  b.elems.erase(it);
  elems_[e].linked = false;
  --count_;
}

void HashMap::copy_value(std::uint32_t e, const std::uint8_t* value) {
  copy_map_value(def, value_ptr(e), value, k.profile.copy_skips_lock_and_timer);
}

// htab_lock_bucket (v5.15): before taking a bucket's lock, a context raises its CPU's counter for
// the bucket's lock slot (hash & HASHTAB_MAP_LOCK_MASK, 8 slots); a context that finds the counter
// raised already is nested on a CPU that is inside a bucket of the same slot (an NMI program, a
// tracing program under the lock) and returns -EBUSY instead of spinning on a lock its own CPU may
// hold. Two buckets share a slot (so the guard can refuse where no deadlock was possible); with
// fewer than 8 buckets, two keys of one bucket can have different slots, and then a nested context
// spins on its own CPU's lock as in the kernel of that era.
sim::Co<int> HashMap::lock_bucket(sim::Context& ctx, Bucket& b, std::uint32_t hash) {
  std::uint8_t& locked = map_locked_[static_cast<std::size_t>(ctx.cpu()) * kMapLockSlots +
                                     (hash & (kMapLockSlots - 1))];
  if (locked != 0) {
    ctx.trace("htab_lock_busy", {{"map", id}, {"slot", hash & (kMapLockSlots - 1)}});
    co_await ctx.step(k.cost.lock_ns);
    co_return -kEBUSY;
  }
  ++locked;
  co_await spin_lock_irqsave(k, ctx, b.lock);
  co_return 0;
}

sim::Co<void> HashMap::unlock_bucket(sim::Context& ctx, Bucket& b, std::uint32_t hash) {
  co_await spin_unlock_irqrestore(k, ctx, b.lock);
  std::uint8_t& locked = map_locked_[static_cast<std::size_t>(ctx.cpu()) * kMapLockSlots +
                                     (hash & (kMapLockSlots - 1))];
  SIM_ASSERT(locked > 0, "map {} slot {} of cpu {} unlocked while not locked", id,
             hash & (kMapLockSlots - 1), ctx.cpu());
  --locked;
}

sim::Co<std::uint64_t> HashMap::lookup_elem(sim::Context& ctx, const std::uint8_t* key) {
  const std::uint32_t hash = hash_key(key);
  auto e = find(bucket_of(hash), hash, key);
  co_await ctx.step(k.cost.map_op_ns);
  if (!e) co_return 0;
  if (lru_) lru_list_->set_ref(*e);  // __htab_lru_map_lookup_elem: bpf_lru_node_set_ref
  if (of_maps_) {
    std::uint32_t inner_id;
    std::memcpy(&inner_id, value_ptr(*e), 4);
    BpfMap* inner = k.map_by_id(inner_id);
    co_return inner ? inner->handle_addr : 0;
  }
  co_return value_addr(*e);
}

// Takes a free element for an insert (__pcpu_freelist_pop / kmalloc); not for LRU maps.
sim::Co<std::optional<std::uint32_t>> HashMap::alloc_elem(sim::Context& ctx,
                                                          std::optional<std::uint32_t> old) {
  const bool replacing = old.has_value();
  if (prealloc_) {
    if (replacing) {
      // alloc_htab_elem: the old element becomes this CPU's extra element at once, in the same
      // step as the swap. Swapping later (after a step) let an NMI program on this CPU updating
      // another key of the map take the same extra element while it was already linked here.
      const std::uint32_t e = extra_[ctx.cpu()];
      extra_[ctx.cpu()] = *old;
      co_return e;
    }
    if (freelist_.empty()) co_return std::nullopt;
    const std::uint32_t e = freelist_.front();
    freelist_.pop_front();
    elems_[e].on_freelist = false;
    co_return e;
  }
  if (!replacing && allocated_ >= def.max_entries) co_return std::nullopt;
  if (k.faults.should_fail(FaultSite::kHtabKmalloc)) co_return std::nullopt;
  ++allocated_;
  std::uint32_t e = static_cast<std::uint32_t>(elems_.size());
  if (e >= arena_.size()) arena_.grow();
  elems_.emplace_back();
  elems_[e].obj = k.slab.alloc(&ctx, ObjKind::kHtabElem, fmt::format("elem of map {}", id), obj);
  std::memset(arena_.elem(e), 0, arena_.stride());  // check_and_init_map_value
  co_await ctx.step(k.cost.alloc_ns);
  co_return e;
}

sim::Co<void> HashMap::free_timer(sim::Context& ctx, std::uint32_t e) {
  if (has_timer()) co_await k.timers.cancel_and_free(ctx, timer_addr(e));
}

// free_htab_elem: prealloc -> cancel timer, freelist; otherwise call_rcu(htab_elem_free_rcu), or
// from 2.4 (v6.1) htab_elem_free at once: the timer cancelled and freed here, by the delete or
// update, and the element handed to bpf_mem_cache_free. That allocator keeps freed memory
// type-stable for RCU readers (a program still holding the value reads valid memory, its timer
// field NULL), and may hand it to the next allocation; the model never reuses it.
sim::Co<void> HashMap::free_elem(sim::Context& ctx, std::uint32_t e) {
  if (of_maps_) {
    std::uint32_t inner_id;
    std::memcpy(&inner_id, value_ptr(e), 4);
    if (BpfMap* inner = k.map_by_id(inner_id)) co_await k.sys.map_put(ctx, *inner);
  }
  if (prealloc_) {
    co_await free_timer(ctx, e);
    freelist_.push_front(e);
    elems_[e].on_freelist = true;
    co_return;
  }
  --allocated_;
  if (k.profile.htab_noprealloc_free_at_once) {
    co_await free_timer(ctx, e);
    k.slab.free(&ctx, elems_[e].obj, "htab_elem_free");
    co_await ctx.step(k.cost.alloc_ns);
    co_return;
  }
  elems_[e].pending_rcu_free = true;
  k.rcu.call_rcu(ctx, fmt::format("htab_elem_free_rcu map {} elem {}", id, e),
                 [this, e](sim::Context& c) -> sim::Co<void> {
                   co_await free_timer(c, e);
                   elems_[e].pending_rcu_free = false;
                   k.slab.free(&c, elems_[e].obj, "htab_elem_free");
                   co_await c.step(k.cost.alloc_ns);
                 });
}

// htab_lru_map_delete_node: called by the LRU (holding its list locks, interrupts off) for a node
// it wants to evict. The node's bucket is locked (a node whose bucket slot this CPU is inside
// already, -EBUSY, is skipped: false); if the element is still linked there it is unlinked and its
// timer cancelled and freed (check_and_free_timer) under the bucket lock.
sim::Co<bool> HashMap::lru_delete_node(sim::Context& ctx, std::uint32_t e) {
  const std::uint32_t hash = lru_list_->hash(e);
  Bucket& b = bucket_of(hash);
  if (co_await lock_bucket(ctx, b, hash) != 0) co_return false;
  const bool found = std::find(b.elems.begin(), b.elems.end(), e) != b.elems.end();
  if (found) {
    unlink(b, e);
    ctx.trace("lru_evict", {{"map", id}, {"elem", e}});
    co_await free_timer(ctx, e);
  }
  co_await unlock_bucket(ctx, b, hash);
  co_return found;
}

// copy_map_value_locked: the value copied in place under its bpf_spin_lock; the timer field is
// skipped (or not, on the seed: copy_map_value, reference 2.2).
sim::Co<void> HashMap::copy_value_locked(sim::Context& ctx, std::uint32_t e,
                                         const std::uint8_t* value) {
  KLock& vl = k.value_lock(value_addr(e) + def.spin_lock_off, value_ptr(e) + def.spin_lock_off,
                           "bpf_spin_lock");
  co_await spin_lock_irqsave(k, ctx, vl);
  copy_value(e, value);
  co_await spin_unlock_irqrestore(k, ctx, vl);
}

sim::Co<int> HashMap::update_elem(sim::Context& ctx, const std::uint8_t* key,
                                  const std::uint8_t* value, std::uint64_t flags) {
  if ((flags & ~kBpfFLock) > kBpfExist) co_return -kEINVAL;
  const std::uint32_t hash = hash_key(key);
  Bucket& b = bucket_of(hash);
  if (flags & kBpfFLock) {
    if (def.spin_lock_off < 0 || lru_) co_return -kEINVAL;
    // htab_map_update_elem: a lookup without the bucket lock, check_flags on what it found.
    auto old = find(b, hash, key);
    if (old && (flags & ~kBpfFLock) == kBpfNoexist) co_return -kEEXIST;
    if (!old && (flags & ~kBpfFLock) == kBpfExist) co_return -kENOENT;
    if (old) {
      co_await copy_value_locked(ctx, *old, value);
      co_return 0;
    }
    // Not found: the bucket lock and a second lookup follow. The lockless lookup is a step of
    // its own, so the key may appear before the lock is taken (handled below).
    co_await ctx.step(k.cost.map_op_ns);
  }
  const std::uint64_t mode = flags & ~kBpfFLock;
  BpfMap* inner = nullptr;
  if (of_maps_) {
    std::uint32_t inner_id;
    std::memcpy(&inner_id, value, 4);
    inner = k.map_by_id(inner_id);
    if (!inner || inner->freed) co_return -kEBADF;
  }
  std::optional<std::uint32_t> lru_new;
  if (lru_) {
    // prealloc_lru_pop: a node from the LRU (bpf_lru_pop_free), the key copied into it.
    lru_new = co_await lru_list_->pop_free(ctx, hash);
    if (!lru_new) co_return -kENOMEM;
    std::memcpy(key_ptr(*lru_new), key, def.key_size);
  }
  if (const int busy = co_await lock_bucket(ctx, b, hash); busy != 0) {
    // v5.15 returns here and leaks the popped node (later kernels push it back, err_lock_bucket);
    // the model pushes it back so that a -EBUSY does not shrink the map for good.
    if (lru_new) co_await lru_list_->push_free(ctx, *lru_new);
    co_return busy;
  }
  auto old = find(b, hash, key);
  int ret = 0;
  if (old && mode == kBpfNoexist) ret = -kEEXIST;
  if (!old && mode == kBpfExist) ret = -kENOENT;
  if (ret == 0 && old && (flags & kBpfFLock)) {
    // The key appeared between the lockless lookup and this one (divergence 4 of issue 11):
    // htab_map_update_elem updates it in place under its value lock, still holding the bucket
    // lock; the element and its timer stay.
    ctx.trace("map_update", {{"map", id}, {"elem", *old}, {"in_place", 1}});
    co_await copy_value_locked(ctx, *old, value);
    co_await spin_unlock_irqrestore(k, ctx, b.lock);
    co_return 0;
  }
  std::optional<std::uint32_t> fresh;
  if (ret == 0) {
    // An if/else, never a conditional expression: GCC 12 evaluated the awaiting arm of one even
    // when the other arm was taken, which popped a second free node on every LRU insert and read
    // the (absent) per-CPU extra element on every LRU update of an existing key.
    if (lru_) {
      fresh = lru_new;
    } else {
      fresh = co_await alloc_elem(ctx, old);
    }
    if (!fresh) ret = prealloc_ ? -kE2BIG : (allocated_ >= def.max_entries ? -kE2BIG : -kENOMEM);
  }
  if (ret != 0) {
    co_await unlock_bucket(ctx, b, hash);
    if (lru_new) {  // htab_lru_push_free
      co_await free_timer(ctx, *lru_new);
      co_await lru_list_->push_free(ctx, *lru_new);
    }
    co_return ret;
  }
  const std::uint32_t e = *fresh;
  std::memcpy(key_ptr(e), key, def.key_size);
  copy_value(e, value);
  elems_[e].hash = hash;
  elems_[e].linked = true;
  // htab_lru_map_update_elem: a new element replacing an old one starts referenced.
  if (lru_ && old) lru_list_->set_ref(e);
  b.elems.insert(b.elems.begin(), e);  // new element first: readers find it before the old one
  ++count_;
  // hlist_nulls_add_head_rcu then hlist_nulls_del_rcu of the old one: one step, so no context
  // nested on this CPU sees both linked (the prealloc old one is already this CPU's extra).
  if (old) unlink(b, *old);
  if (inner) k.sys.map_inc(&ctx, *inner);  // bpf_map_fd_get_ptr: a refcnt on the inner map
  ctx.trace("map_update", {{"map", id}, {"elem", e}, {"replaces", old ? 1 : 0}});
  co_await ctx.step(k.cost.map_op_ns);
  if (old) {
    if (lru_) {
      // after the unlock (htab_lru_push_free)
    } else if (prealloc_) {
      if (of_maps_) {
        std::uint32_t inner_id;
        std::memcpy(&inner_id, value_ptr(*old), 4);
        if (BpfMap* inner = k.map_by_id(inner_id)) co_await k.sys.map_put(ctx, *inner);
      }
      co_await free_timer(ctx, *old);  // check_and_free_timer under the bucket lock
    } else {
      co_await free_elem(ctx, *old);
    }
  }
  co_await unlock_bucket(ctx, b, hash);
  if (old && lru_) {
    co_await free_timer(ctx, *old);  // htab_lru_push_free
    co_await lru_list_->push_free(ctx, *old);
  }
  co_return 0;
}

sim::Co<int> HashMap::delete_elem(sim::Context& ctx, const std::uint8_t* key) {
  const std::uint32_t hash = hash_key(key);
  Bucket& b = bucket_of(hash);
  if (const int busy = co_await lock_bucket(ctx, b, hash); busy != 0) co_return busy;
  auto e = find(b, hash, key);
  if (!e) {
    co_await unlock_bucket(ctx, b, hash);
    co_return -kENOENT;
  }
  unlink(b, *e);
  ctx.trace("map_delete", {{"map", id}, {"elem", *e}});
  co_await ctx.step(k.cost.map_op_ns);
  // free_htab_elem: under the bucket lock until v6.12; after the unlock from 2.14 (v6.13).
  const bool free_under_lock = !lru_ && !k.profile.htab_delete_frees_after_unlock;
  const bool free_after_unlock = !lru_ && k.profile.htab_delete_frees_after_unlock;
  if (free_under_lock) co_await free_elem(ctx, *e);
  co_await unlock_bucket(ctx, b, hash);
  if (free_after_unlock) co_await free_elem(ctx, *e);
  if (lru_) {
    co_await free_timer(ctx, *e);  // htab_lru_push_free
    co_await lru_list_->push_free(ctx, *e);
  }
  co_return 0;
}

// htab_map_free_timers
sim::Co<void> HashMap::release_uref(sim::Context& ctx) {
  if (!has_timer()) co_return;
  if (prealloc_) {
    for (std::uint32_t e = 0; e < elems_.size(); ++e)
      co_await free_timer(ctx, e);
    co_return;
  }
  k.rcu.read_lock(ctx);
  for (auto& b : buckets_) {
    const std::vector<std::uint32_t> snapshot = b.elems;
    for (std::uint32_t e : snapshot)
      if (elems_[e].linked) co_await free_timer(ctx, e);
  }
  k.rcu.read_unlock(ctx);
}

// htab_map_free: first rcu_barrier(), so the element frees still queued by call_rcu (each may
// cancel and free the element's timer) run before the map goes (divergence 7 of issue 11).
sim::Co<void> HashMap::free(sim::Context& ctx) {
  co_await k.rcu.barrier(ctx);
  if (of_maps_) {
    for (std::uint32_t e = 0; e < elems_.size(); ++e)
      if (elems_[e].linked) {
        std::uint32_t inner_id;
        std::memcpy(&inner_id, value_ptr(e), 4);
        if (BpfMap* inner = k.map_by_id(inner_id)) co_await k.sys.map_put(ctx, *inner);
      }
  }
  if (!prealloc_) {
    // delete_all_elements: htab_elem_free on every linked element.
    for (std::uint32_t e = 0; e < elems_.size(); ++e) {
      if (!elems_[e].linked) continue;
      elems_[e].linked = false;
      co_await free_timer(ctx, e);
      k.slab.free(&ctx, elems_[e].obj, "htab_map_free");
    }
  }
  co_await ctx.step(k.cost.alloc_ns);
}

std::uint64_t HashMap::callback_key(sim::Context&, std::uint64_t value) {
  return value - value_off_;
}

void HashMap::for_each_value(const std::function<void(std::uint64_t, std::uint8_t*)>& fn) const {
  for (std::uint32_t e = 0; e < elems_.size(); ++e) {
    if (!prealloc_ && !elems_[e].linked && !elems_[e].pending_rcu_free) continue;
    fn(value_addr(e), value_ptr(e));
  }
}

void HashMap::for_each_inner(const std::function<void(BpfMap*)>& fn) const {
  if (!of_maps_) return;
  for (std::uint32_t e = 0; e < elems_.size(); ++e) {
    if (!elems_[e].linked) continue;
    std::uint32_t inner_id;
    std::memcpy(&inner_id, value_ptr(e), 4);
    if (BpfMap* inner = k.map_by_id(inner_id)) fn(inner);
  }
}

bool HashMap::peek_elem(const std::uint8_t* key, std::vector<std::uint8_t>* value) const {
  const std::uint32_t hash = hash_key(key);
  const auto e = find(buckets_[hash & (buckets_.size() - 1)], hash, key);
  if (!e) return false;
  const std::uint8_t* v = value_ptr(*e);
  value->assign(v, v + (of_maps_ ? 4u : def.value_size));
  return true;
}

}  // namespace bpftsim::model
