// timer_errors: every documented return code of the four bpf_timer helpers on v5.15 (reference
// 1.2, 1.4 and the matrix of 4.17), one program per situation; each records what the helpers
// returned in `long` globals that start at 99. Scenarios: scenarios/errors/*.json.
//
// -ENOMEM (bpf_hrtimer allocation failure): init_ok_then_busy under the scenario fault
// "bpf_timer_init.kmalloc" (scenarios/errors/err-init-enomem.json). -EOPNOTSUPP (the helpers
// called in NMI): timer_nmi.bpf.c.
//
// Lists of values (every bad flag, every bad clock) and the order of the checks use the *_slot
// and init_fresh programs at the end: each makes one helper call with arguments from its context
// and returns the helper's result, which the scenario checks with the run's expect_ret.
#include "race_common.h"

char _license[] SEC("license") = "GPL";

ELEM_MAP(timers, BPF_MAP_TYPE_ARRAY, 3);

ELEM_MAP(hash, BPF_MAP_TYPE_HASH, 4);

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(max_entries, 4);
  __type(key, int);
  __type(value, struct elem);
} hash_malloc SEC(".maps");

ELEM_MAP(lru, BPF_MAP_TYPE_LRU_HASH, 4);

long init_ret = UNSET;
long init_again_ret = UNSET;
long init_hash_ret = UNSET;
long init_lru_ret = UNSET;
long set_callback_ret = UNSET;
long set_callback_other_ret = UNSET;
long set_callback_again_ret = UNSET;
long start_ret = UNSET;
long start_again_ret = UNSET;
long start_third_ret = UNSET;
long start_other_ret = UNSET;
long cancel_ret = UNSET;
long cancel_no_callback_ret = UNSET;
long update_ret = UNSET;
long delete_ret = UNSET;
long setup_other_init_ret = UNSET;
long setup_other_set_callback_ret = UNSET;
long init_third_ret = UNSET;
long callbacks;
long other_callbacks;
__u64 start_ns;
__u64 fire_delay_ns;

static struct elem *slot(int i)
{
  return bpf_map_lookup_elem(&timers, &i);
}

static int count_cb(void *map, int *key, struct elem *val)
{
  callbacks++;
  return 0;
}

static int other_cb(void *map, int *key, struct elem *val)
{
  other_callbacks++;
  return 0;
}

/* The usual set-up of a test timer: init (MONOTONIC), set_callback(cb), start(ns, flags), each
 * result in its global. */
static __always_inline void arm(struct elem *val, void *cb, __u64 ns, __u64 flags)
{
  init_ret = bpf_timer_init(&val->t, &timers, CLOCK_MONOTONIC);
  set_callback_ret = bpf_timer_set_callback(&val->t, cb);
  start_ret = bpf_timer_start(&val->t, ns, flags);
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

/* 0 twice: a second set_callback (another callback of the same prog) replaces the callback and
 * keeps the one prog reference the first took; the timer then runs the second callback. */
SEC("syscall")
int set_callback_twice(void *ctx)
{
  struct elem *val = slot(0);

  if (!val)
    return 1;
  init_ret = bpf_timer_init(&val->t, &timers, CLOCK_MONOTONIC);
  set_callback_ret = bpf_timer_set_callback(&val->t, count_cb);
  set_callback_again_ret = bpf_timer_set_callback(&val->t, other_cb);
  start_ret = bpf_timer_start(&val->t, 1000, 0);
  return 0;
}

/* -EPERM: slot 1 is initialised with a callback; slot 0's long callback runs while user space
 * closes the map's only fd on the other CPU. release_uref waits for that callback (slot 0
 * first), so slot 1 is still initialised while usercnt is already 0: set_callback -> -EPERM,
 * init -> -EBUSY (the lock-protected check comes first), start -> 0 (start does not check
 * usercnt; the timer is then cancelled when release_uref reaches slot 1); init of the never
 * initialised slot 2 -> -EPERM. */
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
  other = slot(2);
  if (other)
    init_third_ret = bpf_timer_init(&other->t, &timers, CLOCK_MONOTONIC);
  return 0;
}

SEC("syscall")
int set_callback_no_uref(void *ctx)
{
  struct elem *val = slot(1);

  if (!val)
    return 1;
  setup_other_init_ret = bpf_timer_init(&val->t, &timers, CLOCK_MONOTONIC);
  setup_other_set_callback_ret = bpf_timer_set_callback(&val->t, uref_gone_cb);
  val = slot(0);
  if (!val)
    return 1;
  arm(val, uref_gone_cb, 1000, 0);
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
  setup_other_init_ret = bpf_timer_init(&val->t, &timers, CLOCK_MONOTONIC);
  val = slot(0);
  if (!val)
    return 1;
  arm(val, orphan_cb, 5000, 0);
  return 0;
}

/* ---- bpf_timer_start ----------------------------------------------------------------------- */

/* 0, and the callback fires once, no sooner than 1000 ns after the start. */
static int delay_cb(void *map, int *key, struct elem *val)
{
  callbacks++;
  fire_delay_ns = bpf_ktime_get_ns() - start_ns;
  return 0;
}

