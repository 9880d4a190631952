// verifier_timer_wrong_map: bpf_timer_init given a map other than the one holding the timer, both
// plain maps of the object (rule timer_map_uid; the kernel compares map pointers and map_uid).
#include "verifier_common.h"

SEC("syscall")
int bad_map(void *ctx)
{
  int key = 0;
  struct timer_elem *e = bpf_map_lookup_elem(&timers, &key);

  if (!e)
    return 0;
  bpf_timer_init(&e->t, &locked, CLOCK_MONOTONIC);
  return 0;
}
