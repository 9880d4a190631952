// Race 4.3 (reference section 4.3): a callback deletes or overwrites its own element. Scenarios:
// scenarios/races/4.3-*.json, one arm_* program each.
//
//   arm_hash        prealloc hash, key 2: the callback deletes its element (no deadlock: the
//                   free skips hrtimer_cancel for the running timer), then start -> -EINVAL
//   arm_hash_uaf    prealloc hash, key 2: the callback re-arms T (100 us) first, then deletes: the
//                   queued bpf_hrtimer is freed (the skip path) and its expiry touches freed
//                   memory
//   arm_noprealloc  BPF_F_NO_PREALLOC hash, key 3: delete, then start(T, 2^35) -> 0 (the seed's
//                   bit 256: the element is freed one RCU grace period later, which cancels T)
//   arm_lru         LRU hash of 4, key 4: the callback's inserts evict its own element; cancel on
//                   the evicted element's timer then -> -EINVAL
//   arm_array       array slot 0: the callback cancels its own timer (-EDEADLK), updates its own
//                   slot (0), which frees its timer; cancel then -> -EINVAL (the timer is
//                   checked before "is it mine"), start -> -EINVAL
#include "race_common.h"

char _license[] SEC("license") = "GPL";

struct hval {
  __u64 counter;
  struct bpf_timer t; /* at offset 8 */
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 8);
  __type(key, int);
  __type(value, struct hval);
} hmap SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(max_entries, 8);
  __type(key, int);
  __type(value, struct hval);
} hmap_malloc SEC(".maps");

ELEM_MAP(lru, BPF_MAP_TYPE_LRU_HASH, 4);

ELEM_MAP(array, BPF_MAP_TYPE_ARRAY, 1);

ARM_RESULTS;
long rearm_ret = UNSET;
long delete_ret = UNSET;
long update_ret = UNSET;
long start_after = UNSET;
long own_cancel = UNSET;
long cancel_before_update = UNSET;
long cancel_after_update = UNSET;
long evicted_at_key = UNSET;
long callbacks;

static int delete_own_cb(void *map, int *key, struct hval *val)
{
  callbacks++;
  delete_ret = bpf_map_delete_elem(map, key);
  start_after = bpf_timer_start(&val->t, 1000, 0);
  return 0;
}

#define REARM_UAF_NS 100000

static int rearm_then_delete_cb(void *map, int *key, struct hval *val)
{
  callbacks++;
  /* Further out than an RCU grace period: even the kfree_rcu of fix 2.9 has freed the
   * bpf_hrtimer by the time it expires; only the deferred cancel of fix 2.12 closes this. */
  rearm_ret = bpf_timer_start(&val->t, REARM_UAF_NS, 0);
  delete_ret = bpf_map_delete_elem(map, key);
  return 0;
}

static int delete_then_rearm_cb(void *map, int *key, struct hval *val)
{
  callbacks++;
  delete_ret = bpf_map_delete_elem(map, key);
  start_after = bpf_timer_start(&val->t, LONG_NS, 0);
  return 0;
}

static int evict_own_cb(void *map, int *key, struct elem *val)
{
  int i;

  callbacks++;
  /* Insert fresh keys until the LRU recycles the element this callback runs for (its key, which
   * lives in the element, changes). The induction variable is i, for a bounded loop. */
  for (i = 5; i < 100; i++) {
    struct elem fresh = {};
    int k = i;

    bpf_map_update_elem(map, &k, &fresh, 0);
    bpf_map_lookup_elem(map, &k);
    if (*key != 4) {
      evicted_at_key = i;
      break;
    }
  }
  own_cancel = bpf_timer_cancel(&val->t);
  return 0;
}

static int update_own_cb(void *map, int *key, struct elem *val)
{
  struct elem fresh = {};

  callbacks++;
  cancel_before_update = bpf_timer_cancel(&val->t);
  update_ret = bpf_map_update_elem(map, key, &fresh, 0);
  cancel_after_update = bpf_timer_cancel(&val->t);
  start_after = bpf_timer_start(&val->t, 1000, 0);
  return 0;
}

/* Create map[key] (hash maps), then init its timer, install `cb` and start it in `ns`. */
#define ARM_HASH(name, map, k, cb, ns)                                 \
  SEC("syscall")                                                       \
  int name(void *ctx)                                                  \
  {                                                                    \
    struct hval zero = {};                                             \
    struct hval *val;                                                  \
    int key = k;                                                       \
                                                                       \
    bpf_map_update_elem(&map, &key, &zero, 0);                         \
    val = bpf_map_lookup_elem(&map, &key);                             \
    if (!val)                                                          \
      return 1;                                                        \
    ARM_TIMER(val, &map, cb, ns);                                      \
    return 0;                                                          \
  }

ARM_HASH(arm_hash, hmap, 2, delete_own_cb, 1000)
ARM_HASH(arm_hash_uaf, hmap, 2, rearm_then_delete_cb, 1000)
ARM_HASH(arm_noprealloc, hmap_malloc, 3, delete_then_rearm_cb, 1000)

SEC("syscall")
int arm_lru(void *ctx)
{
  struct elem zero = {};
  struct elem *val;
  int key = 4;

  bpf_map_update_elem(&lru, &key, &zero, 0);
  val = bpf_map_lookup_elem(&lru, &key);
  if (!val)
    return 1;
  ARM_TIMER(val, &lru, evict_own_cb, 0);
  return 0;
}

SEC("syscall")
int arm_array(void *ctx)
{
  struct elem *val;
  int key = 0;

  val = bpf_map_lookup_elem(&array, &key);
  if (!val)
    return 1;
  ARM_TIMER(val, &array, update_own_cb, 1000);
  return 0;
}
