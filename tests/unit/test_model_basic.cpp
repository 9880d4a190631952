// The model's basic timer life: init, set_callback, start, expiry in softirq on the arming CPU,
// self re-arming, teardown at process exit with nothing left allocated.
#include <catch2/catch.hpp>

#include "tests/unit/world.h"

using namespace bpftsim;
using namespace bpftsim::testing;
namespace h = bpftsim::model::helpers;

TEST_CASE("a timer fires in softirq on the arming CPU and re-arms itself", "[model]") {
  World w(2);
  BpfMap* arr = w.array(1);
  int fired = 0;
  std::vector<int> cpus;
  std::vector<TimeNs> times;
  std::vector<std::int64_t> rets;
  std::vector<sim::CtxKind> kinds;
  NativeProg* p = nullptr;
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
               [&](ProgRun& r, std::array<std::uint64_t, 5> a) -> Co<std::int64_t> {
                 ++fired;
                 cpus.push_back(r.ctx.cpu());
                 times.push_back(r.ctx.now());
                 kinds.push_back(r.ctx.kind());
                 if (fired < 3)
                   rets.push_back(co_await h::timer_start(r, h::timer_of(*arr, a[2]), 500, 0));
                 co_return 0;
               }}},
             {arr});
  w.run_at(0, 1, p);
  w.exit_at(100000, 0);
  CHECK(w.run() == sim::RunStatus::kQuiescent);
  INFO(w.findings_text());
  CHECK(fired == 3);
  CHECK(rets == std::vector<std::int64_t>{0, 0, 0, 0, 0});
  CHECK(kinds == std::vector<sim::CtxKind>(3, sim::CtxKind::kSoftirq));
  CHECK(cpus == std::vector<int>{1, 1, 1});
  REQUIRE(times.size() == 3);
  CHECK(times[1] - times[0] >= 500);
  CHECK(w.sim.findings().empty());
  w.k.check_quiescence();
  CHECK(w.sim.findings().empty());
  CHECK(w.k.slab.live_count() == 0);
  CHECK(w.k.invariant_violations(true).empty());
}

// Regression (GCC 12 evaluated the awaiting arm of the conditional that chose an LRU node):
// updating an existing LRU key read the absent per-CPU extra element (SIGSEGV), and every insert
// took a second free node. With max_entries 4, four keys fit; re-updating an existing key takes a
// free node and returns the old one. The fifth key finds the local free list empty and refills it
// (bpf_lru_list_pop_free_to_local): the pending nodes are flushed, the referenced one (key 1's,
// looked up, and a replacing insert starts referenced) to the active list, the others to the
// inactive list, whose shrink evicts every one of them in one batch.
TEST_CASE("LRU hash: update of an existing key, four keys in four nodes, then one eviction",
          "[model][lru]") {
  World w(1);
  BpfMap* m = w.map(model::kBpfMapTypeLruHash, 4, 16, -1);
  REQUIRE(m != nullptr);
  const std::vector<std::uint8_t> zero(16, 0);
  std::vector<std::int64_t> rets;
  std::vector<std::uint32_t> present;
  NativeProg* p =
      w.prog("fill",
             [&](ProgRun& r, auto) -> Co<std::int64_t> {
               for (std::uint32_t key : {1u, 1u, 2u, 3u, 4u})
                 rets.push_back(co_await h::map_update(r, *m, h::u32_key(key), zero, 0));
               (void)co_await h::map_lookup(r, *m, h::u32_key(1));
               rets.push_back(co_await h::map_update(r, *m, h::u32_key(5), zero, 0));
               std::vector<std::uint8_t> value;
               for (std::uint32_t key = 1; key <= 5; ++key)
                 if (m->peek_elem(h::u32_key(key).data(), &value)) present.push_back(key);
               co_return 0;
             },
             {}, {m});
  w.run_at(0, 0, p);
  w.exit_at(100000, 0);
  CHECK(w.run() == sim::RunStatus::kQuiescent);
  INFO(w.findings_text());
  CHECK(rets == std::vector<std::int64_t>(6, 0));
  // Keys 2, 3 and 4 were unreferenced on the inactive list when key 5 needed a node.
  CHECK(present == std::vector<std::uint32_t>{1, 5});
  CHECK(w.sim.findings().empty());
}
