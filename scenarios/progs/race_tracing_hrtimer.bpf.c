// race_tracing_hrtimer: reference 2.1 / 4.14, a tracing program attached inside the hrtimer code
// calling a timer helper. `on_hrtimer_start` is a tracepoint program on timer/hrtimer_start,
// which the kernel hits in enqueue_hrtimer with the CPU's hrtimer base lock held; it starts the
// timer of slot 1. So when a program (`arm`, a syscall program) starts the timer of slot 0, the
// tracepoint program runs under that CPU's base lock and its bpf_timer_start -> hrtimer_start
// takes the same lock again on the same CPU: a self-deadlock (v5.15, syzbot). v5.16 refuses a
// kprobe/tracepoint/perf_event/raw_tracepoint program that uses a map with a bpf_timer
// (verifier rule tracing_timer). `on_hrtimer_start_btf` is the same body as a tp_btf program
// (BPF_PROG_TYPE_TRACING), which that rule does not cover (reference 4.14, S+/F1).
// Scenarios: scenarios/races/4.14-tracing-prog-hrtimer-deadlock.json,
// scenarios/fixes/4.14-tracing-prog-refused-2.1.json, scenarios/explore/4.14-*.json.
#include "race_common.h"

char _license[] SEC("license") = "GPL";

ELEM_MAP(timers, BPF_MAP_TYPE_ARRAY, 2);

ARM_RESULTS;
long prepare_ret = UNSET;
long nested_start = UNSET;
long tracepoint_runs = 0;
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

static __always_inline void start_slot1(void)
{
  int key = 1;
  struct elem *val = bpf_map_lookup_elem(&timers, &key);

  tracepoint_runs++;
  if (val)
    nested_start = bpf_timer_start(&val->t, 200000, 0);
}

SEC("tracepoint/timer/hrtimer_start")
int on_hrtimer_start(void *ctx)
{
  start_slot1();
  return 0;
}
