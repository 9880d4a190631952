// Kernel object lifetimes: mm/slab_common.c (kmalloc/kfree) with what KASAN and kmemleak add.
// Every modeled kernel object (map, prog, bpf_hrtimer, hash element, ...) gets an id from here;
// its history records allocation, each reference change and the free, with time, CPU and context.
// Nothing is ever reused: a freed object stays poisoned, so an access to it is reported as a
// use-after-free finding carrying the object's history, and the simulation goes on.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sim/simulator.h"

namespace bpftsim::model {

using ObjId = std::uint64_t;  // 0 = none

enum class ObjKind : std::uint8_t { kMap, kProg, kBpfHrtimer, kHtabElem, kLink };
const char* obj_kind_name(ObjKind kind);

// One line of an object's history as read back (history(), the reports): rendered text.
struct ObjEvent {
  sim::TimeNs t_ns;
  int cpu;
  std::uint32_t ctx;
  std::string what;
};

// The text of a history line noted with numbers ("refcnt+1 -> {}"): a literal (consteval), so
// the Slab keeps the pointer and renders the line with fmt only when the history is read.
struct NoteFormat {
  const char* text;
  consteval NoteFormat(const char* s) : text(s) {}  // NOLINT(google-explicit-constructor)
};

// An object's history is bounded: its first event (the allocation) and the latest
// kHistoryKept - 1 after it. Older ones are dropped and counted, and the reports say how many
// ("... N earlier events") where they were: a prog that arms a million timers keeps 64 lines,
// not a million.
inline constexpr std::size_t kHistoryKept = 64;

// One registry entry, 24 bytes: a million live objects are a million of these. The allocation
// (the history's first line, "alloc") is kept inline; the name sits in the Slab's name arena,
// the events after the allocation and the owner (both rare) in side tables of the Slab.
struct KObject {
  sim::TimeNs alloc_ns = 0;  // the "alloc" event: time, context, CPU
  std::uint32_t alloc_ctx = 0;
  std::int16_t alloc_cpu = -1;
  ObjKind kind = ObjKind::kMap;
  bool freed = false;
  std::uint32_t name_ref = 0;  // where Slab keeps its name
  std::uint32_t later = 0;     // 1 + its index in Slab::later_ (events after "alloc"), 0: none
};

class Slab {
 public:
  explicit Slab(sim::Simulator& sim) : sim_(sim) {}

  // kmalloc; `owner` (0: none) is the object it belongs to, reachable through it for the leak
  // check (a no-prealloc hash element belongs to its map).
  ObjId alloc(const sim::Context* ctx, ObjKind kind, std::string_view name, ObjId owner = 0);
  // A name prefix shared by many objects (the timers of one map: "timer of map 1 (m) key "),
  // stored once; alloc_named(.., prefix, rest) names its object prefix + rest, keeping only
  // `rest` and a reference to the prefix.
  std::uint32_t add_prefix(std::string_view prefix);
  ObjId alloc_named(const sim::Context* ctx, ObjKind kind, std::uint32_t prefix,
                    std::string_view rest, ObjId owner = 0);
  // kfree. A second free is a double_free finding (returns false).
  bool free(const sim::Context* ctx, ObjId id, const char* where);
  // Checks that `id` is live before the model touches it; a freed object is a use_after_free
  // finding naming `where` (returns false). Accesses are not added to the history.
  bool access(const sim::Context* ctx, ObjId id, const char* where);
  // Adds a line to the object's history (a refcount change, a state change): `format` with
  // its {} replaced by a and b, rendered only when the history is read (nothing is formatted
  // per event); or free text, stored in the name arena.
  void note(const sim::Context* ctx, ObjId id, NoteFormat format, std::int64_t a,
            std::int64_t b = 0);
  void note(const sim::Context* ctx, ObjId id, std::string_view text);

  const KObject* find(ObjId id) const;
  bool live(ObjId id) const;
  std::vector<ObjId> live_objects() const;  // ascending ids
  std::size_t live_count() const { return live_; }
  std::size_t uaf_count() const { return uaf_; }
  // Of a known object (SIM_ASSERTs): its name, owner (0: none), history (the allocation first;
  // at most kHistoryKept lines) and the number of events dropped after the allocation.
  std::string name(ObjId id) const;
  ObjId owner(ObjId id) const;
  std::vector<ObjEvent> history(ObjId id) const;
  std::uint64_t dropped(ObjId id) const;

  // A leak finding for every live object not in `reachable`.
  void report_leaks(const std::set<ObjId>& reachable);
  std::string history_text(ObjId id) const;
  // A finding about object `id` found by `site`: its name and history as structured fields.
  sim::Finding finding_about(sim::FindingKind kind, const sim::Context* ctx, ObjId id,
                             const char* site, std::string message) const;

 private:
  // A history line as kept: a literal format and its arguments (a, b, or the static string s
  // when the format takes one string), or free text in the name arena (format null, the text
  // at text_ref).
  struct Note {
    sim::TimeNs t_ns;
    std::int32_t cpu;
    std::uint32_t ctx;
    const char* format;
    const char* s;
    std::int64_t a;
    std::int64_t b;
    std::uint32_t text_ref;
  };
  ObjEvent render(const Note& n) const;
  // The events of an object after its allocation, the latest kHistoryKept - 1: a ring, the
  // oldest at `head` once it is full (a new event overwrites it, nothing moves).
  struct Later {
    std::vector<Note> events;
    std::uint32_t head = 0;
    std::uint64_t dropped = 0;  // overwritten
  };
  // Names, packed one after the other in chunks that never move: a length (1 byte, or 0xff and
  // 4 bytes) then the bytes; a name with a shared prefix is 0xfe, the prefix's reference (4
  // bytes), then its rest so stored. A reference is chunk << 16 | offset; a name longer than a
  // chunk gets a chunk of its own. Chunks start small (a run of a scenario names a few dozen
  // objects) and double up to kNameChunk; they are not zeroed.
  static constexpr std::size_t kNameChunk = std::size_t{1} << 16;
  static constexpr std::size_t kFirstNameChunk = std::size_t{1} << 10;
  std::uint32_t store_name(std::string_view name, const std::uint32_t* prefix = nullptr);
  std::string stored_name(std::uint32_t ref) const;
  ObjId add_object(const sim::Context* ctx, ObjKind kind, std::uint32_t name_ref,
                   std::string_view name, ObjId owner);

  sim::Simulator& sim_;
  // By id - 1: ids are handed out in order from 1 and never reused, so the registry is dense
  // (a deque: a KObject never moves, find() pointers stay valid as objects are added).
  std::deque<KObject> objects_;
  std::vector<Later> later_;
  std::vector<std::pair<ObjId, ObjId>> owners_;  // (object, owner), ascending objects
  std::vector<std::unique_ptr<char[]>> name_chunks_;
  std::size_t name_used_ = 0;  // bytes used in the last chunk
  std::size_t name_cap_ = 0;   // its size
  void add_event(KObject& o, const sim::Context* ctx, const char* format, const char* s,
                 std::int64_t a, std::int64_t b, std::uint32_t text_ref);
  const KObject& known(ObjId id, const char* what) const;
  KObject* slot(ObjId id) {
    return id != 0 && id <= objects_.size() ? &objects_[static_cast<std::size_t>(id - 1)] : nullptr;
  }
  ObjId next_ = 1;
  std::size_t live_ = 0;
  std::size_t uaf_ = 0;
};

}  // namespace bpftsim::model
