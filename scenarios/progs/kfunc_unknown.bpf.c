// kfunc_unknown: calls bpf_rcu_read_lock, a kfunc the model does not know. Loading the object
// must fail with an error naming the section and the kfunc, on every profile (the model knows
// bpf_timer_cancel_async only).
#include "race_common.h"

extern void bpf_rcu_read_lock(void) __ksym;

char _license[] SEC("license") = "GPL";

SEC("syscall")
int calls_unknown_kfunc(void *ctx)
{
  bpf_rcu_read_lock();
  return 0;
}
