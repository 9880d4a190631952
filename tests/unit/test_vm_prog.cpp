// VM programs end to end: clang-compiled objects loaded into the model (model/bpf_object.h) and
// run by the interpreter (model/vm_prog.h).
//   [selftest]  our conformance with the kernel's bpf_timer selftests at the seed (v5.15
//               prog_tests/timer.c and prog_tests/timer_mim.c), emulated step for step with the
//               programs of scenarios/progs/timer_seed.bpf.c and timer_mim.bpf.c.
//   [vmprog]    every program fault kind ends as a clean finding naming the pc; a helper the model
//               does not implement is refused at load time; the non-timer helpers.
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <catch2/catch.hpp>

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "model/bpf_object.h"
#include "tests/unit/world.h"

using namespace bpftsim;
using namespace bpftsim::testing;
using model::BpfObject;
using model::VmProg;

namespace {

constexpr TimeNs kUs = sim::kNsPerUs;

std::string object_path(const std::string& stem) {
  return std::string(BPFTSIM_PROGS_DIR) + "/" + stem + ".bpf.o";
}

// Offset of global `var` in data section `section`, from the object's BTF as libbpf finalizes it
// (the offsets a skeleton's ->bss/->data fields have). The loader does not expose variables.
std::uint32_t global_offset(const std::string& path, const std::string& section,
                            const std::string& var) {
  bpf_object* o = bpf_object__open_file(path.c_str(), nullptr);
  REQUIRE(o != nullptr);
  const btf* b = bpf_object__btf(o);
  const int sec_id = btf__find_by_name_kind(b, section.c_str(), BTF_KIND_DATASEC);
  REQUIRE(sec_id > 0);
  const btf_type* sec = btf__type_by_id(b, static_cast<std::uint32_t>(sec_id));
  const btf_var_secinfo* vi = btf_var_secinfos(sec);
  std::int64_t off = -1;
  for (int i = 0; i < btf_vlen(sec); ++i) {
    const btf_type* v = btf__type_by_id(b, vi[i].type);
    if (var == btf__name_by_offset(b, v->name_off)) off = vi[i].offset;
  }
  bpf_object__close(o);
  INFO(path << ": " << section << " has no variable " << var);
  REQUIRE(off >= 0);
  return static_cast<std::uint32_t>(off);
}

// A loaded object with its globals readable by name, like a libbpf skeleton.
struct Skel {
  Skel(World& w, const std::string& stem, model::BpfObjectOptions opts = {})
      : path(object_path(stem)) {
    auto r = model::bpf_object_open_and_load(w.k, w.proc, path, opts);
    if (auto* e = std::get_if<model::LoadError>(&r)) FAIL(e->message);
    obj = std::move(std::get<std::unique_ptr<BpfObject>>(r));
  }
  std::uint64_t get(const std::string& section, const std::string& var) {
    auto key = section + ":" + var;
    if (!offsets.count(key)) offsets[key] = global_offset(path, section, var);
    return obj->read_global<std::uint64_t>(section, offsets[key]);
  }
  VmProg* prog(const std::string& name) const {
    VmProg* p = obj->prog(name);
    REQUIRE(p != nullptr);
    return p;
  }

