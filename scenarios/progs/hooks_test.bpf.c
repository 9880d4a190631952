// hooks_test: programs on the kernel hook points of model/bpf_trace.h, for tests/unit/test_hooks.cpp.
// Each records what its context and the task helpers gave it in globals.
#include "race_common.h"

#include "bpftsim_vmlinux.h"

char _license[] SEC("license") = "GPL";

ELEM_MAP(timers, BPF_MAP_TYPE_ARRAY, 2);
ARM_RESULTS;

long callbacks = 0;

/* fentry/fexit do_nanosleep */
long entry_runs = 0;
__u64 entry_arg0 = 0, entry_arg1 = 0;
__u64 entry_pid_tgid = 0;
long entry_task_pid = 0, entry_task_tgid = 0, entry_task_state = 0;
char entry_comm[16] = {};
__u64 entry_ns = 0;
long exit_runs = 0;
__u64 exit_arg1 = 0, exit_ret = 99;
__u64 exit_ns = 0;
long exit_task_state = 0;

/* hrtimer hooks */
long tp_start_runs = 0;
__u64 tp_start_hrtimer = 0, tp_start_mode = 0;
long fn_start_runs = 0;
long nested_start = UNSET;
long tp_cancel_runs = 0;
long tp_expire_entry_runs = 0, tp_expire_exit_runs = 0;
__u64 tp_expire_hrtimer = 0;

static int cb(void *map, int *key, struct elem *val)
{
  callbacks++;
  return 0;
}

ARM_SLOT0_PROG(arm, timers, cb, 10000);
long cancel_ret = UNSET;
CANCEL_SLOT0_PROG(cancel, timers, cancel_ret);

SEC("fentry/do_nanosleep")
int sleep_entry(__u64 *ctx)
{
  struct task_struct *task = bpf_get_current_task_btf();

  entry_runs++;
  entry_arg0 = ctx[0];
  entry_arg1 = ctx[1];
  entry_pid_tgid = bpf_get_current_pid_tgid();
  entry_task_pid = task->pid;
  entry_task_tgid = task->tgid;
  entry_task_state = task->__state;
  __builtin_memcpy(entry_comm, task->comm, sizeof(entry_comm));
  entry_ns = bpf_ktime_get_ns();
  return 0;
}

SEC("fexit/do_nanosleep")
int sleep_exit(__u64 *ctx)
{
  struct task_struct *task = bpf_get_current_task_btf();

  exit_runs++;
  exit_arg1 = ctx[1];
  exit_ret = ctx[2];
  exit_task_state = task->__state;
  exit_ns = bpf_ktime_get_ns();
  return 0;
}

/* Writes the read-only task_struct: a program fault. */
SEC("fentry/bpf_fentry_test1")
int write_task(__u64 *ctx)
{
  struct task_struct *task = bpf_get_current_task_btf();

  task->pid = 1;
  return 0;
}

SEC("tp_btf/hrtimer_start")
int on_start(__u64 *ctx)
{
  tp_start_runs++;
  tp_start_hrtimer = ctx[0];
  tp_start_mode = ctx[1];
  return 0;
}

SEC("raw_tp/hrtimer_cancel")
int on_cancel(__u64 *ctx)
{
  tp_cancel_runs++;
  return 0;
}

SEC("tp_btf/hrtimer_expire_entry")
int on_expire_entry(__u64 *ctx)
{
  tp_expire_entry_runs++;
  tp_expire_hrtimer = ctx[0];
  return 0;
}

SEC("tp_btf/hrtimer_expire_exit")
int on_expire_exit(__u64 *ctx)
{
  tp_expire_exit_runs++;
  return 0;
}

/* Outside the base lock: starts slot 1's timer, whose own hrtimer_start_range_ns finds this
 * program running on the CPU (prog->active): that nested run is skipped. */
SEC("fentry/hrtimer_start_range_ns")
int on_start_fn(__u64 *ctx)
{
  int key = 1;
  struct elem *val;

  fn_start_runs++;
  val = bpf_map_lookup_elem(&timers, &key);
  if (!val)
    return 0;
  bpf_timer_init(&val->t, &timers, CLOCK_MONOTONIC);
  bpf_timer_set_callback(&val->t, cb);
  nested_start = bpf_timer_start(&val->t, 20000, 0);
  return 0;
}

SEC("fentry/no_such_function")
int bad_hook(void *ctx)
{
  return 0;
}
