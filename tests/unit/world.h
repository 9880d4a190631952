// World: the test fixture for the model's own API. A Simulator and a Kernel on N CPUs, one user
// process ("loader"), and shortcuts to create timer maps, native programs (C++ stand-ins for BPF
// bytecode) and timeline actions. Races and helper return codes are not written here: their one
// catalogue is the JSON scenarios (scenarios/races, errors, fixes). Header-only: the property
// tests, which link only the model, use it too.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model/errno.h"
#include "model/helpers.h"
#include "model/kernel.h"
#include "model/libbpf_loader.h"
#include "sim/simulator.h"

namespace bpftsim::testing {

using model::BpfMap;
using model::NativeProg;
using model::ProgRun;
using sim::Co;
using sim::Context;
using sim::TimeNs;

struct World {
  explicit World(int cpus = 2, std::uint64_t seed = 1, model::CostModel cost = {},
                 std::unique_ptr<sim::Scheduler> sched = nullptr, sim::SimConfig cfg = {},
                 model::KernelProfile profile = model::default_profile())
      : sim(make_cfg(cfg, cpus, seed), std::move(sched)),
        k(sim, std::move(profile), cost),
        proc(k.sys.new_process("loader")) {}

  static sim::SimConfig make_cfg(sim::SimConfig c, int cpus, std::uint64_t seed) {
    c.cpus = cpus;
    c.seed = seed;
    return c;
  }

  // A map whose value is {struct bpf_timer t; <pad>} unless told otherwise; returns it and
  // records its fd in `fds`.
  BpfMap* map(std::uint32_t type, std::uint32_t max_entries, std::uint32_t value_size = 16,
              std::int32_t timer_off = 0, std::uint32_t flags = 0, std::int32_t lock_off = -1,
              std::string name = "") {
    model::MapDef d;
    d.name = name.empty() ? "m" + std::to_string(k.maps().size() + 1) : name;
    d.type = type;
    d.key_size = 4;
    d.value_size = value_size;
    d.max_entries = max_entries;
    d.map_flags = flags;
    d.timer_off = timer_off;
    d.spin_lock_off = lock_off;
    int err = 0;
    BpfMap* m = k.create_map(nullptr, d, &err);
    if (!m) return nullptr;
    fds[m] = k.sys.map_create(proc, m);
    return m;
  }
  BpfMap* array(std::uint32_t n = 1) { return map(model::kBpfMapTypeArray, n); }

  NativeProg* prog(std::string name, NativeProg::Entry entry, std::vector<NativeProg::Callback> cbs,
                   std::vector<BpfMap*> used) {
    NativeProg* p =
        k.create_native_prog(std::move(name), std::move(entry), std::move(cbs), std::move(used));
    prog_fds[p] = k.sys.prog_load(proc, p);
    return p;
  }

  // Runs `p` at time t on cpu as a BPF_PROG_TEST_RUN from the loader process.
  void run_at(TimeNs t, int cpu, model::BpfProg* p, std::int64_t* ret = nullptr) {
    sim.at(t, 0x100000u + static_cast<unsigned>(cpu), [this, cpu, p, ret](sim::Simulator& s) {
      s.spawn_task(cpu, "test_run " + p->name, [this, p, ret](Context& c) -> Co<void> {
        std::int64_t r = 0;
        co_await k.sys.prog_test_run(c, proc, prog_fds.at(p), {}, &r);
        if (ret) *ret = r;
      });
    });
  }
  // A user-space action at time t on cpu.
  void task_at(TimeNs t, int cpu, std::string name, std::function<Co<void>(Context&)> body) {
    sim.at(t, 0x200000u + static_cast<unsigned>(cpu),
           [cpu, name = std::move(name), body = std::move(body)](sim::Simulator& s) {
             s.spawn_task(cpu, name, body);
           });
  }
  void close_at(TimeNs t, int cpu, BpfMap* m) {
    task_at(t, cpu, "close map",
            [this, m](Context& c) -> Co<void> { co_await k.sys.close(c, proc, fds.at(m)); });
  }
  void exit_at(TimeNs t, int cpu) {
    task_at(t, cpu, "exit", [this](Context& c) -> Co<void> { co_await k.sys.exit(c, proc); });
  }

  sim::RunStatus run(TimeNs until = sim::kTimeNever) { return sim.run(until); }

  std::size_t count(const std::string& kind) const {
    std::size_t n = 0;
    for (const auto& f : sim.findings())
      n += sim::finding_kind_name(f.kind) == kind ? 1 : 0;
    return n;
  }
  std::size_t events(const std::string& name) const {
    std::size_t n = 0;
    for (const auto& r : sim.trace().records())
      n += r.event == name ? 1 : 0;
    return n;
  }
  std::string findings_text() const {
    std::string s;
    for (const auto& f : sim.findings()) {
      s += std::string(sim::finding_kind_name(f.kind)) + ": " + f.message + "\n";
      for (const auto& d : f.details)
        s += "    " + d + "\n";
    }
    return s;
  }

  // The trace between two times, as text (for failure messages).
  std::string trace_text(TimeNs from = 0, TimeNs to = sim::kTimeNever) const {
    std::string s;
    for (const auto& r : sim.trace().records())
      if (r.t_ns >= from && r.t_ns <= to) s += sim::Trace::format_text(r) + "\n";
    return s;
  }

  sim::Simulator sim;
  model::Kernel k;
  model::Process& proc;
  std::map<BpfMap*, int> fds;
  std::map<model::BpfProg*, int> prog_fds;
};

}  // namespace bpftsim::testing
