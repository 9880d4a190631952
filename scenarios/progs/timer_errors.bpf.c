// timer_errors: every documented return code of the four bpf_timer helpers on v5.15 (reference
// 1.2, 1.4 and the matrix of 4.17), one program per situation; each records what the helpers
// returned in `long` globals that start at 99. Scenarios: scenarios/errors/*.json.
//
// -ENOMEM (bpf_hrtimer allocation failure): init_ok_then_busy under the scenario fault
// "bpf_timer_init.kmalloc" (scenarios/errors/err-init-enomem.json). -EOPNOTSUPP (the helpers
// called in NMI): timer_nmi.bpf.c.
#include "race_common.h"

char _license[] SEC("license") = "GPL";

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 3);
  __type(key, int);
  __type(value, struct elem);
} timers SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4);
  __type(key, int);
  __type(value, struct elem);
} hash SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 4);
  __type(key, int);
  __type(value, struct elem);
} lru SEC(".maps");

long init_ret = UNSET;
long init_again_ret = UNSET;
long init_hash_ret = UNSET;
long init_lru_ret = UNSET;
long set_callback_ret = UNSET;
long set_callback_other_ret = UNSET;
long start_ret = UNSET;
long start_again_ret = UNSET;
long start_other_ret = UNSET;
long cancel_ret = UNSET;
long update_ret = UNSET;
long callbacks;

static struct elem *slot(int i)
{
  return bpf_map_lookup_elem(&timers, &i);
}

static int count_cb(void *map, int *key, struct elem *val)
{
  callbacks++;
  return 0;
}

/* ---- bpf_timer_init ------------------------------------------------------------------------ */

/* 0 for each accepted clock (REALTIME on the array, MONOTONIC on the hash, BOOTTIME on the LRU
 * hash), then -EBUSY for a second init of the array's timer. */
SEC("syscall")
int init_ok_then_busy(void *ctx)
{
  struct elem zero = {}, *val = slot(0);
  int key = 1;

  if (!val)
    return 1;
  init_ret = bpf_timer_init(&val->t, &timers, CLOCK_REALTIME);
  init_again_ret = bpf_timer_init(&val->t, &timers, CLOCK_MONOTONIC);

  bpf_map_update_elem(&hash, &key, &zero, 0);
  val = bpf_map_lookup_elem(&hash, &key);
  if (!val)
    return 1;
  init_hash_ret = bpf_timer_init(&val->t, &hash, CLOCK_MONOTONIC);

  bpf_map_update_elem(&lru, &key, &zero, 0);
  val = bpf_map_lookup_elem(&lru, &key);
  if (!val)
    return 1;
  init_lru_ret = bpf_timer_init(&val->t, &lru, CLOCK_BOOTTIME);
  return 0;
}

/* -EINVAL: flags >= MAX_CLOCKS (16), even with a valid clock in the low bits. The timer stays
 * uninitialised, so start then returns -EINVAL too. */
SEC("syscall")
int init_bad_flags(void *ctx)
{
  struct elem *val = slot(0);

  if (!val)
    return 1;
  init_ret = bpf_timer_init(&val->t, &timers, 16 | CLOCK_MONOTONIC);
  start_ret = bpf_timer_start(&val->t, 1000, 0);
  return 0;
}

/* -EINVAL: a clock id below 16 other than REALTIME (0), MONOTONIC (1) and BOOTTIME (7), here
 * CLOCK_PROCESS_CPUTIME_ID (2). */
SEC("syscall")
int init_bad_clock(void *ctx)
{
  struct elem *val = slot(0);

  if (!val)
    return 1;
  init_ret = bpf_timer_init(&val->t, &timers, 2);
  start_ret = bpf_timer_start(&val->t, 1000, 0);
  return 0;
}

