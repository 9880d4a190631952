// timer_v6_8: the bpf_timer selftest program as it stood in Linux v6.8 (selftests/bpf
// progs/timer.c, reference 3.1), rewritten for bpftsim on top of timer_seed.bpf.c (the v5.15
// version). What v6.8 adds: test3 (an absolute timer, BPF_F_TIMER_ABS, v6.4) runs its callback
// exactly twice (abs_data == 12); test4 and test5 (a pinned timer, BPF_F_TIMER_CPU_PIN, v6.7,
// relative and absolute) each run their callback once on the CPU that armed them
// (pinned_callback_check == 2); `race` (v6.8, the reproducer of reference 2.9) overwrites an
// element whose timer another CPU may be cancelling. The seed-only check of bit 256 (a deleted
// BPF_F_NO_PREALLOC element's timer can still be started) was dropped in v6.1.
//
// Expected outcome after one test run (fentry on bpf_fentry_test1..5) and the timers fired:
// callback_check == 42, callback2_check == 42, bss_data == 10, abs_data == 12,
// pinned_callback_check == 2, err == 0, ok == 7. Scenario: scenarios/conformance/timer_v6_8.json.
//
// BPF_F_TIMER_ABS and BPF_F_TIMER_CPU_PIN are newer than the installed <linux/bpf.h>.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define BPF_F_TIMER_ABS (1ULL << 0)
#define BPF_F_TIMER_CPU_PIN (1ULL << 1)
#define EBUSY 16
#define CLOCK_MONOTONIC 1
#define CLOCK_BOOTTIME 7
#define EINVAL 22
#define EDEADLK 35

char _license[] SEC("license") = "GPL";

struct hmap_elem {
  int counter;
  struct bpf_timer timer;
  struct bpf_spin_lock lock; /* present for the layout only, never taken */
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1000);
  __type(key, int);
  __type(value, struct hmap_elem);
} hmap SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(max_entries, 1000);
  __type(key, int);
  __type(value, struct hmap_elem);
} hmap_malloc SEC(".maps");

struct elem {
  struct bpf_timer t;
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 2);
  __type(key, int);
  __type(value, struct elem);
} array SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 4);
  __type(key, int);
  __type(value, struct elem);
} lru SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, int);
  __type(value, struct elem);
} abs_timer SEC(".maps"), soft_timer_pinned SEC(".maps"), abs_timer_pinned SEC(".maps"),
    race_array SEC(".maps");

__u64 bss_data;
__u64 abs_data;
__u64 err;
__u64 ok;
__u64 pinned_callback_check;
__s32 pinned_cpu;
__u64 callback_check = 52;
__u64 callback2_check = 52;

/* Keys: which map a callback was armed from. */
#define ARRAY 1
#define HTAB 2
#define HTAB_MALLOC 3
#define LRU 4

/* Fires for the array timer (key ARRAY) and then for the LRU timer (key LRU). */
static int timer_cb1(void *map, int *key, struct bpf_timer *timer)
{
  bss_data += 5;

  if (*key == ARRAY) {
    struct bpf_timer *lru_timer;
    int lru_key = LRU;

    /* Park the array timer far in the future; timer_cb2 cancels it. */
    if (bpf_timer_start(timer, 1ull << 35, 0) != 0)
      err |= 1;

    lru_timer = bpf_map_lookup_elem(&lru, &lru_key);
    if (!lru_timer)
      return 0;
    bpf_timer_set_callback(lru_timer, timer_cb1);
    if (bpf_timer_start(lru_timer, 0, 0) != 0)
      err |= 2;
  } else if (*key == LRU) {
    int lru_key, i;

    /* Insert fresh keys until LRU eviction recycles the element this callback runs for.
     * 100 is comfortably above twice max_entries, which the eviction needs. The induction
     * variable is i, not lru_key, so that the verifier sees a bounded loop. */
    for (i = LRU + 1; i <= 100; i++) {
      struct elem fresh = {};

      lru_key = i;
      bpf_map_update_elem(map, &lru_key, &fresh, 0);
      bpf_map_lookup_elem(map, &lru_key);
      if (*key != LRU)
        break;
    }

    /* Eviction freed our own timer while we were running in it: the slot now reads as an
     * uninitialised timer. */
    if (bpf_timer_cancel(timer) != -EINVAL)
      err |= 4;
    ok |= 1;
  }
  return 0;
}