  std::string path;
  std::unique_ptr<BpfObject> obj;
  std::map<std::string, std::uint32_t> offsets;
};

// timer__attach / timer__detach: one fentry link per program.
struct Links {
  std::vector<std::pair<VmProg*, int>> fds;
};

Co<void> attach_all(Context& c, World& w, const BpfObject& obj, Links* links) {
  for (VmProg* p : obj.progs()) {
    const int prog_fd = obj.prog_fd(p->name);
    const int fd = co_await w.k.sys.link_create(c, w.proc, prog_fd);
    links->fds.emplace_back(p, fd);
  }
}

Co<void> detach_all(Context& c, World& w, Links* links) {
  for (const auto& [p, fd] : links->fds) {
    const int ret = co_await w.k.sys.close(c, w.proc, fd);
    (void)ret;
  }
  links->fds.clear();
}

// bpf_prog_test_run_tracing (net/bpf/test_run.c, v5.15) for an fentry program: the kernel calls
// bpf_fentry_test1(1), bpf_fentry_test2(2, 3), ..., bpf_fentry_test8 in order, in this task on
// this CPU, and every attached fentry program fires on its function, whichever program's fd was
// passed (reference section 3). Returns the syscall's result; *retval is 0 as the kernel reports.
Co<int> fentry_test_run(Context& c, World& w, const Links& links, int prog_fd,
                        std::int64_t* retval) {
  const auto& kArgs = model::kFentryTestArgs;
  co_await c.step(w.k.cost.syscall_ns);
  auto it = w.proc.fds.find(prog_fd);
  if (it == w.proc.fds.end() || it->second.kind != model::FdEntry::Kind::kProg) co_return -9;
  for (std::size_t fn = 0; fn < kArgs.size(); ++fn) {
    const std::string section = "fentry/bpf_fentry_test" + std::to_string(fn + 1);
    for (const auto& [p, fd] : links.fds) {
      if (p->spec().section != section) continue;
      const std::int64_t r = co_await w.k.run_prog(c, *p, kArgs[fn]);
      (void)r;  // fentry return values are ignored
    }
  }
  *retval = 0;
  co_return 0;
}

// What user space reads from the skeleton at one instant.
struct TimerSeedGlobals {
  std::uint64_t callback_check = 0, callback2_check = 0, bss_data = 0, err = 0, ok = 0;
  std::size_t armed = 0;
};

}  // namespace

// prog_tests/timer.c at the seed (3540f7c6b96a): attach, test_run(test1) (which also runs test2
// on bpf_fentry_test2), detach, usleep(50), then the skeleton's globals; timer__destroy closes
// everything. We wait usleep(50) plus 10 x 1000 ns for timer_cb2's re-arms.
TEST_CASE("selftest timer (v5.15): test1 + test2 via fentry test_run, then the callbacks",
          "[vmprog][selftest]") {
  World w(2);
  Skel s(w, "timer_seed");
  CHECK(s.get(".data", "callback_check") == 52);
  CHECK(s.get(".data", "callback2_check") == 52);

  Links links;
  int test_run_err = -1;
  std::int64_t retval = -1;
  bool checked = false;
  TimerSeedGlobals seen;
  const TimeNs wait_ns = 50 * kUs + 10 * 1000;
  w.task_at(0, 0, "test_progs timer", [&](Context& c) -> Co<void> {
    co_await attach_all(c, w, *s.obj, &links);
    const int test1_fd = s.obj->prog_fd("test1");  // no temporaries inside co_await (GCC 12)
    test_run_err = co_await fentry_test_run(c, w, links, test1_fd, &retval);
    co_await detach_all(c, w, &links);
    w.sim.at(c.now() + wait_ns, 0x300000, [&](sim::Simulator& sim) {
      seen.callback_check = s.get(".data", "callback_check");
      seen.callback2_check = s.get(".data", "callback2_check");
      seen.bss_data = s.get(".bss", "bss_data");
      seen.err = s.get(".bss", "err");
      seen.ok = s.get(".bss", "ok");
      seen.armed = w.k.armed_timers();
      checked = true;
      w.exit_at(sim.now(), 0);  // timer__destroy: every fd closed
    });
  });
  const sim::RunStatus status = w.run();
  INFO(w.findings_text());
  CHECK(status == sim::RunStatus::kQuiescent);
  REQUIRE(checked);
  CHECK(test_run_err == 0);
  CHECK(retval == 0);
  CHECK(seen.callback_check == 42);   // timer_cb2 ran 10 times for hmap[HTAB]
  CHECK(seen.callback2_check == 42);  // and 10 times for hmap_malloc[HTAB_MALLOC]
  CHECK(seen.bss_data == 10);         // timer_cb1 ran for the array timer and the LRU timer
  CHECK(seen.err == 0);               // including bit 256: the seed's RCU-deferred element
  CHECK(seen.ok == (1 | 2 | 4));
  CHECK(seen.armed == 0);  // the parked array timer was cancelled, the deleted one RCU-freed
  // test1 and test2 ran in the one test_run task, in that order; every callback ran in
  // HRTIMER_SOFTIRQ on the CPU that armed it.
  std::vector<std::pair<std::string, std::uint32_t>> runs;
  std::size_t callbacks = 0;
  for (const auto& r : w.sim.trace().records()) {
    if (r.event == "bpf_prog_run")
      runs.emplace_back(std::get<std::string>(*r.field("name")), r.ctx);
    if (r.event == "bpf_timer_cb") {
      ++callbacks;
      CHECK(r.cpu == 0);
    }
  }
  REQUIRE(runs.size() == 2);
  CHECK(runs[0].first == "test1");
  CHECK(runs[1].first == "test2");
  CHECK(runs[0].second == runs[1].second);
  CHECK(callbacks == 22);  // timer_cb1 twice, timer_cb2 ten times per hash map
  CHECK(w.sim.findings().empty());
  w.k.check_quiescence();
  INFO(w.findings_text());
  CHECK(w.sim.findings().empty());
  CHECK(w.k.slab.live_count() == 0);
  CHECK(w.k.invariant_violations(true).empty());
}

