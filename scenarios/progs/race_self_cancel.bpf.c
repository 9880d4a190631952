// Race 4.2 (reference section 4.2): a callback cancels its own timer. Scenario:
// scenarios/races/4.2-self-cancel.json.
//
// `arm` starts T in 1000 ns. The callback first re-arms T far in the future, then cancels T:
// -EDEADLK (hrtimer_running of this CPU is T); nothing is dropped: neither the prog reference nor
// the queued re-arm. Later `check_armed` cancels T from a plain program: 1, so T stayed queued
// through the self-cancel (nothing in between re-queues it).
#include "race_common.h"

char _license[] SEC("license") = "GPL";

ELEM_MAP(timers, BPF_MAP_TYPE_ARRAY, 1);

ARM_RESULTS;
long rearm_ret = UNSET;
long self_cancel_ret = UNSET;
long later_cancel_ret = UNSET;
long callbacks;

static int self_cancel_cb(void *map, int *key, struct elem *val)
{
  callbacks++;
  rearm_ret = bpf_timer_start(&val->t, LONG_NS, 0);
  self_cancel_ret = bpf_timer_cancel(&val->t);
  return 0;
}

ARM_SLOT0_PROG(arm, timers, self_cancel_cb, 1000)

CANCEL_SLOT0_PROG(check_armed, timers, later_cancel_ret)
