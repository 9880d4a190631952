// Race 4.8 (reference section 4.8, selftest timer_lockup): two callbacks cancel each other's
// timer. Scenario: scenarios/races/4.8-mutual-cancel.json.
//
// timer1_prog (CPU0) arms m1's timer, timer2_prog (CPU1) arms m2's, both in 1000 ns. cb1 cancels
// m2's timer, cb2 cancels m1's: on v5.15 each drops the other's prog reference and spins in
// hrtimer_cancel waiting for the other callback, which never returns: a deadlock of the two
// softirqs (the kernel reports soft lockups). Neither cancel returns, so both results stay 99.
// With fix 2.11 each cancel returns 0 or -EDEADLK; edeadlk_count counts the -EDEADLKs.
#include "race_common.h"

char _license[] SEC("license") = "GPL";

ELEM_MAP(m1, BPF_MAP_TYPE_ARRAY, 1);

ELEM_MAP(m2, BPF_MAP_TYPE_ARRAY, 1);

long arm1_start = UNSET;
long arm2_start = UNSET;
long cb1_cancel_ret = UNSET;
long cb2_cancel_ret = UNSET;
long edeadlk_count; /* cross-cancels that returned -EDEADLK (only reached with fix 2.11) */

/* A callback's body: a little work, then cancel the timer of `other_map` into *ret. */
static __always_inline void cancel_other(void *other_map, long *ret)
{
  struct elem *other;
  int k = 0;

  burn(20);
  other = bpf_map_lookup_elem(other_map, &k);
  if (other)
    *ret = bpf_timer_cancel(&other->t);
  if (*ret == -EDEADLK)
    edeadlk_count++;
}

static int timer_cb1(void *map, int *key, struct elem *val)
{
  cancel_other(&m2, &cb1_cancel_ret);
  return 0;
}

static int timer_cb2(void *map, int *key, struct elem *val)
{
  cancel_other(&m1, &cb2_cancel_ret);
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
