// diff_progs: the differential-test programs. Each SEC("syscall") program reads struct diff_args
// from its context (r1) and returns, in the full 64 bits of r0, what the same-named function of
// diff_funcs.h computes; tests/unit/test_differential.cpp compiles those functions natively and
// compares over many inputs. No helpers, no maps.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "diff_funcs.h"

char _license[] SEC("license") = "GPL";

#define DIFF_PROG(fn)                                   \
  SEC("syscall") __u64 prog_##fn(struct diff_args *ctx) \
  {                                                     \
    return diff_##fn(ctx);                              \
  }

DIFF_PROG(hash_mix)
DIFF_PROG(divmod)
DIFF_PROG(bswap)
DIFF_PROG(sext)
DIFF_PROG(wrap32)
DIFF_PROG(shifts)
DIFF_PROG(compare)
DIFF_PROG(stack)
