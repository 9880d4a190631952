// verifier_lock_subprog: a bpf-to-bpf call while a bpf_spin_lock is held (rule spin_lock_call).
#include "verifier_common.h"

static __attribute__((noinline)) int bump(struct locked_elem *e)
{
  e->data += 2;
  return 0;
}

SEC("syscall")
int bad_subprog(void *ctx)
{
  int key = 0;
  struct locked_elem *e = bpf_map_lookup_elem(&locked, &key);

  if (!e)
    return 0;
  bpf_spin_lock(&e->lock);
  bump(e);
  bpf_spin_unlock(&e->lock);
  return 0;
}
