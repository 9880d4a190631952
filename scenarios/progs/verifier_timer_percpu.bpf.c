// verifier_timer_percpu: a bpf_timer in a per-CPU array's value. Only hash, lru_hash and array
// values may hold one (map_check_btf): BPF_MAP_CREATE fails with -EOPNOTSUPP, rule
// timer_map_type.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char _license[] SEC("license") = "GPL";

struct elem {
  struct bpf_timer t;
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, int);
  __type(value, struct elem);
} pcpu SEC(".maps");

SEC("syscall")
int uses_pcpu(void *ctx)
{
  int key = 0;

  return bpf_map_lookup_elem(&pcpu, &key) ? 1 : 0;
}
