// verifier_lock_global_subprog: what stays refused (rule spin_lock_call) once v6.9 lets a program
// call static subprograms while holding a bpf_spin_lock ("bpf: Allow calling static subprogs
// while holding a bpf_spin_lock"): a call to a global (non-static) subprogram, which the kernel's
// verifier does not walk, and a helper call inside a static subprogram called under the lock.
#include "verifier_common.h"

__attribute__((noinline)) int bump_global(struct locked_elem *e)
{
  if (!e)
    return 0;
  e->data += 3;
  return 0;
}

static __attribute__((noinline)) int stamp(struct locked_elem *e)
{
  e->data = bpf_ktime_get_ns();
  return 0;
}

SEC("syscall")
int bad_global(void *ctx)
{
  int key = 0;
  struct locked_elem *e = bpf_map_lookup_elem(&locked, &key);

  if (!e)
    return 0;
  bpf_spin_lock(&e->lock);
  bump_global(e);
  bpf_spin_unlock(&e->lock);
  return 0;
}

SEC("syscall")
int bad_static_helper(void *ctx)
{
  int key = 0;
  struct locked_elem *e = bpf_map_lookup_elem(&locked, &key);

  if (!e)
    return 0;
  bpf_spin_lock(&e->lock);
  stamp(e);
  bpf_spin_unlock(&e->lock);
  return 0;
}