SEC("fentry/bpf_fentry_test1")
int test1(void *ctx)
{
  struct bpf_timer *arr_timer, *lru_timer;
  struct elem fresh = {};
  int lru_key = LRU;
  int array_key = ARRAY;

  arr_timer = bpf_map_lookup_elem(&array, &array_key);
  if (!arr_timer)
    return 0;
  bpf_timer_init(arr_timer, &array, CLOCK_MONOTONIC);

  bpf_map_update_elem(&lru, &lru_key, &fresh, 0);
  lru_timer = bpf_map_lookup_elem(&lru, &lru_key);
  if (!lru_timer)
    return 0;
  bpf_timer_init(lru_timer, &lru, CLOCK_MONOTONIC);

  bpf_timer_set_callback(arr_timer, timer_cb1);
  bpf_timer_start(arr_timer, 0, 0);

  /* array[0] gets an initialised but never started timer: freeing the array must free it. */
  array_key = 0;
  arr_timer = bpf_map_lookup_elem(&array, &array_key);
  if (!arr_timer)
    return 0;
  bpf_timer_init(arr_timer, &array, CLOCK_MONOTONIC);
  return 0;
}

/* Fires for hmap[HTAB] and hmap_malloc[HTAB_MALLOC], ten times each. */
static int timer_cb2(void *map, int *key, struct hmap_elem *val)
{
  if (*key == HTAB)
    callback_check--;
  else
    callback2_check--;

  if (val->counter > 0 && --val->counter) {
    bpf_timer_start(&val->timer, 1000, 0);
  } else if (*key == HTAB) {
    struct bpf_timer *arr_timer;
    int array_key = ARRAY;

    /* The array timer sits parked for 2^35 ns, so cancelling it finds it queued. */
    arr_timer = bpf_map_lookup_elem(&array, &array_key);
    if (!arr_timer)
      return 0;
    if (bpf_timer_cancel(arr_timer) != 1)
      err |= 8;

    /* A callback cannot wait for itself. */
    if (bpf_timer_cancel(&val->timer) != -EDEADLK)
      err |= 16;

    /* Deleting our own element from inside the callback must not deadlock either. */
    bpf_map_delete_elem(map, key);

    /* Preallocated element: the memory stays with the map and the timer pointer was cleared
     * by the delete. */
    if (bpf_timer_start(&val->timer, 1000, 0) != -EINVAL)
      err |= 32;
    ok |= 2;
  } else {
    if (*key != HTAB_MALLOC)
      err |= 64;

    if (bpf_timer_cancel(&val->timer) != -EDEADLK)
      err |= 128;

    bpf_map_delete_elem(map, key);

    /* (The seed's bit 256, arming the deleted element's timer, is gone since v6.1.) */
    ok |= 4;
  }
  return 0;
}

/* A global (non-static) subprogram, as in the seed: the kernel verifies it on its own. noinline
 * keeps it a real bpf-to-bpf call (clang would otherwise inline it into test2). */
__attribute__((noinline)) int bpf_timer_test(void)
{
  struct hmap_elem *val;
  int key = HTAB, key_malloc = HTAB_MALLOC;

  val = bpf_map_lookup_elem(&hmap, &key);
  if (val) {
    if (bpf_timer_init(&val->timer, &hmap, CLOCK_BOOTTIME) != 0)
      err |= 512;
    bpf_timer_set_callback(&val->timer, timer_cb2);
    bpf_timer_start(&val->timer, 1000, 0);
  }
  val = bpf_map_lookup_elem(&hmap_malloc, &key_malloc);
  if (val) {
    if (bpf_timer_init(&val->timer, &hmap_malloc, CLOCK_BOOTTIME) != 0)
      err |= 1024;
    bpf_timer_set_callback(&val->timer, timer_cb2);
    bpf_timer_start(&val->timer, 1000, 0);
  }
  return 0;
}

SEC("fentry/bpf_fentry_test2")
int test2(void *ctx)
{
  struct hmap_elem init = {}, *val;
  int key = HTAB, key_malloc = HTAB_MALLOC;

  init.counter = 10; /* timer_cb2 runs this many times per map */

  /* Initialise a timer, then replace the element: the update cancels and frees that timer. */
  bpf_map_update_elem(&hmap, &key, &init, 0);
  val = bpf_map_lookup_elem(&hmap, &key);
  if (val)
    bpf_timer_init(&val->timer, &hmap, CLOCK_BOOTTIME);
  bpf_map_update_elem(&hmap, &key, &init, 0);

  bpf_map_update_elem(&hmap_malloc, &key_malloc, &init, 0);
  val = bpf_map_lookup_elem(&hmap_malloc, &key_malloc);
  if (val)
    bpf_timer_init(&val->timer, &hmap_malloc, CLOCK_BOOTTIME);
  bpf_map_update_elem(&hmap_malloc, &key_malloc, &init, 0);

  /* Leak checks: delete and re-create elements that own initialised timers. */
  key = 0;
  bpf_map_update_elem(&hmap, &key, &init, 0);
  val = bpf_map_lookup_elem(&hmap, &key);
  if (val)
    bpf_timer_init(&val->timer, &hmap, CLOCK_BOOTTIME);
  bpf_map_delete_elem(&hmap, &key);
  bpf_map_update_elem(&hmap, &key, &init, 0);
  val = bpf_map_lookup_elem(&hmap, &key);
  if (val)
    bpf_timer_init(&val->timer, &hmap, CLOCK_BOOTTIME);

  key_malloc = 0;
  bpf_map_update_elem(&hmap_malloc, &key_malloc, &init, 0);
  val = bpf_map_lookup_elem(&hmap_malloc, &key_malloc);
  if (val)
    bpf_timer_init(&val->timer, &hmap_malloc, CLOCK_BOOTTIME);
  bpf_map_delete_elem(&hmap_malloc, &key_malloc);
  bpf_map_update_elem(&hmap_malloc, &key_malloc, &init, 0);
  val = bpf_map_lookup_elem(&hmap_malloc, &key_malloc);
  if (val)
    bpf_timer_init(&val->timer, &hmap_malloc, CLOCK_BOOTTIME);

  return bpf_timer_test();
}

