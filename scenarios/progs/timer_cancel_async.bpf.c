// timer_cancel_async: the kfunc bpf_timer_cancel_async (reference 2.21, v7.0) and its results
// (reference 4.17, column F2): 0 idle, 1 dequeued, -1 callback running (from a task: it never
// waits), -ECANCELED when deferred to the irq_work (from an interrupt). The object does not
// load before 2.21: the kernel has no such kfunc.
// Scenarios: scenarios/errors/cancel-async-*-v7.0.json.
#include "race_common.h"

/* The callback's length: about 20 us of virtual time. */
#define CB_BURN 4000

/* The kfunc: an extern in .ksyms that the loader resolves by name. */
extern int bpf_timer_cancel_async(struct bpf_timer *timer) __ksym;

char _license[] SEC("license") = "GPL";

ELEM_MAP(timers, BPF_MAP_TYPE_ARRAY, 1);

ARM_RESULTS;
long async_ret = UNSET;
long irq_ret = UNSET;
long callbacks;

static int slow_cb(void *m, int *key, struct elem *val)
{
  burn(CB_BURN);
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
  arm_set_callback = bpf_timer_set_callback(&val->t, slow_cb);
  return 0;
}

/* Starts slot 0's timer in ctx[0] ns. */
SEC("syscall")
int start_in(__u64 *ctx)
{
  struct elem *val = slot0();

  if (!val)
    return 1;
  arm_start = bpf_timer_start(&val->t, ctx[0], 0);
  return 0;
}

SEC("syscall")
int cancel_async(void *ctx)
{
  struct elem *val = slot0();

  if (!val)
    return 1;
  async_ret = bpf_timer_cancel_async(&val->t);
  return 0;
}

/* From an interrupt (an fentry program the scenario runs as hardirq or NMI). */
SEC("fentry/bpf_fentry_test1")
int irq_cancel_async(void *ctx)
{
  struct elem *val = slot0();

  if (!val)
    return 1;
  irq_ret = bpf_timer_cancel_async(&val->t);
  return 0;
}
