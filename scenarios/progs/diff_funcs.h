/* diff_funcs.h: the bodies of the differential-test programs, shared verbatim by
 * scenarios/progs/diff_progs.bpf.c (clang -target bpf, run in model/bpf_vm) and
 * tests/unit/test_differential.cpp (compiled natively as C++). Both must compute the same value
 * for every input, so every function here is fully defined C and C++: no signed overflow, no left
 * shift of a negative value, no shift by the width or more, no division by zero. Right shifts of
 * negative values are arithmetic on every compiler we build with (and by definition in C++20).
 *
 * Each diff_* function takes the four words of struct diff_args and returns a u64 that folds
 * every intermediate result in, so a wrong instruction anywhere changes the answer.
 *
 * clang 14 has no -mcpu=v4, so signed division is written here in unsigned operations (what the
 * kernel's BPF_SDIV computes: truncation toward zero, x/0 = 0, x%0 = x) and sign extension is
 * the shift pairs clang emits for v3; bswap lowers to BPF_END (be16/be32/be64).
 */
#ifndef BPFTSIM_DIFF_FUNCS_H
#define BPFTSIM_DIFF_FUNCS_H

#include <linux/types.h>

/* Keeps the loops as loops in the bytecode (backward jumps); gcc does not know the pragma. */
#if defined(__clang__)
#define DIFF_NO_UNROLL _Pragma("clang loop unroll(disable)")
#else
#define DIFF_NO_UNROLL
#endif

struct diff_args {
  __u64 a;
  __u64 b;
  __u64 c;
  __u64 d;
};

static inline __u64 diff_rotl64(__u64 x, unsigned n) {
  n &= 63;
  return n == 0 ? x : (x << n) | (x >> (64 - n));
}

/* Integer hash mixing: murmur3 fmix64 of each word, a splitmix step, rotations by data. */
static inline __u64 diff_hash_mix(const struct diff_args* in) {
  __u64 h = in->a ^ 0x9e3779b97f4a7c15ULL;

  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  h += in->b * 0xbf58476d1ce4e5b9ULL;
  h = diff_rotl64(h, (unsigned)(in->c & 63));
  h ^= (h >> 31) * 0x94d049bb133111ebULL;
  h -= diff_rotl64(in->d, (unsigned)(h >> 58));
  return h ^ (h >> 29);
}

/* Truncating signed division and remainder with BPF's rules for a zero divisor. */
static inline __s64 diff_sdiv64(__s64 a, __s64 b) {
  __u64 ua, ub, q;

  if (b == 0) return 0;
  ua = a < 0 ? 0 - (__u64)a : (__u64)a;
  ub = b < 0 ? 0 - (__u64)b : (__u64)b;
  q = ua / ub;
  return (__s64)((a < 0) != (b < 0) ? 0 - q : q);
}

static inline __s64 diff_smod64(__s64 a, __s64 b) {
  __u64 ua, ub, r;

  if (b == 0) return a;
  ua = a < 0 ? 0 - (__u64)a : (__u64)a;
  ub = b < 0 ? 0 - (__u64)b : (__u64)b;
  r = ua % ub;
  return (__s64)(a < 0 ? 0 - r : r);
}

static inline __s32 diff_sdiv32(__s32 a, __s32 b) {
  __u32 ua, ub, q;

  if (b == 0) return 0;
  ua = a < 0 ? 0u - (__u32)a : (__u32)a;
  ub = b < 0 ? 0u - (__u32)b : (__u32)b;
  q = ua / ub;
  return (__s32)((a < 0) != (b < 0) ? 0u - q : q);
}

static inline __s32 diff_smod32(__s32 a, __s32 b) {
  __u32 ua, ub, r;

  if (b == 0) return a;
  ua = a < 0 ? 0u - (__u32)a : (__u32)a;
  ub = b < 0 ? 0u - (__u32)b : (__u32)b;
  r = ua % ub;
  return (__s32)(a < 0 ? 0u - r : r);
}

