// Shared by the race_*.bpf.c, timer_errors.bpf.c and timer_nmi.bpf.c scenario programs: the
// constants a BPF program cannot take from kernel headers, a callback body that takes a while,
// the map of struct elem (ELEM_MAP), the usual timer set-up (ARM_RESULTS, ARM_TIMER) and the
// programs that set up or cancel slot 0 of an array (ARM_SLOT0_PROG, CANCEL_SLOT0_PROG).
//
// Conventions of these programs: every helper result a scenario asserts goes to a `long` global
// in .data that starts at 99 (no helper returns 99), so a value the program never reached stays
// visibly untouched (a scenario says so with "unset"). Callback counters are `long` globals in
// .bss.
#pragma once

#include <linux/bpf.h>
// bpf_helpers.h needs the __u32/__u64 of linux/bpf.h: keep it in its own include block.
#include <bpf/bpf_helpers.h>

#define CLOCK_REALTIME 0
#define CLOCK_MONOTONIC 1
#define CLOCK_BOOTTIME 7

#define ENOENT 2
#define EBUSY 16
#define EINVAL 22
#define EDEADLK 35
#define EOPNOTSUPP 95

#define UNSET 99

/* "Never fires during the test", as the selftests write it. */
#define LONG_NS (1ull << 35)

/* A long callback body: `n` turns of a loop the compiler cannot fold (the counter lives in a
 * volatile stack slot). Each turn is a handful of instructions, and instructions cost insn_ns
 * (1 ns) each by default, so burn(1000) keeps the CPU busy for a few microseconds of virtual
 * time in one step, without a helper call (no interleaving point inside). */
static __always_inline void burn(int n) {
  volatile __u64 spin = 0;

  for (int i = 0; i < n; i++)
    spin++;
}

/* The value of every single-timer map of these programs. */
struct elem {
  struct bpf_timer t;
};

/* A map `name` of `n` struct elem with int keys: map_type is BPF_MAP_TYPE_ARRAY, _HASH or
 * _LRU_HASH (no map flags). */
#define ELEM_MAP(name, map_type, n) \
  struct {                          \
    __uint(type, map_type);         \
    __uint(max_entries, n);         \
    __type(key, int);               \
    __type(value, struct elem);     \
  } name SEC(".maps")

/* The usual set-up of a race's timer: bpf_timer_init (CLOCK_MONOTONIC), set_callback(cb),
 * start(ns), each result in a global that ARM_RESULTS declares. `val` points to the map value
 * whose `t` is the timer, `map` is that map. */
#define ARM_RESULTS              \
  long arm_init = UNSET;         \
  long arm_set_callback = UNSET; \
  long arm_start = UNSET

#define ARM_TIMER(val, map, cb, ns)                             \
  do {                                                          \
    arm_init = bpf_timer_init(&(val)->t, map, CLOCK_MONOTONIC); \
    arm_set_callback = bpf_timer_set_callback(&(val)->t, cb);   \
    arm_start = bpf_timer_start(&(val)->t, ns, 0);              \
  } while (0)

/* A syscall program `name` that runs the statement `stmt` with `val` pointing to slot 0 of the
 * array `map`; ARM_SLOT0_PROG sets that timer up (ARM_TIMER), CANCEL_SLOT0_PROG cancels it into
 * the global `result`. */
#define SLOT0_PROG(name, map, stmt)                     \
  SEC("syscall")                                        \
  int name(void* ctx) {                                 \
    int key = 0;                                        \
    struct elem* val = bpf_map_lookup_elem(&map, &key); \
                                                        \
    if (!val) return 1;                                 \
    stmt;                                               \
    return 0;                                           \
  }

#define ARM_SLOT0_PROG(name, map, cb, ns) SLOT0_PROG(name, map, ARM_TIMER(val, &map, cb, ns))
#define CANCEL_SLOT0_PROG(name, map, result) \
  SLOT0_PROG(name, map, result = bpf_timer_cancel(&val->t))
