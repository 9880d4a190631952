// timer_crash: the kernel's timer_crash selftest (selftests/bpf progs/timer_crash.c, Feb 2022,
// reference 3.3, the oracle of the copy_map_value fix 2.2), rewritten for bpftsim.
//
// A value holds a bpf_timer and a bpf_spin_lock. An fentry program on do_nanosleep, for the task
// whose tgid is `pid` only, writes 0xdeadcaf3 into the first 8 bytes of a value (the slot of the
// timer's kernel pointer) and updates element 0 of `amap` (crash_map 0) or `hmap` (crash_map 1)
// with it. Before 2.2 (v5.15, v5.16) copy_map_value skipped only the lock, so the update copied
// the fake pointer into the timer: the array update's own cancel_and_free, or the hash
// subtest's bpf_timer_cancel, follows it (the kernel crashes; the model reports a wild pointer).
// From v5.17 the timer bytes are never copied: the array update finds no timer, and the hash
// cancel returns -EINVAL (an uninitialised timer).
//
// The selftest's user space sets `pid` and `crash_map` in .bss before attaching; here `setup`
// does it, run (test_run) by the task that then sleeps, with the subtest in ctx[0].
// Scenarios: scenarios/conformance/timer_crash_{array,hash}_v5.{15,17}.json.
#include <linux/bpf.h>
// bpf_helpers.h needs the __u32/__u64 of linux/bpf.h: keep it in its own include block.
#include <bpf/bpf_helpers.h>

#include "bpftsim_vmlinux.h"

char _license[] SEC("license") = "GPL";

struct map_elem {
  struct bpf_timer timer;
  struct bpf_spin_lock lock;
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, int);
  __type(value, struct map_elem);
} amap SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1);
  __type(key, int);
  __type(value, struct map_elem);
} hmap SEC(".maps");

int pid = 0;
int crash_map = 0; /* 0: amap, 1: hmap */
/* What the programs saw, for the scenarios (no such globals in the kernel's test). */
long update_ret = 99;
long cancel_ret = 99;
long hits = 0;

SEC("syscall")
int setup(__u64 *ctx)
{
  pid = bpf_get_current_pid_tgid() >> 32;
  crash_map = ctx[0];
  return 0;
}

SEC("fentry/do_nanosleep")
int sys_enter(void *ctx)
{
  struct task_struct *task = bpf_get_current_task_btf();
  struct map_elem *e, value = {};
  void *map = crash_map ? (void *)&hmap : (void *)&amap;
  int key = 0;

  if (task->tgid != pid)
    return 0;
  hits++;
  *(void **)&value = (void *)0xdeadcaf3;
  update_ret = bpf_map_update_elem(map, &key, &value, 0);
  /* The array update ran cancel_and_free on the slot already; the hash one replaced the
   * element, whose timer the program now cancels. */
  if (crash_map == 1) {
    e = bpf_map_lookup_elem(map, &key);
    if (!e)
      return 0;
    cancel_ret = bpf_timer_cancel(&e->timer);
  }
  return 0;
}
