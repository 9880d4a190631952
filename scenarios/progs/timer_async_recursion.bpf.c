// timer_async_recursion: v7.0's recursion guard (reference 2.22, 64873307e888; 4.14 F2). A
// bpf_timer_start made from a hardirq is a START command on the timer's irq_work; the worker's
// hrtimer_start fires the hrtimer_start tracepoint, and on_hrtimer_start, attached there, starts
// the same timer again: while this CPU runs that timer's commands, the new op gets -EDEADLK
// instead of queueing another command (an endless irq_work loop otherwise).
// Scenario: scenarios/errors/start-edeadlk-recursion-v7.0.json.
#include "race_common.h"

char _license[] SEC("license") = "GPL";

ELEM_MAP(timers, BPF_MAP_TYPE_ARRAY, 1);

ARM_RESULTS;
long irq_ret = UNSET;
long nested_ret = UNSET;
long tp_runs;
long callbacks;

static int cb(void *m, int *key, struct elem *val)
{
  callbacks++;
  return 0;
}

static struct elem *slot0(void)
{
  int key = 0;

  return bpf_map_lookup_elem(&timers, &key);
}

SEC("syscall")
int arm_idle(void *ctx)
{
  struct elem *val = slot0();

  if (!val)
    return 1;
  arm_init = bpf_timer_init(&val->t, &timers, CLOCK_MONOTONIC);
  arm_set_callback = bpf_timer_set_callback(&val->t, cb);
  return 0;
}

/* Run as a hardirq by the scenario: starts slot 0's timer in 10 us. */
SEC("fentry/bpf_fentry_test1")
int irq_start(void *ctx)
{
  struct elem *val = slot0();

  if (!val)
    return 1;
  irq_ret = bpf_timer_start(&val->t, 10000, 0);
  return 0;
}

SEC("tp_btf/hrtimer_start")
int on_hrtimer_start(__u64 *ctx)
{
  struct elem *val = slot0();

  tp_runs++;
  if (val)
    nested_ret = bpf_timer_start(&val->t, 20000, 0);
  return 0;
}
