// Race 4.1 (reference section 4.1) and its interleaving points IP-a and IP-b: bpf_timer_cancel on
// CPU1 while the timer's callback runs on CPU0. Scenarios: scenarios/races/4.1-*.json.
//
// One array slot holds timer T. Each arm_* program (run on CPU0) initialises T, installs one of
// the three callbacks and starts T in 1000 ns; `canceller` (run on CPU1 while the callback's long
// body runs) cancels T and records the result, and whether it returned after the callback ended
// (every callback stamps its end with bpf_ktime_get_ns).
//   long_cb  (4.1)      long body, then start(T): -EINVAL (the cancel dropped the prog)
//   cb_ip_a  (4.1-ip-a) long body, then start -EINVAL, set_callback 0, start 0: re-armed during
//                       the cancel's wait, so the cancel dequeues it and returns 1
//   cb_ip_b  (4.1-ip-b) start(T) first (re-armed before the cancel began), then the long body:
//                       the cancel returns 1
#include "race_common.h"

char _license[] SEC("license") = "GPL";

ELEM_MAP(timers, BPF_MAP_TYPE_ARRAY, 1);

ARM_RESULTS;
long cancel_ret = UNSET;
long cb_start = UNSET;
long cb_set_callback = UNSET;
long cb_start_again = UNSET;
long cancel_returned_after_callback = UNSET;
long callbacks;
__u64 callback_end_ns;

#define LONG_BODY 1000

static int long_cb(void *map, int *key, struct elem *val)
{
  callbacks++;
  burn(LONG_BODY);
  cb_start = bpf_timer_start(&val->t, 100, 0);
  callback_end_ns = bpf_ktime_get_ns();
  return 0;
}

static int cb_ip_a(void *map, int *key, struct elem *val)
{
  callbacks++;
  burn(LONG_BODY);
  cb_start = bpf_timer_start(&val->t, 100, 0);
  cb_set_callback = bpf_timer_set_callback(&val->t, cb_ip_a);
  cb_start_again = bpf_timer_start(&val->t, 100000, 0);
  callback_end_ns = bpf_ktime_get_ns();
  return 0;
}

static int cb_ip_b(void *map, int *key, struct elem *val)
{
  callbacks++;
  cb_start = bpf_timer_start(&val->t, 100000, 0);
  burn(LONG_BODY);
  callback_end_ns = bpf_ktime_get_ns();
  return 0;
}

ARM_SLOT0_PROG(arm, timers, long_cb, 1000)
ARM_SLOT0_PROG(arm_ip_a, timers, cb_ip_a, 1000)
ARM_SLOT0_PROG(arm_ip_b, timers, cb_ip_b, 1000)

SEC("syscall")
int canceller(void *ctx)
{
  int key = 0;
  struct elem *val = bpf_map_lookup_elem(&timers, &key);

  if (!val)
    return 1;
  cancel_ret = bpf_timer_cancel(&val->t);
  cancel_returned_after_callback = callback_end_ns != 0 && bpf_ktime_get_ns() >= callback_end_ns;
  return 0;
}
