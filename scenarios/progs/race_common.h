// Shared by the race_*.bpf.c and timer_errors.bpf.c scenario programs: the constants a BPF
// program cannot take from kernel headers, and a callback body that takes a while.
//
// Conventions of these programs: every helper result a scenario asserts goes to a `long` global
// in .data that starts at 99 (no helper returns 99), so a value the program never reached stays
// visibly untouched. Callback counters are `long` globals in .bss.
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