/* -EPERM: run after the map's only fd was closed (usercnt 0; the prog still holds the map). */
SEC("syscall")
int init_no_uref(void *ctx)
{
  struct elem *val = slot(0);

  if (!val)
    return 1;
  init_ret = bpf_timer_init(&val->t, &timers, CLOCK_MONOTONIC);
  return 0;
}

/* ---- bpf_timer_set_callback ---------------------------------------------------------------- */

/* -EINVAL: the timer was never initialised. */
SEC("syscall")
int set_callback_uninit(void *ctx)
{
  struct elem *val = slot(0);

  if (!val)
    return 1;
  set_callback_ret = bpf_timer_set_callback(&val->t, count_cb);
  return 0;
}

/* -EPERM: slot 1 is initialised with a callback; slot 0's long callback runs while user space
 * closes the map's only fd on the other CPU. release_uref waits for that callback (slot 0
 * first), so slot 1 is still initialised while usercnt is already 0: set_callback -> -EPERM,
 * init -> -EBUSY (the lock-protected check comes first), start -> 0 (start does not check
 * usercnt; the timer is then cancelled when release_uref reaches slot 1). */
static int uref_gone_cb(void *map, int *key, struct elem *val)
{
  struct elem *other = slot(1);

  callbacks++;
  burn(2000);
  if (!other)
    return 0;
  set_callback_other_ret = bpf_timer_set_callback(&other->t, uref_gone_cb);
  init_again_ret = bpf_timer_init(&other->t, &timers, CLOCK_MONOTONIC);
  start_other_ret = bpf_timer_start(&other->t, LONG_NS, 0);
  return 0;
}

SEC("syscall")
int set_callback_no_uref(void *ctx)
{
  struct elem *val = slot(1);

  if (!val)
    return 1;
  bpf_timer_init(&val->t, &timers, CLOCK_MONOTONIC);
  bpf_timer_set_callback(&val->t, uref_gone_cb);
  val = slot(0);
  if (!val)
    return 1;
  init_ret = bpf_timer_init(&val->t, &timers, CLOCK_MONOTONIC);
  set_callback_ret = bpf_timer_set_callback(&val->t, uref_gone_cb);
  start_ret = bpf_timer_start(&val->t, 1000, 0);
  return 0;
}

/* -ENOENT: bpf_prog_inc_not_zero fails. The prog's fd is closed while its timer (slot 0) is
 * armed, so the timer holds its last reference; the callback updates its own slot, whose
 * cancel_and_free drops that reference (the running callback's code stays valid until an RCU
 * grace period); set_callback on slot 1 then cannot take a reference: -ENOENT, and start on slot
 * 1 -EINVAL (no callback installed). */
static int orphan_cb(void *map, int *key, struct elem *val)
{
  struct elem fresh = {};
  struct elem *other = slot(1);
  int k = 0;

  callbacks++;
  update_ret = bpf_map_update_elem(&timers, &k, &fresh, 0);
  if (!other)
    return 0;
  set_callback_other_ret = bpf_timer_set_callback(&other->t, orphan_cb);
  start_other_ret = bpf_timer_start(&other->t, 100, 0);
  return 0;
}

SEC("syscall")
int set_callback_prog_gone(void *ctx)
{
  struct elem *val = slot(1);

  if (!val)
    return 1;
  bpf_timer_init(&val->t, &timers, CLOCK_MONOTONIC);
  val = slot(0);
  if (!val)
    return 1;
  init_ret = bpf_timer_init(&val->t, &timers, CLOCK_MONOTONIC);
  set_callback_ret = bpf_timer_set_callback(&val->t, orphan_cb);
  start_ret = bpf_timer_start(&val->t, 5000, 0);
  return 0;
}

/* ---- bpf_timer_start ----------------------------------------------------------------------- */

/* 0, and the callback fires once. */
SEC("syscall")
int start_ok(void *ctx)
{
  struct elem *val = slot(0);

  if (!val)
    return 1;
  init_ret = bpf_timer_init(&val->t, &timers, CLOCK_MONOTONIC);
  set_callback_ret = bpf_timer_set_callback(&val->t, count_cb);
  start_ret = bpf_timer_start(&val->t, 1000, 0);
  return 0;
}

