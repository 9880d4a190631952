// verifier_lock_exit: an exit on a path that still holds the bpf_spin_lock (rule spin_lock_exit;
// the kernel v5.15: "bpf_spin_unlock is missing").
#include "verifier_common.h"

SEC("syscall")
int bad_exit(void *ctx)
{
  int key = 0;
  struct locked_elem *e = bpf_map_lookup_elem(&locked, &key);

  if (!e)
    return 0;
  bpf_spin_lock(&e->lock);
  if (e->data > 10)
    return 1; /* leaves with the lock held */
  e->data++;
  bpf_spin_unlock(&e->lock);
  return 0;
}
