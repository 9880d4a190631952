// Race 4.4 (reference section 4.4): the map's last fd is closed (map_release_uref) while a
// callback of one of its timers runs on another CPU. Scenario: scenarios/races/4.4-*.json.
//
// `arm` (CPU0) starts slot 0's timer in 1000 ns; its callback runs a long body, during which
// CPU1 closes the map's only fd: release_uref frees slot 0's timer (pointer NULLed, prog
// reference dropped) and waits in hrtimer_cancel for the callback. The callback, after its long
// body, sees start/set_callback -EINVAL on its own timer and init -EPERM (usercnt 0) on slot 1,
// and stamps its end time. `after_close`, queued on CPU1 right behind the close, runs only when
// the close returned: it records whether that was after the callback ended (1).
#include "race_common.h"

char _license[] SEC("license") = "GPL";

ELEM_MAP(timers, BPF_MAP_TYPE_ARRAY, 2);

ARM_RESULTS;
long cb_start = UNSET;
long cb_set_callback = UNSET;
long cb_init_other = UNSET;
long close_returned_after_callback = UNSET;
long callbacks;
__u64 callback_end_ns;

static int long_cb(void *map, int *key, struct elem *val)
{
  struct elem *other;
  int other_key = 1;

  callbacks++;
  burn(1000);
  cb_start = bpf_timer_start(&val->t, 10, 0);
  cb_set_callback = bpf_timer_set_callback(&val->t, long_cb);
  other = bpf_map_lookup_elem(map, &other_key);
  if (other)
    cb_init_other = bpf_timer_init(&other->t, &timers, CLOCK_MONOTONIC);
  callback_end_ns = bpf_ktime_get_ns();
  return 0;
}

ARM_SLOT0_PROG(arm, timers, long_cb, 1000)

SEC("syscall")
int after_close(void *ctx)
{
  __u64 now = bpf_ktime_get_ns();

  close_returned_after_callback = callback_end_ns != 0 && now >= callback_end_ns;
  return 0;
}