/* Signed and unsigned division/modulo, 64- and 32-bit, on raw and on small divisors. */
static inline __u64 diff_divmod(const struct diff_args* in) {
  __s64 a = (__s64)in->a, b = (__s64)in->b;
  __s32 a32 = (__s32)in->c, b32 = (__s32)in->d;
  __s64 small = (__s64)(in->d & 0xff) - 128; /* -128..127, often tiny, sometimes 0 */
  __u64 acc = 0;

  acc = acc * 31 + (__u64)diff_sdiv64(a, b);
  acc = acc * 31 + (__u64)diff_smod64(a, b);
  acc = acc * 31 + (__u64)diff_sdiv64(a, small);
  acc = acc * 31 + (__u64)diff_smod64(a, small);
  acc = acc * 31 + (__u32)diff_sdiv32(a32, b32);
  acc = acc * 31 + (__u32)diff_smod32(a32, b32);
  acc = acc * 31 + (__u32)diff_sdiv32(a32, (__s32)small);
  acc = acc * 31 + (__u32)diff_smod32(a32, (__s32)small);
  acc = acc * 31 + (in->b ? in->a / in->b : 0);
  acc = acc * 31 + (in->b ? in->a % in->b : in->a);
  acc = acc * 31 + ((__u32)in->d ? (__u32)in->c / (__u32)in->d : 0);
  acc = acc * 31 + ((__u32)in->d ? (__u32)in->c % (__u32)in->d : (__u32)in->c);
  return acc;
}

/* Byte swaps of every width, of whole words and of shifted parts. */
static inline __u64 diff_bswap(const struct diff_args* in) {
  __u64 acc = __builtin_bswap64(in->a);

  acc = acc * 31 + __builtin_bswap32((__u32)in->b);
  acc = acc * 31 + __builtin_bswap16((__u16)(in->b >> 24));
  acc = acc * 31 + __builtin_bswap64(in->c ^ acc);
  acc = acc * 31 + __builtin_bswap32((__u32)(in->d >> (in->c & 31)));
  acc ^= __builtin_bswap16((__u16)in->d);
  return acc;
}

/* Sign extension from 8/16/32 bits to 32 and 64 bits, then mixed with signed arithmetic. */
static inline __u64 diff_sext(const struct diff_args* in) {
  __s64 s8 = (__s8)in->a;
  __s64 s16 = (__s16)(in->a >> 8);
  __s64 s32 = (__s32)(in->a >> 24);
  __s32 w8 = (__s8)(in->b >> 3);
  __s32 w16 = (__s16)(in->b >> 17);
  __u64 acc = 0;

  acc = acc * 31 + (__u64)s8;
  acc = acc * 31 + (__u64)s16;
  acc = acc * 31 + (__u64)s32;
  acc = acc * 31 + (__u32)w8;
  acc = acc * 31 + (__u32)w16;
  acc = acc * 31 + (__u64)(__s64)w16; /* 32 -> 64 after 16 -> 32 */
  acc = acc * 31 + (__u64)((s8 + s16) >> 3);
  acc = acc * 31 + (__u64)(s32 < 0 ? s32 >> (in->c & 31) : s32 >> 1);
  return acc;
}

/* 32-bit arithmetic that wraps: add/sub/mul overflow, shifts by data, signed and unsigned
 * 32-bit compares (JMP32), and the zero extension of every 32-bit result. */
