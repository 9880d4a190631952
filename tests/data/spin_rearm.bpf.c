// A timer callback that spins ~700k BPF instructions, then re-arms itself, forever (nothing ends
// it but a run limit): tests/unit/test_limits.cpp, tests/data/spin_rearm.json.
#include "../../scenarios/progs/race_common.h"

char _license[] SEC("license") = "GPL";

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, int);
  __type(value, struct elem);
} arr SEC(".maps");

volatile long sink;

static int spin_cb(void *map, int *key, struct elem *val)
{
  for (long i = 0; i < 100000; i++)
    sink += i;
  bpf_timer_start(&val->t, 1000, 0);
  return 0;
}

SEC("syscall")
int arm(void *ctx)
{
  int key = 0;
  struct elem *val = bpf_map_lookup_elem(&arr, &key);

  if (!val)
    return 1;
  bpf_timer_init(&val->t, &arr, CLOCK_MONOTONIC);
  bpf_timer_set_callback(&val->t, spin_cb);
  return bpf_timer_start(&val->t, 1000, 0);
}
