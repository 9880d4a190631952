// timer_mim_reject: the verifier's map_uid rule for a bpf_timer in a map-in-map (Linux v5.15,
// selftests/bpf progs/timer_mim_reject.c; reference 3.2), rewritten for bpftsim.
//
// Same maps as timer_mim.bpf.c. test1 takes the timer from a value of the inner map found at
// outer_arr[1] but gives bpf_timer_init the inner map found by a second lookup (outer_arr[0]).
// Each lookup of a map-in-map is its own inner map to the verifier (its map_uid), so the load
// must fail: rule timer_map_uid at the bpf_timer_init call.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define CLOCK_MONOTONIC 1

char _license[] SEC("license") = "GPL";

struct hmap_elem {
  int pad;
  struct bpf_timer timer;
};

struct inner_map {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __type(key, int);
  __type(value, struct hmap_elem);
} inner_htab SEC(".maps");

struct outer_arr {
  __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
  __uint(max_entries, 2);
  __uint(key_size, sizeof(int));
  __uint(value_size, sizeof(int));
  __array(values, struct inner_map);
} outer_arr SEC(".maps") = {
    .values = {[1] = &inner_htab},
};

__u64 err;

static int timer_cb(void *map, int *key, struct hmap_elem *val)
{
  return 0;
}

SEC("fentry/bpf_fentry_test1")
int test1(void *ctx)
{
  struct hmap_elem init = {};
  struct bpf_map *inner_map, *other_map;
  struct hmap_elem *val;
  int first_key = 1, second_key = 0;
  int hash_key = 1234;

  inner_map = bpf_map_lookup_elem(&outer_arr, &first_key);
  if (!inner_map)
    return 0;
  other_map = bpf_map_lookup_elem(&outer_arr, &second_key);
  if (!other_map)
    return 0;

  bpf_map_update_elem(inner_map, &hash_key, &init, 0);
  val = bpf_map_lookup_elem(inner_map, &hash_key);
  if (!val)
    return 0;

  /* The timer lives in inner_map; other_map is another inner map as far as the verifier knows. */
  bpf_timer_init(&val->timer, other_map, CLOCK_MONOTONIC);
  if (bpf_timer_set_callback(&val->timer, timer_cb))
    err |= 1;
  return 0;
}
