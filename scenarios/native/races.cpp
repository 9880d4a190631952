#include "scenarios/native/races.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <optional>

namespace bpftsim::native {

namespace {

namespace h = model::helpers;
using model::kClockMonotonic;
using model::kEBUSY;
using model::kEDEADLK;
using model::kEINVAL;
using model::kEPERM;

constexpr std::uint64_t kLong = 1ULL << 35;  // the selftests' "never fires during the test"

// ---- small tools ----------------------------------------------------------------------------

// A program body: initialise the timer of map[key] (tolerating -EBUSY), set callback #cb of
// *self, start it with `ns`; the three results go to `rets` when given.
NativeProg::Entry arm(BpfMap* m, std::uint32_t key, NativeProg** self, std::size_t cb,
                      std::uint64_t ns, std::vector<std::int64_t>* rets = nullptr) {
  return [=](ProgRun& r, auto) -> Co<std::int64_t> {
    const auto v = co_await h::map_lookup(r, *m, h::u32_key(key));
    const auto t = h::timer_of(*m, v);
    const auto a = co_await h::timer_init(r, t, *m, kClockMonotonic);
    const auto b = co_await h::timer_set_callback(r, t, (*self)->callback(cb));
    const auto c = co_await h::timer_start(r, t, ns, 0);
    if (rets) *rets = {a, b, c};
    co_return 0;
  };
}

// A program that cancels the timer of map[key] and stores the result.
NativeProg::Entry cancel_into(BpfMap* m, std::uint32_t key, std::int64_t* out,
                              TimeNs* at = nullptr) {
  return [=](ProgRun& r, auto) -> Co<std::int64_t> {
    const auto v = co_await h::map_lookup(r, *m, h::u32_key(key));
    *out = co_await h::timer_cancel(r, h::timer_of(*m, v));
    if (at) *at = r.ctx.now();
    co_return 0;
  };
}

NativeProg::Callback noop(std::string name) {
  return {std::move(name), [](ProgRun&, auto) -> Co<std::int64_t> { co_return 0; }};
}

std::vector<std::uint8_t> zeros(std::size_t n) {
  return std::vector<std::uint8_t>(n, 0);
}

// First record named `event` on `cpu` at or after `from` whose "lock" field (if any) is `lock`.
TimeNs time_of(const World& w, const std::string& event, int cpu, TimeNs from,
               const std::string& lock = "bpf_timer_lock") {
  for (const auto& r : w.sim.trace().records()) {
    if (r.event != event || (cpu >= 0 && r.cpu != cpu) || r.t_ns < from) continue;
    const auto* l = r.field("lock");
    if (l && std::get<std::string>(*l) != lock) continue;
    return r.t_ns;
  }
  return -1;
}

const sim::Finding* finding(const World& w, const std::string& kind) {
  for (const auto& f : w.sim.findings())
    if (sim::finding_kind_name(f.kind) == kind) return &f;
  return nullptr;
}

// Final judgement shared by the cases: quiescence checks, and the count of each finding kind.
void conclude(RaceOutcome& o, World& w, bool check_leaks = true) {
  if (check_leaks && w.sim.quiescent()) w.k.check_quiescence();
  for (const char* kind : {"use_after_free", "leak", "deadlock", "wild_pointer", "double_free",
                           "refcount_underflow", "program_fault", "liveness"})
    o.values[std::string("findings.") + kind] = static_cast<std::int64_t>(w.count(kind));
  o.values["live_objects"] = static_cast<std::int64_t>(w.k.slab.live_count());
  o.values["armed_timers"] = static_cast<std::int64_t>(w.k.armed_timers());
}

bool clean(const RaceOutcome& o) {
  for (const auto& [k, v] : o.values)
    if (k.rfind("findings.", 0) == 0 && v != 0) return false;
  return true;
}

std::shared_ptr<World> world(int cpus, const RunConfig& cfg, bool probe = false) {
  std::unique_ptr<sim::Scheduler> sched;
  if (cfg.replay && !probe) sched = std::make_unique<sim::ReplayScheduler>(*cfg.replay);
  return std::make_shared<World>(cpus, cfg.seed, model::CostModel{}, std::move(sched),
                                 sim::SimConfig{}, cfg.profile);
}

// ---- 4.1 ------------------------------------------------------------------------------------

RaceOutcome race_4_1(const RunConfig& cfg) {
  RaceOutcome o;
  o.world = world(2, cfg);
  World& w = *o.world;
  BpfMap* m = w.array(1);
  static NativeProg* p;
  TimeNs cb_end = -1, cancel_at = -1;
  std::int64_t cancel_ret = 99, start_in_cb = 99;
  p = w.prog("arm", arm(m, 0, &p, 0, 1000),
             {{"long_cb",
               [&](ProgRun& r, std::array<std::uint64_t, 5> a) -> Co<std::int64_t> {
                 co_await r.ctx.step(5000);  // a long callback body
                 start_in_cb = co_await h::timer_start(r, h::timer_of(*m, a[2]), 100, 0);
                 cb_end = r.ctx.now();
                 co_return 0;
               }}},
             {m});
  NativeProg* c = w.prog("canceller", cancel_into(m, 0, &cancel_ret, &cancel_at), {}, {m});
  w.run_at(0, 0, p);
  w.run_at(3000, 1, c);  // the callback runs from ~1.4 us for 5 us
  w.exit_at(50000, 1);
  w.run();
  o.values = {{"cancel_ret", cancel_ret},
              {"start_in_callback", start_in_cb},
              {"callback_end_ns", cb_end},
              {"cancel_return_ns", cancel_at},
              {"spins", static_cast<std::int64_t>(w.events("block"))}};
  conclude(o, w);
  o.as_expected = cancel_ret == 0 && start_in_cb == -kEINVAL && cancel_at >= cb_end && clean(o);
  o.observed = fmt::format(
      "cancel waited for the callback (ended {} ns, cancel returned at {} ns) "
      "and returned {}; start inside the callback returned {}",
      cb_end, cancel_at, cancel_ret, start_in_cb);
  return o;
}

RaceOutcome race_4_1_ip_a(const RunConfig& cfg) {
  RaceOutcome o;
  o.world = world(2, cfg);
  World& w = *o.world;
  BpfMap* m = w.array(1);
  static NativeProg* p;
  std::int64_t cancel_ret = 99, refcnt_after = -1;
  std::vector<std::int64_t> in_cb;
  p = w.prog("arm", arm(m, 0, &p, 0, 1000),
             {{"cb",
               [&](ProgRun& r, std::array<std::uint64_t, 5> a) -> Co<std::int64_t> {
                 co_await r.ctx.step(5000);
                 const auto t = h::timer_of(*m, a[2]);
                 in_cb.push_back(co_await h::timer_start(r, t, 100, 0));
                 in_cb.push_back(co_await h::timer_set_callback(r, t, p->callback(0)));
                 in_cb.push_back(co_await h::timer_start(r, t, 100000, 0));
                 co_return 0;
               }}},
             {m});
  NativeProg* c = w.prog("canceller",
                         [&](ProgRun& r, auto a) -> Co<std::int64_t> {
                           co_await cancel_into(m, 0, &cancel_ret)(r, a);
                           refcnt_after = p->refcnt;
                           co_return 0;
                         },
                         {}, {m});
  w.run_at(0, 0, p);
  w.run_at(3000, 1, c);
  w.exit_at(50000, 1);
  w.run();
  in_cb.resize(3, 99);
  o.values = {{"cancel_ret", cancel_ret},
              {"cb_start", in_cb[0]},
              {"cb_set_callback", in_cb[1]},
              {"cb_start_again", in_cb[2]},
              {"prog_refcnt_after", refcnt_after}};
  conclude(o, w);
  o.as_expected = cancel_ret == 1 && in_cb == std::vector<std::int64_t>{-kEINVAL, 0, 0} &&
                  refcnt_after == 2 && clean(o);
  o.observed = fmt::format(
      "callback re-armed via set_callback+start; cancel returned {}, the "
      "timer holds a prog reference again (refcnt {})",
      cancel_ret, refcnt_after);
  return o;
}

RaceOutcome race_4_1_ip_b(const RunConfig& cfg) {
  RaceOutcome o;
  o.world = world(2, cfg);
  World& w = *o.world;
  BpfMap* m = w.array(1);
  static NativeProg* p;
  std::int64_t cancel_ret = 99;
  p = w.prog("arm", arm(m, 0, &p, 0, 1000),
             {{"cb",
               [&](ProgRun& r, std::array<std::uint64_t, 5> a) -> Co<std::int64_t> {
                 (void)co_await h::timer_start(r, h::timer_of(*m, a[2]), 100000, 0);
                 co_await r.ctx.step(5000);
                 co_return 0;
               }}},
             {m});
  NativeProg* c = w.prog("canceller", cancel_into(m, 0, &cancel_ret), {}, {m});
  w.run_at(0, 0, p);
  w.run_at(3000, 1, c);
  w.run(20000);
  o.values["cancel_ret"] = cancel_ret;
  o.values["armed_after_cancel"] = static_cast<std::int64_t>(w.k.armed_timers());
  w.exit_at(50000, 1);
  w.run();
  conclude(o, w);
  o.as_expected = cancel_ret == 1 && o.values["armed_after_cancel"] == 0 && clean(o);
  o.observed =
      fmt::format("the callback re-armed before the cancel: cancel returned {}", cancel_ret);
  return o;
}

// ---- 4.2 ------------------------------------------------------------------------------------

RaceOutcome race_4_2(const RunConfig& cfg) {
  RaceOutcome o;
  o.world = world(1, cfg);
  World& w = *o.world;
  BpfMap* m = w.array(1);
  static NativeProg* p;
  std::int64_t self_cancel = 99, refcnt_in_cb = -1, armed_after = -1;
  p = w.prog("arm", arm(m, 0, &p, 0, 1000),
             {{"cb",
               [&](ProgRun& r, std::array<std::uint64_t, 5> a) -> Co<std::int64_t> {
                 const auto t = h::timer_of(*m, a[2]);
                 (void)co_await h::timer_start(r, t, kLong, 0);  // re-armed first
                 self_cancel = co_await h::timer_cancel(r, t);
                 refcnt_in_cb = p->refcnt;
                 armed_after = static_cast<std::int64_t>(r.k.armed_timers());
                 co_return 0;
               }}},
             {m});
  w.run_at(0, 0, p);
  w.exit_at(100000, 0);
  w.run();
  o.values = {{"self_cancel", self_cancel},
              {"prog_refcnt_in_callback", refcnt_in_cb},
              {"armed_after_self_cancel", armed_after}};
  conclude(o, w);
  o.as_expected = self_cancel == -kEDEADLK && refcnt_in_cb == 2 && armed_after == 1 && clean(o);
  o.observed =
      fmt::format("self-cancel returned {}; prog refcnt stayed {}; {} timer(s) still armed",
                  self_cancel, refcnt_in_cb, armed_after);
  return o;
}

// ---- 4.3 ------------------------------------------------------------------------------------

// A prealloc/no-prealloc hash with value {u64; struct bpf_timer}: `body` is the callback.
RaceOutcome own_hash_element(const RunConfig& cfg, std::uint32_t flags, std::uint32_t key,
                             NativeProg::Entry body, int cpus = 1) {
  RaceOutcome o;
  o.world = world(cpus, cfg);
  World& w = *o.world;
  BpfMap* m = w.map(model::kBpfMapTypeHash, 8, 24, 8, flags);
  static NativeProg* p;
  p = w.prog("arm",
             [m, key](ProgRun& r, auto a) -> Co<std::int64_t> {
               (void)co_await h::map_update(r, *m, h::u32_key(key), zeros(24), 0);
               co_return co_await arm(m, key, &p, 0, 1000)(r, a);
             },
             {{"cb", std::move(body)}}, {m});
  w.run_at(0, 0, p);
  w.exit_at(1000000, cpus - 1);
  w.run();
  conclude(o, w);
  return o;
}

RaceOutcome race_4_3(const RunConfig& cfg) {
  std::int64_t del = 99, start_after = 99;
  auto o = own_hash_element(cfg, 0, 2, [&](ProgRun& r, auto a) -> Co<std::int64_t> {
    del = co_await h::map_delete(r, *r.k.map_by_addr(a[0]), h::u32_key(2));
    start_after = co_await h::timer_start(r, h::timer_of(*r.k.map_by_addr(a[0]), a[2]), 1000, 0);
    co_return 0;
  });
  o.values["delete_ret"] = del;
  o.values["start_after_delete"] = start_after;
  o.as_expected = del == 0 && start_after == -kEINVAL && clean(o) && o.values["live_objects"] == 0;
  o.observed = fmt::format(
      "the callback deleted its own element ({}) without deadlock; start on "
      "its timer then returned {}",
      del, start_after);
  return o;
}

RaceOutcome race_4_3_uaf(const RunConfig& cfg) {
  auto o = own_hash_element(cfg, 0, 2, [](ProgRun& r, auto a) -> Co<std::int64_t> {
    BpfMap* m = r.k.map_by_addr(a[0]);
    // Re-armed further out than an RCU grace period: even a kfree_rcu (fix 2.9) has freed it
    // by the time it expires; only the deferred cancel of fix 2.12 closes this.
    (void)co_await h::timer_start(r, h::timer_of(*m, a[2]), 100000, 0);
    (void)co_await h::map_delete(r, *m, h::u32_key(2));  // skips hrtimer_cancel
    co_return 0;
  });
  const sim::Finding* f = finding(*o.world, "use_after_free");
  o.as_expected = f && f->message.find("__run_hrtimer") != std::string::npos &&
                  !f->details.empty() &&
                  f->details[0].find("free by bpf_timer_cancel_and_free") != std::string::npos;
  o.observed = f ? f->message : "no use-after-free";
  return o;
}

RaceOutcome race_4_3_noprealloc(const RunConfig& cfg) {
  std::int64_t del = 99, start_after = 99, fired = 0;
  auto o = own_hash_element(
      cfg, model::kBpfFNoPrealloc, 3,
      [&](ProgRun& r, auto a) -> Co<std::int64_t> {
        ++fired;
        BpfMap* m = r.k.map_by_addr(a[0]);
        del = co_await h::map_delete(r, *m, h::u32_key(3));
        start_after = co_await h::timer_start(r, h::timer_of(*m, a[2]), kLong, 0);
        co_return 0;
      },
      2);
  o.values["delete_ret"] = del;
  o.values["start_after_delete"] = start_after;
  o.values["callbacks"] = fired;
  o.as_expected =
      del == 0 && start_after == 0 && fired == 1 && clean(o) && o.values["live_objects"] == 0;
  o.observed = fmt::format(
      "after deleting its element the callback re-armed it (start {}); the RCU "
      "free cancelled it: {} callback run(s)",
      start_after, fired);
  return o;
}

RaceOutcome race_4_3_lru(const RunConfig& cfg) {
  RaceOutcome o;
  o.world = world(1, cfg);
  World& w = *o.world;
  BpfMap* m = w.map(model::kBpfMapTypeLruHash, 4, 16, 0);
  static NativeProg* p;
  std::int64_t own_cancel = 99, evicted_at = 0;
  p = w.prog("arm",
             [m](ProgRun& r, auto a) -> Co<std::int64_t> {
               (void)co_await h::map_update(r, *m, h::u32_key(4), zeros(16), 0);
               co_return co_await arm(m, 4, &p, 0, 0)(r, a);
             },
             {{"cb",
               [&](ProgRun& r, std::array<std::uint64_t, 5> a) -> Co<std::int64_t> {
                 for (std::uint32_t i = 5; i < 100; ++i) {
                   (void)co_await h::map_update(r, *m, h::u32_key(i), zeros(16), 0);
                   (void)co_await h::map_lookup(r, *m, h::u32_key(i));
                   std::uint32_t key = 0;
                   std::memcpy(&key, r.k.ptr(&r.ctx, a[1], 4, false, "key"), 4);
                   if (key != 4) {
                     evicted_at = i;
                     break;
                   }
                 }
                 own_cancel = co_await h::timer_cancel(r, h::timer_of(*m, a[2]));
                 co_return 0;
               }}},
             {m});
  w.run_at(0, 0, p);
  w.exit_at(100000, 0);
  w.run();
  o.values = {{"own_cancel", own_cancel}, {"evicted_at_key", evicted_at}};
  conclude(o, w);
  // Four nodes: key 4 and the callback's keys 5, 6, 7 fill them; key 8 evicts key 4.
  o.as_expected = evicted_at == 8 && own_cancel == -kEINVAL && clean(o);
  o.observed = fmt::format(
      "inserting key {} evicted the callback's own element; cancel on it then "
      "returned {}",
      evicted_at, own_cancel);
  return o;
}

RaceOutcome race_4_3_array(const RunConfig& cfg) {
  RaceOutcome o;
  o.world = world(1, cfg);
  World& w = *o.world;
  BpfMap* m = w.array(1);
  static NativeProg* p;
  std::int64_t upd = 99, start_after = 99;
  p = w.prog("arm", arm(m, 0, &p, 0, 1000),
             {{"cb",
               [&](ProgRun& r, std::array<std::uint64_t, 5> a) -> Co<std::int64_t> {
                 upd = co_await h::map_update(r, *m, h::u32_key(0), zeros(16), 0);
                 start_after = co_await h::timer_start(r, h::timer_of(*m, a[2]), 1000, 0);
                 co_return 0;
               }}},
             {m});
  w.run_at(0, 0, p);
  w.exit_at(100000, 0);
  w.run();
  o.values = {{"update_ret", upd}, {"start_after_update", start_after}};
  conclude(o, w);
  o.as_expected = upd == 0 && start_after == -kEINVAL && clean(o);
  o.observed = fmt::format(
      "the callback overwrote its own slot ({}); its timer is uninitialized "
      "(start {})",
      upd, start_after);
  return o;
}

// ---- 4.4, 4.5, 4.6 --------------------------------------------------------------------------

RaceOutcome race_4_4(const RunConfig& cfg) {
  RaceOutcome o;
  o.world = world(2, cfg);
  World& w = *o.world;
  BpfMap* m = w.array(2);
  static NativeProg* p;
  std::vector<std::int64_t> in_cb;
  TimeNs cb_end = -1, close_done = -1;
  std::int64_t fired = 0;
  p = w.prog(
      "arm", arm(m, 0, &p, 0, 1000),
      {{"cb",
        [&](ProgRun& r, std::array<std::uint64_t, 5> a) -> Co<std::int64_t> {
          ++fired;
          co_await r.ctx.step(5000);
          const auto t = h::timer_of(*m, a[2]);
          in_cb.push_back(co_await h::timer_start(r, t, 10, 0));
          in_cb.push_back(co_await h::timer_set_callback(r, t, p->callback(0)));
          const auto other = co_await h::map_lookup(r, *m, h::u32_key(1));
          in_cb.push_back(co_await h::timer_init(r, h::timer_of(*m, other), *m, kClockMonotonic));
          cb_end = r.ctx.now();
          co_return 0;
        }}},
      {m});
  w.run_at(0, 0, p);
  w.task_at(3000, 1, "close", [&](Context& c) -> Co<void> {
    co_await w.k.sys.close(c, w.proc, w.fds.at(m));
    close_done = c.now();
  });
  w.exit_at(60000, 1);
  w.run();
  in_cb.resize(3, 99);
  o.values = {{"cb_start", in_cb[0]},          {"cb_set_callback", in_cb[1]},
              {"cb_init_other", in_cb[2]},     {"callback_end_ns", cb_end},
              {"close_return_ns", close_done}, {"callbacks", fired}};
  conclude(o, w);
  o.as_expected = in_cb == std::vector<std::int64_t>{-kEINVAL, -kEINVAL, -kEPERM} &&
                  close_done >= cb_end && fired == 1 && clean(o) && o.values["live_objects"] == 0;
  o.observed = fmt::format(
      "close() returned at {} ns after the callback ended at {} ns; inside "
      "it start/set_callback/init returned {}/{}/{}",
      close_done, cb_end, in_cb[0], in_cb[1], in_cb[2]);
  return o;
}

RaceOutcome race_4_5(const RunConfig& cfg) {
  RaceOutcome o;
  o.world = world(2, cfg);
  World& w = *o.world;
  BpfMap* a = w.array(4);
  BpfMap* hm = w.map(model::kBpfMapTypeHash, 16, 16, 0);
  static NativeProg* p;
  std::int64_t fired = 0;
  p = w.prog("arm",
             [a, hm](ProgRun& r, auto args) -> Co<std::int64_t> {
               for (std::uint32_t i = 0; i < 4; ++i)
                 co_await arm(a, i, &p, 0, 500 + i)(r, args);
               for (std::uint32_t i = 0; i < 3; ++i) {
                 (void)co_await h::map_update(r, *hm, h::u32_key(i), zeros(16), 0);
                 co_await arm(hm, i, &p, 0, 300 + i)(r, args);
               }
               co_return 0;
             },
             {{"rearm",
               [&](ProgRun& r, std::array<std::uint64_t, 5> args) -> Co<std::int64_t> {
                 ++fired;
                 BpfMap* mm = r.k.map_by_addr(args[0]);
                 (void)co_await h::timer_start(r, h::timer_of(*mm, args[2]), 700, 0);
                 co_return 0;
               }}},
             {a, hm});
  w.run_at(0, 0, p);
  w.run_at(0, 1, p);
  w.exit_at(20000, 1);
  w.run();
  o.values["callbacks"] = fired;
  conclude(o, w);
  o.values["invariant_violations"] =
      static_cast<std::int64_t>(w.k.invariant_violations(true).size());
  o.as_expected = fired > 50 && o.values["armed_timers"] == 0 && clean(o) &&
                  o.values["live_objects"] == 0 && o.values["invariant_violations"] == 0;
  o.observed = fmt::format(
      "{} callbacks ran before Ctrl-C; afterwards {} timers armed, {} "
      "objects allocated",
      fired, o.values["armed_timers"], o.values["live_objects"]);
  return o;
}

RaceOutcome race_4_6(const RunConfig& cfg) {
  RaceOutcome o;
  o.world = world(2, cfg);
  World& w = *o.world;
  BpfMap* m = w.array(1);
  static NativeProg* p;
  std::int64_t fired = 0;
  p = w.prog("arm", arm(m, 0, &p, 0, 1000),
             {{"rearm",
               [&](ProgRun& r, std::array<std::uint64_t, 5> a) -> Co<std::int64_t> {
                 ++fired;
                 (void)co_await h::timer_start(r, h::timer_of(*m, a[2]), 1000, 0);
                 co_return 0;
               }}},
             {m});
  w.run_at(0, 0, p);
  w.task_at(500, 1, "pin", [&](Context& c) -> Co<void> {
    (void)co_await w.k.sys.obj_pin(c, w.proc, w.fds.at(m), "/sys/fs/bpf/m");
  });
  w.exit_at(2000, 1);
  w.run(100000);
  o.values["callbacks_while_pinned"] = fired;
  o.values["prog_freed_while_pinned"] = p->freed;
  o.values["prog_refcnt_while_pinned"] = p->refcnt;
  w.task_at(100000, 1, "unpin",
            [&](Context& c) -> Co<void> { (void)co_await w.k.sys.unlink(c, "/sys/fs/bpf/m"); });
  w.run();
  o.values["callbacks"] = fired;
  o.values["prog_freed"] = p->freed;
  conclude(o, w);
  o.as_expected = o.values["callbacks_while_pinned"] > 50 && !o.values["prog_freed_while_pinned"] &&
                  o.values["prog_refcnt_while_pinned"] == 1 && p->freed && clean(o) &&
                  o.values["live_objects"] == 0;
  o.observed = fmt::format(
      "{} callbacks after the loader exited (prog kept alive by the timer "
      "alone); unpin stopped them and freed everything",
      o.values["callbacks_while_pinned"]);
  return o;
}

// ---- 4.7, 4.8 -------------------------------------------------------------------------------

RaceOutcome race_4_7(const RunConfig& cfg) {
  RaceOutcome o;
  o.world = world(3, cfg);
  World& w = *o.world;
  BpfMap* m = w.array(1);
  static NativeProg* p;
  static NativeProg* q;
  std::int64_t cancel_ret = 99;
  std::vector<std::int64_t> third;
  p = w.prog("arm", arm(m, 0, &p, 0, 1000),
             {{"long_cb",
               [](ProgRun& r, auto) -> Co<std::int64_t> {
                 co_await r.ctx.step(10000);
                 co_return 0;
               }}},
             {m});
  NativeProg* c = w.prog("canceller", cancel_into(m, 0, &cancel_ret), {}, {m});
  q = w.prog("third",
             [&](ProgRun& r, auto) -> Co<std::int64_t> {
               const auto t = h::timer_of(*m, co_await h::map_lookup(r, *m, h::u32_key(0)));
               third.push_back(co_await h::timer_start(r, t, 100000, 0));
               third.push_back(co_await h::timer_set_callback(r, t, q->callback(0)));
               third.push_back(co_await h::timer_start(r, t, 100000, 0));
               co_return 0;
             },
             {noop("cb2")}, {m});
  w.run_at(0, 0, p);
  w.run_at(3000, 1, c);
  w.run_at(5000, 2, q);
  w.run(30000);
  third.resize(3, 99);
  o.values = {{"cancel_ret", cancel_ret},
              {"third_start", third[0]},
              {"third_set_callback", third[1]},
              {"third_start_again", third[2]},
              {"armed_after_cancel", static_cast<std::int64_t>(w.k.armed_timers())},
              {"third_prog_refcnt", q->refcnt}};
  w.exit_at(40000, 0);
  w.run();
  conclude(o, w);
  o.as_expected = third == std::vector<std::int64_t>{-kEINVAL, 0, 0} && cancel_ret == 1 &&
                  o.values["armed_after_cancel"] == 0 && q->refcnt >= 0 &&
                  o.values["third_prog_refcnt"] == 2 && clean(o);
  o.observed = fmt::format(
      "CPU2: start {} then set_callback+start {}/{}; CPU1's cancel dequeued it "
      "and returned {}",
      third[0], third[1], third[2], cancel_ret);
  return o;
}

RaceOutcome race_4_8(const RunConfig& cfg) {
  RaceOutcome o;
  o.world = world(2, cfg);
  World& w = *o.world;
  BpfMap* m1 = w.array(1);
  BpfMap* m2 = w.array(1);
  static NativeProg* p1;
  static NativeProg* p2;
  std::int64_t cancels[2] = {99, 99};  // 99: never returned
  auto cross = [&cancels](BpfMap* other, int slot) {
    return [other, slot, &cancels](ProgRun& r, auto) -> Co<std::int64_t> {
      co_await r.ctx.step(100);
      const auto v = co_await h::map_lookup(r, *other, h::u32_key(0));
      cancels[slot] = co_await h::timer_cancel(r, h::timer_of(*other, v));
      co_return 0;
    };
  };
  p1 = w.prog("timer1_prog", arm(m1, 0, &p1, 0, 1000), {{"timer_cb1", cross(m2, 0)}}, {m1, m2});
  p2 = w.prog("timer2_prog", arm(m2, 0, &p2, 0, 1000), {{"timer_cb2", cross(m1, 1)}}, {m1, m2});
  w.run_at(0, 0, p1);
  w.run_at(0, 1, p2);
  o.values["stopped"] = w.run() == sim::RunStatus::kStopped;
  o.values["cb1_cancel"] = cancels[0];
  o.values["cb2_cancel"] = cancels[1];
  conclude(o, w, false);
  const sim::Finding* f = finding(w, "deadlock");
  bool both_softirq_cancel = f && f->details.size() == 2;
  if (f)
    for (const auto& d : f->details)
      both_softirq_cancel = both_softirq_cancel && d.find("softirq") != std::string::npos &&
                            d.find("waits in hrtimer_cancel") != std::string::npos;
  o.values["cycle_length"] = f ? static_cast<std::int64_t>(f->details.size()) : 0;
  o.as_expected = o.values["stopped"] && o.values["findings.deadlock"] == 1 && both_softirq_cancel;
  o.observed =
      f ? fmt::format("deadlock: {} ({})", f->message, f->details.empty() ? "" : f->details[0])
        : "no deadlock";
  return o;
}

// ---- 4.9 ------------------------------------------------------------------------------------

// 4.9 needs CPU0's bpf_timer_cancel to be delayed between dropping the element lock and calling
// hrtimer_cancel, while CPU1's cancel_and_free takes the lock, frees the timer and returns. On
// hardware that window is widened by an interrupt; here too: a second timer T2 of CPU0 expires
// while CPU0 holds the lock with interrupts off, so its long callback runs on CPU0 exactly at the
// unlock, and CPU1's update was spinning on the lock meanwhile. Probe runs learn the times.
struct CancelVsFree {
  std::int64_t cancel_ret = 99;
  std::shared_ptr<World> w;
};

CancelVsFree cancel_vs_free(const RunConfig& cfg, bool probe, TimeNs t2_delay, TimeNs update_at) {
  CancelVsFree out;
  out.w = world(2, cfg, probe);
  World& w = *out.w;
  BpfMap* m = w.array(1);
  BpfMap* m2 = w.array(1);
  static NativeProg* p;
  auto* res = &out.cancel_ret;
  p = w.prog("setup",
             [m, m2](ProgRun& r, auto a) -> Co<std::int64_t> {
               co_await arm(m, 0, &p, 0, kLong)(r, a);
               const auto t2 = h::timer_of(*m2, co_await h::map_lookup(r, *m2, h::u32_key(0)));
               (void)co_await h::timer_init(r, t2, *m2, kClockMonotonic);
               (void)co_await h::timer_set_callback(r, t2, p->callback(1));
               co_return 0;
             },
             {noop("cb"),
              {"t2_long_cb",
               [](ProgRun& r, auto) -> Co<std::int64_t> {
                 co_await r.ctx.step(3000);
                 co_return 0;
               }}},
             {m, m2});
  NativeProg* c =
      w.prog("canceller",
             [m, m2, t2_delay, res](ProgRun& r, auto) -> Co<std::int64_t> {
               const auto t = h::timer_of(*m, co_await h::map_lookup(r, *m, h::u32_key(0)));
               const auto t2 = h::timer_of(*m2, co_await h::map_lookup(r, *m2, h::u32_key(0)));
               (void)co_await h::timer_start(r, t2, t2_delay, 0);
               r.ctx.trace("probe_cancel_begin", {});
               *res = co_await h::timer_cancel(r, t);
               co_return 0;
             },
             {}, {m, m2});
  w.run_at(0, 0, p);
  w.run_at(10000, 0, c);
  if (update_at >= 0)
    w.task_at(update_at, 1, "update", [&w, m](Context& cx) -> Co<void> {
      (void)co_await w.k.sys.map_update_elem(cx, w.proc, w.fds.at(m), h::u32_key(0), zeros(16), 0);
    });
  w.exit_at(100000, 1);
  w.run();
  return out;
}

RaceOutcome race_4_9(const RunConfig& cfg) {
  RaceOutcome o;
  // Probe 1 (T2 started far in the future, no update): when does CPU0's cancel hold the lock?
  auto probe = cancel_vs_free(cfg, true, kLong, -1);
  const TimeNs begin = time_of(*probe.w, "probe_cancel_begin", 0, 10000, "");
  const TimeNs t2_started = time_of(*probe.w, "hrtimer_start", 0, 10000, "");
  const TimeNs acquire = time_of(*probe.w, "lock_acquire", 0, begin);
  // Probe 2: how long does a user-space update take to reach the element lock?
  auto probe2 = cancel_vs_free(cfg, true, kLong, 50000);
  const TimeNs reach = time_of(*probe2.w, "lock_acquire", 1, 50000) - 50000;
  // T2 expires while CPU0 holds the lock (irqs off); CPU1 reaches the lock meanwhile.
  auto run = cancel_vs_free(cfg, false, acquire + 1 - t2_started, acquire + 1 - reach);
  o.world = run.w;
  o.values = {{"probe_cancel_ret", probe.cancel_ret},
              {"lock_acquire_ns", acquire},
              {"update_reaches_lock_after_ns", reach},
              {"cancel_ret", run.cancel_ret}};
  conclude(o, *run.w, false);
  const sim::Finding* f = finding(*run.w, "use_after_free");
  o.as_expected = f && f->message.find("hrtimer_try_to_cancel") != std::string::npos &&
                  !f->details.empty() &&
                  f->details[0].find("free by bpf_timer_cancel_and_free") != std::string::npos;
  o.observed = f ? f->message : "no use-after-free";
  return o;
}

// ---- 4.10 -----------------------------------------------------------------------------------

RaceOutcome race_4_10(const RunConfig& cfg) {
  RaceOutcome o;
  auto build = [&cfg](TimeNs close_at, std::vector<std::int64_t>* rets) {
    auto w = world(2, cfg, rets == nullptr);  // the probe run (no rets) uses the seed
    BpfMap* m = w->array(1);
    static NativeProg* p;
    p = w->prog("init", arm(m, 0, &p, 0, kLong, rets), {noop("cb")}, {m});
    w->run_at(1000, 0, p);
    if (close_at >= 0) w->close_at(close_at, 1, m);
    return w;
  };
  // A first run learns when init reads usercnt; the second puts the close's usercnt drop and its
  // lockless read of the (still NULL) timer pointer inside init's window.
  auto probe = build(-1, nullptr);
  probe->run();
  const TimeNs check_at = time_of(*probe, "bpf_timer_init_check", 0, 0, "");
  const TimeNs publish_at = time_of(*probe, "bpf_timer_publish", 0, 0, "");
  std::vector<std::int64_t> rets;
  o.world = build(check_at + 1 - model::CostModel{}.syscall_ns, &rets);
  World& w = *o.world;
  w.task_at(publish_at + 50000, 1, "exit",
            [&w](Context& c) -> Co<void> { co_await w.k.sys.exit(c, w.proc); });
  w.run();
  rets.resize(3, 99);
  o.values = {{"init_ret", rets[0]},
              {"set_callback_ret", rets[1]},
              {"start_ret", rets[2]},
              {"init_check_ns", check_at},
              {"publish_ns", publish_at}};
  conclude(o, w);
  const sim::Finding* f = finding(w, "leak");
  o.as_expected = rets == std::vector<std::int64_t>{0, -kEPERM, -kEINVAL} &&
                  o.values["findings.leak"] == 1 && f &&
                  f->message.find("bpf_hrtimer") != std::string::npos;
  o.observed = f ? fmt::format("init returned {} after the uref was gone; {}", rets[0], f->message)
                 : "no leak";
  return o;
}

// ---- 4.11 -----------------------------------------------------------------------------------

RaceOutcome race_4_11(const RunConfig& cfg) {
  RaceOutcome o;
  o.world = world(2, cfg);
  World& w = *o.world;
  BpfMap* m = w.array(1);
  static NativeProg* p;
  std::int64_t fired = 0;
  p = w.prog("arm", arm(m, 0, &p, 0, 20000),
             {{"cb",
               [&](ProgRun&, auto) -> Co<std::int64_t> {
                 ++fired;
                 co_return 0;
               }}},
             {m});
  w.run_at(0, 0, p);
  w.task_at(5000, 1, "close prog",
            [&](Context& c) -> Co<void> { co_await w.k.sys.close(c, w.proc, w.prog_fds.at(p)); });
  w.run(10000);
  o.values["prog_freed_after_close"] = p->freed;
  o.values["prog_refcnt_after_close"] = p->refcnt;
  w.run(30000);
  o.values["callbacks"] = fired;
  w.exit_at(40000, 0);
  w.run();
  o.values["prog_freed"] = p->freed;
  conclude(o, w);
  o.as_expected = !o.values["prog_freed_after_close"] && o.values["prog_refcnt_after_close"] == 1 &&
                  fired == 1 && p->freed && clean(o);
  o.observed = fmt::format(
      "after its fd closed the prog lived on (refcnt {}), its callback ran {} "
      "time(s), and it was freed at exit",
      o.values["prog_refcnt_after_close"], fired);
  return o;
}

RaceOutcome race_4_11_rcu(const RunConfig& cfg) {
  RaceOutcome o;
  o.world = world(2, cfg);
  World& w = *o.world;
  BpfMap* m = w.array(1);
  static NativeProg* p;
  std::int64_t fired = 0, cancel_ret = 99;
  p = w.prog("arm", arm(m, 0, &p, 0, 1000),
             {{"cb",
               [&](ProgRun& r, auto) -> Co<std::int64_t> {
                 ++fired;
                 co_await r.ctx.step(3000);
                 co_return 0;
               }}},
             {m});
  NativeProg* c = w.prog("canceller", cancel_into(m, 0, &cancel_ret), {}, {m});
  w.run_at(0, 0, p);
  w.task_at(500, 1, "close prog",
            [&](Context& cx) -> Co<void> { co_await w.k.sys.close(cx, w.proc, w.prog_fds.at(p)); });
  w.run_at(2000, 1, c);  // the callback is running: this drops p's last reference
  w.exit_at(50000, 1);
  w.run();
  o.values = {{"callbacks", fired}, {"cancel_ret", cancel_ret}, {"prog_freed", p->freed}};
  conclude(o, w);
  o.as_expected = fired == 1 && cancel_ret == 0 && p->freed && clean(o);
  o.observed = fmt::format(
      "the cancel dropped the last prog reference during the callback "
      "(returned {}); the callback finished on valid code; prog freed after "
      "the grace period",
      cancel_ret);
  return o;
}

// ---- 4.12 -----------------------------------------------------------------------------------

RaceOutcome race_4_12_array(const RunConfig& cfg) {
  RaceOutcome o;
  o.world = world(2, cfg);
  World& w = *o.world;
  BpfMap* m = w.array(1);
  static NativeProg* p;
  TimeNs cb_end = -1, upd_done = -1;
  p = w.prog("arm", arm(m, 0, &p, 0, 1000),
             {{"cb",
               [&](ProgRun& r, auto) -> Co<std::int64_t> {
                 co_await r.ctx.step(5000);
                 cb_end = r.ctx.now();
                 co_return 0;
               }}},
             {m});
  w.run_at(0, 0, p);
  w.task_at(3000, 1, "update", [&](Context& c) -> Co<void> {
    (void)co_await w.k.sys.map_update_elem(c, w.proc, w.fds.at(m), h::u32_key(0), zeros(16), 0);
    upd_done = c.now();
  });
  w.exit_at(50000, 0);
  w.run();
  o.values = {{"callback_end_ns", cb_end}, {"update_return_ns", upd_done}};
  conclude(o, w);
  o.as_expected = cb_end > 3000 && upd_done >= cb_end && clean(o);
  o.observed = fmt::format("the update returned at {} ns, after the callback ended at {} ns",
                           upd_done, cb_end);
  return o;
}

RaceOutcome race_4_12_flock(const RunConfig& cfg) {
  RaceOutcome o;
  o.world = world(1, cfg);
  World& w = *o.world;
  // value {u32 lock; u32 pad; struct bpf_timer t; u64 data}
  BpfMap* m = w.map(model::kBpfMapTypeHash, 4, 32, 8, 0, 0);
  static NativeProg* p;
  std::int64_t fired = 0, upd = 99;
  p = w.prog("arm",
             [m](ProgRun& r, auto a) -> Co<std::int64_t> {
               (void)co_await h::map_update(r, *m, h::u32_key(1), zeros(32), 0);
               co_return co_await arm(m, 1, &p, 0, 10000)(r, a);
             },
             {{"cb",
               [&](ProgRun&, auto) -> Co<std::int64_t> {
                 ++fired;
                 co_return 0;
               }}},
             {m});
  w.run_at(0, 0, p);
  w.task_at(3000, 0, "update F_LOCK", [&](Context& c) -> Co<void> {
    upd = co_await w.k.sys.map_update_elem(c, w.proc, w.fds.at(m), h::u32_key(1),
                                           std::vector<std::uint8_t>(32, 7),
                                           model::kBpfExist | model::kBpfFLock);
  });
  w.exit_at(50000, 0);
  w.run();
  o.values = {{"update_ret", upd}, {"callbacks", fired}};
  conclude(o, w, false);
  // The element is updated in place and its armed timer keeps running, but the seed's
  // copy_map_value_locked goes through copy_map_value, which skips only the lock of a value that
  // has both: the timer pointer is overwritten, and the exit's cancel_and_free dereferences it.
  o.as_expected = upd == 0 && fired == 1 && o.values["findings.wild_pointer"] == 1;
  o.observed = fmt::format(
      "BPF_F_LOCK update returned {}; the timer still fired {} time(s); the "
      "copied-over timer pointer was dereferenced at exit",
      upd, fired);
  return o;
}

RaceOutcome race_4_12_noprealloc(const RunConfig& cfg) {
  RaceOutcome o;
  o.world = world(2, cfg);
  World& w = *o.world;
  BpfMap* m = w.map(model::kBpfMapTypeHash, 4, 16, 0, model::kBpfFNoPrealloc);
  static NativeProg* p;
  std::int64_t fired = 0;
  p = w.prog("arm",
             [m](ProgRun& r, auto a) -> Co<std::int64_t> {
               (void)co_await h::map_update(r, *m, h::u32_key(1), zeros(16), 0);
               co_return co_await arm(m, 1, &p, 0, 1000)(r, a);
             },
             {{"cb",
               [&](ProgRun&, auto) -> Co<std::int64_t> {
                 ++fired;
                 co_return 0;
               }}},
             {m});
  w.run_at(0, 0, p);
  w.task_at(500, 1, "update", [&](Context& c) -> Co<void> {
    (void)co_await w.k.sys.map_update_elem(c, w.proc, w.fds.at(m), h::u32_key(1), zeros(16), 0);
  });
  w.exit_at(50000, 1);
  w.run();
  o.values = {{"callbacks", fired}};
  conclude(o, w);
  o.as_expected = fired == 1 && clean(o);
  o.observed = fmt::format(
      "the replaced element's timer fired {} time(s) after the update, "
      "before its RCU-deferred free",
      fired);
  return o;
}

RaceOutcome race_4_12_copy_bug(const RunConfig& cfg) {
  RaceOutcome o;
  o.world = world(1, cfg);
  World& w = *o.world;
  BpfMap* m = w.map(model::kBpfMapTypeArray, 1, 24, 0, 0, 16);  // {timer; lock}
  static NativeProg* p;
  p = w.prog("arm", arm(m, 0, &p, 0, kLong), {noop("cb")}, {m});
  w.run_at(0, 0, p);
  std::vector<std::uint8_t> garbage(24, 0);
  const std::uint64_t bad = 0xdeadcaf3;
  std::memcpy(garbage.data(), &bad, 8);
  w.task_at(5000, 0, "update", [&w, m, garbage](Context& c) -> Co<void> {
    (void)co_await w.k.sys.map_update_elem(c, w.proc, w.fds.at(m), h::u32_key(0), garbage, 0);
  });
  w.run();
  conclude(o, w, false);
  const sim::Finding* f = finding(w, "wild_pointer");
  o.as_expected = o.values["findings.wild_pointer"] == 1;
  o.observed = f ? f->message : "no wild pointer";
  return o;
}

RaceOutcome race_4_12_abba(const RunConfig& cfg) {
  RaceOutcome o;
  o.world = world(2, cfg);
  World& w = *o.world;
  BpfMap* m = w.map(model::kBpfMapTypeHash, 1, 16, 0);  // a single bucket
  static NativeProg* p;
  p = w.prog("arm",
             [m](ProgRun& r, auto a) -> Co<std::int64_t> {
               (void)co_await h::map_update(r, *m, h::u32_key(1), zeros(16), 0);
               co_return co_await arm(m, 1, &p, 0, 1000)(r, a);
             },
             {{"cb",
               [m](ProgRun& r, auto) -> Co<std::int64_t> {
                 co_await r.ctx.step(3000);
                 (void)co_await h::map_delete(r, *m, h::u32_key(9));  // same bucket
                 co_return 0;
               }}},
             {m});
  w.run_at(0, 0, p);
  w.task_at(2000, 1, "update", [&w, m](Context& c) -> Co<void> {
    (void)co_await w.k.sys.map_update_elem(c, w.proc, w.fds.at(m), h::u32_key(1), zeros(16), 0);
  });
  o.values["stopped"] = w.run() == sim::RunStatus::kStopped;
  conclude(o, w, false);
  const sim::Finding* f = finding(w, "deadlock");
  const std::string both =
      f && f->details.size() == 2 ? f->details[0] + f->details[1] : std::string();
  o.as_expected = o.values["findings.deadlock"] == 1 &&
                  both.find("htab_bucket") != std::string::npos &&
                  both.find("hrtimer_cancel") != std::string::npos;
  o.observed = f ? fmt::format("deadlock: {}", f->message) : "no deadlock";
  return o;
}

// ---- 4.16 -----------------------------------------------------------------------------------

RaceOutcome race_4_16(const RunConfig& cfg) {
  RaceOutcome o;
  o.world = world(2, cfg);
  World& w = *o.world;
  BpfMap* m = w.array(1);
  std::vector<std::int64_t> inits;
  static NativeProg* p;
  static NativeProg* q;
  auto body = [&](NativeProg** self) {
    return [&, self](ProgRun& r, auto) -> Co<std::int64_t> {
      const auto t = h::timer_of(*m, co_await h::map_lookup(r, *m, h::u32_key(0)));
      inits.push_back(co_await h::timer_init(r, t, *m, kClockMonotonic));
      (void)co_await h::timer_set_callback(r, t, (*self)->callback(0));
      co_return 0;
    };
  };
  p = w.prog("P", body(&p), {noop("cbP")}, {m});
  q = w.prog("Q", body(&q), {noop("cbQ")}, {m});
  w.run_at(0, 0, p);
  w.run_at(0, 1, q);
  w.run(100000);
  std::sort(inits.begin(), inits.end());
  inits.resize(2, 99);
  o.values = {
      {"init_a", inits[0]},
      {"init_b", inits[1]},
      {"prog_refs_total", p->refcnt + q->refcnt},
      {"invariant_violations", static_cast<std::int64_t>(w.k.invariant_violations(true).size())}};
  w.exit_at(200000, 0);
  w.run();
  conclude(o, w);
  o.as_expected = inits == std::vector<std::int64_t>{-kEBUSY, 0} &&
                  o.values["prog_refs_total"] == 3 && o.values["invariant_violations"] == 0 &&
                  clean(o);
  o.observed =
      fmt::format("inits returned {} and {}; one timer prog reference in all", inits[0], inits[1]);
  return o;
}

}  // namespace

const std::vector<RaceCase>& race_catalogue() {
  static const std::vector<RaceCase> cases = {
      {"4.1", "cancel while the callback runs on another CPU",
       "cancel waits for the callback, returns 0; start inside the callback gets -EINVAL",
       race_4_1},
      {"4.1-ip-a", "callback re-arms via set_callback+start while a cancel waits",
       "cancel returns 1; the timer holds a prog reference again", race_4_1_ip_a},
      {"4.1-ip-b", "callback re-armed before the cancel", "cancel returns 1, timer not armed after",
       race_4_1_ip_b},
      {"4.2", "callback cancels its own timer",
       "-EDEADLK; prog reference kept; a re-armed timer stays armed", race_4_2},
      {"4.3", "callback deletes its own prealloc hash element",
       "no deadlock, no use-after-free; start afterwards -EINVAL", race_4_3},
      {"4.3-uaf", "callback re-arms, then deletes its own element",
       "the queued hrtimer is freed: use-after-free when it expires", race_4_3_uaf},
      {"4.3-noprealloc", "callback deletes its own no-prealloc element, then re-arms",
       "start returns 0 (seed bit 256); the RCU free cancels it, nothing fires",
       race_4_3_noprealloc},
      {"4.3-lru", "callback's inserts evict its own LRU element",
       "cancel on the evicted element's timer returns -EINVAL", race_4_3_lru},
      {"4.3-array", "callback updates its own array slot",
       "the slot's timer is freed from inside its callback; start then -EINVAL", race_4_3_array},
      {"4.4", "last fd closed while a callback runs",
       "close() waits for the callback; meanwhile start/set_callback -EINVAL, init -EPERM",
       race_4_4},
      {"4.5", "Ctrl-C with self re-arming timers",
       "nothing armed and nothing allocated after the process exit", race_4_5},
      {"4.6", "pinned map keeps timers alive",
       "timers and their prog survive the loader; unpin stops and frees them", race_4_6},
      {"4.7", "re-arm from a third CPU during a cancel",
       "start -EINVAL, set_callback+start 0; the cancel dequeues it and returns 1", race_4_7},
      {"4.8", "two callbacks cancelling each other",
       "both CPUs spin in hrtimer_cancel forever: deadlock (cycle of two softirqs)", race_4_8},
      {"4.9", "bpf_timer_cancel vs bpf_timer_cancel_and_free (CVE-2024-26737)",
       "use-after-free of the bpf_hrtimer in hrtimer_cancel", race_4_9},
      {"4.10", "bpf_timer_init vs the last uref drop",
       "init returns 0 after uref release; the bpf_hrtimer leaks", race_4_10},
      {"4.11", "prog freed while its timer is armed",
       "the prog lives on through the timer's reference; its callback still runs", race_4_11},
      {"4.11-rcu", "cancel drops the last prog reference during the callback",
       "the callback finishes safely; the prog is freed after a grace period", race_4_11_rcu},
      {"4.12-array", "array update while the slot's callback runs on another CPU",
       "the update waits for the callback", race_4_12_array},
      {"4.12-flock", "hash BPF_F_LOCK update of an element with a running timer",
       "copied in place; the timer keeps running; v5.15 also copies over the timer pointer (2.2)",
       race_4_12_flock},
      {"4.12-noprealloc", "no-prealloc hash update of an element with an armed timer",
       "the old element's timer can still fire until the grace period", race_4_12_noprealloc},
      {"4.12-copy-bug", "update of a value holding a spin lock and a timer (seed copy_map_value)",
       "timer bytes overwritten; cancel_and_free dereferences garbage", race_4_12_copy_bug},
      {"4.12-abba", "hash update under the bucket lock vs a callback using the same bucket",
       "ABBA deadlock between the bucket lock and hrtimer_cancel (inferred)", race_4_12_abba},
      {"4.16", "concurrent init and set_callback on one element",
       "one init 0, the other -EBUSY; exactly one prog reference", race_4_16},
  };
  return cases;
}

const RaceCase* find_race(const std::string& id) {
  for (const auto& c : race_catalogue())
    if (c.id == id) return &c;
  return nullptr;
}

}  // namespace bpftsim::native
