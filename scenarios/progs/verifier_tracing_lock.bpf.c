// verifier_tracing_lock: a kprobe program using a map whose value holds a bpf_spin_lock, which
// the kernel refuses in every era this model covers ("tracing progs cannot use bpf_spin_lock
// yet"): rule tracing_spin_lock.
#include "verifier_common.h"

SEC("kprobe/do_nanosleep")
int on_nanosleep(void *ctx)
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