SEC("syscall")
int start_ok(void *ctx)
{
  struct elem *val = slot(0);

  if (!val)
    return 1;
  start_ns = bpf_ktime_get_ns();
  arm(val, delay_cb, 1000, 0);
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

/* -EINVAL: a cancel dropped the callback (and the prog reference). A cancel is not a disable
 * (reference 4.7): set_callback again, and the next start works and fires. */
SEC("syscall")
int start_after_cancel(void *ctx)
{
  struct elem *val = slot(0);

  if (!val)
    return 1;
  arm(val, count_cb, LONG_NS, 0);
  cancel_ret = bpf_timer_cancel(&val->t);
  start_again_ret = bpf_timer_start(&val->t, 1000, 0);
  set_callback_again_ret = bpf_timer_set_callback(&val->t, count_cb);
  start_third_ret = bpf_timer_start(&val->t, 2000, 0);
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

/* 0: initialised, no callback yet; then 0 again with a callback set, not queued. That cancel
 * drops the callback and the prog reference set_callback took: a start then -> -EINVAL. */
SEC("syscall")
int cancel_idle(void *ctx)
{
  struct elem *val = slot(0);

  if (!val)
    return 1;
  init_ret = bpf_timer_init(&val->t, &timers, CLOCK_MONOTONIC);
  cancel_no_callback_ret = bpf_timer_cancel(&val->t);
  set_callback_ret = bpf_timer_set_callback(&val->t, count_cb);
  cancel_ret = bpf_timer_cancel(&val->t);
  start_ret = bpf_timer_start(&val->t, 1000, 0);
  return 0;
}

/* 1: queued; it never fires. */
SEC("syscall")
int cancel_queued(void *ctx)
{
  struct elem *val = slot(0);

  if (!val)
    return 1;
  arm(val, count_cb, 1000, 0);
  cancel_ret = bpf_timer_cancel(&val->t);
  return 0;
}

/* -EDEADLK: from the timer's own callback, which first re-arms its timer (on its first run
 * only). The self-cancel drops nothing: the re-arm stays queued with its callback and fires. */
static int self_cancel_cb(void *map, int *key, struct elem *val)
{
  callbacks++;
  if (callbacks > 1)
    return 0;
  start_again_ret = bpf_timer_start(&val->t, 1000, 0);
  cancel_ret = bpf_timer_cancel(&val->t);
  return 0;
}

SEC("syscall")
int cancel_own(void *ctx)
{
  struct elem *val = slot(0);

  if (!val)
    return 1;
  arm(val, self_cancel_cb, 1000, 0);
  return 0;
}

/* ---- bpf_map_delete_elem on an array ------------------------------------------------------- */

/* -EINVAL: array elements cannot be deleted; the armed timer keeps running (fires once). */
SEC("syscall")
int delete_armed(void *ctx)
{
  struct elem *val = slot(0);
  int key = 0;

  if (!val)
    return 1;
  arm(val, count_cb, 50000, 0);
  delete_ret = bpf_map_delete_elem(&timers, &key);
  return 0;
}

/* ---- one helper call per run, arguments from the context ----------------------------------- */

/* bpf_timer_init(timers[ctx[0]], ctx[1]): ctx[1] is the flags, whose low bits are the clock. */
SEC("syscall")
long init_slot(__u64 *ctx)
{
  struct elem *val = slot(ctx[0]);

  return val ? bpf_timer_init(&val->t, &timers, ctx[1]) : UNSET;
}

/* bpf_timer_set_callback(timers[ctx[0]], count_cb). */
SEC("syscall")
long set_callback_slot(__u64 *ctx)
{
  struct elem *val = slot(ctx[0]);

  return val ? bpf_timer_set_callback(&val->t, count_cb) : UNSET;
}

/* bpf_timer_start(timers[ctx[0]], 100 ns, flags ctx[1]). */
SEC("syscall")
long start_slot(__u64 *ctx)
{
  struct elem *val = slot(ctx[0]);

  return val ? bpf_timer_start(&val->t, 100, ctx[1]) : UNSET;
}

/* Creates (or replaces, with a fresh timer) key 2 of `map`, then bpf_timer_init(flags) on its
 * timer; returns the update's error if it failed, else init's result. */
static __always_inline long init_fresh_elem(void *map, __u64 flags)
{
  struct elem zero = {}, *val;
  int key = 2;
  long err = bpf_map_update_elem(map, &key, &zero, 0);

  if (err)
    return err;
  val = bpf_map_lookup_elem(map, &key);
  return val ? bpf_timer_init(&val->t, map, flags) : UNSET;
}

/* ctx[0] picks the map (0 array, 1 hash, 2 BPF_F_NO_PREALLOC hash, 3 LRU hash), ctx[1] the
 * flags (the clock). */
SEC("syscall")
long init_fresh(__u64 *ctx)
{
  switch (ctx[0]) {
  case 0:
    return init_fresh_elem(&timers, ctx[1]);
  case 1:
    return init_fresh_elem(&hash, ctx[1]);
  case 2:
    return init_fresh_elem(&hash_malloc, ctx[1]);
  case 3:
    return init_fresh_elem(&lru, ctx[1]);
  }
  return UNSET;
}