/* test3 (v6.4): an absolute timer on the boot clock. */
static int timer_cb3(void *map, int *key, struct bpf_timer *timer)
{
  abs_data += 6;

  if (abs_data < 12)
    bpf_timer_start(timer, bpf_ktime_get_boot_ns() + 1000, BPF_F_TIMER_ABS);
  else
    /* Re-arm far ahead: the callback runs exactly twice during the test. */
    bpf_timer_start(timer, bpf_ktime_get_boot_ns() + (1ull << 35), BPF_F_TIMER_ABS);
  return 0;
}

SEC("fentry/bpf_fentry_test3")
int test3(void *ctx)
{
  int key = 0;
  struct bpf_timer *timer;

  timer = bpf_map_lookup_elem(&abs_timer, &key);
  if (timer) {
    if (bpf_timer_init(timer, &abs_timer, CLOCK_BOOTTIME) != 0)
      err |= 2048;
    bpf_timer_set_callback(timer, timer_cb3);
    bpf_timer_start(timer, bpf_ktime_get_boot_ns() + 1000, BPF_F_TIMER_ABS);
  }
  return 0;
}

/* test4 / test5 (v6.7): a pinned timer's callback runs on the CPU that armed it. */
static int timer_cb_pinned(void *map, int *key, struct bpf_timer *timer)
{
  __s32 cpu = bpf_get_smp_processor_id();

  if (cpu != pinned_cpu)
    err |= 16384;
  pinned_callback_check++;
  return 0;
}

static __always_inline void test_pinned_timer(int soft)
{
  int key = 0;
  void *map;
  struct bpf_timer *timer;
  __u64 flags = BPF_F_TIMER_CPU_PIN;
  __u64 start_time;

  if (soft) {
    map = &soft_timer_pinned;
    start_time = 0;
  } else {
    map = &abs_timer_pinned;
    start_time = bpf_ktime_get_boot_ns();
    flags |= BPF_F_TIMER_ABS;
  }

  timer = bpf_map_lookup_elem(map, &key);
  if (timer) {
    if (bpf_timer_init(timer, map, CLOCK_BOOTTIME) != 0)
      err |= 4096;
    bpf_timer_set_callback(timer, timer_cb_pinned);
    pinned_cpu = bpf_get_smp_processor_id();
    bpf_timer_start(timer, start_time + 1000, flags);
  } else {
    err |= 8192;
  }
}

SEC("fentry/bpf_fentry_test4")
int test4(void *ctx)
{
  test_pinned_timer(1);
  return 0;
}

SEC("fentry/bpf_fentry_test5")
int test5(void *ctx)
{
  test_pinned_timer(0);
  return 0;
}

/* race (v6.8): overwrite the element (cancel_and_free of its timer), re-arm it, cancel it;
 * the user space test runs it from many threads at once. */
static int race_timer_callback(void *race_array, int *race_key, struct bpf_timer *timer)
{
  bpf_timer_start(timer, 1000000, 0);
  return 0;
}

SEC("syscall")
int race(void *ctx)
{
  struct bpf_timer *timer;
  int err, race_key = 0;
  struct elem init;

  __builtin_memset(&init, 0, sizeof(struct elem));
  bpf_map_update_elem(&race_array, &race_key, &init, BPF_ANY);

  timer = bpf_map_lookup_elem(&race_array, &race_key);
  if (!timer)
    return 1;

  err = bpf_timer_init(timer, &race_array, CLOCK_MONOTONIC);
  if (err && err != -EBUSY)
    return 1;

  bpf_timer_set_callback(timer, race_timer_callback);
  bpf_timer_start(timer, 0, 0);
  bpf_timer_cancel(timer);

  return 0;
}
