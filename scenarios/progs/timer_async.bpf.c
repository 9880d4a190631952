// timer_async: return values of the v7.0 (lock-free) timer helpers that differ from the earlier
// eras (reference 4.17, column F2): bpf_timer_cancel from hardirq (-EOPNOTSUPP from 2.22),
// bpf_timer_start deferred from NMI (0, armed later by the irq_work) and bpf_timer_start on a
// timer being freed (-ENOENT). It loads on every era (the kfunc is in timer_cancel_async.bpf.c),
// so the scenarios can show the earlier eras' results too.
// Scenarios: scenarios/errors/*-v7.0.json.
#include "race_common.h"

/* The callback's length: about 20 us of virtual time. */
#define CB_BURN 4000

char _license[] SEC("license") = "GPL";

ELEM_MAP(timers, BPF_MAP_TYPE_ARRAY, 1);
ELEM_MAP(hash, BPF_MAP_TYPE_HASH, 2);

ARM_RESULTS;
long irq_ret = UNSET;
long enoent_ret = UNSET;
long delete_ret = UNSET;
long callbacks;

static int slow_cb(void *m, int *key, struct elem *val)
{
  burn(CB_BURN);
  callbacks++;
  return 0;
}

static struct elem *slot0(void)
{
  int key = 0;

  return bpf_map_lookup_elem(&timers, &key);
}

SEC("syscall")
int arm_idle(void *ctx)
{
  struct elem *val = slot0();

  if (!val)
    return 1;
  arm_init = bpf_timer_init(&val->t, &timers, CLOCK_MONOTONIC);
  arm_set_callback = bpf_timer_set_callback(&val->t, slow_cb);
  return 0;
}

/* Starts slot 0's timer in ctx[0] ns. */
SEC("syscall")
int start_in(__u64 *ctx)
{
  struct elem *val = slot0();

  if (!val)
    return 1;
  arm_start = bpf_timer_start(&val->t, ctx[0], 0);
  return 0;
}

/* ---- from an interrupt (fentry programs, run as hardirq or NMI by the scenario) ---------- */

SEC("fentry/bpf_fentry_test1")
int irq_cancel(void *ctx)
{
  struct elem *val = slot0();

  if (!val)
    return 1;
  irq_ret = bpf_timer_cancel(&val->t);
  return 0;
}

SEC("fentry/bpf_fentry_test1")
int irq_start(void *ctx)
{
  struct elem *val = slot0();

  if (!val)
    return 1;
  irq_ret = bpf_timer_start(&val->t, 10000, 0);
  return 0;
}

/* ---- -ENOENT: a start that read the cb before its last reference went ---------------------- */

static int noop_cb(void *m, int *key, struct elem *val)
{
  callbacks++;
  return 0;
}

/* Key 1's callback deletes key 0: from the softirq that interrupts enoent_race's start of key
 * 0, between its read of the cb and its refcount_inc_not_zero. */
static int delete_cb(void *m, int *key, struct elem *val)
{
  int k0 = 0;

  delete_ret = bpf_map_delete_elem(&hash, &k0);
  return 0;
}

/* ctx[0]: the delay of key 1's timer, chosen so that it expires inside the start of key 0. */
SEC("syscall")
int enoent_race(__u64 *ctx)
{
  struct elem zero = {};
  struct elem *v0, *v1;
  int k0 = 0, k1 = 1;

  if (bpf_map_update_elem(&hash, &k0, &zero, BPF_ANY) ||
      bpf_map_update_elem(&hash, &k1, &zero, BPF_ANY))
    return 1;
  v0 = bpf_map_lookup_elem(&hash, &k0);
  v1 = bpf_map_lookup_elem(&hash, &k1);
  if (!v0 || !v1)
    return 1;
  arm_init = bpf_timer_init(&v0->t, &hash, CLOCK_MONOTONIC);
  arm_set_callback = bpf_timer_set_callback(&v0->t, noop_cb);
  bpf_timer_init(&v1->t, &hash, CLOCK_MONOTONIC);
  bpf_timer_set_callback(&v1->t, delete_cb);
  arm_start = bpf_timer_start(&v1->t, ctx[0], 0);
  enoent_ret = bpf_timer_start(&v0->t, LONG_NS, 0);
  return 0;
}
