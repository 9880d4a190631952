// Race 4.16 (reference section 4.16): two programs initialise the same timer and install their
// own callbacks at the same instant on two CPUs. Scenario:
// scenarios/races/4.16-concurrent-init.json.
//
// The element lock serialises them: one init returns 0, the other -EBUSY (inits_ok and
// inits_busy count them whichever wins); both set_callback
// calls return 0 and the last one wins, holding the only prog reference of the timer (the first
// one's reference is put when the second replaces it). Nothing leaks at exit.
#include "race_common.h"

char _license[] SEC("license") = "GPL";

ELEM_MAP(timers, BPF_MAP_TYPE_ARRAY, 1);

long init_p = UNSET;
long init_q = UNSET;
long set_callback_p = UNSET;
long set_callback_q = UNSET;
/* Seed-independent tallies (which program wins depends on the interleaving). */
long inits_ok;
long inits_busy;

static __always_inline void tally(long ret)
{
  if (ret == 0)
    __sync_fetch_and_add(&inits_ok, 1);
  else if (ret == -EBUSY)
    __sync_fetch_and_add(&inits_busy, 1);
}

static int cb_p(void *map, int *key, struct elem *val)
{
  return 0;
}

static int cb_q(void *map, int *key, struct elem *val)
{
  return 0;
}

SEC("syscall")
int P(void *ctx)
{
  int key = 0;
  struct elem *val = bpf_map_lookup_elem(&timers, &key);

  if (!val)
    return 1;
  init_p = bpf_timer_init(&val->t, &timers, CLOCK_MONOTONIC);
  tally(init_p);
  set_callback_p = bpf_timer_set_callback(&val->t, cb_p);
  return 0;
}

SEC("syscall")
int Q(void *ctx)
{
  int key = 0;
  struct elem *val = bpf_map_lookup_elem(&timers, &key);

  if (!val)
    return 1;
  init_q = bpf_timer_init(&val->t, &timers, CLOCK_MONOTONIC);
  tally(init_q);
  set_callback_q = bpf_timer_set_callback(&val->t, cb_q);
  return 0;
}
