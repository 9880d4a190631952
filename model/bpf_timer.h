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
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/hrtimer.h"
#include "model/profile.h"
#include "model/slab.h"
#include "sim/co.h"
#include "sim/context.h"

namespace bpftsim::model {

class Kernel;
class BpfMap;
class BpfProg;

// struct bpf_hrtimer. Packed: a million armed timers are a million of these.
struct BpfHrtimer {
  HrTimer timer;  // timer.owner is this bpf_hrtimer's object id
  BpfMap* map = nullptr;
  BpfProg* prog = nullptr;        // holds one reference, or nullptr
  std::uint64_t callback_fn = 0;  // bpf_func_address of the callback, 0 = none
  std::uint64_t value_addr = 0;   // start of the map value holding the timer
  // The lock-free design (BpfAsync, v7.0) only: struct bpf_async_cb's refcnt (1 = the map's
  // reference) and whether its irq_work is queued (its command list is kept by BpfAsync).
  std::int32_t refcnt = 0;
  std::int16_t cancelling = 0;  // 2.11: callbacks currently waiting to cancel this timer
  bool irq_work_queued = false;

  ObjId obj() const { return timer.owner; }
};

inline constexpr std::uint64_t kBpfHrtimerPtrBase = 0xffff888100000000ULL;
inline std::uint64_t bpf_hrtimer_ptr(ObjId obj) {
  return kBpfHrtimerPtrBase + obj * 256;
}

// Every bpf_hrtimer ever allocated, freed ones included (poisoned, for use-after-free reports),
// found by object id. Slab ids are handed out in increasing order and never reused, so the
// timers are appended in id order and a sorted vector of their ids finds one by binary search.
// They are stored in place in chunks that never move (a BpfHrtimer's HrTimer stays linked):
// 8, 16, .. 4096 entries, then 4096 each; no node or separate allocation per timer. find() is a
// binary search over the entries' own ids (no separate id vector).
class BpfHrtimerTable {
 public:
  // Appends the bpf_hrtimer of `obj`, which must be above every id added before.
  BpfHrtimer& add(ObjId obj);
  BpfHrtimer* find(ObjId obj);
  const BpfHrtimer* find(ObjId obj) const;
  BpfHrtimer& at(ObjId obj);  // SIM_ASSERTs that it exists
  std::size_t size() const { return size_; }
  // In id order.
  template <typename F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < size_; ++i)
      f(static_cast<const BpfHrtimer&>(slot(i)));
  }

 private:
  static constexpr std::size_t kFirstChunk = 8;
  static constexpr std::size_t kMaxChunkShift = 9;  // 8 << 9 = 4096 entries
  BpfHrtimer& slot(std::size_t i) const;
  std::vector<std::unique_ptr<BpfHrtimer[]>> chunks_;
  std::size_t size_ = 0;      // entries in use; slot(i).obj() ascends with i
  std::size_t capacity_ = 0;  // entries in chunks_
};

// The struct bpf_timer word (a pointer to the bpf_hrtimer / bpf_async_cb, or 0) and the clock id
// bound of bpf_timer_init's flags, shared by both timer designs.
namespace timer_word {
inline constexpr std::uint64_t kMaxClocks = 16;  // MAX_CLOCKS
inline std::uint64_t load(const std::uint8_t* p) {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline void store(std::uint8_t* p, std::uint64_t v) {
  std::memcpy(p, &v, 8);
}
}  // namespace timer_word

// The BPF timer helpers behind one interface, one implementation per locking design of
// kernel/bpf/helpers.c; the Kernel picks it from its profile (KernelProfile::timer_nolock):
//   BpfTimers (this file's .cpp)      v5.15 .. v6.14: the bpf_spin_lock in struct bpf_timer_kern
//   BpfAsync  (model/bpf_async.h)     v7.0: lock-free, refcounted bpf_async_cb
//   (reference 2.20-2.22)
// The shared part: the bpf_hrtimer objects (all, live, decode), hrtimer_running and bpf_timer_cb.
class BpfTimerOps {
 public:
  explicit BpfTimerOps(Kernel& k);
  virtual ~BpfTimerOps();
  BpfTimerOps(const BpfTimerOps&) = delete;
  BpfTimerOps& operator=(const BpfTimerOps&) = delete;

  // Helpers. `timer_addr` is the address of the struct bpf_timer inside a map value.
  virtual sim::Co<std::int64_t> init(sim::Context& ctx, std::uint64_t timer_addr,
                                     std::uint64_t map_addr, std::uint64_t flags) = 0;
  virtual sim::Co<std::int64_t> set_callback(sim::Context& ctx, std::uint64_t timer_addr,
                                             std::uint64_t callback_fn, BpfProg& prog) = 0;
  virtual sim::Co<std::int64_t> start(sim::Context& ctx, std::uint64_t timer_addr,
                                      std::uint64_t nsecs, std::uint64_t flags) = 0;
  virtual sim::Co<std::int64_t> cancel(sim::Context& ctx, std::uint64_t timer_addr) = 0;
  // The kfunc bpf_timer_cancel_async (2.21); programs reach it only on profiles that have it
  // (the loader refuses it before).
  virtual sim::Co<std::int64_t> cancel_async(sim::Context& ctx, std::uint64_t timer_addr) = 0;

