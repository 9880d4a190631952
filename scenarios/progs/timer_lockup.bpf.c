// timer_lockup: the kernel's timer_lockup selftest program (selftests/bpf progs/timer_lockup.c,
// v6.10, reference 3.5), rewritten for bpftsim. Two tc programs each arm a timer in their own
// array, pinned to the calling CPU (BPF_F_TIMER_CPU_PIN, v6.7) and due in 1 ns; each timer's
// callback cancels the other timer. Run on two CPUs at once, the callbacks cancel each other
// while both run: before reference 2.11 (v6.10) both spin in hrtimer_cancel forever (a lockup);
// from it each cancel returns 0 or -EDEADLK (the selftest's assertion).
// Scenarios: scenarios/conformance/timer_lockup_v6_10.json, timer_lockup_v6_8.json.
#include "race_common.h"

#define BPF_F_TIMER_CPU_PIN (1ULL << 1)

char _license[] SEC("license") = "GPL";

ELEM_MAP(timer1_map, BPF_MAP_TYPE_ARRAY, 1);
ELEM_MAP(timer2_map, BPF_MAP_TYPE_ARRAY, 1);

long timer1_err;
long timer2_err;

static int timer_cb1(void *map, int *k, struct elem *v)
{
  struct bpf_timer *timer;
  int key = 0;

  timer = bpf_map_lookup_elem(&timer2_map, &key);
  if (timer)
    timer2_err = bpf_timer_cancel(timer);
  return 0;
}

static int timer_cb2(void *map, int *k, struct elem *v)
{
  struct bpf_timer *timer;
  int key = 0;

  timer = bpf_map_lookup_elem(&timer1_map, &key);
  if (timer)
    timer1_err = bpf_timer_cancel(timer);
  return 0;
}

SEC("tc")
int timer1_prog(void *ctx)
{
  struct bpf_timer *timer;
  int key = 0;

  timer = bpf_map_lookup_elem(&timer1_map, &key);
  if (timer) {
    bpf_timer_init(timer, &timer1_map, CLOCK_BOOTTIME);
    bpf_timer_set_callback(timer, timer_cb1);
    bpf_timer_start(timer, 1, BPF_F_TIMER_CPU_PIN);
  }
  return 0;
}

SEC("tc")
int timer2_prog(void *ctx)
{
  struct bpf_timer *timer;
  int key = 0;

  timer = bpf_map_lookup_elem(&timer2_map, &key);
  if (timer) {
    bpf_timer_init(timer, &timer2_map, CLOCK_BOOTTIME);
    bpf_timer_set_callback(timer, timer_cb2);
    bpf_timer_start(timer, 1, BPF_F_TIMER_CPU_PIN);
  }
  return 0;
}