// prog_tests/timer_mim.c at the seed (61f71e746c72): test1 arms inner_htab[1234] through
// outer_arr[1]; the callbacks ping-pong every 1000 ns. Closing the inner map's fd (its last user
// reference: the outer map holds only a refcnt) cancels the timer, deleting outer_arr[1] frees it.
// The closing task runs on the timer's CPU or on the other one (then release_uref's
// hrtimer_cancel may wait for a running callback).
TEST_CASE("selftest timer_mim (v5.15): timer in an inner map stops at the inner map's last uref",
          "[vmprog][selftest]") {
  const int closer_cpu = GENERATE(0, 1);
  INFO("close on cpu " << closer_cpu);
  World w(2);
  Skel s(w, "timer_mim");
  Links links;
  int test_run_err = -1;
  std::int64_t retval = -1;
  std::uint64_t cnt[4] = {0, 0, 0, 0};
  std::uint64_t err = 99, ok = 0;
  int close_ret = -1, delete_ret = -1;
  w.task_at(0, 0, "test_progs timer_mim", [&](Context& c) -> Co<void> {
    co_await attach_all(c, w, *s.obj, &links);
    const int test1_fd = s.obj->prog_fd("test1");  // no temporaries inside co_await (GCC 12)
    test_run_err = co_await fentry_test_run(c, w, links, test1_fd, &retval);
    co_await detach_all(c, w, &links);
  });
  auto read_at = [&](TimeNs t, int i) {
    w.sim.at(t, 0x300000 + i, [&, i](sim::Simulator&) {
      cnt[i] = s.get(".bss", "cnt");
      if (i == 1) {
        err = s.get(".bss", "err");
        ok = s.get(".bss", "ok");
      }
    });
  };
  read_at(200 * kUs, 0);
  read_at(400 * kUs, 1);
  w.task_at(400 * kUs, closer_cpu, "close inner, delete outer[1]", [&](Context& c) -> Co<void> {
    const int inner_fd = s.obj->map_fd("inner_htab");
    const int outer_fd = s.obj->map_fd("outer_arr");
    close_ret = co_await w.k.sys.close(c, w.proc, inner_fd);
    const std::vector<std::uint8_t> key = model::helpers::u32_key(1);
    delete_ret = co_await w.k.sys.map_delete_elem(c, w.proc, outer_fd, key);
  });
  read_at(600 * kUs, 2);
  read_at(800 * kUs, 3);
  w.exit_at(800 * kUs, 0);
  const sim::RunStatus status = w.run();
  INFO(w.findings_text());
  CHECK(status == sim::RunStatus::kQuiescent);
  CHECK(test_run_err == 0);
  CHECK(retval == 0);
  CHECK(cnt[0] > 0);
  CHECK(cnt[1] > cnt[0]);  // the ping-pong keeps going after detach
  CHECK(err == 0);
  CHECK(ok == (1 | 2));
  CHECK(close_ret == 0);
  CHECK(delete_ret == 0);
  CHECK(cnt[2] >= cnt[1]);
  CHECK(cnt[3] == cnt[2]);  // stopped
  CHECK(w.sim.findings().empty());
  w.k.check_quiescence();
  INFO(w.findings_text());
  CHECK(w.sim.findings().empty());
  CHECK(w.k.slab.live_count() == 0);
  CHECK(w.k.invariant_violations(true).empty());
}

