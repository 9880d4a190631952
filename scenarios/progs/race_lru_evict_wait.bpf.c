// An LRU eviction that waits for a running callback while holding the LRU's list lock (inferred
// from kernel/bpf/bpf_lru_list.c and hashtab.c; no report found). Scenario:
// scenarios/races/lru-evict-waits-for-callback.json.
//
// arm_cpu1 (CPU1) inserts keys 1 and 2 into a 2-entry LRU hash (CPU1's first refill takes both
// nodes, so its local free list is then empty), looks both up (referenced) and arms key 1's timer
// in 1000 ns. The callback burns a few microseconds, then inserts key 5. insert_cpu0 (CPU0)
// inserts key 3 meanwhile: nothing is free anywhere, so bpf_lru_pop_free steals from CPU1's
// pending list under CPU1's local list lock (interrupts off) and, ignoring the reference bits on
// its second pass, evicts key 1: htab_lru_map_delete_node cancels and frees key 1's timer, whose
// callback is running on CPU1, so hrtimer_cancel waits for it. The callback's insert needs CPU1's
// local list lock: a deadlock, on every profile up to v6.14 (2.12 defers the free only when
// called from a timer callback; this eviction runs in a program on CPU0).
#include "race_common.h"

char _license[] SEC("license") = "GPL";

ELEM_MAP(lru, BPF_MAP_TYPE_LRU_HASH, 2);

ARM_RESULTS;
long cb_update_ret = UNSET;
long evict_ret = UNSET;
long callbacks;

static int insert_cb(void *map, int *key, struct elem *val)
{
  struct elem zero = {};
  int k = 5;

  callbacks++;
  burn(1000);
  cb_update_ret = bpf_map_update_elem(&lru, &k, &zero, 0);
  return 0;
}

SEC("syscall")
int arm_cpu1(void *ctx)
{
  struct elem zero = {};
  struct elem *val;
  int key1 = 1, key2 = 2;

  bpf_map_update_elem(&lru, &key1, &zero, 0);
  bpf_map_update_elem(&lru, &key2, &zero, 0);
  bpf_map_lookup_elem(&lru, &key2);
  val = bpf_map_lookup_elem(&lru, &key1);
  if (!val)
    return 1;
  ARM_TIMER(val, &lru, insert_cb, 1000);
  return 0;
}

SEC("syscall")
int insert_cpu0(void *ctx)
{
  struct elem zero = {};
  int key = 3;

  evict_ret = bpf_map_update_elem(&lru, &key, &zero, 0);
  return 0;
}
