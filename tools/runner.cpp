#include "tools/runner.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <tuple>

#include "model/bpf_object.h"
#include "model/errno.h"
#include "model/kernel.h"
#include "sim/hash.h"

namespace bpftsim::tools {

// Virtual time per slice of the run when progress is displayed.
constexpr sim::TimeNs kProgressSliceNs = sim::kNsPerMs;

struct RunInstance {
  RunInstance(const Scenario& s, const sim::SimConfig& cfg, std::unique_ptr<sim::Scheduler> sched,
              const model::KernelProfile& profile)
      : sc(&s), sim(cfg, std::move(sched)), k(sim, profile, s.costs) {}

  const Scenario* sc;  // valid during run_scenario only
  sim::Simulator sim;
  model::Kernel k;
  std::vector<std::unique_ptr<model::BpfObject>> objects;
  std::map<std::string, model::Process*> procs;
  // The fds the scenario's processes hold, by (pid, kind, "t.array" / "t.test1"), in the order
  // they were obtained: the most recent of a name is its last entry. A run has a handful, so a
  // flat list (no tree node, key and vector per fd).
  struct FdName {
    int pid;
    FdKind kind;
    std::string name;
    int fd;
  };
  std::vector<FdName> fds;
  std::vector<std::string> failures;
  // Where fail() writes: `failures`, or the failures of one alternative of expect.any_of.
  std::vector<std::string>* sink = &failures;
  std::vector<std::vector<std::string>> alt_failures;  // per expect.any_of alternative
  std::set<int> cpus;

  model::Process& process(const std::string& name) {
    auto it = procs.find(name);
    if (it != procs.end()) return *it->second;
    model::Process& p = k.sys.new_process(name);
    procs.emplace(name, &p);
    return p;
  }

  // The most recent entry of (pid, kind, name), fds.end() if none.
  std::vector<FdName>::iterator last_fd(int pid, FdKind kind, std::string_view name) {
    for (auto it = fds.end(); it != fds.begin();) {
      --it;
      if (it->pid == pid && it->kind == kind && it->name == name) return it;
    }
    return fds.end();
  }
  int fd_of(const model::Process& p, FdKind kind, const std::string& name) {
    auto it = last_fd(p.pid, kind, name);
    return it == fds.end() ? -1 : it->fd;
  }
  void add_fd(const model::Process& p, FdKind kind, const std::string& name, int fd) {
    if (fds.capacity() == 0) fds.reserve(16);
    fds.push_back(FdName{p.pid, kind, name, fd});
  }
  void drop_fd(const model::Process& p, FdKind kind, const std::string& name) {
    auto it = last_fd(p.pid, kind, name);
    if (it != fds.end()) fds.erase(it);
  }

  // The scenario name of a kernel map/prog (for fds obtained by obj_get), "" if none.
  std::string name_of(const model::BpfMap* m) const {
    for (std::size_t o = 0; o < objects.size(); ++o)
      for (const auto& ms : objects[o]->spec().maps)
        if (objects[o]->map(ms.name) == m) return sc->objects[o].name + "." + ms.name;
    return "";
  }
  std::string name_of(const model::BpfProg* p) const {
    for (std::size_t o = 0; o < objects.size(); ++o)
      for (const auto& ps : objects[o]->spec().progs)
        if (objects[o]->prog(ps.name) == p) return sc->objects[o].name + "." + ps.name;
    return "";
  }

  model::BpfMap* map(const NameRef& r) const {
    return objects[r.object]->map(sc->objects[r.object].spec.maps[r.index].name);
  }
  model::VmProg* prog(const NameRef& r) const {
    return objects[r.object]->prog(sc->objects[r.object].spec.progs[r.index].name);
  }

  void fail(int cpu, std::string line) {
    if (cpu >= 0) cpus.insert(cpu);
    sink->push_back(std::move(line));
  }

  sim::Co<void> exec(sim::Context& c, std::size_t i);
  sim::Co<std::int64_t> run_fentry(sim::Context& c);
  void check_globals(const std::vector<GlobalExpect>& globals, const std::string& when);
  void check_at(const AtExpect& at);
  // Per group (0: the top level, 1 + i: alternative i of any_of), per expect.at entry: its
  // observer ran.
  std::vector<std::vector<bool>> at_checked;
  // The groups: the top level, then each alternative.
  std::vector<const Expectations*> groups;
  std::vector<std::size_t> order_offset;   // per group: its first entry in `orders`
  std::vector<const OrderExpect*> orders;  // expect.order of every group
  void watch_events();
  std::function<void(const sim::TraceView&)> on_record;  // expect.events/order, when asked

  // RunOptions::watches, resolved.
  struct Watched {
    std::string what;
    std::uint32_t object = 0;
    std::string global;  // a global variable (or a member of it: offset, size), or
    std::uint32_t offset = 0;
    std::uint32_t size = 0;        // 0: the whole variable
    model::BpfMap* map = nullptr;  // a map element
    std::vector<std::uint8_t> key;
    bool is_signed = false;
    std::string last;
  };
  std::vector<Watched> watched;
  std::vector<RunResult::WatchChange> watch_changes;
  std::string watch_value(const Watched& w) const;
  void check_watches(const sim::Context* c);

