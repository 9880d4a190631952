// Race 4.11 (reference section 4.11): the prog's fd is closed while its timer is armed.
// Scenarios: scenarios/races/4.11-*.json.
//
// 4.11:     `arm` starts slot 0's timer in 20 us; the prog fd is closed at 5 us: the timer's prog
//           reference keeps the prog alive, its callback still runs at ~20 us; exit frees it.
// 4.11-rcu: `arm_long` starts the timer in 1 us with a long callback; the prog fd is closed at
//           0.5 us; `canceller` (another prog) cancels at 2 us while the callback runs: that drops
//           the last reference of arm_long, whose callback is still executing. The free is
//           deferred past an RCU grace period, so the callback finishes on valid code; the cancel
//           waits for it and returns 0.
#include "race_common.h"

char _license[] SEC("license") = "GPL";

ELEM_MAP(timers, BPF_MAP_TYPE_ARRAY, 1);

ARM_RESULTS;
long cancel_ret = UNSET;
long callbacks;
long callbacks_done;

static int count_cb(void *map, int *key, struct elem *val)
{
  callbacks++;
  return 0;
}

static int long_cb(void *map, int *key, struct elem *val)
{
  callbacks++;
  burn(600);
  callbacks_done++;
  return 0;
}

ARM_SLOT0_PROG(arm, timers, count_cb, 20000)
ARM_SLOT0_PROG(arm_long, timers, long_cb, 1000)

CANCEL_SLOT0_PROG(canceller, timers, cancel_ret)
