// verifier_timer_offset: bpf_timer_init given a pointer into the value that is not its struct
// bpf_timer (rule timer_arg; the kernel: "off 0 doesn't point to 'struct bpf_timer' that is at 8").
#include "verifier_common.h"

SEC("syscall")
int bad_offset(void *ctx)
{
  int key = 0;
  struct timer_elem *e = bpf_map_lookup_elem(&timers, &key);

  if (!e)
    return 0;
  bpf_timer_init((struct bpf_timer *)&e->data, &timers, CLOCK_MONOTONIC);
  return 0;
}
