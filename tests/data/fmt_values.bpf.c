// Map values and global variables with BTF structs, for the scenario format's value expectations
// (tests/unit/test_scenario_format.cpp): ranges and sets on map values, `fields` of a map value's
// struct (nested members by dotted path), globals larger than 8 bytes (bytes or fields) and dotted
// global names (`t.stats.cnt`).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char _license[] SEC("license") = "GPL";

struct inner {
  __u32 x;
  short y;
};

struct val {
  __u64 cnt;
  int state;
  struct inner in;
  struct bpf_timer timer;
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 2);
  __type(key, __u32);
  __type(value, struct val);
} vals SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, int);
} small SEC(".maps");

struct stats {
  __u64 cnt;
  int last;
  struct inner in;
};

struct stats stats;                 // .bss, 24 bytes
unsigned char tag[12] = "abcdefghijk";  // .data, 12 bytes
int plain = 5;

// Each run: vals[0].cnt += 1, state = cnt, in.x = 7, in.y = -2; small[1] = -3 * cnt; the same
// into the global `stats`.
SEC("syscall")
int bump(void* ctx) {
  __u32 k = 0;
  struct val* v = bpf_map_lookup_elem(&vals, &k);
  if (!v) return 1;
  v->cnt += 1;
  v->state = (int)v->cnt;
  v->in.x = 7;
  v->in.y = -2;
  __u32 one = 1;
  int s = -3 * (int)v->cnt;
  bpf_map_update_elem(&small, &one, &s, BPF_ANY);
  stats.cnt = v->cnt;
  stats.last = s;
  stats.in.x = 7;
  stats.in.y = -2;
  tag[0] = 'z';
  return 0;
}
