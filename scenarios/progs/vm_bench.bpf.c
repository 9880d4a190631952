// vm_bench: two self-contained SEC("syscall") programs for the interpreter benchmark and the
// differential test (same C compiled natively vs. the bytecode in the VM). No helpers, no maps:
// the return value is a checksum of the work done.
//
//   arith_loop: 1000 rounds of xorshift64 with multiply, shifts, unsigned div/mod.
//   stack_loop: 1000 rounds of read-modify-write over a 64-slot u32 array on the BPF stack.
//
// Expected return values are noted next to each program; they were computed by compiling the same
// bodies natively (gcc and clang, -O0 and -O2 agree). The bodies use only unsigned arithmetic, so
// the results do not depend on the compiler.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char _license[] SEC("license") = "GPL";

#define BENCH_ROUNDS 1000

/* Returns 0x9735263f (as int: -1758124481). */
SEC("syscall")
int arith_loop(void *ctx)
{
  __u64 x = 0x9e3779b97f4a7c15ULL;
  __u64 acc = 0;
  __u32 i;

#pragma clang loop unroll(disable)
  for (i = 0; i < BENCH_ROUNDS; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    acc += x * (i | 1);
    acc ^= acc >> 29;
    acc += x / (i + 3);
    acc -= (x >> 11) % (i + 7);
  }
  return (int)(acc ^ (acc >> 32));
}

/* Returns 0xf9747071 (as int: -109809551). */
SEC("syscall")
int stack_loop(void *ctx)
{
  __u32 buf[64];
  __u32 sum = 0;
  __u32 i;

#pragma clang loop unroll(disable)
  for (i = 0; i < 64; i++)
    buf[i] = i * 2654435761u;

#pragma clang loop unroll(disable)
  for (i = 0; i < BENCH_ROUNDS; i++) {
    __u32 a = buf[i & 63];
    __u32 b = buf[(i * 7 + 3) & 63];

    buf[(i * 13 + 5) & 63] = (a ^ (b << 3)) + (b >> 5) + i;
  }

#pragma clang loop unroll(disable)
  for (i = 0; i < 64; i++)
    sum = sum * 31 + buf[i];
  return (int)sum;
}
