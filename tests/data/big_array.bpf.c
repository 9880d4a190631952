// A legal but huge ARRAY map (tests/unit/test_limits.cpp): 536870913 x 8-byte values, 4 GiB.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 536870913);
  __type(key, __u32);
  __type(value, __u64);
} big SEC(".maps");

SEC("tc")
int prog(void* ctx) {
  __u32 k = 0;
  __u64* v = bpf_map_lookup_elem(&big, &k);
  return v ? 1 : 0;
}

char LICENSE[] SEC("license") = "GPL";
