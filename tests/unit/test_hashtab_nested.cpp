// Hash map updates interleaved on one CPU (issue 7, item 7): an NMI program updating a key of a
// preallocated hash map while the interrupted task's update of another key of the same map is
// between its element swap and its unlock. The kernel hands the per-CPU extra element over and
// takes the old element back in one go (alloc_htab_elem); the model once did the second half one
// step later, so the NMI got the same extra element, already linked in the task's bucket.
#include <catch2/catch.hpp>

#include <cstring>

#include "tests/unit/world.h"

using namespace bpftsim;
using namespace bpftsim::testing;
namespace h = bpftsim::model::helpers;

TEST_CASE("an NMI update of another key during an update of the same prealloc hash map",
          "[hashtab]") {
  // Keys 0 and 1 fall in different buckets of a 4-bucket map (FNV-1a of the key bytes: 1 and 0),
  // so the NMI does not spin on the lock the interrupted task holds.
  int windows_hit = 0;
  for (TimeNs off = 0; off <= 300; off += 3) {
    World w(1);
    BpfMap* m = w.map(model::kBpfMapTypeHash, 4);
    REQUIRE(m != nullptr);
    const std::vector<std::uint8_t> zeros(16, 0);
    NativeProg* p = w.prog("upd",
                           [&](ProgRun& r, std::array<std::uint64_t, 5> a) -> Co<std::int64_t> {
                             const auto key = h::u32_key(static_cast<std::uint32_t>(a[0]));
                             if (a[1] == 1) co_return co_await h::map_delete(r, *m, key);
                             co_return co_await h::map_update(r, *m, key, zeros, model::kBpfAny);
                           },
                           {}, {m});
    std::vector<std::int64_t> rets;
    auto run = [&](Context& c, std::uint64_t key, std::uint64_t del) -> Co<void> {
      rets.push_back(co_await w.k.run_prog(c, *p, {key, del, 0, 0, 0}));
    };
    w.task_at(0, 0, "insert", [&](Context& c) -> Co<void> {
      co_await run(c, 0, 0);
      co_await run(c, 1, 0);
    });
    w.task_at(10'000, 0, "update 0", [&](Context& c) -> Co<void> { co_await run(c, 0, 0); });
    w.sim.at(10'000 + off, 7, [&](sim::Simulator& s) {
      s.spawn_interrupt(0, sim::CtxKind::kNmi, "nmi update 1",
                        [&](Context& c) -> Co<void> { co_await run(c, 1, 0); });
    });
    w.task_at(20'000, 0, "delete both", [&](Context& c) -> Co<void> {
      co_await run(c, 0, 1);
      co_await run(c, 1, 1);
    });
    REQUIRE(w.run() == sim::RunStatus::kQuiescent);
    INFO("NMI at +" << off << " ns\n" << w.findings_text() << w.trace_text(10'000, 11'000));
    REQUIRE(rets == std::vector<std::int64_t>{0, 0, 0, 0, 0, 0});
    CHECK(w.k.invariant_violations(true).empty());
    CHECK(w.sim.findings().empty());
    std::vector<std::uint8_t> v;
    CHECK_FALSE(m->peek_elem(h::u32_key(0).data(), &v));
    CHECK_FALSE(m->peek_elem(h::u32_key(1).data(), &v));
    // Did the NMI's update run inside the task's, after the task linked its new element and
    // before it released its bucket lock?
    std::uint32_t task_ctx = 0;
    bool nested = false, nmi_updated = false;
    for (const auto& r : w.sim.trace().records()) {
      if (r.t_ns < 10'000) continue;
      if (r.event == "map_update" && task_ctx == 0) {
        task_ctx = r.ctx;
      } else if (r.event == "map_update" && task_ctx != 0 && r.ctx != task_ctx) {
        nmi_updated = true;
      } else if (r.event == "lock_release" && r.ctx == task_ctx && task_ctx != 0) {
        nested = nmi_updated;
        break;
      }
    }
    if (nested) ++windows_hit;
  }
  // The sweep must have covered that window (else this test would show nothing).
  CHECK(windows_hit > 0);
}
