// htab_nmi: an NMI program updating or deleting a hash map element while the CPU it interrupts is
// inside the same bucket-lock slot (htab_lock_bucket's per-CPU map_locked counter, v5.15) gets
// -EBUSY instead of spinning on the lock its own CPU holds. The task on that CPU replaces element
// 0 from user space (map_update: the old element's timer is cancelled and freed under the bucket
// lock); the NMI lands inside. Results start at 99 (race_common.h). Scenarios:
// scenarios/errors/htab-*-ebusy-nmi.json.
#include "race_common.h"

char _license[] SEC("license") = "GPL";

ELEM_MAP(h, BPF_MAP_TYPE_HASH, 16);

long arm_ret = UNSET;
long nmi_update_ret = UNSET;
long nmi_delete_ret = UNSET;

static int noop_cb(void *map, int *key, struct elem *val)
{
  return 0;
}

// Arms the timer of element 0 (created by user space) for one second.
SEC("fentry/bpf_fentry_test1")
int arm(void *ctx)
{
  int key = 0;
  struct elem *v = bpf_map_lookup_elem(&h, &key);

  if (!v)
    return 1;
  bpf_timer_init(&v->t, &h, CLOCK_MONOTONIC);
  bpf_timer_set_callback(&v->t, noop_cb);
  arm_ret = bpf_timer_start(&v->t, 1000000000, 0);
  return 0;
}

SEC("fentry/bpf_fentry_test1")
int nmi_update(void *ctx)
{
  int key = 0;
  struct elem v = {};

  nmi_update_ret = bpf_map_update_elem(&h, &key, &v, BPF_ANY);
  return 0;
}

SEC("fentry/bpf_fentry_test1")
int nmi_delete(void *ctx)
{
  int key = 0;

  nmi_delete_ret = bpf_map_delete_elem(&h, &key);
  return 0;
}
