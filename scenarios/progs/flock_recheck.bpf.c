// flock_recheck: a BPF_F_LOCK update of a hash key that appears between the update's lookup
// without the bucket lock and its lookup under it (htab_map_update_elem, kernel/bpf/hashtab.c).
// The kernel re-checks under the bucket lock and updates the element it finds in place, under
// the value's lock, so the element and its armed timer stay. Scenario:
// scenarios/errors/map-update-flock-recheck.json.
#include "race_common.h"

char _license[] SEC("license") = "GPL";

struct locked_val {
  struct bpf_spin_lock lock;
  int data;
  struct bpf_timer t;
};

/* One bucket (max_entries 1): every key hashes to it. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1);
  __type(key, int);
  __type(value, struct locked_val);
} m SEC(".maps");

long insert_ret = UNSET;
long init_ret = UNSET;
long set_callback_ret = UNSET;
long start_ret = UNSET;
long callbacks;

static int count_cb(void *map, int *key, struct locked_val *val)
{
  callbacks++;
  return 0;
}

/* m[1] = {data: ctx[0]} with BPF_F_LOCK (insert or update in place). */
SEC("syscall")
long flock_update(__u64 *ctx)
{
  struct locked_val v = {};
  int key = 1;

  v.data = ctx[0];
  return bpf_map_update_elem(&m, &key, &v, BPF_F_LOCK);
}

/* Inserts m[1] and arms its timer 2^35 ns ahead (it never fires during the test). */
SEC("syscall")
long insert_arm(__u64 *ctx)
{
  struct locked_val zero = {}, *val;
  int key = 1;

  insert_ret = bpf_map_update_elem(&m, &key, &zero, BPF_ANY);
  val = bpf_map_lookup_elem(&m, &key);
  if (!val)
    return 1;
  init_ret = bpf_timer_init(&val->t, &m, CLOCK_MONOTONIC);
  set_callback_ret = bpf_timer_set_callback(&val->t, count_cb);
  start_ret = bpf_timer_start(&val->t, LONG_NS, 0);
  return 0;
}

/* m[1].data, or -1 if absent. */
SEC("syscall")
long read_data(__u64 *ctx)
{
  struct locked_val *val;
  int key = 1;

  val = bpf_map_lookup_elem(&m, &key);
  return val ? val->data : -1;
}

/* bpf_timer_cancel(m[1].t): 1 while the armed timer is there, -EINVAL for a fresh element. */
SEC("syscall")
long cancel(__u64 *ctx)
{
  struct locked_val *val;
  int key = 1;

  val = bpf_map_lookup_elem(&m, &key);
  return val ? bpf_timer_cancel(&val->t) : UNSET;
}
