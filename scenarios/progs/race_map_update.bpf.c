// Race 4.12 (reference section 4.12): map updates of elements that have a timer. Scenarios:
// scenarios/races/4.12-*.json, one arm_* program and one map each.
//
//   arm_array      array slot 0, long callback (CPU0); a syscall update of the slot on CPU1
//                  during the callback waits for it (cancel_and_free's hrtimer_cancel);
//                  `after_update`, queued behind the update on CPU1, records that it returned
//                  after the callback ended
//   arm_flock      hash {lock; timer; data}, key 1, timer in 10 us; a BPF_EXIST|BPF_F_LOCK
//                  update copies in place and the timer keeps running, but the seed's
//                  copy_map_value skips only the lock (reference 2.2): the timer pointer is
//                  overwritten with user bytes, and the exit's cancel_and_free follows it
//   arm_noprealloc no-prealloc hash, key 1, timer in 1 us; a syscall update at 0.5 us replaces
//                  the element, whose free (and timer cancel) waits for an RCU grace period:
//                  the old timer still fires
//   arm_copy_bug   array {timer; lock}: a plain update from user space copies over the timer
//                  pointer (the seed's copy_map_value bug), cancel_and_free dereferences it
//   arm_abba       hash with one bucket, key 1, long callback that then deletes key 9 (same
//                  bucket); a syscall update of key 1 on CPU1 holds the bucket lock while
//                  hrtimer_cancel waits for the callback, which spins on the bucket lock: ABBA
#include "race_common.h"

char _license[] SEC("license") = "GPL";

ELEM_MAP(array, BPF_MAP_TYPE_ARRAY, 1);

struct locked_val {
  struct bpf_spin_lock lock; /* at 0 */
  __u32 pad;
  struct bpf_timer t; /* at 8 */
  __u64 data;
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4);
  __type(key, int);
  __type(value, struct locked_val);
} flock_hash SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(max_entries, 4);
  __type(key, int);
  __type(value, struct elem);
} noprealloc_hash SEC(".maps");

struct timer_then_lock {
  struct bpf_timer t;        /* at 0 */
  struct bpf_spin_lock lock; /* at 16 */
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, int);
  __type(value, struct timer_then_lock);
} copy_bug_array SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1); /* a single bucket */
  __type(key, int);
  __type(value, struct elem);
} one_bucket SEC(".maps");

ARM_RESULTS;
long update_returned_after_callback = UNSET;
long cb_delete_ret = UNSET;
long callbacks;
__u64 callback_end_ns;

static int long_cb(void *map, int *key, struct elem *val)
{
  callbacks++;
  burn(1000);
  callback_end_ns = bpf_ktime_get_ns();
  return 0;
}

static int count_cb(void *map, int *key, void *val)
{
  callbacks++;
  return 0;
}

static int delete_other_cb(void *map, int *key, struct elem *val)
{
  int other = 9;

  callbacks++;
  burn(600);
  cb_delete_ret = bpf_map_delete_elem(map, &other);
  return 0;
}

#define ARM(name, map, vtype, k, create, cb, ns)                       \
  SEC("syscall")                                                       \
  int name(void *ctx)                                                  \
  {                                                                    \
    vtype zero = {};                                                   \
    vtype *val;                                                        \
    int key = k;                                                       \
                                                                       \
    if (create)                                                        \
      bpf_map_update_elem(&map, &key, &zero, 0);                       \
    val = bpf_map_lookup_elem(&map, &key);                             \
    if (!val)                                                          \
      return 1;                                                        \
    ARM_TIMER(val, &map, cb, ns);                                      \
    return 0;                                                          \
  }

ARM(arm_array, array, struct elem, 0, 0, long_cb, 1000)
ARM(arm_flock, flock_hash, struct locked_val, 1, 1, count_cb, 10000)
ARM(arm_noprealloc, noprealloc_hash, struct elem, 1, 1, count_cb, 1000)
ARM(arm_copy_bug, copy_bug_array, struct timer_then_lock, 0, 0, count_cb, LONG_NS)
ARM(arm_abba, one_bucket, struct elem, 1, 1, delete_other_cb, 1000)

SEC("syscall")
int after_update(void *ctx)
{
  __u64 now = bpf_ktime_get_ns();

  update_returned_after_callback = callback_end_ns != 0 && now >= callback_end_ns;
  return 0;
}
