// Race 2.12 A (reference section 2.12, "mutual free deadlock"): two callbacks on two CPUs each
// overwrite the array slot that holds the other's timer. Scenarios:
// scenarios/races/2.12-a-mutual-free.json, scenarios/explore/2.12-a-mutual-free.json.
//
// timer1_prog (CPU0) arms m1's timer, timer2_prog (CPU1) arms m2's, both in 1000 ns. cb1 updates
// m2[0], cb2 updates m1[0]: the array update frees the old value's timer (bpf_timer_cancel_and_free),
// which waits in hrtimer_cancel for the other callback, which waits the same way: a deadlock of
// the two softirqs until v6.8, since a map update cannot return an error. With 2.12 (v6.10) a
// cancel_and_free from inside a timer callback defers the cancel and the free to a worker, so
// both updates return 0.
#include "race_common.h"

char _license[] SEC("license") = "GPL";

ELEM_MAP(m1, BPF_MAP_TYPE_ARRAY, 1);

ELEM_MAP(m2, BPF_MAP_TYPE_ARRAY, 1);

long arm1_start = UNSET;
long arm2_start = UNSET;
long cb1_update_ret = UNSET;
long cb2_update_ret = UNSET;
long callbacks;

/* A callback's body: a little work, then overwrite slot 0 of `other_map` into *ret. */
static __always_inline void free_other(void *other_map, long *ret)
{
  struct elem zero = {};
  int k = 0;

  callbacks++;
  burn(20);
  *ret = bpf_map_update_elem(other_map, &k, &zero, 0);
}

static int timer_cb1(void *map, int *key, struct elem *val)
{
  free_other(&m2, &cb1_update_ret);
  return 0;
}

static int timer_cb2(void *map, int *key, struct elem *val)
{
  free_other(&m1, &cb2_update_ret);
  return 0;
}

SEC("syscall")
int timer1_prog(void *ctx)
{
  int key = 0;
  struct elem *val = bpf_map_lookup_elem(&m1, &key);

  if (!val)
    return 1;
  bpf_timer_init(&val->t, &m1, CLOCK_MONOTONIC);
  bpf_timer_set_callback(&val->t, timer_cb1);
  arm1_start = bpf_timer_start(&val->t, 1000, 0);
  return 0;
}

SEC("syscall")
int timer2_prog(void *ctx)
{
  int key = 0;
  struct elem *val = bpf_map_lookup_elem(&m2, &key);

  if (!val)
    return 1;
  bpf_timer_init(&val->t, &m2, CLOCK_MONOTONIC);
  bpf_timer_set_callback(&val->t, timer_cb2);
  arm2_start = bpf_timer_start(&val->t, 1000, 0);
  return 0;
}
