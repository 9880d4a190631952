// timer_start_delete_race: the kernel's selftest of that name (2026, reference 3.9) written anew
// for bpftsim, plus the hash-map form of the race it targets (reference 4.15).
//
// Array form (as the selftest): start_timer loops ROUNDS times over {lookup slot 0, init,
// set_callback, start in 100 ms}; delete_elem loops ROUNDS times over bpf_map_delete_elem of
// slot 0. An array element cannot be deleted (-EINVAL), so this form never reaches
// cancel_and_free: the counters show it.
// Hash form: hash_arm inserts key 0 and sets its timer up; hash_start loops bpf_timer_start
// (100 ms) on key 0 until the key is gone; a delete of key 0 (the map_delete syscall, or
// hash_delete) runs bpf_timer_cancel_and_free on another CPU meanwhile. In 2.20's intermediate
// revision a start that read the bpf_async_cb before the delete's xchg can arm the hrtimer after
// the delete's try_to_cancel: the delayed free then frees a queued timer.
// Scenarios: scenarios/conformance/timer_start_delete_race_v7_0.json,
// scenarios/races/4.15-start-vs-delete*.json, scenarios/explore/4.15-start-vs-delete.json.
#include "race_common.h"

#define ROUNDS 200
#define START_NS 100000000 /* 100 ms */

char _license[] SEC("license") = "GPL";

ELEM_MAP(timer_map, BPF_MAP_TYPE_ARRAY, 1);
ELEM_MAP(hash_map, BPF_MAP_TYPE_HASH, 1);

/* Results, by value: how many calls returned 0, -EINVAL, -ENOENT or anything else. */
long start_ok, start_einval, start_enoent, start_other;
long delete_ok, delete_einval, delete_other;
long starts_before_gone; /* hash form: starts made while key 0 was found */
long cb_cnt;
long arm_init = UNSET, arm_set_callback = UNSET;
long hash_delete_ret = UNSET;

static int timer_cb(void *m, int *key, struct elem *val)
{
  cb_cnt++;
  return 0;
}

static void count_start(long r)
{
  if (r == 0)
    start_ok++;
  else if (r == -EINVAL)
    start_einval++;
  else if (r == -ENOENT)
    start_enoent++;
  else
    start_other++;
}

static long start_cb(__u64 i, void *ctx)
{
  int key = 0;
  struct elem *val;

  val = bpf_map_lookup_elem(&timer_map, &key);
  if (!val)
    return 0;
  bpf_timer_init(&val->t, &timer_map, CLOCK_MONOTONIC);
  bpf_timer_set_callback(&val->t, timer_cb);
  count_start(bpf_timer_start(&val->t, START_NS, 0));
  return 0;
}

static long delete_cb(__u64 i, void *ctx)
{
  int key = 0;
  long r;

  r = bpf_map_delete_elem(&timer_map, &key);
  if (r == 0)
    delete_ok++;
  else if (r == -EINVAL)
    delete_einval++;
  else
    delete_other++;
  return 0;
}

SEC("syscall")
int start_timer(void *ctx)
{
  bpf_loop(ROUNDS, start_cb, 0, 0);
  return 0;
}

SEC("syscall")
int delete_elem(void *ctx)
{
  bpf_loop(ROUNDS, delete_cb, 0, 0);
  return 0;
}

SEC("syscall")
int hash_arm(void *ctx)
{
  struct elem zero = {};
  struct elem *val;
  int key = 0;

  if (bpf_map_update_elem(&hash_map, &key, &zero, BPF_ANY))
    return 1;
  val = bpf_map_lookup_elem(&hash_map, &key);
  if (!val)
    return 1;
  arm_init = bpf_timer_init(&val->t, &hash_map, CLOCK_MONOTONIC);
  arm_set_callback = bpf_timer_set_callback(&val->t, timer_cb);
  return 0;
}

static long hash_start_cb(__u64 i, void *ctx)
{
  int key = 0;
  struct elem *val;

  val = bpf_map_lookup_elem(&hash_map, &key);
  if (!val)
    return 1; /* gone: stop */
  starts_before_gone++;
  count_start(bpf_timer_start(&val->t, START_NS, 0));
  return 0;
}

SEC("syscall")
int hash_start(void *ctx)
{
  bpf_loop(ROUNDS, hash_start_cb, 0, 0);
  return 0;
}

SEC("syscall")
int hash_delete(void *ctx)
{
  int key = 0;

  hash_delete_ret = bpf_map_delete_elem(&hash_map, &key);
  return 0;
}
