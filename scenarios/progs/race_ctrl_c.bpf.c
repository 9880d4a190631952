// Race 4.5 (reference section 4.5): Ctrl-C (process exit) while timers keep re-arming
// themselves. Scenario: scenarios/races/4.5-ctrl-c.json.
//
// `arm` initialises and starts the timers of array slots 0..3 (in 500..503 ns) and of hash keys
// 0..2 (in 300..302 ns, elements created with BPF_NOEXIST, so a second run never replaces them);
// every callback re-arms its own timer in 700 ns. The scenario runs `arm` on both CPUs at once:
// the second run's inits get -EBUSY and its starts re-arm the same timers on its CPU. The timers
// run for a while, then the process exits: every map's last uref goes, every timer is cancelled
// and freed, the prog and the maps follow.
#include "race_common.h"

char _license[] SEC("license") = "GPL";

ELEM_MAP(array, BPF_MAP_TYPE_ARRAY, 4);

ELEM_MAP(hash, BPF_MAP_TYPE_HASH, 16);

long callbacks;
long start_errors;

static int rearm_cb(void *map, int *key, struct elem *val)
{
  callbacks++;
  if (bpf_timer_start(&val->t, 700, 0))
    start_errors++;
  return 0;
}

SEC("syscall")
int arm(void *ctx)
{
  struct elem zero = {};
  struct elem *val;
  int i;

  for (i = 0; i < 4; i++) {
    int key = i;

    val = bpf_map_lookup_elem(&array, &key);
    if (!val)
      return 1;
    bpf_timer_init(&val->t, &array, CLOCK_MONOTONIC);
    bpf_timer_set_callback(&val->t, rearm_cb);
    if (bpf_timer_start(&val->t, 500 + i, 0))
      start_errors++;
  }
  for (i = 0; i < 3; i++) {
    int key = i;

    bpf_map_update_elem(&hash, &key, &zero, BPF_NOEXIST);
    val = bpf_map_lookup_elem(&hash, &key);
    if (!val)
      return 1;
    bpf_timer_init(&val->t, &hash, CLOCK_MONOTONIC);
    bpf_timer_set_callback(&val->t, rearm_cb);
    if (bpf_timer_start(&val->t, 300 + i, 0))
      start_errors++;
  }
  return 0;
}
