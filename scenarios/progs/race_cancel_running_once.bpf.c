// Race 4.1 (reference section 4.1) without a scripted interleaving: bpf_timer_cancel on CPU1
// against a one-shot callback of the timer on CPU0, the two started at times the explorer draws.
// Scenario: scenarios/explore/4.1-cancel-while-running.json.
//
// `arm` (CPU0) initialises slot 0's timer T, installs `once_cb` and starts T in 1000 ns. The
// callback counts its entry, runs a long body (a few microseconds), then re-arms T far in the
// future (start: 0, or -EINVAL when a cancel has dropped the prog meanwhile), stamps its end and
// counts its exit; it never fires again during the run. `canceller` (CPU1) notes whether a
// callback was running when it started (entries != exits), cancels T, and sets `cancel_waited`
// when a callback was running and has ended by the time the cancel returned: the cancel waited
// in hrtimer_cancel for the running callback, the interleaving of section 4.1.
#include "race_common.h"

char _license[] SEC("license") = "GPL";

ELEM_MAP(timers, BPF_MAP_TYPE_ARRAY, 1);

ARM_RESULTS;
long cancel_ret = UNSET;
long cb_start = UNSET;
long cancel_waited = UNSET;
long cb_entries;
long cb_exits;
__u64 callback_end_ns;

static int once_cb(void *map, int *key, struct elem *val)
{
  cb_entries++;
  burn(1000);
  cb_start = bpf_timer_start(&val->t, LONG_NS, 0);
  callback_end_ns = bpf_ktime_get_ns();
  cb_exits++;
  return 0;
}

ARM_SLOT0_PROG(arm, timers, once_cb, 1000)

SEC("syscall")
int canceller(void *ctx)
{
  int key = 0;
  struct elem *val = bpf_map_lookup_elem(&timers, &key);
  long running;

  if (!val)
    return 1;
  running = cb_entries != cb_exits;
  cancel_ret = bpf_timer_cancel(&val->t);
  cancel_waited = running && cb_entries == cb_exits;
  return 0;
}
