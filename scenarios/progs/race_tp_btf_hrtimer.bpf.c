// race_tp_btf_hrtimer: reference 4.14 after 2.1 (S+/F1, an inference: no report found). The
// verifier rule of 2.1 refuses kprobe/tracepoint/raw_tracepoint/perf_event programs that use a
// timer map, not BPF_PROG_TYPE_TRACING ones: `on_hrtimer_start` here is a tp_btf program on
// hrtimer_start, which still loads on v5.16 and later, runs under the CPU's hrtimer base lock
// and starts another timer of that CPU: the same self-deadlock as race_tracing_hrtimer's
// tracepoint program on v5.15. Scenario: scenarios/races/4.14-tp-btf-hrtimer-deadlock.json.
#include "race_common.h"

char _license[] SEC("license") = "GPL";

ELEM_MAP(timers, BPF_MAP_TYPE_ARRAY, 2);

ARM_RESULTS;
long prepare_ret = UNSET;
long nested_start = UNSET;
long tp_runs = 0;
long callbacks = 0;

static int cb(void *map, int *key, struct elem *val)
{
  callbacks++;
  return 0;
}

/* Slot 1's timer, initialised with its callback and never started here. */
SEC("syscall")
int prepare(void *ctx)
{
  int key = 1;
  struct elem *val = bpf_map_lookup_elem(&timers, &key);

  if (!val)
    return 1;
  prepare_ret = bpf_timer_init(&val->t, &timers, CLOCK_MONOTONIC);
  if (prepare_ret == 0)
    prepare_ret = bpf_timer_set_callback(&val->t, cb);
  return 0;
}

/* Slot 0's timer, armed 100 us ahead. */
ARM_SLOT0_PROG(arm, timers, cb, 100000);

SEC("tp_btf/hrtimer_start")
int on_hrtimer_start(__u64 *ctx)
{
  int key = 1;
  struct elem *val = bpf_map_lookup_elem(&timers, &key);

  tp_runs++;
  if (val)
    nested_start = bpf_timer_start(&val->t, 200000, 0);
  return 0;
}
