// Race 4.6 (reference section 4.6): a pinned map keeps its timers, and through them their prog,
// alive after the loader exits. Scenario: scenarios/races/4.6-pinned-map.json.
//
// `arm` starts slot 0's timer in 1000 ns; the callback re-arms it every 1000 ns and counts. The
// map is pinned, the loader exits (no fd, no link holds the prog any more: only the timer's prog
// reference), the callbacks go on until the pin is removed: that uref release cancels and frees
// the timer, which drops the last prog reference; prog, maps and global data are then freed.
#include "race_common.h"

char _license[] SEC("license") = "GPL";

ELEM_MAP(timers, BPF_MAP_TYPE_ARRAY, 1);

ARM_RESULTS;
long callbacks;
long start_errors;

static int rearm_cb(void *map, int *key, struct elem *val)
{
  callbacks++;
  if (bpf_timer_start(&val->t, 1000, 0))
    start_errors++;
  return 0;
}

ARM_SLOT0_PROG(arm, timers, rearm_cb, 1000)
