// Race 4.2 (reference section 4.2): a callback cancels its own timer. Scenario:
// scenarios/races/4.2-self-cancel.json.
//
// `arm` starts T in 1000 ns. The callback first re-arms T far in the future, then cancels T:
// -EDEADLK (hrtimer_running of this CPU is T); nothing is dropped: neither the prog reference nor
// the queued re-arm. Later `check_armed` cancels T from a plain program: 1, so T stayed queued
// through the self-cancel (nothing in between re-queues it).
#include "race_common.h"

char _license[] SEC("license") = "GPL";

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, int);
  __type(value, struct elem);
} timers SEC(".maps");

long arm_init = UNSET;
long arm_set_callback = UNSET;
long arm_start = UNSET;
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

SEC("syscall")
int arm(void *ctx)
{
  int key = 0;
  struct elem *val = bpf_map_lookup_elem(&timers, &key);

  if (!val)
    return 1;
  arm_init = bpf_timer_init(&val->t, &timers, CLOCK_MONOTONIC);
  arm_set_callback = bpf_timer_set_callback(&val->t, self_cancel_cb);
  arm_start = bpf_timer_start(&val->t, 1000, 0);
  return 0;
}

SEC("syscall")
int check_armed(void *ctx)
{
  int key = 0;
  struct elem *val = bpf_map_lookup_elem(&timers, &key);

  if (!val)
    return 1;
  later_cancel_ret = bpf_timer_cancel(&val->t);
  return 0;
}
