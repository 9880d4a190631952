// free_timer: the kernel's free_timer selftest (selftests/bpf progs/free_timer.c, v6.14,
// reference 3.7), rewritten for bpftsim. A preallocated hash of 8 elements, each a bpf_timer.
// start_timer (a syscall program) walks the 8 keys with bpf_loop and, for each key present,
// initialises the timer, sets a long-running callback and starts it in 100 us pinned to the
// calling CPU (BPF_F_TIMER_CPU_PIN); overwrite_timer walks them and updates each key with a
// zeroed value, which creates the element or replaces it (the old element's timer cancelled and
// freed, perhaps while its callback runs on the other CPU). The selftest runs the two from two
// CPUs for 10 rounds and wants every test run to succeed; here every helper result is kept, the
// first non-zero one in start_err / overwrite_err.
// Scenario: scenarios/conformance/free_timer_v6_14.json.
#include "race_common.h"

#define BPF_F_TIMER_CPU_PIN (1ULL << 1)
#define NR_KEYS 8
/* About 100 us of virtual time per callback: as long as the timers' delay. */
#define CB_BURN 20000

char _license[] SEC("license") = "GPL";

ELEM_MAP(map, BPF_MAP_TYPE_HASH, NR_KEYS);

long start_err;
long overwrite_err;
long started;     /* timers started, over all rounds */
long overwritten; /* updates that returned 0 */
long callbacks;   /* callbacks that ran to their end */

static int timer_cb(void *m, int *key, struct elem *val)
{
  burn(CB_BURN);
  callbacks++;
  return 0;
}

static long start_cb(__u64 i, void *ctx)
{
  int key = i;
  struct elem *val;
  long r;

  val = bpf_map_lookup_elem(&map, &key);
  if (!val)
    return 0;
  r = bpf_timer_init(&val->t, &map, CLOCK_MONOTONIC);
  if (!r)
    r = bpf_timer_set_callback(&val->t, timer_cb);
  if (!r)
    r = bpf_timer_start(&val->t, 100000, BPF_F_TIMER_CPU_PIN);
  if (r && !start_err)
    start_err = r;
  if (!r)
    started++;
  return 0;
}

static long overwrite_cb(__u64 i, void *ctx)
{
  struct elem zero = {};
  int key = i;
  long r;

  r = bpf_map_update_elem(&map, &key, &zero, BPF_ANY);
  if (r && !overwrite_err)
    overwrite_err = r;
  if (!r)
    overwritten++;
  return 0;
}

SEC("syscall")
int start_timer(void *ctx)
{
  bpf_loop(NR_KEYS, start_cb, 0, 0);
  return 0;
}

SEC("syscall")
int overwrite_timer(void *ctx)
{
  bpf_loop(NR_KEYS, overwrite_cb, 0, 0);
  return 0;
}
