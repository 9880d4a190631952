// The model's basic timer life: init, set_callback, start, expiry in softirq on the arming CPU,
// self re-arming, teardown at process exit with nothing left allocated.
#include <fmt/format.h>
#include <catch2/catch.hpp>

#include <algorithm>

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

TEST_CASE("an object's history keeps its allocation and the latest events, counting the dropped",
          "[model]") {
  World w(1);
  model::Slab& slab = w.k.slab;
  const model::ObjId id = slab.alloc(nullptr, model::ObjKind::kProg, "p");
  const std::size_t notes = model::kHistoryKept + 10;
  for (std::size_t i = 1; i <= notes; ++i) {  // numbers rendered when read, and free text
    if (i % 2) {
      slab.note(nullptr, id, "refcnt+1 -> {}", static_cast<std::int64_t>(i));
    } else {
      slab.note(nullptr, id, fmt::format("refcnt+1 -> {}", i));
    }
  }
  REQUIRE(slab.find(id) != nullptr);
  const std::vector<model::ObjEvent> history = slab.history(id);
  const std::uint64_t dropped = slab.dropped(id);
  REQUIRE(history.size() == model::kHistoryKept);
  CHECK(history.front().what == "alloc");
  CHECK(history.back().what == fmt::format("refcnt+1 -> {}", notes));
  // Kept after the allocation: the last kHistoryKept - 1 notes.
  CHECK(history[1].what == fmt::format("refcnt+1 -> {}", notes - model::kHistoryKept + 2));
  CHECK(history[2].what == fmt::format("refcnt+1 -> {}", notes - model::kHistoryKept + 3));
  CHECK(dropped == notes - (model::kHistoryKept - 1));
  const sim::Finding f = slab.finding_about(sim::FindingKind::kLeak, nullptr, id, "test", "leaked");
  REQUIRE(f.history.size() == model::kHistoryKept + 1);
  CHECK(f.history[0] == "alloc");
  CHECK(f.history[1] == fmt::format("... {} earlier events", dropped));
  CHECK(f.history.back() == fmt::format("refcnt+1 -> {}", notes));
  CHECK(slab.history_text(id).find(fmt::format("[... {} earlier events] [t=", dropped)) !=
        std::string::npos);

  // Below the bound nothing is dropped and nothing is said.
  const model::ObjId short_id = slab.alloc(nullptr, model::ObjKind::kProg, "q");
  slab.note(nullptr, short_id, "refcnt+1 -> 2");
  slab.note(nullptr, short_id, "refcnt+1 usercnt+1 -> {}/{}", 3, 1);
  slab.free(nullptr, short_id, "test_free");
  CHECK(slab.dropped(short_id) == 0);
  CHECK(slab.finding_about(sim::FindingKind::kLeak, nullptr, short_id, "test", "leaked").history ==
        std::vector<std::string>{"alloc", "refcnt+1 -> 2", "refcnt+1 usercnt+1 -> 3/1",
                                 "free by test_free"});
}

