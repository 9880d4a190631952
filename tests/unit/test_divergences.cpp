// Divergences of issue 11 (a line-by-line audit of the model against the kernel), each test
// named after the kernel function whose behaviour it pins down. Others live with their subject:
// divergence 1 (hrtimer_start_range_ns' ktime_add_safe) in scenarios/errors/start-nsecs-*.json
// and start-abs-negative-v6.4.json, divergence 5 (map_check_btf's order) in
// test_helper_errors.cpp.
#include <catch2/catch.hpp>

#include <memory>
#include <span>

#include "model/profile.h"
#include "tests/unit/world.h"

using namespace bpftsim;
using namespace bpftsim::testing;
namespace h = bpftsim::model::helpers;

namespace {

// Index of the first trace record of `event` whose field `key` is `value` (or npos).
std::size_t first_record(const World& w, const std::string& event, const std::string& key,
                         const std::string& value) {
  const auto& recs = w.sim.trace().records();
  for (std::size_t i = 0; i < recs.size(); ++i) {
    if (recs[i].event != event) continue;
    const auto* f = recs[i].field(key);
    if (f && std::holds_alternative<std::string>(*f) && std::get<std::string>(*f) == value)
      return i;
  }
  return std::string::npos;
}

// Takes the second candidate of every `cpu` decision, the first of any other.
class SecondCpu final : public sim::Scheduler {
 public:
  std::size_t cpu_decisions = 0;

 protected:
  std::uint32_t pick(std::size_t, sim::DecisionKind kind, std::uint64_t, std::uint32_t,
                     std::span<const sim::Candidate>) override {
    if (kind != sim::DecisionKind::kCpu) return 0;
    ++cpu_decisions;
    return 1;
  }
};

}  // namespace

// Divergence 7: htab_map_free (kernel/bpf/hashtab.c) starts with rcu_barrier(), so element
// frees still queued by call_rcu (htab_elem_free_rcu, which cancels and frees the element's
// timer) run before the map is freed. The model used to free the map first.
TEST_CASE("htab_map_free: rcu_barrier waits for pending element frees before the map goes",
          "[divergence]") {
  World w(1);
  BpfMap* m = w.map(model::kBpfMapTypeHash, 4, 16, 0, model::kBpfFNoPrealloc);
  REQUIRE(m != nullptr);
  NativeProg* p = nullptr;
  std::vector<std::int64_t> rets;
  // The program does not hold the map (no used-map reference): closing the fd frees it.
  p = w.prog(
      "arm",
      [&](ProgRun& r, auto) -> Co<std::int64_t> {
        const std::vector<std::uint8_t> zero(16, 0);
        rets.push_back(co_await h::map_update(r, *m, h::u32_key(1), zero, 0));
        const auto v = co_await h::map_lookup(r, *m, h::u32_key(1));
        const auto t = h::timer_of(*m, v);
        rets.push_back(co_await h::timer_init(r, t, *m, model::kClockMonotonic));
        rets.push_back(co_await h::timer_set_callback(r, t, p->callback(0)));
        rets.push_back(co_await h::timer_start(r, t, 1ull << 35, 0));
        co_return 0;
      },
      {{"cb", [](ProgRun&, std::array<std::uint64_t, 5>) -> Co<std::int64_t> { co_return 0; }}},
      {});
  w.run_at(0, 0, p);
  w.task_at(10000, 0, "delete then close", [&](Context& c) -> Co<void> {
    // The element goes to call_rcu; the map's last reference goes before the grace period ends.
    rets.push_back(co_await w.k.sys.map_delete_elem(c, w.proc, w.fds.at(m), h::u32_key(1)));
    rets.push_back(co_await w.k.sys.close(c, w.proc, w.fds.at(m)));
  });
  w.exit_at(100000, 0);
  REQUIRE(w.run() == sim::RunStatus::kQuiescent);
  INFO(w.findings_text() << w.trace_text());
  CHECK(rets == std::vector<std::int64_t>{0, 0, 0, 0, 0, 0});
  CHECK(w.sim.findings().empty());
  const std::size_t timer_freed = first_record(w, "kfree", "kind", "bpf_hrtimer");
  const std::size_t elem_freed = first_record(w, "kfree", "kind", "htab_elem");
  const std::size_t map_freed = first_record(w, "kfree", "kind", "bpf_map");
  REQUIRE(timer_freed != std::string::npos);
  REQUIRE(elem_freed != std::string::npos);
  REQUIRE(map_freed != std::string::npos);
  CHECK(timer_freed < map_freed);
  CHECK(elem_freed < map_freed);
  CHECK(w.events("rcu_barrier") == 1);
  CHECK(w.k.slab.live_count() == 0);
}

// Divergence 9: with 2.12 (v6.10), bpf_timer_cancel_and_free called from a timer callback
// queues bpf_timer_delete_work on system_unbound_wq (kernel/bpf/helpers.c): it may run on any
// CPU, a `cpu` decision of the scheduler. A map's own deferred free (bpf_map_put ->
// bpf_map_free_deferred, system_wq) stays on the queuing CPU unless the scenario says
// work_on_any_cpu.
TEST_CASE("bpf_timer_cancel_and_free (2.12): the deferred delete work runs on any CPU",
          "[divergence]") {
  auto sched = std::make_unique<SecondCpu>();
  SecondCpu* s = sched.get();
  World w(2, 1, {}, std::move(sched), {}, *model::profile_by_name("v6.10"));
  BpfMap* arr = w.array(1);
  NativeProg* p = nullptr;
  std::vector<std::int64_t> rets;
  p = w.prog("arm",
             [&](ProgRun& r, auto) -> Co<std::int64_t> {
               const auto v = co_await h::map_lookup(r, *arr, h::u32_key(0));
               const auto t = h::timer_of(*arr, v);
               rets.push_back(co_await h::timer_init(r, t, *arr, model::kClockMonotonic));
               rets.push_back(co_await h::timer_set_callback(r, t, p->callback(0)));
               rets.push_back(co_await h::timer_start(r, t, 1000, 0));
               co_return 0;
             },
             {{"cb",
               [&](ProgRun& r, std::array<std::uint64_t, 5>) -> Co<std::int64_t> {
                 // Overwrites its own element: cancel_and_free from inside the callback.
                 const std::vector<std::uint8_t> zero(16, 0);
                 rets.push_back(co_await h::map_update(r, *arr, h::u32_key(0), zero, 0));
                 co_return 0;
               }}},
             {arr});
  w.run_at(0, 0, p);
  w.exit_at(100000, 0);
  REQUIRE(w.run() == sim::RunStatus::kQuiescent);
  INFO(w.findings_text() << w.trace_text());
  CHECK(rets == std::vector<std::int64_t>{0, 0, 0, 0});
  CHECK(w.sim.findings().empty());
  // The delete work went to cpu 1 (the scheduler's second candidate); the callback ran on 0.
  bool delete_work_on_1 = false, map_free_on_0 = false;
  for (const auto& r : w.sim.trace().records()) {
    if (r.event != "queue_work") continue;
    const std::string work = std::get<std::string>(*r.field("work"));
    if (work.find("bpf_timer_delete_work") == 0) delete_work_on_1 = r.int_field("cpu") == 1;
    if (work.find("bpf_map_free_deferred") == 0) map_free_on_0 = r.int_field("cpu") == 0;
  }
  CHECK(delete_work_on_1);
  CHECK(map_free_on_0);
  CHECK(s->cpu_decisions == 1);
  CHECK(w.k.slab.live_count() == 0);
}