/* -EINVAL: any non-zero flags in the seed (BPF_F_TIMER_ABS = 1 came in v6.4). */
SEC("syscall")
int start_bad_flags(void *ctx)
{
  struct elem *val = slot(0);

  if (!val)
    return 1;
  init_ret = bpf_timer_init(&val->t, &timers, CLOCK_MONOTONIC);
  set_callback_ret = bpf_timer_set_callback(&val->t, count_cb);
  start_ret = bpf_timer_start(&val->t, 1000, 1);
  return 0;
}

/* -EINVAL: the timer was never initialised. */
SEC("syscall")
int start_uninit(void *ctx)
{
  struct elem *val = slot(0);

  if (!val)
    return 1;
  start_ret = bpf_timer_start(&val->t, 1000, 0);
  return 0;
}

/* -EINVAL: initialised but no callback ever set. */
SEC("syscall")
int start_no_callback(void *ctx)
{
  struct elem *val = slot(0);

  if (!val)
    return 1;
  init_ret = bpf_timer_init(&val->t, &timers, CLOCK_MONOTONIC);
  start_ret = bpf_timer_start(&val->t, 1000, 0);
  return 0;
}

/* -EINVAL: a cancel dropped the callback (and the prog reference); set_callback again fixes it. */
SEC("syscall")
int start_after_cancel(void *ctx)
{
  struct elem *val = slot(0);

  if (!val)
    return 1;
  init_ret = bpf_timer_init(&val->t, &timers, CLOCK_MONOTONIC);
  set_callback_ret = bpf_timer_set_callback(&val->t, count_cb);
  start_ret = bpf_timer_start(&val->t, LONG_NS, 0);
  cancel_ret = bpf_timer_cancel(&val->t);
  start_again_ret = bpf_timer_start(&val->t, 1000, 0);
  return 0;
}

/* ---- bpf_timer_cancel ---------------------------------------------------------------------- */

/* -EINVAL: the timer was never initialised. */
SEC("syscall")
int cancel_uninit(void *ctx)
{
  struct elem *val = slot(0);

  if (!val)
    return 1;
  cancel_ret = bpf_timer_cancel(&val->t);
  return 0;
}

/* 0: initialised, callback set, not queued. */
SEC("syscall")
int cancel_idle(void *ctx)
{
  struct elem *val = slot(0);

  if (!val)
    return 1;
  init_ret = bpf_timer_init(&val->t, &timers, CLOCK_MONOTONIC);
  set_callback_ret = bpf_timer_set_callback(&val->t, count_cb);
  cancel_ret = bpf_timer_cancel(&val->t);
  return 0;
}

/* 1: queued; it never fires. */
SEC("syscall")
int cancel_queued(void *ctx)
{
  struct elem *val = slot(0);

  if (!val)
    return 1;
  init_ret = bpf_timer_init(&val->t, &timers, CLOCK_MONOTONIC);
  set_callback_ret = bpf_timer_set_callback(&val->t, count_cb);
  start_ret = bpf_timer_start(&val->t, 1000, 0);
  cancel_ret = bpf_timer_cancel(&val->t);
  return 0;
}

/* -EDEADLK: from the timer's own callback. */
static int self_cancel_cb(void *map, int *key, struct elem *val)
{
  callbacks++;
  cancel_ret = bpf_timer_cancel(&val->t);
  return 0;
}

SEC("syscall")
int cancel_own(void *ctx)
{
  struct elem *val = slot(0);

  if (!val)
    return 1;
  init_ret = bpf_timer_init(&val->t, &timers, CLOCK_MONOTONIC);
  set_callback_ret = bpf_timer_set_callback(&val->t, self_cancel_cb);
  start_ret = bpf_timer_start(&val->t, 1000, 0);
  return 0;
}
