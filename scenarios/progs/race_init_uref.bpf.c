// Race 4.10 (reference section 4.10): bpf_timer_init against the last uref drop (the 2023 fix
// "bpf: Check map->usercnt after timer->timer is assigned"). Scenario:
// scenarios/races/4.10-init-vs-uref.json.
//
// `init` (CPU0) initialises slot 0's timer, then calls set_callback and start. The scenario
// closes the map's only fd on CPU1 so that the usercnt drop and release_uref's lockless read of
// the (still NULL) timer pointer fall between init's usercnt check and its publish: init returns
// 0 with no user reference left, set_callback then -EPERM and start -EINVAL; nothing ever frees
// the bpf_hrtimer (v5.15's map_free does not walk timers): a leak at quiescence.
#include "race_common.h"

char _license[] SEC("license") = "GPL";

ELEM_MAP(timers, BPF_MAP_TYPE_ARRAY, 1);

long init_ret = UNSET;
long set_callback_ret = UNSET;
long start_ret = UNSET;

static int noop_cb(void *map, int *key, struct elem *val)
{
  return 0;
}

SEC("syscall")
int init(void *ctx)
{
  int key = 0;
  struct elem *val = bpf_map_lookup_elem(&timers, &key);

  if (!val)
    return 1;
  init_ret = bpf_timer_init(&val->t, &timers, CLOCK_MONOTONIC);
  set_callback_ret = bpf_timer_set_callback(&val->t, noop_cb);
  start_ret = bpf_timer_start(&val->t, LONG_NS, 0);
  return 0;
}
