// verifier_tracing_timer: a tracepoint program using a map whose value holds a bpf_timer. Loads
// on v5.15; refused from v5.16 ("tracing progs cannot use bpf_timer yet", reference 2.1) when
// VerifierOptions::tracing_progs_no_timer is on: rule tracing_timer at the map's ld_imm64.
#include "verifier_common.h"

SEC("tracepoint/timer/hrtimer_start")
int on_hrtimer_start(void *ctx)
{
  int key = 0;
  struct timer_elem *e = bpf_map_lookup_elem(&timers, &key);

  if (e)
    bpf_timer_start(&e->t, 1000, 0);
  return 0;
}
