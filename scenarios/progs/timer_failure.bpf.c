// timer_failure: a bpf_timer callback that does not provably return 0 (Linux selftests/bpf
// progs/timer_failure.c, 2023; reference 3.4), rewritten for bpftsim in C.
//
// The callback returns bpf_get_prandom_u32() on one path and 0 on the other. An async callback
// must return the constant 0 on every path ("should have been in [0, 0]"), so the load must fail:
// rule timer_callback_ret at the callback's exit.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define CLOCK_BOOTTIME 7

char _license[] SEC("license") = "GPL";

struct elem {
  struct bpf_timer t;
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, int);
  __type(value, struct elem);
} timer_map SEC(".maps");

static int timer_cb_ret_bad(void *map, int *key, struct elem *val)
{
  if (bpf_get_prandom_u32() > 1000)
    return bpf_get_prandom_u32();
  return 0;
}

SEC("fentry/bpf_fentry_test1")
int test_bad_ret(void *ctx)
{
  int key = 0;
  struct elem *val = bpf_map_lookup_elem(&timer_map, &key);

  if (!val)
    return 0;
  bpf_timer_init(&val->t, &timer_map, CLOCK_BOOTTIME);
  bpf_timer_set_callback(&val->t, timer_cb_ret_bad);
  bpf_timer_start(&val->t, 1000, 0);
  return 0;
}
