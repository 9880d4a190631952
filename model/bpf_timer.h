// BPF timers: the timer part of kernel/bpf/helpers.c at v5.15 ("bpf: Introduce bpf timers.").
//
//   bpf_timer_init, bpf_timer_set_callback, bpf_timer_start, bpf_timer_cancel  (helpers 169-172)
//   bpf_timer_cb            the hrtimer callback, in HRTIMER_SOFTIRQ on the timer's CPU
//   bpf_timer_cancel_and_free  called by the maps on update/delete/uref release
//
// struct bpf_timer_kern lives in the 16 bytes of the map value's struct bpf_timer: the pointer to
// the struct bpf_hrtimer (bytes 0-7, an encoded kernel address, NULL = not initialized) and the
// bpf_spin_lock (bytes 8-11) taken with interrupts off around every helper's critical section.
// Steps are cut where the kernel can interleave: taking and releasing that lock, the lockless
// read in cancel_and_free, reading usercnt, publishing the pointer, each hrtimer base operation,
// each turn of hrtimer_cancel's wait, and the prog refcount changes.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "model/hrtimer.h"
#include "model/slab.h"
#include "sim/co.h"
#include "sim/context.h"

namespace bpftsim::model {

class Kernel;
class BpfMap;
class BpfProg;

// struct bpf_hrtimer
struct BpfHrtimer {
  ObjId obj = 0;
  HrTimer timer;
  BpfMap* map = nullptr;
  BpfProg* prog = nullptr;        // holds one reference, or nullptr
  std::uint64_t callback_fn = 0;  // bpf_func_address of the callback, 0 = none
  std::uint64_t value_addr = 0;   // start of the map value holding the timer
  int cancelling = 0;             // 2.11: callbacks currently waiting to cancel this timer
};

inline constexpr std::uint64_t kBpfHrtimerPtrBase = 0xffff888100000000ULL;
inline std::uint64_t bpf_hrtimer_ptr(ObjId obj) {
  return kBpfHrtimerPtrBase + obj * 256;
}

class BpfTimers {
 public:
  explicit BpfTimers(Kernel& k);
  ~BpfTimers();

  // Helpers. `timer_addr` is the address of the struct bpf_timer inside a map value.
  sim::Co<std::int64_t> init(sim::Context& ctx, std::uint64_t timer_addr, std::uint64_t map_addr,
                             std::uint64_t flags);
  sim::Co<std::int64_t> set_callback(sim::Context& ctx, std::uint64_t timer_addr,
                                     std::uint64_t callback_fn, BpfProg& prog);
  sim::Co<std::int64_t> start(sim::Context& ctx, std::uint64_t timer_addr, std::uint64_t nsecs,
                              std::uint64_t flags);
  sim::Co<std::int64_t> cancel(sim::Context& ctx, std::uint64_t timer_addr);

  // bpf_timer_cancel_and_free(val + timer_off), called from map code. `timer_addr` as above.
  sim::Co<void> cancel_and_free(sim::Context& ctx, std::uint64_t timer_addr);

  // per-CPU hrtimer_running
  BpfHrtimer* running_on(int cpu) const { return hrtimer_running_[cpu]; }

  // The bpf_hrtimer a timer field points to, nullptr if NULL; reports a wild pointer as a finding.
  BpfHrtimer* decode(const sim::Context* ctx, std::uint64_t ptr, const char* where);
  const std::map<ObjId, std::unique_ptr<BpfHrtimer>>& all() const { return all_; }
  std::size_t live() const;

 private:
  sim::Co<int> timer_cb(sim::Context& ctx, HrTimer& hr);
  sim::Co<void> drop_prog_refcnt(sim::Context& ctx, BpfHrtimer& t);
  sim::Co<void> delete_work(sim::Context& ctx, BpfHrtimer& t);
  // Resolves the timer field; nullptr (and a program fault) when the address is not one.
  std::uint8_t* timer_field(sim::Context& ctx, std::uint64_t timer_addr, BpfMap** map,
                            const char* helper);

  Kernel& k_;
  std::map<ObjId, std::unique_ptr<BpfHrtimer>> all_;  // freed ones stay (poisoned)
  std::vector<BpfHrtimer*> hrtimer_running_;
};

}  // namespace bpftsim::model
