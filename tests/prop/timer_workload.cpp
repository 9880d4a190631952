#include "tests/prop/timer_workload.h"

#include <fmt/format.h>

#include <array>
#include <cstring>
#include <memory>

#include "sim/hash.h"
#include "tests/unit/world.h"

namespace bpftsim::prop {

namespace h = model::helpers;
using testing::BpfMap;
using testing::Co;
using testing::Context;
using testing::NativeProg;
using testing::ProgRun;
using testing::World;

namespace {

constexpr sim::TimeNs kStartNs = 1000;
constexpr sim::TimeNs kCleanSlotNs = 200'000;  // > the longest operation, RCU-deferred frees too
constexpr sim::TimeNs kTeardownDelayNs = 100'000;
constexpr sim::TimeNs kCheckpointNs = 5'000;
constexpr sim::TimeNs kCbRearmNs = 1000;
constexpr sim::TimeNs kCbStartOtherNs = 2000;

const char* map_label(int m) {
  static const char* names[kMaps] = {"array", "hash", "hash_noprealloc", "lru"};
  return names[m];
}
const char* cb_label(CbKind k) {
  switch (k) {
    case CbKind::kPlain:
      return "plain";
    case CbKind::kRearm:
      return "rearm";
    case CbKind::kStartOther:
      return "start_other";
    case CbKind::kCancelOther:
      return "cancel_other";
    case CbKind::kFreeOther:
      return "free_other";
    case CbKind::kRearmFreeSelf:
      return "rearm_free_self";
    case CbKind::kInitOther:
      return "init_other";
    case CbKind::kCount:
      break;
  }
  return "?";
}
const char* action_label(ProgAction a) {
  switch (a) {
    case ProgAction::kArm:
      return "arm";
    case ProgAction::kInit:
      return "init";
    case ProgAction::kSetCallback:
      return "set_callback";
    case ProgAction::kStart:
      return "start";
    case ProgAction::kCancel:
      return "cancel";
    case ProgAction::kUpdate:
      return "update";
    case ProgAction::kDelete:
      return "delete";
  }
  return "?";
}
std::size_t cb_index(CbKind kind, int map, std::uint32_t key) {
  return (static_cast<std::size_t>(kind) * kMaps + static_cast<std::size_t>(map)) * kKeys + key;
}
std::string pin_path(int map, int slot) {
  return fmt::format("/sys/fs/bpf/map{}_{}", map, slot);
}
// The lowest fd of `map` in `p`, or -1.
int fd_of(const model::Process& p, const BpfMap* map) {
  for (const auto& [fd, e] : p.fds)
    if (e.kind == model::FdEntry::Kind::kMap && e.map == map) return fd;
  return -1;
}

rc::Gen<Op> gen_op(Mode mode, bool ranges = false) {
  return rc::gen::exec([mode, ranges] {
    Op op;
    op.offset_ns = 200 * *rc::gen::inRange<sim::TimeNs>(0, 200);
    op.cpu = *rc::gen::inRange(0, 4);
    op.kind = *rc::gen::weightedElement<OpKind>({{24, OpKind::kProg},
                                                 {2, OpKind::kUserUpdate},
                                                 {2, OpKind::kUserDelete},
                                                 {1, OpKind::kClose},
                                                 {2, OpKind::kPin},
                                                 {1, OpKind::kUnpin},
                                                 {2, OpKind::kGetFdById},
                                                 {1, OpKind::kExit}});
    op.action = *rc::gen::weightedElement<ProgAction>({{6, ProgAction::kArm},
                                                       {2, ProgAction::kInit},
                                                       {2, ProgAction::kSetCallback},
                                                       {3, ProgAction::kStart},
                                                       {3, ProgAction::kCancel},
                                                       {2, ProgAction::kUpdate},
                                                       {2, ProgAction::kDelete}});
    op.map = *rc::gen::inRange(0, kMaps);
    op.key = *rc::gen::inRange<std::uint32_t>(0, kKeys);
    op.proc = *rc::gen::inRange(0, 2);
    op.slot = *rc::gen::inRange(0, 2);
    op.nsecs = *rc::gen::element<std::uint64_t>(1000, 0, 100, 5000, 20'000, 200'000);
    op.clock = *rc::gen::element<std::uint64_t>(1, 0, 7);
    if (mode == Mode::kClean) {
      op.cb = *rc::gen::weightedElement<CbKind>(
          {{2, CbKind::kPlain}, {3, CbKind::kRearm}, {2, CbKind::kStartOther}});
    } else {
      op.cb = *rc::gen::weightedElement<CbKind>({{1, CbKind::kPlain},
                                                 {3, CbKind::kRearm},
                                                 {2, CbKind::kStartOther},
                                                 {3, CbKind::kCancelOther},
                                                 {2, CbKind::kFreeOther},
                                                 {2, CbKind::kRearmFreeSelf},
                                                 {1, CbKind::kInitOther}});
    }
    op.cb_map = *rc::gen::inRange(0, kMaps);
    op.cb_key = *rc::gen::inRange<std::uint32_t>(0, kKeys);
    // Up to 20 us: with the 40 us of offsets an op still starts in the first 60 us of its 200 us
    // slot (kClean).
    if (ranges) op.range_ns = *rc::gen::element<sim::TimeNs>(0, 50, 1000, 5000, 20'000);
    return op;
  });
}

}  // namespace

rc::Gen<Case> gen_case(Mode mode) {
  return rc::gen::exec([mode] {
    Case c;
    c.seed = *rc::gen::inRange<std::uint64_t>(1, 1'000'000);
    c.cpus = *rc::gen::inRange(1, 5);
    c.rearm_budget = *rc::gen::inRange(0, 25);
    c.cb_busy_ns = (mode == Mode::kClean ? 100 : 1000) * *rc::gen::inRange<sim::TimeNs>(0, 4);
    c.ops = *rc::gen::scale(
        0.4, rc::gen::container<std::vector<Op>>(rc::gen::resize(100, gen_op(mode))));
    return c;
  });
}

rc::Gen<Case> gen_explore_case(Mode mode) {
  return rc::gen::exec([mode] {
    Case c;
    c.seed = *rc::gen::inRange<std::uint64_t>(1, 1'000'000);
    c.cpus = *rc::gen::inRange(1, 5);
    c.rearm_budget = *rc::gen::inRange(0, 25);
    c.cb_busy_ns = (mode == Mode::kClean ? 100 : 1000) * *rc::gen::inRange<sim::TimeNs>(0, 4);
    c.window_ns = *rc::gen::element<sim::TimeNs>(1, 20, 200, 1000, 2000);
    c.land_max = *rc::gen::inRange(0, 4);
    c.rcu_gp_jitter_ns = *rc::gen::element<sim::TimeNs>(0, 1000, 20'000);
    c.expiry_jitter_ns = *rc::gen::element<sim::TimeNs>(0, 100, 5000);
    c.ops = *rc::gen::scale(
        0.4, rc::gen::container<std::vector<Op>>(rc::gen::resize(100, gen_op(mode, true))));
    return c;
  });
}

bool Outcome::has_finding(const std::string& kind) const {
  for (const auto& f : findings)
    if (sim::finding_kind_name(f.kind) == kind) return true;
  return false;
}

std::string Outcome::describe() const {
  std::string s =
      fmt::format("status {}, {} callbacks, {} live objects, {} armed timers\n",
                  sim::run_status_name(status), callbacks_run, live_objects, armed_timers);
  for (const auto& f : findings) {
    s += fmt::format("finding {} at {} ns cpu {}: {}\n", sim::finding_kind_name(f.kind), f.t_ns,
                     f.cpu, f.message);
    for (const auto& d : f.details)
      s += "    " + d.substr(0, 2000) + "\n";
  }
  for (const auto& v : midrun_violations)
    s += "mid-run violation: " + v + "\n";
  for (const auto& v : violations)
    s += "violation: " + v + "\n";
  return s;
}

Outcome run_workload(const Case& c, Mode mode, const RunControl& control) {
  Outcome out;
  sim::SimConfig cfg;
  cfg.max_steps = 2'000'000;
  cfg.max_time_ns = 10 * sim::kNsPerSec;
  cfg.jitter_max_ns = 20;
  cfg.window_ns = c.window_ns;
  cfg.land_max = c.land_max;
  cfg.keep_trace = false;
  model::CostModel cost;
  cost.rcu_gp_jitter_ns = c.rcu_gp_jitter_ns;
  cost.expiry_jitter_ns = c.expiry_jitter_ns;
  World w(c.cpus, c.seed, cost,
          control.make_scheduler ? control.make_scheduler()
                                 : std::make_unique<sim::SeededScheduler>(c.seed),
          cfg);
  model::Process& tool = w.k.sys.new_process("bpftool");
  std::array<model::Process*, 2> procs = {&w.proc, &tool};
  std::array<BpfMap*, kMaps> maps = {
      w.map(model::kBpfMapTypeArray, kKeys),
      w.map(model::kBpfMapTypeHash, 2),
      w.map(model::kBpfMapTypeHash, 2, 16, 0, model::kBpfFNoPrealloc),
      w.map(model::kBpfMapTypeLruHash, 2),
  };
  for (BpfMap* m : maps)
    RC_ASSERT(m != nullptr);
  const std::vector<std::uint8_t> zeros(16, 0);
  int budget = c.rearm_budget;
  auto note = [&out](std::int64_t ret) {
    if (ret >= 0) ++out.helper_successes;
  };
  // Frees element `key` of `m` the way a program can: delete (hash) or overwrite (array).
  auto free_elem = [&maps, &zeros](ProgRun& r, BpfMap& m, std::uint32_t key) -> Co<std::int64_t> {
    const std::vector<std::uint8_t> k = h::u32_key(key);
    if (&m == maps[0]) co_return co_await h::map_update(r, m, k, zeros, model::kBpfAny);
    co_return co_await h::map_delete(r, m, k);
  };

  std::vector<NativeProg::Callback> callbacks;
  for (int kind = 0; kind < static_cast<int>(CbKind::kCount); ++kind)
    for (int tm = 0; tm < kMaps; ++tm)
      for (std::uint32_t tk = 0; tk < kKeys; ++tk) {
        const auto k = static_cast<CbKind>(kind);
        callbacks.push_back(
            {fmt::format("{}->{}[{}]", cb_label(k), map_label(tm), tk),
             [&, k, tm, tk](ProgRun& r, std::array<std::uint64_t, 5> a) -> Co<std::int64_t> {
               ++out.callbacks_run;
               if (c.cb_busy_ns > 0) co_await r.ctx.step(c.cb_busy_ns);
               BpfMap* own = r.k.map_by_addr(a[0]);
               const std::uint64_t own_timer = h::timer_of(*own, a[2]);
               if ((k == CbKind::kRearm || k == CbKind::kRearmFreeSelf) && budget > 0) {
                 --budget;
                 note(co_await h::timer_start(r, own_timer, kCbRearmNs, 0));
               }
               if (k == CbKind::kRearmFreeSelf) {
                 std::uint32_t own_key = 0;
                 const std::uint8_t* kp = r.k.ptr(&r.ctx, a[1], 4, false, "callback key");
                 if (kp) std::memcpy(&own_key, kp, 4);
                 note(co_await free_elem(r, *own, own_key));
               }
               if (k == CbKind::kFreeOther) note(co_await free_elem(r, *maps[tm], tk));
               if (k == CbKind::kStartOther || k == CbKind::kCancelOther ||
                   k == CbKind::kInitOther) {
                 BpfMap& target = *maps[tm];
                 const std::vector<std::uint8_t> key = h::u32_key(tk);
                 const std::uint64_t v = co_await h::map_lookup(r, target, key);
                 if (v == 0) co_return 0;
                 const std::uint64_t t = h::timer_of(target, v);
                 if (k == CbKind::kStartOther && budget > 0) {
                   --budget;
                   note(co_await h::timer_start(r, t, kCbStartOtherNs, 0));
                 } else if (k == CbKind::kCancelOther) {
                   note(co_await h::timer_cancel(r, t));
                 } else if (k == CbKind::kInitOther) {
                   note(co_await h::timer_init(r, t, target, model::kClockMonotonic));
                 }
               }
               co_return 0;
             }});
      }

  NativeProg* prog = nullptr;
  prog = w.prog("ops",
                [&](ProgRun& r, std::array<std::uint64_t, 5> a) -> Co<std::int64_t> {
                  const Op& op = c.ops[a[0]];
                  BpfMap& m = *maps[op.map];
                  const std::vector<std::uint8_t> key = h::u32_key(op.key);
                  if (op.action == ProgAction::kUpdate) {
                    note(co_await h::map_update(r, m, key, zeros, model::kBpfAny));
                    co_return 0;
                  }
                  if (op.action == ProgAction::kDelete) {
                    note(co_await h::map_delete(r, m, key));
                    co_return 0;
                  }
                  if (op.action == ProgAction::kArm && &m != maps[0])
                    note(co_await h::map_update(r, m, key, zeros, model::kBpfNoexist));
                  const std::uint64_t v = co_await h::map_lookup(r, m, key);
                  if (v == 0) co_return 0;
                  const std::uint64_t t = h::timer_of(m, v);
                  if (op.action == ProgAction::kInit || op.action == ProgAction::kArm)
                    note(co_await h::timer_init(r, t, m, op.clock));
                  if (op.action == ProgAction::kSetCallback || op.action == ProgAction::kArm)
                    note(co_await h::timer_set_callback(
                        r, t, prog->callback(cb_index(op.cb, op.cb_map, op.cb_key))));
                  if (op.action == ProgAction::kStart || op.action == ProgAction::kArm)
                    note(co_await h::timer_start(r, t, op.nsecs, 0));
                  if (op.action == ProgAction::kCancel) note(co_await h::timer_cancel(r, t));
                  co_return 0;
                },
                std::move(callbacks), {maps[0], maps[1], maps[2], maps[3]});

  // The program stays loaded across the loader's exit (as if attached): pinned until teardown.
  // The second process holds its own fd of every map, so one exit alone drops no uref.
  // A task queued at time t, its event tagged `tag`. Every timeline event has a tag of its own:
  // the tag is the event's candidate key in a tie, and two candidates with one key cannot be
  // told apart by a replay (World::task_at's tag is per CPU).
  auto task = [&w](sim::TimeNs t, std::uint64_t tag, int cpu, std::string name,
                   std::function<Co<void>(Context&)> body) {
    w.sim.at(t, tag, [cpu, name = std::move(name), body = std::move(body)](sim::Simulator& s) {
      s.spawn_task(cpu, name, body);
    });
  };
  task(0, 0x400000u, 0, "setup", [&](Context& ctx) -> Co<void> {
    (void)co_await w.k.sys.obj_pin(ctx, w.proc, w.prog_fds.at(prog), "/sys/fs/bpf/prog");
    for (BpfMap* m : maps)
      (void)co_await w.k.sys.map_get_fd_by_id(ctx, tool, m->id);
  });

  sim::TimeNs last = kStartNs;
  for (std::size_t i = 0; i < c.ops.size(); ++i) {
    const Op op = c.ops[i];
    sim::TimeNs t = mode == Mode::kClean
                        ? kStartNs + static_cast<sim::TimeNs>(i) * kCleanSlotNs + op.offset_ns
                        : kStartNs + op.offset_ns;
    if (op.range_ns > 0)
      t += w.sim.scheduler().draw(sim::DecisionKind::kRange, sim::Hasher().str("op").u64(i).value(),
                                  static_cast<std::uint32_t>(op.range_ns + 1));
    last = std::max(last, t);
    const int cpu = op.cpu % c.cpus;
    if (op.kind == OpKind::kProg) {
      const std::uint64_t idx = i;
      w.sim.at(t, 0x500000u + i, [&w, &prog, idx, cpu](sim::Simulator& s) {
        s.spawn_task(cpu, fmt::format("op {}", idx), [&w, &prog, idx](Context& ctx) -> Co<void> {
          (void)co_await w.k.run_prog(ctx, *prog, {idx, 0, 0, 0, 0});
        });
      });
      continue;
    }
    task(t, 0x500000u + i, cpu, fmt::format("op {}", i),
         [&w, &procs, &maps, op](Context& ctx) -> Co<void> {
           model::Process& p = *procs[op.proc];
           BpfMap* m = maps[op.map];
           const int fd = fd_of(p, m);
           const std::vector<std::uint8_t> key = h::u32_key(op.key);
           const std::vector<std::uint8_t> value(16, 0);
           switch (op.kind) {
             case OpKind::kUserUpdate:
               if (fd >= 0) (void)co_await w.k.sys.map_update_elem(ctx, p, fd, key, value, 0);
               break;
             case OpKind::kUserDelete:
               if (fd >= 0) (void)co_await w.k.sys.map_delete_elem(ctx, p, fd, key);
               break;
             case OpKind::kClose:
               if (fd >= 0) (void)co_await w.k.sys.close(ctx, p, fd);
               break;
             case OpKind::kPin:
               if (fd >= 0) (void)co_await w.k.sys.obj_pin(ctx, p, fd, pin_path(op.map, op.slot));
               break;
             case OpKind::kUnpin:
               (void)co_await w.k.sys.unlink(ctx, pin_path(op.map, op.slot));
               break;
             case OpKind::kGetFdById:
               (void)co_await w.k.sys.map_get_fd_by_id(ctx, p, m->id);
               break;
             case OpKind::kExit:
               co_await w.k.sys.exit(ctx, p);
               break;
             case OpKind::kProg:
               break;
           }
         });
  }

  // Full teardown: Ctrl-C of both processes, then every pin (maps and the program) unlinked.
  const sim::TimeNs teardown = last + kTeardownDelayNs;
  task(teardown, 0x400001u, 0, "teardown", [&w, &procs](Context& ctx) -> Co<void> {
    for (model::Process* p : procs)
      co_await w.k.sys.exit(ctx, *p);
    std::vector<std::string> paths;
    for (const auto& [path, pin] : w.k.sys.pins())
      paths.push_back(path);
    for (const auto& path : paths)
      (void)co_await w.k.sys.unlink(ctx, path);
  });
  // Checkpoints are observers, not events: they take no part in ties, so they never change the
  // schedule they check.
  for (sim::TimeNs t = kCheckpointNs; t <= teardown + kTeardownDelayNs; t += kCheckpointNs)
    w.sim.observe_at(t, [&w, &out](sim::Simulator&) {
      for (auto& v : w.k.invariant_violations(false))
        out.midrun_violations.push_back(fmt::format("{} ns: {}", w.sim.now(), v));
    });

  out.status = w.run();
  if (out.status == sim::RunStatus::kQuiescent) w.k.check_quiescence();
  out.violations = w.k.invariant_violations(out.status == sim::RunStatus::kQuiescent);
  out.findings = w.sim.findings();
  out.live_objects = w.k.slab.live_count();
  out.armed_timers = w.k.armed_timers();
  out.digest = w.sim.trace().digest();
  out.decisions = w.sim.scheduler().decisions();
  if (w.sim.scheduler().divergence()) out.divergence = *w.sim.scheduler().divergence();
  return out;
}

void showValue(const Op& op, std::ostream& os) {
  os << "+" << op.offset_ns;
  if (op.range_ns > 0) os << ".." << op.offset_ns + op.range_ns;
  os << "ns cpu" << op.cpu << " ";
  switch (op.kind) {
    case OpKind::kProg:
      os << "prog " << action_label(op.action) << " " << map_label(op.map) << "[" << op.key << "]";
      if (op.action == ProgAction::kArm || op.action == ProgAction::kInit)
        os << " clock=" << op.clock;
      if (op.action == ProgAction::kArm || op.action == ProgAction::kSetCallback)
        os << " cb=" << cb_label(op.cb) << "->" << map_label(op.cb_map) << "[" << op.cb_key << "]";
      if (op.action == ProgAction::kArm || op.action == ProgAction::kStart)
        os << " ns=" << op.nsecs;
      return;
    case OpKind::kUserUpdate:
      os << "proc" << op.proc << " sys_update " << map_label(op.map) << "[" << op.key << "]";
      return;
    case OpKind::kUserDelete:
      os << "proc" << op.proc << " sys_delete " << map_label(op.map) << "[" << op.key << "]";
      return;
    case OpKind::kClose:
      os << "proc" << op.proc << " close " << map_label(op.map);
      return;
    case OpKind::kPin:
      os << "proc" << op.proc << " pin " << pin_path(op.map, op.slot);
      return;
    case OpKind::kUnpin:
      os << "unlink " << pin_path(op.map, op.slot);
      return;
    case OpKind::kGetFdById:
      os << "proc" << op.proc << " get_fd_by_id " << map_label(op.map);
      return;
    case OpKind::kExit:
      os << "proc" << op.proc << " exit";
      return;
  }
}

void showValue(const Case& c, std::ostream& os) {
  os << "seed=" << c.seed << " cpus=" << c.cpus << " rearm_budget=" << c.rearm_budget
     << " cb_busy_ns=" << c.cb_busy_ns;
  if (c.window_ns || c.land_max || c.rcu_gp_jitter_ns || c.expiry_jitter_ns)
    os << " window_ns=" << c.window_ns << " land_max=" << c.land_max
       << " rcu_gp_jitter_ns=" << c.rcu_gp_jitter_ns << " expiry_jitter_ns=" << c.expiry_jitter_ns;
  os << " ops(" << c.ops.size() << "):\n";
  for (std::size_t i = 0; i < c.ops.size(); ++i) {
    os << "  " << i << ": ";
    showValue(c.ops[i], os);
    os << "\n";
  }
}

namespace {
bool queued_after_free(const std::string& violation) {
  return violation.find("is still queued") != std::string::npos;
}
}  // namespace

std::vector<std::string> judge(const Outcome& o, Mode mode) {
  std::vector<std::string> broken;
  auto check = [&](bool ok, const std::string& what) {
    if (!ok) broken.push_back(what);
  };
  if (mode == Mode::kClean) {
    check(o.status == sim::RunStatus::kQuiescent, "the clean workload did not quiesce");
    check(o.findings.empty(), "the clean workload has findings");
    check(o.midrun_violations.empty() && o.violations.empty(),
          "the clean workload broke invariants");
    check(o.armed_timers == 0 && o.live_objects == 0,
          "the clean workload left timers or objects after teardown");
    return broken;
  }
  for (const auto& f : o.findings) {
    const auto k = f.kind;
    check(k == sim::FindingKind::kUseAfterFree || k == sim::FindingKind::kLeak ||
              k == sim::FindingKind::kDeadlock,
          std::string("a finding the seed's races do not explain: ") + sim::finding_kind_name(k));
  }
  bool queued = false;
  for (const auto& v : o.midrun_violations) {
    check(queued_after_free(v), "a mid-run invariant violation: " + v);
    queued = true;
  }
  if (o.status == sim::RunStatus::kQuiescent) {
    check(o.violations.empty(), "an invariant violation at quiescence");
    check(o.armed_timers == 0, "timers armed at quiescence");
    check(!queued || o.has_finding("use_after_free"),
          "a freed timer was queued but no use_after_free was reported");
    check(o.has_finding("leak") || o.live_objects == 0, "objects left without a leak finding");
    return broken;
  }
  check(o.status == sim::RunStatus::kStopped && o.has_finding("deadlock"),
        "a run that did not quiesce, without a deadlock");
  for (const auto& v : o.violations)
    check(queued_after_free(v), "an invariant violation at the stop: " + v);
  return broken;
}

}  // namespace bpftsim::prop