TEST_CASE("the slab keeps every name, short, long, past a chunk or after a shared prefix",
          "[model]") {
  World w(1);
  model::Slab& slab = w.k.slab;
  const std::string long_name(300, 'x');     // past the 1-byte length
  const std::string huge_name(70'000, 'y');  // past a whole name chunk
  const std::string edge_name(0xfe, 'z');    // the first length that takes 5 bytes
  std::vector<std::pair<model::ObjId, std::string>> made;
  for (int i = 0; i < 3000; ++i)  // fills several 64 KiB chunks
    made.emplace_back(slab.alloc(nullptr, model::ObjKind::kMap, fmt::format("map {} 'm'", i)),
                      fmt::format("map {} 'm'", i));
  made.emplace_back(slab.alloc(nullptr, model::ObjKind::kProg, ""), "");
  made.emplace_back(slab.alloc(nullptr, model::ObjKind::kProg, long_name), long_name);
  made.emplace_back(slab.alloc(nullptr, model::ObjKind::kProg, huge_name), huge_name);
  made.emplace_back(slab.alloc(nullptr, model::ObjKind::kProg, edge_name), edge_name);
  const std::uint32_t prefix = slab.add_prefix("timer of map 7 (m) key ");
  for (int key = 0; key < 1000; ++key)
    made.emplace_back(
        slab.alloc_named(nullptr, model::ObjKind::kBpfHrtimer, prefix, std::to_string(key)),
        fmt::format("timer of map 7 (m) key {}", key));
  made.emplace_back(slab.alloc_named(nullptr, model::ObjKind::kBpfHrtimer, prefix, long_name),
                    "timer of map 7 (m) key " + long_name);
  for (const auto& [id, name] : made) {
    REQUIRE(slab.name(id) == name);
    CHECK(slab.owner(id) == 0);
  }
  const model::ObjId owned = slab.alloc(nullptr, model::ObjKind::kHtabElem, "elem", made[5].first);
  CHECK(slab.owner(owned) == made[5].first);
  CHECK(slab.history_text(made.back().first)
            .starts_with("bpf_hrtimer#" + std::to_string(made.back().first) + " (timer of map 7"));
}

TEST_CASE("the bpf_hrtimer table finds every timer by id, in place, across its chunks", "[model]") {
  model::BpfHrtimerTable table;
  std::vector<model::BpfHrtimer*> added;
  const std::size_t n = 9000;  // past the geometric chunks (8 .. 4096: 8184 entries)
  for (std::size_t i = 0; i < n; ++i)
    added.push_back(&table.add(3 * i + 2));  // ids with gaps, as other objects take ids too
  REQUIRE(table.size() == n);
  for (std::size_t i = 0; i < n; ++i) {
    REQUIRE(table.find(3 * i + 2) == added[i]);  // found, and never moved by later adds
    CHECK(added[i]->obj() == 3 * i + 2);
    CHECK(table.find(3 * i + 1) == nullptr);
  }
  CHECK(table.find(0) == nullptr);
  CHECK(table.find(3 * n + 2) == nullptr);
  std::vector<model::ObjId> order;
  table.for_each([&](const model::BpfHrtimer& t) { order.push_back(t.obj()); });
  REQUIRE(order.size() == n);
  CHECK(std::is_sorted(order.begin(), order.end()));
  CHECK(std::adjacent_find(added.begin(), added.end()) == added.end());
}

// A refcount record names its counter track by the object's id ("counter:map3.refcnt"); the keys
// of small ids are made once per thread and reused by every later kernel, larger ones built per
// record: both must name the right object, run after run.
TEST_CASE("refcount records name the counter tracks of their own map", "[model]") {
  for (int run = 0; run < 2; ++run) {
    CAPTURE(run);
    World w(1);
    std::vector<model::BpfMap*> maps;
    for (int i = 0; i < 70; ++i)
      maps.push_back(w.array());
    REQUIRE(maps[2]->id == 3);
    REQUIRE(maps[69]->id == 70);
    for (model::BpfMap* m : {maps[2], maps[69], maps[69]})
      w.k.sys.map_inc(nullptr, *m);
    std::vector<std::string> seen;
    for (const sim::TraceRecord& r : w.sim.trace().records()) {
      if (r.event != "map_refcnt") continue;
      for (const sim::TraceField& f : r.fields)
        if (f.key.starts_with("counter:"))
          seen.push_back(fmt::format("{}={}", f.key, std::get<std::int64_t>(f.value)));
    }
    CHECK(seen == std::vector<std::string>{"counter:map3.refcnt=2", "counter:map3.usercnt=1",
                                           "counter:map70.refcnt=2", "counter:map70.usercnt=1",
                                           "counter:map70.refcnt=3", "counter:map70.usercnt=1"});
  }
}
