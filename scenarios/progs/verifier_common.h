// Shared declarations of the verifier_*.bpf.c programs: each object breaks one rule of
// model/verifier.h once (so that its load fails with that rule), next to code that keeps it.
#pragma once

#include <linux/bpf.h>

#include <bpf/bpf_helpers.h>  // after linux/bpf.h, which it needs

#define CLOCK_MONOTONIC 1

char _license[] SEC("license") = "GPL";

struct locked_elem {
  struct bpf_spin_lock lock; /* at 0 */
  int pad;
  struct bpf_timer t; /* at 8 */
  __u64 data;
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, int);
  __type(value, struct locked_elem);
} locked SEC(".maps");

struct timer_elem {
  __u64 data;         /* at 0 */
  struct bpf_timer t; /* at 8 */
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4);
  __type(key, int);
  __type(value, struct timer_elem);
} timers SEC(".maps");

__u64 result;
