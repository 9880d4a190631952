// vm_helpers: the non-timer helpers a VM program can call, in one fentry program.
//
// Expected after one run on CPU c: loop_ret == 10 and loop_sum == 45 (bpf_loop stops when the
// callback returns 1 at index 9), counters[0].count == 1 (taken under its bpf_spin_lock),
// cpu_seen == c, now_ns == boot_ns (no suspend in the model), and one bpf_trace_printk record
// "sum 45 cpu <c> hex ff".
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char _license[] SEC("license") = "GPL";

struct locked {
  struct bpf_spin_lock lock;
  __u64 count;
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, int);
  __type(value, struct locked);
} counters SEC(".maps");

__u64 loop_ret;
__u64 loop_sum;
__u64 cpu_seen;
__u64 now_ns;
__u64 boot_ns;
__u64 rand_a;
__u64 rand_b;

static long add_index(__u32 index, void *ctx)
{
  __u64 *sum = ctx;

  *sum += index;
  return index == 9 ? 1 : 0;
}

SEC("fentry/bpf_fentry_test1")
int helpers(void *ctx)
{
  struct locked *l;
  __u64 sum = 0;
  int key = 0;

  loop_ret = bpf_loop(100, add_index, &sum, 0);
  loop_sum = sum;

  l = bpf_map_lookup_elem(&counters, &key);
  if (l) {
    bpf_spin_lock(&l->lock);
    l->count += 1;
    bpf_spin_unlock(&l->lock);
  }

  cpu_seen = bpf_get_smp_processor_id();
  now_ns = bpf_ktime_get_ns();
  boot_ns = bpf_ktime_get_boot_ns();
  rand_a = bpf_get_prandom_u32();
  rand_b = bpf_get_prandom_u32();
  bpf_printk("sum %d cpu %u hex %x", sum, cpu_seen, 255);
  return 0;
}
