// verifier_lock_call: a helper call while a bpf_spin_lock is held (rule spin_lock_call; the
// kernel: "function calls are not allowed while holding a lock"). ok_locked shows the accepted
// form (only loads and stores between lock and unlock); bad_locked calls bpf_ktime_get_ns inside.
#include "verifier_common.h"

SEC("syscall")
int ok_locked(void *ctx)
{
  int key = 0;
  struct locked_elem *e = bpf_map_lookup_elem(&locked, &key);

  if (!e)
    return 0;
  bpf_spin_lock(&e->lock);
  e->data++;
  bpf_spin_unlock(&e->lock);
  return 0;
}

SEC("syscall")
int bad_locked(void *ctx)
{
  int key = 0;
  struct locked_elem *e = bpf_map_lookup_elem(&locked, &key);

  if (!e)
    return 0;
  bpf_spin_lock(&e->lock);
  e->data = bpf_ktime_get_ns();
  bpf_spin_unlock(&e->lock);
  return 0;
}