  // bpf_timer_cancel_and_free(val + timer_off), called from map code. `timer_addr` as above.
  virtual sim::Co<void> cancel_and_free(sim::Context& ctx, std::uint64_t timer_addr) = 0;

  // per-CPU hrtimer_running
  BpfHrtimer* running_on(int cpu) const { return hrtimer_running_[cpu]; }

  // The bpf_hrtimer a timer field points to, nullptr if NULL; reports a wild pointer as a finding.
  BpfHrtimer* decode(const sim::Context* ctx, std::uint64_t ptr, const char* where);
  const BpfHrtimerTable& all() const { return all_; }
  std::size_t live() const;

 protected:
  // bpf_timer_cb: the hrtimer function of every bpf_hrtimer.
  sim::Co<int> timer_cb(sim::Context& ctx, HrTimer& hr);
  // bpf_timer_cancel's 2.11 protocol around the wait: `running` is this CPU's running callback's
  // timer (nullptr outside callbacks); -EDEADLK when another callback is cancelling it. Sets
  // *counted when it announced itself; cancelling_exit withdraws that after the cancel.
  sim::Co<std::int64_t> cancelling_enter(sim::Context& ctx, BpfHrtimer& t,
                                         const BpfHrtimer* running, bool* counted);
  sim::Co<void> cancelling_exit(sim::Context& ctx, BpfHrtimer& t);
  // Resolves the timer field; nullptr (and a program fault) when the address is not one.
  std::uint8_t* timer_field(sim::Context& ctx, std::uint64_t timer_addr, BpfMap** map,
                            const char* helper);
  // bpf_timer_start's expiry for hrtimer_start_range_ns (ns_to_ktime, REL/ABS, the scheduler's
  // expiry jitter).
  HrtimerExpiry expiry_of(sim::Context& ctx, std::uint64_t nsecs, std::uint64_t flags);
  // Allocates the bpf_hrtimer of the timer at `timer_addr` in `map` (named by its element) and
  // hrtimer_init's it. Not yet published.
  BpfHrtimer& alloc_timer(sim::Context& ctx, BpfMap& map, std::uint64_t timer_addr,
                          std::uint64_t clockid);

  Kernel& k_;
  BpfHrtimerTable all_;   // freed ones stay (poisoned)
  int hr_function_ = -1;  // timer_cb's index in k_.hrtimers (added with the first timer)
  // By map id: the slab's name prefix of its timers, "timer of map 1 (m) key ".
  std::map<std::uint32_t, std::uint32_t> name_prefix_;
  std::vector<BpfHrtimer*> hrtimer_running_;
  // A callback's name and its slice name ("bpf_timer_cb <name>"), made at its first expiry and
  // kept for the Kernel's lifetime (the BPF frames of running callbacks view them).
  struct CallbackText {
    std::string name;
    std::string slice;
  };
  const CallbackText& callback_text(const BpfProg& prog, std::uint64_t fn);
  std::map<std::pair<std::uint32_t, std::uint64_t>, CallbackText> callback_text_;  // (prog id, fn)
};

// The bpf_spin_lock design (v5.15 .. v6.14), with the profile's switches of that era.
class BpfTimers final : public BpfTimerOps {
 public:
  explicit BpfTimers(Kernel& k);
  ~BpfTimers() override;

  sim::Co<std::int64_t> init(sim::Context& ctx, std::uint64_t timer_addr, std::uint64_t map_addr,
                             std::uint64_t flags) override;
  sim::Co<std::int64_t> set_callback(sim::Context& ctx, std::uint64_t timer_addr,
                                     std::uint64_t callback_fn, BpfProg& prog) override;
  sim::Co<std::int64_t> start(sim::Context& ctx, std::uint64_t timer_addr, std::uint64_t nsecs,
                              std::uint64_t flags) override;
  sim::Co<std::int64_t> cancel(sim::Context& ctx, std::uint64_t timer_addr) override;
  sim::Co<std::int64_t> cancel_async(sim::Context& ctx, std::uint64_t timer_addr) override;
  sim::Co<void> cancel_and_free(sim::Context& ctx, std::uint64_t timer_addr) override;

 private:
  sim::Co<void> drop_prog_refcnt(sim::Context& ctx, BpfHrtimer& t);
  sim::Co<void> delete_work(sim::Context& ctx, BpfHrtimer& t);
};

// The unit the kernel of `profile` uses.
std::unique_ptr<BpfTimerOps> make_bpf_timers(Kernel& k, const KernelProfile& profile);

}  // namespace bpftsim::model
