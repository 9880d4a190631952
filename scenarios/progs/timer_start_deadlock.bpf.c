// timer_start_deadlock: the kernel's selftest of that name (v7.0 cycle, reference 3.8 and 2.22)
// written anew for bpftsim. start_timer starts slot 0's timer twice; the second start finds it
// queued and removes it first, which fires the hrtimer_cancel tracepoint under the CPU's hrtimer
// base lock (IRQs off). tp_hrtimer_cancel, attached there, starts the same timer once from
// inside: on v7.0 that start only queues a START command to the timer's irq_work (2.22) and the
// test returns; before, it re-enters the timer code under the locks the outer start holds.
// The selftest asserts only tp_called; nested_ret (ours) keeps what the inner start returned.
// Scenarios: scenarios/conformance/timer_start_deadlock_v7_0.json (and *_v6_14.json, the same
// program on the era before the rework).
#include "race_common.h"

#define START_NS 1000000000ull /* 1 s: never fires during the test */

char _license[] SEC("license") = "GPL";

ELEM_MAP(timer_map, BPF_MAP_TYPE_ARRAY, 1);

long in_timer_start;
long tp_called;
long nested_ret = UNSET;
static long nested_done; /* "once": the tracepoint program starts the timer one time only */

static int timer_cb(void *m, int *key, struct elem *val)
{
  return 0;
}

SEC("tp_btf/hrtimer_cancel")
int tp_hrtimer_cancel(__u64 *ctx)
{
  int key = 0;
  struct elem *val;

  if (!in_timer_start)
    return 0;
  tp_called = 1;
  if (nested_done)
    return 0;
  nested_done = 1;
  val = bpf_map_lookup_elem(&timer_map, &key);
  if (val)
    nested_ret = bpf_timer_start(&val->t, START_NS, 0);
  return 0;
}

SEC("syscall")
int start_timer(void *ctx)
{
  int key = 0;
  struct elem *val;

  val = bpf_map_lookup_elem(&timer_map, &key);
  if (!val)
    return 1;
  bpf_timer_init(&val->t, &timer_map, CLOCK_MONOTONIC);
  bpf_timer_set_callback(&val->t, timer_cb);
  in_timer_start = 1;
  bpf_timer_start(&val->t, START_NS, 0);
  /* Queued now: this start removes it first (the hrtimer_cancel tracepoint). */
  bpf_timer_start(&val->t, START_NS, 0);
  in_timer_start = 0;
  return 0;
}
