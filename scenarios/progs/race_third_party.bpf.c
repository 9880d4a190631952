// Race 4.7 (reference section 4.7): a third CPU re-arms a timer while a cancel waits for its
// running callback. Scenario: scenarios/races/4.7-rearm-during-cancel.json.
//
// `arm` (CPU0) starts T in 1000 ns with a long callback. `canceller` (CPU1) cancels T during the
// callback: it drops the prog reference and spins in hrtimer_cancel. `third` (CPU2, another
// program) then calls start -> -EINVAL (no prog), set_callback -> 0 (its own callback, its own
// prog reference) and start -> 0: T is queued again, on CPU0's base. When the callback returns,
// the cancel finds T queued, dequeues it and returns 1. `check` later cancels T once more: 0,
// T is idle (not armed), though `third`'s prog reference stayed until that cancel.
#include "race_common.h"

char _license[] SEC("license") = "GPL";

ELEM_MAP(timers, BPF_MAP_TYPE_ARRAY, 1);

ARM_RESULTS;
long cancel_ret = UNSET;
long third_start = UNSET;
long third_set_callback = UNSET;
long third_start_again = UNSET;
long check_cancel_ret = UNSET;
long callbacks;
long third_callbacks;

static int long_cb(void *map, int *key, struct elem *val)
{
  callbacks++;
  burn(2000);
  return 0;
}

static int third_cb(void *map, int *key, struct elem *val)
{
  third_callbacks++;
  return 0;
}

ARM_SLOT0_PROG(arm, timers, long_cb, 1000)

CANCEL_SLOT0_PROG(canceller, timers, cancel_ret)

SEC("syscall")
int third(void *ctx)
{
  int key = 0;
  struct elem *val = bpf_map_lookup_elem(&timers, &key);

  if (!val)
    return 1;
  third_start = bpf_timer_start(&val->t, 100000, 0);
  third_set_callback = bpf_timer_set_callback(&val->t, third_cb);
  third_start_again = bpf_timer_start(&val->t, 100000, 0);
  return 0;
}

CANCEL_SLOT0_PROG(check, timers, check_cancel_ret)