static inline __u64 diff_wrap32(const struct diff_args* in) {
  __u32 x = (__u32)in->a, y = (__u32)in->b, z = (__u32)(in->a >> 32);
  __u32 n = y & 31;
  __u64 acc = 0;
  __u32 i;

  acc = acc * 31 + (x + y);
  acc = acc * 31 + (x - y);
  acc = acc * 31 + x * y;
  acc = acc * 31 + (x << n);
  acc = acc * 31 + (x >> n);
  acc = acc * 31 + (__u32)((__s32)x >> n);
  acc = acc * 31 + (__u32)(-(__s64)(__s32)z);
  acc = acc * 31 + ((__s32)x < (__s32)y ? 1 : 2);
  acc = acc * 31 + (x < y ? 3 : 4);
  acc = acc * 31 + ((__s32)x <= (__s32)z ? 5 : 6);
  acc = acc * 31 + ((x & y) != 0 ? 7 : 8);
  DIFF_NO_UNROLL
  for (i = 0; i < 16; i++) {
    x = x * 1664525u + 1013904223u; /* wraps every round */
    y ^= x >> (i & 15);
    z += y ^ (x << 3);
  }
  return acc * 31 + ((__u64)z << 32 | (x ^ y));
}

/* 64-bit shifts by immediates and by data, arithmetic right shifts of negative values. */
static inline __u64 diff_shifts(const struct diff_args* in) {
  unsigned n = (unsigned)(in->b & 63);
  __s64 s = (__s64)in->a;
  __u64 acc = 0;

  acc = acc * 31 + (in->a << n);
  acc = acc * 31 + (in->a >> n);
  acc = acc * 31 + (__u64)(s >> n);
  acc = acc * 31 + (__u64)(s >> 63);
  acc = acc * 31 + (in->a << 63);
  acc = acc * 31 + (in->c >> 1);
  acc = acc * 31 + diff_rotl64(in->c, n);
  acc = acc * 31 + (__u64)((__s64)in->d >> (in->c & 63));
  return acc;
}

/* Every 64-bit compare, signed and unsigned, as a bit mask. */
static inline __u64 diff_compare(const struct diff_args* in) {
  __u64 a = in->a, b = in->b;
  __s64 sa = (__s64)a, sb = (__s64)b;
  __u64 m = 0;

  if (a == b) m |= 1;
  if (a != b) m |= 2;
  if (a < b) m |= 4;
  if (a <= b) m |= 8;
  if (a > b) m |= 16;
  if (a >= b) m |= 32;
  if (sa < sb) m |= 64;
  if (sa <= sb) m |= 128;
  if (sa > sb) m |= 256;
  if (sa >= sb) m |= 512;
  if (a & b) m |= 1024;
  if (sa < 0) m |= 2048;
  if (sa > -5) m |= 4096;
  if (a > 0xfffffffffULL) m |= 8192;
  return m;
}

/* Bounded loops over stack arrays of u8, u16, u32 and u64 with data-dependent indices. */
static inline __u64 diff_stack(const struct diff_args* in) {
  __u64 w[16];
  __u32 v[32];
  __u16 h[16];
  __u8 b[32];
  __u64 x = in->a | 1, acc = 0;
  __u32 i, rounds = (__u32)(in->b % 97);

  DIFF_NO_UNROLL
  for (i = 0; i < 16; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    w[i] = x;
    h[i] = (__u16)(x >> 20);
  }
  DIFF_NO_UNROLL
  for (i = 0; i < 32; i++) {
    v[i] = (__u32)(w[i & 15] >> (i & 31)) ^ (__u32)in->c;
    b[i] = (__u8)(v[i] >> 5);
  }
  DIFF_NO_UNROLL
  for (i = 0; i < rounds; i++) {
    __u32 j = v[i & 31] & 31;
    __u32 k = (__u32)(w[j & 15] >> 40) & 15;

    v[j] += h[k] ^ b[(j + i) & 31];
    w[k] ^= (__u64)v[j] << (i & 31);
    h[(k + 1) & 15] = (__u16)(h[k] + b[j]);
    b[(i * 7) & 31] = (__u8)(b[j] * 3 + (__u8)in->d);
  }
  DIFF_NO_UNROLL
  for (i = 0; i < 32; i++)
    acc = acc * 31 + v[i] + b[i] + h[i & 15] + w[i & 15];
  return acc;
}

#endif /* BPFTSIM_DIFF_FUNCS_H */