  // expect.events and expect.order, filled by a trace observer while the run goes on.
  struct Watch {
    std::map<std::string, std::uint64_t> counts;  // events named in expect.events
    // The same counters by event id, looked up per record without comparing text (ids are
    // distinct for distinct names; the text is compared when an id matches).
    struct Counted {
      sim::TraceKey event;
      std::uint64_t* count;
    };
    std::vector<Counted> counted;
    std::vector<std::uint32_t> seen;               // per order ref: occurrences so far
    std::vector<std::optional<std::uint64_t>> at;  // per order ref: record index
    // ctx -> index of its first record + 1 (0: none yet); context ids are dense and grow.
    std::vector<std::uint64_t> ctx_first;
    std::map<std::uint32_t, std::vector<std::string>> cbs;  // ctx -> running callbacks
    std::uint64_t index = 0;                                // of the current record
    std::vector<std::int64_t> prog_ids;  // per order ref: its program's id, -1: any
    bool need_ctx_first = false;         // an action_start reference needs ctx_first
    std::size_t pending = 0;             // order refs not yet matched
  };
  Watch watch;
};

namespace {

std::string ret_text(std::int64_t r) {
  if (r < 0 && r > -4096) return fmt::format("{} (-{})", r, model::errno_name(r));
  return std::to_string(r);
}

std::string hex(const std::vector<std::uint8_t>& bytes) {
  std::string s = "0x";
  for (std::uint8_t b : bytes)
    s += fmt::format("{:02x}", b);
  return s;
}

}  // namespace

// bpf_prog_test_run_tracing (net/bpf/test_run.c, v5.15): the kernel calls bpf_fentry_test1(1),
// bpf_fentry_test2(2, 3), ... bpf_fentry_test8 in this task, and every program attached to the
// function runs on it (model/bpf_trace.h). Returns the syscall's result.
sim::Co<std::int64_t> RunInstance::run_fentry(sim::Context& c) {
  co_await c.step(k.cost.syscall_ns);
  for (std::size_t fn = 0; fn < model::kFentryTestArgs.size(); ++fn) {
    const std::string name = "bpf_fentry_test" + std::to_string(fn + 1);
    const std::array<std::uint64_t, 5> args = model::kFentryTestArgs[fn];
    co_await k.hooks.function_entry(c, name.c_str(), args);
    // bpf_fentry_test1..6 return the sum of their arguments (+1 for test1); 7 and 8 the pointer
    // or what it points at, here 0.
    std::int64_t ret = fn == 0 ? 2 : 0;
    if (fn > 0 && fn < 6)
      for (std::uint64_t a : args)
        ret += static_cast<std::int64_t>(a);
    co_await k.hooks.function_exit(c, name.c_str(), args, ret);
  }
  co_return 0;
}

sim::Co<void> RunInstance::exec(sim::Context& c, std::size_t i) {
  const Action& a = sc->timeline[i];
  model::Process& p = process(a.process);
  if (c.kind() == sim::CtxKind::kTask) k.sys.set_current(c, p);
  const std::string target = a.target ? a.target->text : "";
  const int fd = a.target ? fd_of(p, a.target_kind, target) : -1;
  std::int64_t ret = 0;
  std::vector<std::uint8_t> looked_up;  // map_lookup: the value read, for the trace
  switch (a.kind) {
    case ActionKind::kRun: {
      const std::array<std::uint64_t, 5> args = a.args;
      if (a.context != RunContext::kTask) {
        // An interrupt runs the program directly (as an attached one), no syscall: the one the
        // process's fd names, which keeps it alive.
        auto it = p.fds.find(fd);
        if (it == p.fds.end() || it->second.kind != model::FdEntry::Kind::kProg) {
          ret = -model::kEBADF;
        } else {
          ret = co_await k.run_prog(c, *it->second.prog, args);
        }
        break;
      }
      std::int64_t r0 = 0;
      const int r = co_await k.sys.prog_test_run(c, p, fd, args, &r0);
      ret = r < 0 ? r : r0;
      break;
    }
    case ActionKind::kRunFentry:
      ret = co_await run_fentry(c);
      break;
    case ActionKind::kNanosleep:
      ret = co_await k.sys.nanosleep(c, p, a.duration_ns);
      break;
    case ActionKind::kAttach: {
      const int r = co_await k.sys.link_create(c, p, fd);
      if (r >= 0) {
        add_fd(p, FdKind::kLink, target, r);
        model::VmProg* vp = prog(*a.target);
        // The hook its section names (checked when the scenario was read); other sections
        // ("syscall", "tc") make a link that runs nowhere.
        std::string err;
        if (auto hook = model::parse_hook_section(vp->spec().section, &err))
          k.hooks.attach(*hook, *vp, p.pid, r);
      }
      ret = r < 0 ? r : 0;
      break;
    }
    case ActionKind::kMapLookup: {
      std::vector<std::uint8_t> value;
      ret = co_await k.sys.map_lookup_elem(c, p, fd, a.key, &value);
      if (ret == 0) looked_up = value;
      if (ret == 0 && a.expect_value)
        for (const ValueMatch::Mismatch& m : a.expect_value->mismatches(value))
          fail(a.cpu,
               fmt::format("{} t={} cpu {}: {} read {}{}, expected {}",
                           m.pointer.empty() ? a.pointer : m.pointer, a.at_ns, a.cpu, a.describe(),
                           m.field.empty() ? "" : "member " + m.field.substr(1) + " ", m.have,
                           m.want));
      if (ret != 0 && a.expect_value && !a.expect_ret && !a.expect_ret_match)
        fail(a.cpu, fmt::format("{} t={} cpu {}: {} returned {}, expected a value", a.pointer,
                                a.at_ns, a.cpu, a.describe(), ret_text(ret)));
      break;
    }
    case ActionKind::kMapUpdate: {
      std::vector<std::uint8_t> value = a.value;
      if (a.value_map) {
        const std::int32_t inner_fd = fd_of(p, FdKind::kMap, a.value_map->text);
        value.assign(4, 0);
        std::memcpy(value.data(), &inner_fd, 4);
      }
      ret = co_await k.sys.map_update_elem(c, p, fd, a.key, value, a.flags);
      break;
    }
    case ActionKind::kMapDelete:
      ret = co_await k.sys.map_delete_elem(c, p, fd, a.key);
      break;
    case ActionKind::kClose:
      ret = co_await k.sys.close(c, p, fd);
      if (ret == 0) drop_fd(p, a.target_kind, target);
      break;
    case ActionKind::kPin:
      ret = co_await k.sys.obj_pin(c, p, fd, a.path);
      break;
    case ActionKind::kUnpin:
      ret = co_await k.sys.unlink(c, a.path);
      break;
    case ActionKind::kObjGet: {
      const int r = co_await k.sys.obj_get(c, p, a.path);
      if (r >= 0) {
        const model::FdEntry& e = p.fds.at(r);
        if (e.kind == model::FdEntry::Kind::kMap) {
          add_fd(p, FdKind::kMap, name_of(e.map), r);
        } else if (e.kind == model::FdEntry::Kind::kProg) {
          add_fd(p, FdKind::kProg, name_of(e.prog), r);
        }
      }
      ret = r < 0 ? r : 0;
      break;
    }
    case ActionKind::kGetFdById: {
      const std::uint32_t id = map(*a.target)->id;
      const int r = co_await k.sys.map_get_fd_by_id(c, p, id);
      if (r >= 0) add_fd(p, FdKind::kMap, target, r);
      ret = r < 0 ? r : 0;
      break;
    }
    case ActionKind::kExit: {
      co_await k.sys.exit(c, p);
      std::erase_if(fds, [&](const FdName& f) { return f.pid == p.pid; });
      break;
    }
    case ActionKind::kWait:
      break;
  }
  if (a.kind == ActionKind::kMapLookup && ret == 0) {
    c.trace("scenario_action", {{"index", static_cast<std::uint64_t>(i)},
                                {"action", action_kind_name(a.kind)},
                                {"ret", ret},
                                {"value", hex(looked_up)}});
  } else {
    c.trace("scenario_action", {{"index", static_cast<std::uint64_t>(i)},
                                {"action", action_kind_name(a.kind)},
                                {"ret", ret}});
  }
  if (a.expect_ret_match && !a.expect_ret_match->holds(static_cast<std::uint64_t>(ret), 8,
                                                       model::GlobalVar::Sign::kSigned))
    fail(a.cpu, fmt::format("{} t={} cpu {}: {} returned {}, expected {}", a.pointer, a.at_ns,
                            a.cpu, a.describe(), ret_text(ret), a.expect_ret_match->text()));
  if (a.expect_ret && *a.expect_ret != ret)
    fail(a.cpu, fmt::format("{} t={} cpu {}: {} returned {}, expected {}", a.pointer, a.at_ns,
                            a.cpu, a.describe(), ret_text(ret), ret_text(*a.expect_ret)));
}

void RunInstance::check_globals(const std::vector<GlobalExpect>& globals, const std::string& when) {
  for (const GlobalExpect& g : globals) {
    std::uint32_t size = 0;
    const std::uint8_t* p = objects[g.global.object]->global_var(g.global.var, &size);
    SIM_ASSERT(p != nullptr && size == g.global.var_size && g.global.offset + g.global.size <= size,
               "global {} resolved at load", g.global.text);
    if (g.match) {
      for (const ValueMatch::Mismatch& m :
           g.match->mismatches(std::vector<std::uint8_t>(p, p + size)))
        fail(-1, fmt::format("{}: {}{} is {} {}, expected {}",
                             m.pointer.empty() ? g.pointer : m.pointer, g.global.text, m.field,
                             m.have, when, m.want));
      continue;
    }
    std::uint64_t v = 0;
    for (std::uint32_t b = 0; b < g.global.size; ++b)
      v |= std::uint64_t{p[g.global.offset + b]} << (8 * b);
    if (g.holds(v)) continue;
    fail(-1, fmt::format("{}: {} is {} {}, expected {}", g.pointer, g.global.text, g.show(v), when,
                         g.want.text()));
  }
}

namespace {

// `ex`'s findings; `apply_default`: when `ex` names no findings, none may happen ("no findings").
void judge_findings(RunInstance& in, const Expectations& ex, bool apply_default) {
  if (!ex.findings_given && !apply_default) return;
  std::map<sim::FindingKind, std::uint64_t> counts;
  for (const auto& f : in.sim.findings())
    ++counts[f.kind];
  std::set<sim::FindingKind> named;
  for (const FindingCount& c : ex.findings) {
    named.insert(c.kind);
    const char* name = sim::finding_kind_name(c.kind);
    const std::uint64_t n = counts.count(c.kind) ? counts[c.kind] : 0;
    if (!c.count.holds(n))
      in.fail(-1, fmt::format("{}/findings/{}: {} {} finding(s), expected {}", ex.pointer, name, n,
                              name, c.count.text()));
  }
  for (const FindingMatch& m : ex.finding_match) {
    named.insert(m.kind);
    const auto& fs = in.sim.findings();
    if (std::any_of(fs.begin(), fs.end(), [&](const sim::Finding& f) { return m.matches(f); }))
      continue;
    in.fail(-1, fmt::format("{}: no finding matches {}", m.pointer, m.text()));
    for (const auto& f : fs)
      if (f.kind == m.kind)
        in.sink->push_back(fmt::format("    {} site={} object={}: {}",
                                       sim::finding_kind_name(f.kind), f.site, f.object,
                                       f.message));
  }
  for (const auto& f : in.sim.findings()) {
    const bool divergence = f.kind == sim::FindingKind::kReplayDivergence;
    const bool expected = named.count(f.kind) != 0 || ex.allow_other_findings;
    if (f.cpu >= 0 && (!expected || divergence)) in.cpus.insert(f.cpu);
    if (expected && !divergence) continue;
    in.fail(f.cpu, fmt::format("unexpected finding: {} at t={} ns on cpu {}: {}",
                               sim::finding_kind_name(f.kind), f.t_ns, f.cpu, f.message));
    for (const auto& d : f.details)
      in.sink->push_back("    " + d);
  }
}

void judge_events(RunInstance& in, const Expectations& ex, std::size_t order_offset) {
  for (const EventCount& e : ex.events) {
    const std::uint64_t n = in.watch.counts[e.event];
    if (!e.count.holds(n))
      in.fail(-1, fmt::format("{}: {} '{}' record(s), expected {}", e.pointer, n, e.event,
                              e.count.text()));
  }
  for (std::size_t i = 0; i < ex.order.size(); ++i) {
    const OrderExpect& o = ex.order[i];
    const auto& first = in.watch.at[2 * (order_offset + i)];
    const auto& then = in.watch.at[2 * (order_offset + i) + 1];
    if (!first) {
      in.fail(-1, fmt::format("{}/first: {} never happened", o.pointer, o.first.text));
    } else if (!then) {
      in.fail(-1, fmt::format("{}/then: {} never happened", o.pointer, o.then.text));
    } else if (*first >= *then) {
      in.fail(-1, fmt::format("{}: {} (trace record {}) did not come before {} (record {})",
                              o.pointer, o.first.text, *first, o.then.text, *then));
    }
  }
}

// `what` of the run against `a`; `ptr` names the expectation ("/expect/alive").
void judge_alive(RunInstance& in, const AliveExpect& a, const std::string& ptr,
                 const std::string& when) {
  if (a.objects && in.k.slab.live_count() != *a.objects)
    in.fail(-1, fmt::format("{}/objects: {} live kernel object(s) {}, expected {}", ptr,
                            in.k.slab.live_count(), when, *a.objects));
  if (a.armed_timers && in.k.armed_timers() != *a.armed_timers)
    in.fail(-1, fmt::format("{}/armed_timers: {} armed timer(s) {}, expected {}", ptr,
                            in.k.armed_timers(), when, *a.armed_timers));
  auto compare = [&](const char* what, const std::vector<std::string>& want,
                     const std::vector<std::string>& have) {
    if (want == have) return;
    in.fail(-1, fmt::format("{}/{}: allocated {}: [{}], expected [{}]", ptr, what, when,
                            fmt::join(have, ", "), fmt::join(want, ", ")));
  };
  if (a.maps) {
    std::vector<std::string> want, have;
    for (const NameRef& r : *a.maps)
      want.push_back(r.text);
    for (std::uint32_t o = 0; o < in.sc->objects.size(); ++o)
      for (std::uint32_t m = 0; m < in.sc->objects[o].spec.maps.size(); ++m) {
        const NameRef r{in.sc->objects[o].name + "." + in.sc->objects[o].spec.maps[m].name, o, m};
        if (!in.map(r)->freed) have.push_back(r.text);
      }
    std::sort(want.begin(), want.end());
    std::sort(have.begin(), have.end());
    compare("maps", want, have);
  }
  if (a.progs) {
    std::vector<std::string> want, have;
    for (const NameRef& r : *a.progs)
      want.push_back(r.text);
    for (std::uint32_t o = 0; o < in.sc->objects.size(); ++o)
      for (std::uint32_t p = 0; p < in.sc->objects[o].spec.progs.size(); ++p) {
        const NameRef r{in.sc->objects[o].name + "." + in.sc->objects[o].spec.progs[p].name, o, p};
        if (!in.prog(r)->freed) have.push_back(r.text);
      }
    std::sort(want.begin(), want.end());
    std::sort(have.begin(), have.end());
    compare("progs", want, have);
  }
}

// `maps` against the map elements now; `when` says when ("", " at t=5000").
void judge_maps(RunInstance& in, const std::vector<MapExpect>& maps, const std::string& when) {
  for (const MapExpect& m : maps) {
    const model::BpfMap* map = in.map(m.map);
    std::vector<std::uint8_t> value;
    const bool present = !map->freed && map->peek_elem(m.key.data(), &value);
    if (present != m.present) {
      in.fail(-1,
              fmt::format("{}: {}[{}] is {}{}, expected {}", m.pointer, m.map.text, hex(m.key),
                          present ? "present" : "absent", when, m.present ? "present" : "absent"));
      continue;
    }
    if (!present || !m.value) continue;
    // As the lookup syscall copies it out: timer and lock bytes read as zero.
    if (map->def.timer_off >= 0)
      std::fill_n(value.begin() + map->def.timer_off, 16, std::uint8_t{0});
    if (map->def.spin_lock_off >= 0)
      std::fill_n(value.begin() + map->def.spin_lock_off, 4, std::uint8_t{0});
    for (const ValueMatch::Mismatch& mm : m.value->mismatches(value))
      in.fail(-1, fmt::format("{}: {}[{}]{} is {}{}, expected {}",
                              mm.pointer.empty() ? m.pointer + "/value" : mm.pointer, m.map.text,
                              hex(m.key), mm.field, mm.have, when, mm.want));
  }
}

}  // namespace

void RunInstance::check_at(const AtExpect& at) {
  const std::string when = fmt::format("at t={}", at.at_ns);
  check_globals(at.globals, when);
  if (at.alive) judge_alive(*this, *at.alive, at.pointer + "/alive", when);
  judge_maps(*this, at.maps, " " + when);
  for (const RefcntExpect& r : at.refcnts) {
    std::int64_t have = 0;
    if (r.is_prog) {
      have = prog(r.target)->refcnt;
    } else {
      have = r.user ? map(r.target)->usercnt : map(r.target)->refcnt;
    }
    if (r.want.holds(static_cast<std::uint64_t>(have), 8, model::GlobalVar::Sign::kSigned))
      continue;
    fail(-1, fmt::format("{}: the {} of {} is {} {}, expected {}", r.pointer,
                         r.user ? "usercnt" : "refcnt", r.target.text, have, when, r.want.text()));
  }
  if (at.invariants)
    for (const std::string& v : k.invariant_violations(false))
      fail(-1, fmt::format("{}/invariants: {} {}", at.pointer, v, when));
}

// Follows the trace for expect.events and expect.order: counts records by name and notes the
// record index of the nth occurrence of each order reference.
void RunInstance::watch_events() {
  for (const Expectations* ex : groups)
    for (const EventCount& e : ex->events)
      watch.counts[e.event] = 0;
  watch.counted.clear();
  for (auto& [event, count] : watch.counts)
    watch.counted.push_back(Watch::Counted{sim::TraceKey(std::string_view(event)), &count});
  watch.seen.assign(2 * orders.size(), 0);
  watch.at.assign(2 * orders.size(), std::nullopt);
  // Per order reference: the program id it is restricted to (-1: any), fixed once loaded.
  watch.prog_ids.assign(2 * orders.size(), -1);
  watch.need_ctx_first = false;
  for (std::size_t i = 0; i < watch.at.size(); ++i) {
    const EventRef& ref = i % 2 == 0 ? orders[i / 2]->first : orders[i / 2]->then;
    if (ref.prog) watch.prog_ids[i] = static_cast<std::int64_t>(prog(*ref.prog)->id);
    if (ref.kind == EventRef::Kind::kActionStart) watch.need_ctx_first = true;
  }
  watch.pending = watch.at.size();
  on_record = [this](const sim::TraceView& r) {
    static constexpr sim::TraceKey kCb{"bpf_timer_cb"};
    static constexpr sim::TraceKey kCbExit{"bpf_timer_cb_exit"};
    static constexpr sim::TraceKey kAction{"scenario_action"};
    static constexpr sim::TraceKey kHelper{"bpf_helper"};
    Watch& w = watch;
    const std::uint64_t index = w.index++;
    for (const Watch::Counted& c : w.counted)
      if (r.is(c.event)) {
        ++*c.count;
        break;
      }
    if (r.ctx != 0 && w.need_ctx_first) {
      if (w.ctx_first.size() <= r.ctx) w.ctx_first.resize(std::size_t{r.ctx} + 64, 0);
      if (w.ctx_first[r.ctx] == 0) w.ctx_first[r.ctx] = index + 1;
    }
    const bool cb_entry = r.is(kCb);
    const bool cb_exit = !cb_entry && r.is(kCbExit);
    std::string exited;  // the callback a bpf_timer_cb_exit record ends
    if (cb_entry) {
      std::string cb;
      if (r.str("callback", &cb)) w.cbs[r.ctx].push_back(std::move(cb));
    } else if (cb_exit) {
      if (auto it = w.cbs.find(r.ctx); it != w.cbs.end() && !it->second.empty()) {
        exited = std::move(it->second.back());
        it->second.pop_back();
      }
    }
    if (w.pending == 0) return;
    const bool action = !cb_entry && !cb_exit && r.is(kAction);
    const bool helper = !cb_entry && !cb_exit && !action && r.is(kHelper);
    if (!cb_entry && !cb_exit && !action && !helper) return;  // no reference names another event
    for (std::size_t i = 0; i < w.at.size(); ++i) {
      if (w.at[i]) continue;
      const EventRef& ref = i % 2 == 0 ? orders[i / 2]->first : orders[i / 2]->then;
      const std::int64_t prog_id = w.prog_ids[i];
      bool match = false;
      std::uint64_t at = index;
      switch (ref.kind) {
        case EventRef::Kind::kActionStart:
        case EventRef::Kind::kActionDone:
          match = action && r.int_field("index", -1) == static_cast<std::int64_t>(ref.action);
          if (match && ref.kind == EventRef::Kind::kActionStart)
            at = r.ctx < w.ctx_first.size() && w.ctx_first[r.ctx] != 0 ? w.ctx_first[r.ctx] - 1 : 0;
          break;
        case EventRef::Kind::kCallbackEntry:
          match = cb_entry && r.str_is("callback", ref.function) &&
                  (prog_id < 0 || r.int_field("prog", -1) == prog_id);
          break;
        case EventRef::Kind::kCallbackExit:
          match = cb_exit && exited == ref.function;
          break;
        case EventRef::Kind::kHelper:
          match = helper && r.str_is("helper", ref.helper) &&
                  (prog_id < 0 || r.int_field("prog", -1) == prog_id) &&
                  (!ref.ret || (r.has_int("ret") && r.int_field("ret", 0) == *ref.ret));
          break;
      }
      if (match && ++w.seen[i] == ref.nth) {
        w.at[i] = at;
        --w.pending;
      }
    }
  };
}

std::string RunInstance::watch_value(const Watched& w) const {
  std::vector<std::uint8_t> bytes;
  if (w.map == nullptr) {
    std::uint32_t size = 0;
    const std::uint8_t* p = objects[w.object]->global_var(w.global, &size);
    if (p == nullptr) return "absent";
    if (w.size != 0) {
      p += w.offset;
      size = w.size;
    }
    bytes.assign(p, p + size);
  } else if (w.map->freed || !w.map->peek_elem(w.key.data(), &bytes)) {
    return "absent";
  } else {
    if (w.map->def.timer_off >= 0)
      std::fill_n(bytes.begin() + w.map->def.timer_off, 16, std::uint8_t{0});
    if (w.map->def.spin_lock_off >= 0)
      std::fill_n(bytes.begin() + w.map->def.spin_lock_off, 4, std::uint8_t{0});
  }
  if (bytes.size() > 8) return hex(bytes);
  std::uint64_t v = 0;
  for (std::size_t b = 0; b < bytes.size(); ++b)
    v |= std::uint64_t{bytes[b]} << (8 * b);
  if (w.is_signed && !bytes.empty() && bytes.size() < 8 && (v >> (8 * bytes.size() - 1)) & 1)
    v |= ~std::uint64_t{0} << (8 * bytes.size());
  return w.is_signed ? std::to_string(static_cast<std::int64_t>(v)) : std::to_string(v);
}

// After each step (and once before the run): a watched value that differs from the last one
// seen is a change, placed at that step (its start time, CPU and context).
void RunInstance::check_watches(const sim::Context* c) {
  for (Watched& w : watched) {
    std::string v = watch_value(w);
    if (c != nullptr && v == w.last) continue;
    watch_changes.push_back(RunResult::WatchChange{w.what, sim.trace().count(), sim.now(),
                                                   c ? c->cpu() : -1, c ? c->id() : 0, v});
    w.last = std::move(v);
  }
}

std::string outcome_of(const RunResult& r) {
  if (r.passed()) return "pass";
  std::vector<std::string> parts;
  for (const sim::Finding& f : r.findings) {
    std::string k = sim::finding_kind_name(f.kind);
    if (!f.site.empty()) k += "@" + f.site;
    if (std::find(parts.begin(), parts.end(), k) == parts.end()) parts.push_back(std::move(k));
  }
  if (!parts.empty()) return fmt::format("{}", fmt::join(parts, ", "));
  const std::string& first = r.failures.front();
  const auto end = first.find_first_of(": ");
  return first.substr(0, end);
}

namespace {
// What an action does, where and by whom: equal for identical actions.
std::uint64_t action_identity(const Action& a) {
  return sim::Hasher()
      .str("action")
      .str(a.describe())
      .u64(static_cast<std::uint64_t>(a.cpu))
      .str(a.process)
      .u64(static_cast<std::uint64_t>(a.context))
      .value();
}
}  // namespace

std::uint64_t action_key(const Scenario& sc, std::size_t i) {
  const std::uint64_t id = action_identity(sc.timeline[i]);
  std::uint64_t ordinal = 0;
  for (std::size_t j = 0; j < i; ++j)
    if (action_identity(sc.timeline[j]) == id) ++ordinal;
  return sim::Hasher(id).u64(ordinal).value();
}

std::vector<std::uint64_t> action_keys(const Scenario& sc) {
  std::vector<std::uint64_t> keys(sc.timeline.size());
  std::vector<std::pair<std::uint64_t, std::uint64_t>> seen;  // (identity, count so far), sorted
  for (std::size_t i = 0; i < sc.timeline.size(); ++i) {
    const std::uint64_t id = action_identity(sc.timeline[i]);
    auto it =
        std::lower_bound(seen.begin(), seen.end(), std::pair<std::uint64_t, std::uint64_t>{id, 0});
    if (it == seen.end() || it->first != id) it = seen.insert(it, {id, 0});
    keys[i] = sim::Hasher(id).u64(it->second++).value();
  }
  return keys;
}

const sim::Trace& RunResult::trace() const {
  return instance->sim.trace();
}

std::variant<RunResult, InputError> run_scenario(const Scenario& sc, const RunOptions& opts) {
  const std::string profile_name = opts.profile.value_or(sc.profile);
  const auto profile = model::profile_by_name(profile_name);
  if (!profile) {
    std::vector<std::string> names = model::profile_names();
    return InputError{sc.file, "", 0, 0,
                      fmt::format("unknown kernel profile '{}' (known: {})", profile_name,
                                  fmt::join(names, ", "))};
  }
  if (sc.jitter_ns < 0 || sc.jitter_ns >= sim::kMaxJitterNs)
    return InputError{
        sc.file, "/jitter_ns", 0, 0,
        fmt::format("jitter_ns {} is out of range 0..{}", sc.jitter_ns, sim::kMaxJitterNs - 1)};
  sim::SimConfig cfg;
  cfg.seed = opts.seed.value_or(sc.seed);
  cfg.cpus = sc.cpus;
  cfg.jitter_max_ns = sc.jitter_ns;
  cfg.window_ns = opts.window_ns.value_or(sc.window_ns);
  cfg.land_max = sc.land_max;
  cfg.choose_work_cpu = sc.work_on_any_cpu;
  cfg.keep_trace = opts.keep_trace;
  cfg.coalesce_steps = opts.coalesce_steps;
  cfg.max_steps = opts.max_steps.value_or(sc.max_steps.value_or(kDefaultMaxSteps));
  if (sc.max_time_ns) cfg.max_time_ns = *sc.max_time_ns;
  cfg.trace_tail_only = !opts.full_trace;
  cfg.max_trace_records =
      opts.full_trace ? opts.max_trace_records.value_or(kDefaultMaxTraceRecords) : kTailRecords;
  cfg.step_limit_hint = "; raise it with --max-steps N or \"limits\": {\"max_steps\": N}";
  cfg.time_limit_hint = "; raise it with \"limits\": {\"max_time_ns\": N}";
  cfg.trace_limit_hint =
      "; a trace file needs every record in memory: raise it with --max-trace-records N, or run "
      "without --trace";
  std::unique_ptr<sim::Scheduler> sched;
  if (opts.make_scheduler) {
    sched = opts.make_scheduler();
  } else if (opts.replay) {
    sched = std::make_unique<sim::ReplayScheduler>(*opts.replay, opts.lenient);
  }
  auto in = std::make_shared<RunInstance>(sc, cfg, std::move(sched), *profile);
  in->k.max_insns = opts.max_insns.value_or(kDefaultMaxInsns);
  in->k.insn_limit_hint = "; raise it with --max-insns N";

  // The result of a run that ends after loading (expect.load_error): nothing more happens.
  auto load_result = [&](const std::optional<std::string>& failure) {
    const std::string& want = *sc.expect.load_error;
    if (!failure) {
      in->fail(-1, fmt::format("/expect/load_error: expected the objects to fail to load with "
                               "'{}'; they loaded",
                               want));
    } else if (failure->find(want) == std::string::npos) {
      in->fail(-1, fmt::format("/expect/load_error: the objects failed to load with a message "
                               "that does not contain '{}': {}",
                               want, *failure));
    }
    RunResult r;
    r.name = sc.name;
    r.seed = cfg.seed;
    r.profile = profile->name;
    r.window_ns = opts.window_ns;
    r.failures = in->failures;
    for (int c = 0; c < sc.cpus; ++c)
      r.cpus.insert(c);
    r.digest = in->sim.trace().digest();
    r.instance = std::move(in);
    return r;
  };
  if (sc.load_failure) return load_result(sc.load_failure);

  model::Process& loader = in->process("loader");
  for (std::size_t o = 0; o < sc.objects.size(); ++o) {
    const ScenarioObject& so = sc.objects[o];
    model::BpfObjectOptions lopts;
    lopts.verify_memo = so.verify_memo.get();
    auto loaded = model::bpf_object_load(in->k, loader, so.spec, lopts);
    if (auto* e = std::get_if<model::LoadError>(&loaded)) {
      // A .bpf.c compiled into the cache: name the source the user wrote, then the object.
      std::string msg = e->message;
      if (so.resolved_path != so.spec.path && msg.rfind(so.spec.path, 0) == 0)
        msg = fmt::format("{} (compiled to {}){}", so.resolved_path, so.spec.path,
                          msg.substr(so.spec.path.size()));
      if (sc.expect.load_error) return load_result(msg);
      return InputError{sc.file, fmt::format("/objects/{}/path", o), so.line, so.column,
                        "cannot load object: " + msg};
    }
    auto obj = std::move(std::get<std::unique_ptr<model::BpfObject>>(loaded));
    for (const auto& ms : so.spec.maps)
      in->add_fd(loader, FdKind::kMap, so.name + "." + ms.name, obj->map_fd(ms.name));
    for (const auto& ps : so.spec.progs)
      in->add_fd(loader, FdKind::kProg, so.name + "." + ps.name, obj->prog_fd(ps.name));
    in->objects.push_back(std::move(obj));
  }
  if (sc.expect.load_error) return load_result(std::nullopt);

  // Faults apply to the timeline: armed once the objects are loaded.
  for (const Scenario::Fault& f : sc.faults) {
    in->k.faults.fail_next(f.site, f.count);
    in->sim.emit(
        nullptr, "fault_inject",
        {{"site", model::fault_site_name(f.site)}, {"count", static_cast<std::int64_t>(f.count)}});
  }

  RunInstance* raw = in.get();
  const std::vector<std::uint64_t> keys = action_keys(sc);
  for (const Action& a : sc.timeline) {
    const std::size_t i = a.index;
    const std::uint64_t key = keys[i];
    sim::TimeNs at = a.at_ns;
    if (a.at_max_ns && *a.at_max_ns > a.at_ns) {
      at += in->sim.scheduler().draw(sim::DecisionKind::kRange, key,
                                     static_cast<std::uint32_t>(*a.at_max_ns - a.at_ns + 1));
      in->sim.emit(nullptr, "action_time",
                   {{"index", static_cast<std::uint64_t>(i)}, {"at_ns", at}});
    }
    in->sim.at(at, key, [raw, i, key](sim::Simulator& s) {
      const Action& act = raw->sc->timeline[i];
      auto body = [raw, i](sim::Context& c) -> sim::Co<void> { return raw->exec(c, i); };
      if (act.kind == ActionKind::kRun && act.context != RunContext::kTask) {
        s.spawn_interrupt(
            act.cpu, act.context == RunContext::kNmi ? sim::CtxKind::kNmi : sim::CtxKind::kHardirq,
            act.describe(), body, key);
      } else {
        s.spawn_task(act.cpu, act.describe(), body, key);
      }
    });
  }
  in->groups.push_back(&sc.expect);
  for (const Expectations& alt : sc.expect.any_of)
    in->groups.push_back(&alt);
  in->alt_failures.resize(sc.expect.any_of.size());
  bool watch_trace = false;
  for (std::size_t g = 0; g < in->groups.size(); ++g) {
    const Expectations& ex = *in->groups[g];
    in->order_offset.push_back(in->orders.size());
    for (const OrderExpect& o : ex.order)
      in->orders.push_back(&o);
    watch_trace = watch_trace || !ex.events.empty() || !ex.order.empty();
    in->at_checked.emplace_back(ex.at.size(), false);
    for (std::size_t a = 0; a < ex.at.size(); ++a)
      in->sim.observe_at(ex.at[a].at_ns, [raw, g, a](sim::Simulator&) {
        raw->sink = g == 0 ? &raw->failures : &raw->alt_failures[g - 1];
        raw->check_at(raw->groups[g]->at[a]);
        raw->sink = &raw->failures;
        raw->at_checked[g][a] = true;
      });
  }
  if (watch_trace) in->watch_events();
  for (const std::string& what : opts.watches) {
    RunInstance::Watched w;
    w.what = what;
    const auto dot = what.find('.');
    const auto open = what.find('[');
    const std::string obj_name = what.substr(0, dot);
    bool found = false;
    for (std::uint32_t o = 0; o < sc.objects.size() && dot != std::string::npos; ++o) {
      if (sc.objects[o].name != obj_name) continue;
      w.object = o;
      if (open == std::string::npos) {
        w.global = what.substr(dot + 1);
        std::uint32_t size = 0;
        found = in->objects[o]->global_var(w.global, &size) != nullptr;
        if (const model::GlobalVar* v = sc.objects[o].spec.find_global(w.global))
          w.is_signed = v->sign == model::GlobalVar::Sign::kSigned;
        // <object>.<var>.<member>: an integer member of a struct variable.
        const auto mdot = w.global.find('.');
        if (!found && mdot != std::string::npos) {
          const std::string var = w.global.substr(0, mdot);
          const std::string member = w.global.substr(mdot + 1);
          const model::GlobalVar* v = sc.objects[o].spec.find_global(var);
          for (std::size_t f = 0; v != nullptr && f < v->fields.size() && !found; ++f) {
            const model::BtfField& field = v->fields[f];
            if (field.path != member || field.kind != model::BtfField::Kind::kInt ||
                field.size == 0 || field.size > 8)
              continue;
            w.global = var;
            w.offset = field.offset;
            w.size = field.size;
            w.is_signed = field.sign == model::GlobalVar::Sign::kSigned;
            found = true;
          }
        }
      } else if (what.back() == ']' && open > dot) {
        const std::string map_name = what.substr(dot + 1, open - dot - 1);
        const std::string key = what.substr(open + 1, what.size() - open - 2);
        for (std::uint32_t m = 0; m < sc.objects[o].spec.maps.size() && !found; ++m) {
          if (sc.objects[o].spec.maps[m].name != map_name) continue;
          w.map = in->map(NameRef{what, o, m});
          const std::uint32_t ks = w.map->def.key_size;
          if (key.rfind("0x", 0) == 0 && key.size() == 2 + 2 * std::size_t{ks} &&
              key.find_first_not_of("0123456789abcdefABCDEF", 2) == std::string::npos) {
            for (std::uint32_t b = 0; b < ks; ++b)
              w.key.push_back(
                  static_cast<std::uint8_t>(std::stoul(key.substr(2 + 2 * b, 2), nullptr, 16)));
            found = true;
          } else if (!key.empty() && key.size() <= 20 &&
                     key.find_first_not_of("0123456789") == std::string::npos) {
            const std::uint64_t v = std::stoull(key);
            for (std::uint32_t b = 0; b < ks; ++b)
              w.key.push_back(b < 8 ? static_cast<std::uint8_t>(v >> (8 * b)) : 0);
            found = ks >= 8 || v < (std::uint64_t{1} << (8 * ks));
          }
        }
      }
    }
    if (!found)
      return InputError{sc.file, "", 0, 0,
                        fmt::format("--watch {}: expected <object>.<global>, "
                                    "<object>.<global>.<member> or "
                                    "<object>.<map>[<key>] of this scenario (a key is an integer "
                                    "that fits the key size, or 0x and exactly the key's bytes)",
                                    what)};
    in->watched.push_back(std::move(w));
  }
  if (in->on_record) in->sim.trace().set_observer(in->on_record);
  if (!in->watched.empty()) {
    in->check_watches(nullptr);
    in->sim.set_step_hook([raw](const sim::Context& c) { raw->check_watches(&c); });
  }

  sim::RunStatus status;
  if (opts.progress) {
    // Slices of virtual time with events in them; empty time is skipped in one jump (an action
    // at 2^63-1 ns must not mean 2^43 empty slices).
    sim::TimeNs until = kProgressSliceNs;
    while (true) {
      status = in->sim.run(until);
      if (status != sim::RunStatus::kQuiescent || in->sim.quiescent()) break;
      opts.progress(in->sim.now());
      until = std::max(sim::add_sat(until, kProgressSliceNs), in->sim.next_event_time());
    }
  } else {
    status = in->sim.run();
  }
  if (status == sim::RunStatus::kQuiescent && in->sim.quiescent()) {
    in->k.check_quiescence();
    for (auto& v : in->k.invariant_violations(true))
      in->sim.report(sim::Finding{.kind = sim::FindingKind::kInvariant, .message = v}, false);
  }

  const Expectations& ex = sc.expect;
  // One group of expectations (the top level, or an alternative of any_of with `top` the top
  // level) into in->sink.
  auto judge = [&](const Expectations& e, std::size_t g, const Expectations* top) {
    const bool defaults = top == nullptr ? e.any_of.empty() : true;
    if (e.status_given || (defaults && !(top != nullptr && top->status_given))) {
      if (status != e.status)
        in->fail(-1, fmt::format("{}/status: the run ended {}, expected {}", e.pointer,
                                 sim::run_status_name(status), sim::run_status_name(e.status)));
    }
    judge_findings(*in, e, defaults && !(top != nullptr && top->findings_given));
    judge_events(*in, e, in->order_offset[g]);
    in->check_globals(e.globals, "at the end");
    judge_maps(*in, e.maps, "");
    judge_alive(*in, e.alive, e.pointer + "/alive", "at the end");
    for (std::size_t a = 0; a < e.at.size(); ++a)
      if (!in->at_checked[g][a])
        in->fail(-1, fmt::format("{}: not checked, the run ended ({}) at t={}", e.at[a].pointer,
                                 sim::run_status_name(status), in->sim.now()));
  };
  judge(ex, 0, nullptr);
  for (std::size_t i = 0; i < ex.any_of.size(); ++i) {
    in->sink = &in->alt_failures[i];
    judge(ex.any_of[i], i + 1, &ex);
  }
  in->sink = &in->failures;
  in->sim.trace().set_observer(nullptr);  // it reads `ex`, which outlives only this call
  in->sim.set_step_hook(nullptr);
  if (!ex.any_of.empty() &&
      std::none_of(in->alt_failures.begin(), in->alt_failures.end(),
                   [](const std::vector<std::string>& f) { return f.empty(); })) {
    in->fail(-1,
             fmt::format("/expect/any_of: none of the {} alternative(s) holds", ex.any_of.size()));
    for (std::size_t i = 0; i < ex.any_of.size(); ++i) {
      in->failures.push_back(fmt::format("  alternative {} ({}):", i, ex.any_of[i].pointer));
      for (const std::string& f : in->alt_failures[i])
        in->failures.push_back("    " + f);
    }
  }

  RunResult r;
  r.name = sc.name;
  r.seed = cfg.seed;
  r.profile = profile->name;
  r.window_ns = opts.window_ns;
  r.status = status;
  r.end_ns = in->sim.now();
  r.steps = in->sim.steps();
  r.digest = in->sim.trace().digest();
  r.records = in->sim.trace().count();
  r.findings = in->sim.findings();
  r.failures = in->failures;
  r.cpus = in->cpus;
  if (r.cpus.empty())
    for (int c = 0; c < sc.cpus; ++c)
      r.cpus.insert(c);
  r.decisions = in->sim.scheduler().decisions();
  r.watch_changes = std::move(in->watch_changes);
  r.instance = std::move(in);
  return r;
}

}  // namespace bpftsim::tools
