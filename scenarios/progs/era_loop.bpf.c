// era_loop: a program calling bpf_loop, a helper that arrived in v5.17 ("bpf: Add bpf_loop
// helper"). Before that kernel the verifier refuses it ("unknown func bpf_loop#181") and the
// object does not load. Scenarios: scenarios/errors/load-bpf-loop-*.json.
#include "race_common.h"

char _license[] SEC("license") = "GPL";

long loops = UNSET;
long sum;

static long add_index(__u64 i, void *ctx)
{
  sum += i;
  return 0;
}

/* bpf_loop(ctx[0], add_index): the number of iterations, also in `loops`. */
SEC("syscall")
long run_loop(__u64 *ctx)
{
  loops = bpf_loop(ctx[0], add_index, 0, 0);
  return loops;
}
