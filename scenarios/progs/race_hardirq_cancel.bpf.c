// Race 4.13 (reference section 4.13): a hardirq interrupts T's callback on CPU0 and a program
// there cancels T. Scenario: scenarios/races/4.13-hardirq-cancels-interrupted-callback.json.
//
// `arm` starts T (slot 0) in 1000 ns with a long callback, and T2 (slot 1) far in the future.
// T's callback sets `in_callback`, burns a few microseconds, calls a helper (a step boundary,
// where the hardirq lands), burns again and clears `in_callback`. `irq_cancel` runs in that
// hardirq on CPU0: hrtimer_running is per CPU and still T, so bpf_timer_cancel(T) returns
// -EDEADLK (waiting for the interrupted callback would never end) and keeps T's prog reference;
// bpf_timer_cancel(T2) is an ordinary cancel (1: T2 was queued, it never fires). `irq_saw` records
// `in_callback` as the hardirq saw it (1: the callback was indeed interrupted).
#include "race_common.h"

char _license[] SEC("license") = "GPL";

ELEM_MAP(timers, BPF_MAP_TYPE_ARRAY, 2);

ARM_RESULTS;
long arm_other = UNSET;
long irq_cancel_ret = UNSET;
long irq_cancel_other_ret = UNSET;
long irq_saw = UNSET;
long in_callback;
long callbacks;
long other_callbacks;

static struct elem *slot(int i)
{
  return bpf_map_lookup_elem(&timers, &i);
}

static int long_cb(void *map, int *key, struct elem *val)
{
  callbacks++;
  in_callback = 1;
  burn(1000);
  bpf_ktime_get_ns(); /* a step boundary inside the callback */
  burn(1000);
  in_callback = 0;
  return 0;
}

static int other_cb(void *map, int *key, struct elem *val)
{
  other_callbacks++;
  return 0;
}

SEC("syscall")
int arm(void *ctx)
{
  struct elem *val = slot(0), *other = slot(1);

  if (!val || !other)
    return 1;
  ARM_TIMER(val, &timers, long_cb, 1000);
  bpf_timer_init(&other->t, &timers, CLOCK_MONOTONIC);
  bpf_timer_set_callback(&other->t, other_cb);
  arm_other = bpf_timer_start(&other->t, LONG_NS, 0);
  return 0;
}

// An fentry program of a function that runs in hardirq (a perf_event program would be refused
// from v5.16 on, reference 2.1; BPF_PROG_TYPE_TRACING keeps timers).
SEC("fentry/bpf_fentry_test1")
int irq_cancel(void *ctx)
{
  struct elem *val = slot(0), *other = slot(1);

  if (!val || !other)
    return 1;
  irq_saw = in_callback;
  irq_cancel_ret = bpf_timer_cancel(&val->t);
  irq_cancel_other_ret = bpf_timer_cancel(&other->t);
  return 0;
}
