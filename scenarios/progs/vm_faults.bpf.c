// vm_faults: one program per fault kind the VM reports, for tests that check each ends as a clean
// program_fault finding naming the pc (never a crash of the simulator). None of them would pass the
// kernel's verifier; the model runs bytecode unverified and must catch what the verifier would.
//
//   bad_access    reads 4 KiB past an 8-byte array value            -> bad_access
//   null_deref    dereferences a lookup result without checking it  -> null_deref
//   rodata_write  stores into a const volatile global (.rodata)     -> read_only_write
//   runaway_loop  counts to 2^40                                    -> budget
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char _license[] SEC("license") = "GPL";

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, int);
  __type(value, __u64);
} vals SEC(".maps");

const volatile __u64 ro_limit = 7;

SEC("fentry/bpf_fentry_test1")
int bad_access(void *ctx)
{
  volatile __u64 *v;
  int key = 0;

  v = bpf_map_lookup_elem(&vals, &key);
  if (!v)
    return 0;
  return v[512];
}

SEC("fentry/bpf_fentry_test1")
int null_deref(void *ctx)
{
  volatile __u64 *v;
  int key = 5; /* past max_entries: the lookup returns NULL */

  v = bpf_map_lookup_elem(&vals, &key);
  return *v;
}

SEC("fentry/bpf_fentry_test1")
int rodata_write(void *ctx)
{
  *(volatile __u64 *)&ro_limit = 8;
  return 0;
}

SEC("fentry/bpf_fentry_test1")
int runaway_loop(void *ctx)
{
  volatile __u64 i;

  for (i = 0; i < (1ull << 40); i++)
    ;
  return 0;
}