namespace {

// Runs `name` of `s` once through BPF_PROG_TEST_RUN on `cpu` at time 0.
void test_run_at_0(World& w, Skel& s, const std::string& name, int cpu, std::int64_t* ret) {
  const int fd = s.obj->prog_fd(name);
  REQUIRE(fd >= 0);
  w.task_at(0, cpu, "test_run " + name, [&w, fd, ret](Context& c) -> Co<void> {
    const int r = co_await w.k.sys.prog_test_run(c, w.proc, fd, {}, ret);
    (void)r;
  });
}

}  // namespace

TEST_CASE("a VM program fault is a clean finding naming the pc", "[vmprog]") {
  using Row = std::tuple<const char*, const char*, int>;  // program, fault kind, insn class
  const auto [name, kind, insn_class] =
      GENERATE(Row{"bad_access", "bad_access", 0x01},         // ldx
               Row{"null_deref", "null_deref", 0x01},         // ldx
               Row{"rodata_write", "read_only_write", 0x02},  // st (or stx)
               Row{"runaway_loop", "budget", -1});
  World w(1);
  Skel s(w, "vm_faults");
  std::int64_t ret = 0;
  test_run_at_0(w, s, name, 0, &ret);
  const sim::RunStatus status = w.run();
  INFO(name << "\n" << w.findings_text());
  CHECK(status == sim::RunStatus::kStopped);
  REQUIRE(w.sim.findings().size() == 1);
  const sim::Finding& f = w.sim.findings().front();
  CHECK(f.kind == sim::FindingKind::kProgramFault);
  CHECK_THAT(f.message, Catch::Contains(std::string(kind) + " fault in " + name));
  const sim::TraceRecord* rec = nullptr;
  for (const auto& r : w.sim.trace().records())
    if (r.event == "bpf_prog_fault") rec = &r;
  REQUIRE(rec != nullptr);
  const auto pc = static_cast<std::uint32_t>(rec->int_field("pc", -1));
  CHECK_THAT(f.message, Catch::Contains("pc " + std::to_string(pc) + ":"));
  const VmProg* p = s.prog(name);
  REQUIRE(pc < p->spec().insns.size());
  const int cls = p->spec().insns[pc].code & 0x07;
  if (insn_class == 0x02) {
    CHECK((cls == 0x02 || cls == 0x03));
  } else if (insn_class >= 0) {
    CHECK(cls == insn_class);
  } else {
    // The budget ran out after a million instructions; the run was stopped there.
    CHECK(p->executed_insns() == VmProg::kDefaultInsnBudget);
  }
}

