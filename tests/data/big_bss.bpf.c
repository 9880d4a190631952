// Legal but huge global data (tests/unit/test_limits.cpp): a 2 GiB .bss array.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char big[0x7fffffff];

SEC("tc")
int prog(void* ctx) {
  big[5] = 1;
  return big[7];
}

char LICENSE[] SEC("license") = "GPL";
