// timer_nmi: the four bpf_timer helpers called in NMI return -EOPNOTSUPP on v5.15 (reference 1.4
// step 1 of each helper, 4.13 and 4.17: the NMI check comes before any other). Each nmi_* program
// runs with "context": "nmi" (an fentry program of a function called in NMI; a perf_event
// program would do on v5.15, but from v5.16 tracing program types may not use timer maps,
// reference 2.1, while BPF_PROG_TYPE_TRACING still may) and records what its helper
// returned in `nmi_ret`; the other programs run as tasks around it, to show that the NMI call
// changed nothing. Globals follow race_common.h (results start at 99). Scenarios:
// scenarios/errors/err-*-eopnotsupp-nmi.json.
#include "race_common.h"

char _license[] SEC("license") = "GPL";

ELEM_MAP(timers, BPF_MAP_TYPE_ARRAY, 1);

long init_ret = UNSET;
long set_callback_ret = UNSET;
long start_ret = UNSET;
long nmi_ret = UNSET;
long callbacks;

static struct elem *slot0(void)
{
  int key = 0;

  return bpf_map_lookup_elem(&timers, &key);
}

static int count_cb(void *map, int *key, struct elem *val)
{
  callbacks++;
  return 0;
}

/* ---- tasks ------------------------------------------------------------------------------- */

SEC("syscall")
int init_only(void *ctx)
{
  struct elem *val = slot0();

  if (!val)
    return 1;
  init_ret = bpf_timer_init(&val->t, &timers, CLOCK_MONOTONIC);
  return 0;
}

SEC("syscall")
int init_set_callback(void *ctx)
{
  struct elem *val = slot0();

  if (!val)
    return 1;
  init_ret = bpf_timer_init(&val->t, &timers, CLOCK_MONOTONIC);
  set_callback_ret = bpf_timer_set_callback(&val->t, count_cb);
  return 0;
}

/* Arms the timer for 10 us (0 only with a callback set). */
SEC("syscall")
int start_10us(void *ctx)
{
  struct elem *val = slot0();

  if (!val)
    return 1;
  start_ret = bpf_timer_start(&val->t, 10000, 0);
  return 0;
}

/* ---- NMI: each -> -EOPNOTSUPP ------------------------------------------------------------- */

SEC("fentry/bpf_fentry_test1")
int nmi_init(void *ctx)
{
  struct elem *val = slot0();

  if (!val)
    return 1;
  nmi_ret = bpf_timer_init(&val->t, &timers, CLOCK_MONOTONIC);
  return 0;
}

SEC("fentry/bpf_fentry_test1")
int nmi_set_callback(void *ctx)
{
  struct elem *val = slot0();

  if (!val)
    return 1;
  nmi_ret = bpf_timer_set_callback(&val->t, count_cb);
  return 0;
}

SEC("fentry/bpf_fentry_test1")
int nmi_start(void *ctx)
{
  struct elem *val = slot0();

  if (!val)
    return 1;
  nmi_ret = bpf_timer_start(&val->t, 1000, 0);
  return 0;
}

SEC("fentry/bpf_fentry_test1")
int nmi_cancel(void *ctx)
{
  struct elem *val = slot0();

  if (!val)
    return 1;
  nmi_ret = bpf_timer_cancel(&val->t);
  return 0;
}

/* In NMI the -EOPNOTSUPP check comes before every other: arguments that a task would get -EINVAL
 * for change nothing. ctx[0] picks the call: 0 init with flags 16 (>= MAX_CLOCKS), 1 start with
 * flags 1, 2 cancel (of the timer, which no task initialised). Returns the helper's result. */
SEC("fentry/bpf_fentry_test1")
long nmi_bad_args(__u64 *ctx)
{
  struct elem *val = slot0();

  if (!val)
    return UNSET;
  switch (ctx[0]) {
  case 0:
    return bpf_timer_init(&val->t, &timers, 16);
  case 1:
    return bpf_timer_start(&val->t, 1000, 1);
  case 2:
    return bpf_timer_cancel(&val->t);
  }
  return UNSET;
}