TEST_CASE("a helper the model does not implement is refused when the object is loaded",
          "[vmprog]") {
  World w(1);
  const std::string path = object_path("vm_unknown_helper");
  auto r = model::bpf_object_open_and_load(w.k, w.proc, path);
  REQUIRE(std::holds_alternative<model::LoadError>(r));
  const std::string& msg = std::get<model::LoadError>(r).message;
  INFO(msg);
  CHECK_THAT(msg, Catch::Contains(path));
  CHECK_THAT(msg, Catch::Contains("section 'fentry/bpf_fentry_test1'"));
  CHECK_THAT(msg, Catch::Contains("bpf_get_current_comm (helper 16)"));
  CHECK(w.k.maps().empty());  // refused before anything was created
  CHECK(w.k.progs().empty());
  CHECK(w.proc.fds.empty());
}

TEST_CASE("non-timer helpers: bpf_loop, spin lock, cpu id, clocks, prandom, trace_printk",
          "[vmprog]") {
  // bpf_loop arrived in v5.17: the object does not load on the seed (tests/unit/test_eras.cpp).
  World w(2, 1, {}, nullptr, {}, *model::profile_by_name("v5.17"));
  Skel s(w, "vm_helpers");
  std::int64_t ret = -1;
  test_run_at_0(w, s, "helpers", 1, &ret);
  w.exit_at(10 * kUs, 0);
  const sim::RunStatus status = w.run();
  INFO(w.findings_text());
  CHECK(status == sim::RunStatus::kQuiescent);
  CHECK(w.sim.findings().empty());
  CHECK(ret == 0);
  CHECK(s.get(".bss", "loop_ret") == 10);
  CHECK(s.get(".bss", "loop_sum") == 45);
  CHECK(s.get(".bss", "cpu_seen") == 1);
  CHECK(s.get(".bss", "now_ns") > 0);
  CHECK(s.get(".bss", "boot_ns") >= s.get(".bss", "now_ns"));
  CHECK(s.get(".bss", "rand_a") != s.get(".bss", "rand_b"));
  std::vector<std::string> msgs;
  for (const auto& r : w.sim.trace().records())
    if (r.event == "bpf_trace_printk") msgs.push_back(std::get<std::string>(*r.field("msg")));
  CHECK(msgs == std::vector<std::string>{"sum 45 cpu 1 hex ff"});
  const model::BpfMap* counters = s.obj->map("counters");
  REQUIRE(counters != nullptr);
  std::uint64_t count = 0;
  std::memcpy(&count, counters->arena().elem(0) + counters->value_off() + 8, 8);
  CHECK(count == 1);
  CHECK(w.events("lock_acquire") >= 1);
  w.k.check_quiescence();
  CHECK(w.sim.findings().empty());
  CHECK(w.k.slab.live_count() == 0);
}

TEST_CASE("bpf_trace_printk formatting: the conversions the helper supports", "[vmprog]") {
  model::AddressSpace mem;
  char text[] = "hello";
  const std::uint64_t str = model::AddressSpace::base(mem.add(model::RegionKind::kMapValue, "text",
                                                              reinterpret_cast<std::uint8_t*>(text),
                                                              sizeof(text), false));
  auto fmt = [&](const std::string& f, std::array<std::uint64_t, 3> a, std::string* out) {
    return model::helpers::format_trace_printk(mem, f, a, out);
  };
  std::string out;
  CHECK(fmt("%d %u %x", {0xffffffffu, 0xffffffffu, 255}, &out));
  CHECK(out == "-1 4294967295 ff");
  CHECK(fmt("%lld %llu %lX", {~0ull, ~0ull, 0xabcull << 32}, &out));
  CHECK(out == "-1 18446744073709551615 ABC00000000");
  CHECK(fmt("%s=%i%%", {str, 7, 0}, &out));
  CHECK(out == "hello=7%");
  CHECK(fmt("[%s]", {0, 0, 0}, &out));  // unreadable string: empty, not a fault
  CHECK(out == "[]");
  CHECK_FALSE(fmt("%p", {0, 0, 0}, &out));
  CHECK_FALSE(fmt("%d %d %d %d", {1, 2, 3}, &out));
  CHECK_FALSE(fmt("trailing %", {0, 0, 0}, &out));
}
