// timer_eras: what changed in bpf_timer_start across kernel eras, one helper call per program
// run, each result the run's return (a scenario checks it with expect_ret) and each callback
// recorded in globals. Scenarios: scenarios/errors/start-*-v6.*.json, start-nsecs-*.json.
//
// BPF_F_TIMER_ABS (v6.4, reference 2.6) and BPF_F_TIMER_CPU_PIN (v6.7, 2.7) are newer than the
// installed <linux/bpf.h>: their values are written here.
#include "race_common.h"

#define BPF_F_TIMER_ABS (1ULL << 0)
#define BPF_F_TIMER_CPU_PIN (1ULL << 1)

char _license[] SEC("license") = "GPL";

ELEM_MAP(timers, BPF_MAP_TYPE_ARRAY, 2);

long callbacks;       /* callbacks of either timer */
__u64 fired_at_ns;    /* bpf_ktime_get_boot_ns() in the last callback */
__u64 fired_cpu = 99; /* the CPU of the last callback */
__u64 armed_cpu = 99; /* the CPU of the last start */

static struct elem *slot(int i)
{
  return bpf_map_lookup_elem(&timers, &i);
}

static int record_cb(void *map, int *key, struct elem *val)
{
  callbacks++;
  fired_at_ns = bpf_ktime_get_boot_ns();
  fired_cpu = bpf_get_smp_processor_id();
  return 0;
}

/* bpf_timer_init(timers[ctx[0]], CLOCK_BOOTTIME) and set_callback(record_cb); returns the
 * first error, else 0. */
SEC("syscall")
long setup(__u64 *ctx)
{
  struct elem *val = slot(ctx[0]);
  long err;

  if (!val)
    return UNSET;
  err = bpf_timer_init(&val->t, &timers, CLOCK_BOOTTIME);
  if (err)
    return err;
  return bpf_timer_set_callback(&val->t, record_cb);
}

/* bpf_timer_start(timers[ctx[0]], nsecs ctx[1], flags ctx[2]). */
SEC("syscall")
long start(__u64 *ctx)
{
  struct elem *val = slot(ctx[0]);

  armed_cpu = bpf_get_smp_processor_id();
  return val ? bpf_timer_start(&val->t, ctx[1], ctx[2]) : UNSET;
}

/* bpf_timer_start(timers[ctx[0]], now (boot clock) + ctx[1], flags ctx[2]): an absolute
 * expiry ctx[1] ns from now when flags hold BPF_F_TIMER_ABS. */
SEC("syscall")
long start_from_now(__u64 *ctx)
{
  struct elem *val = slot(ctx[0]);

  armed_cpu = bpf_get_smp_processor_id();
  return val ? bpf_timer_start(&val->t, bpf_ktime_get_boot_ns() + ctx[1], ctx[2]) : UNSET;
}

/* bpf_timer_cancel(timers[ctx[0]]). */
SEC("syscall")
long cancel(__u64 *ctx)
{
  struct elem *val = slot(ctx[0]);

  return val ? bpf_timer_cancel(&val->t) : UNSET;
}
