// The trace digest against a second implementation written from its definition in
// traces/README.md (words assembled byte by byte, by arithmetic only: no memcpy, no host byte
// order), over strings of every length class around the 7- and 8-byte boundaries, negative and
// large integers, a negative CPU and all three kinds of field (integer, string, object name).
// Names (events, keys, object kinds) are folded by their ids: a hash of their text from a second
// seed, the same whether computed at compile time (a literal's TraceKey) or at run time.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "sim/trace.h"

namespace {

using bpftsim::sim::Trace;
using bpftsim::sim::TraceField;
using bpftsim::sim::TraceRecord;

struct Reference {
  std::uint64_t h = 0x6a09e667f3bcc909ULL;
  // The id of a name: its text folded (tag 0) from the name seed.
  static std::uint64_t id(const std::string& name) {
    Reference n;
    n.h = 0xbb67ae8584caa73bULL;
    n.str(name, 0);
    return n.h;
  }
  void word(std::uint64_t w) {
    h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
    h ^= h >> 32;
  }
  // Bytes [from, from + n) of s as a little-endian number.
  static std::uint64_t le(const std::string& s, std::size_t from, std::size_t n) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i)
      v += static_cast<std::uint64_t>(static_cast<unsigned char>(s[from + i])) << (8 * i);
    return v;
  }
  void str(const std::string& s, std::uint64_t tag) {
    const std::size_t n = s.size();
    if (n <= 7) {
      word(le(s, 0, n) + ((n + tag * 16) << 56));
      return;
    }
    word(n + ((0x80 + tag * 16) << 56));
    for (std::size_t i = 0; i < n; i += 8)
      word(le(s, i, n - i < 8 ? n - i : 8));
  }
  void record(const TraceRecord& r) {
    word(static_cast<std::uint64_t>(r.t_ns));
    word((static_cast<std::uint64_t>(static_cast<std::uint32_t>(r.cpu)) << 32) + r.ctx);
    word(id(r.event));
    for (const TraceField& f : r.fields) {
      if (std::holds_alternative<std::int64_t>(f.value)) {
        word(id(f.key) ^ 1);
        word(static_cast<std::uint64_t>(std::get<std::int64_t>(f.value)));
      } else {
        word(id(f.key) ^ 2);
        str(std::get<std::string>(f.value), 3);
      }
    }
  }
  // An object-name field ("<kind><sep><id>"): the key's id ^ 3, the kind's id ^ (sep | hex << 8),
  // the numeric id.
  void name_field(const std::string& key, const std::string& kind, char sep, bool hex,
                  std::uint64_t num) {
    word(id(key) ^ 3);
    word(id(kind) ^
         (static_cast<std::uint64_t>(static_cast<unsigned char>(sep)) + (hex ? 256u : 0u)));
    word(num);
  }
};

std::string text(std::size_t n, char first) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i)
    s += static_cast<char>(first + static_cast<char>(i % 50));
  return s;
}

}  // namespace

TEST_CASE("the trace digest is the word fold traces/README.md defines", "[trace]") {
  std::vector<TraceRecord> records;
  std::int64_t t = 0;
  for (std::size_t n : {0u, 1u, 6u, 7u, 8u, 9u, 15u, 16u, 17u, 23u, 24u, 40u}) {
    TraceRecord r{t += 977,
                  static_cast<int>(n % 3) - 1,
                  static_cast<std::uint32_t>(n * 7919),
                  text(n, 'a'),
                  {}};
    r.fields.emplace_back(text(n, 'K'),
                          static_cast<std::int64_t>(-1) - static_cast<std::int64_t>(n));
    r.fields.emplace_back("s", text(n, '0') + "\xff\x80");
    r.fields.emplace_back(text(n + 3, 'k'), std::uint64_t{0xfedcba9876543210ULL} >> n);
    records.push_back(std::move(r));
  }
  records.push_back(TraceRecord{1, -1, 0, "", {}});

  // Kept, folded from records; not kept, folded from the arguments of emit: one digest.
  Trace kept(true), unkept(false);
  Reference ref;
  for (const TraceRecord& r : records) {
    kept.emit(r);
    ref.record(r);
  }
  unkept.emit(5, 0, 1, "hrtimer_expire_entry", {{"hrtimer", 7}, {"function", "bpf_timer_cb"}});
  Reference ref2;
  ref2.record(
      TraceRecord{5, 0, 1, "hrtimer_expire_entry", {{"hrtimer", 7}, {"function", "bpf_timer_cb"}}});
  CHECK(kept.digest() == ref.h);
  CHECK(kept.count() == records.size());
  CHECK(unkept.digest() == ref2.h);

  // Any change of a word changes it: the type of a field, one byte of a long string, the CPU.
  Trace other(false);
  other.emit(5, 0, 1, "hrtimer_expire_entry", {{"hrtimer", "7"}, {"function", "bpf_timer_cb"}});
  CHECK(other.digest() != unkept.digest());
  Trace other2(false);
  other2.emit(5, 0, 1, "hrtimer_expire_entrz", {{"hrtimer", 7}, {"function", "bpf_timer_cb"}});
  CHECK(other2.digest() != unkept.digest());
  Trace other3(false);
  other3.emit(5, -1, 1, "hrtimer_expire_entry", {{"hrtimer", 7}, {"function", "bpf_timer_cb"}});
  CHECK(other3.digest() != unkept.digest());

  // Object names fold as the kind's id and the number, kept or not; their text renders as before.
  Trace names_kept(true), names_unkept(false);
  for (Trace* tr : {&names_kept, &names_unkept}) {
    tr->emit(9, 1, 2, "lock", {{"lock", bpftsim::sim::obj_ref("bpf_spin_lock", 0x300000008ULL)}});
    tr->emit(10, 1, 2, "slice", {{"hrtimer", bpftsim::sim::TraceName{"hrtimer", ' ', 7, false}}});
  }
  Reference ref3;
  ref3.word(9);
  ref3.word((std::uint64_t{1} << 32) + 2);
  ref3.word(Reference::id("lock"));
  ref3.name_field("lock", "bpf_spin_lock", '#', true, 0x300000008ULL);
  ref3.word(10);
  ref3.word((std::uint64_t{1} << 32) + 2);
  ref3.word(Reference::id("slice"));
  ref3.name_field("hrtimer", "hrtimer", ' ', false, 7);
  CHECK(names_kept.digest() == ref3.h);
  CHECK(names_unkept.digest() == ref3.h);
  REQUIRE(names_kept.records().size() == 2);
  CHECK(std::get<std::string>(names_kept.records()[0].fields[0].value) ==
        "bpf_spin_lock#300000008");
  CHECK(std::get<std::string>(names_kept.records()[1].fields[0].value) == "hrtimer 7");

  // A name's id depends on its text only: a literal's (compile time) equals a run-time string's.
  const std::string runtime_key = std::string("hrtimer_") + "expire_entry";
  CHECK(bpftsim::sim::TraceKey(runtime_key).id ==
        bpftsim::sim::TraceKey("hrtimer_expire_entry").id);
  CHECK(bpftsim::sim::TraceKey(runtime_key).id == Reference::id("hrtimer_expire_entry"));
  CHECK(bpftsim::sim::TraceKey("hrtimer").id != bpftsim::sim::TraceKey("hrtimes").id);
}

TEST_CASE("load_le at run time (overlapping loads) equals the compile-time byte arithmetic",
          "[trace]") {
  namespace digest = bpftsim::sim::digest;
  // Bytes with the high bit set too, so that a sign extension would show.
  static constexpr char kBytes[] = {'\x01', '\x82', '\x13', '\xf4', '\x25', '\xa6', '\x37', '\xc8'};
  constexpr std::uint64_t kAt[9] = {
      digest::load_le(kBytes, 0), digest::load_le(kBytes, 1), digest::load_le(kBytes, 2),
      digest::load_le(kBytes, 3), digest::load_le(kBytes, 4), digest::load_le(kBytes, 5),
      digest::load_le(kBytes, 6), digest::load_le(kBytes, 7), digest::load_le(kBytes, 8)};
  for (std::size_t n = 0; n <= 8; ++n) {
    INFO("n = " << n);
    std::string s(kBytes, n);  // a run-time buffer of its own
    CHECK(digest::load_le(s.data(), n) == kAt[n]);
    CHECK(kAt[n] == Reference::le(std::string(kBytes, 8), 0, n));
  }
}

TEST_CASE("an observer sees each record as a view of its fields, kept or not", "[trace]") {
  using bpftsim::sim::obj_ref;
  using bpftsim::sim::TraceKey;
  using bpftsim::sim::TraceView;
  for (const bool keep : {false, true}) {
    INFO("keep = " << keep);
    Trace t(keep);
    struct Seen {
      std::string event;
      std::int64_t n = 0;
      bool has_n = false, has_s = false, name_is = false, str_is = false, s_is_int = false;
      std::string s, name;
    };
    std::vector<Seen> seen;
    t.set_observer([&](const TraceView& v) {
      Seen s;
      s.event = std::string(v.event.text);
      s.n = v.int_field("n", -7);
      s.has_n = v.has_int("n");
      s.has_s = v.str("s", &s.s);
      v.str("obj", &s.name);
      s.name_is = v.str_is("obj", "bpf_hrtimer#4294967297") || v.str_is("obj", "bpf_hrtimer#9");
      s.str_is = v.str_is("s", "callback_a");
      s.s_is_int = v.has_int("s");
      CHECK((v.is(TraceKey("first")) == (s.event == "first")));
      seen.push_back(std::move(s));
    });
    t.emit(5, 1, 2, "first", {{"n", 42}, {"s", "callback_a"}, {"obj", obj_ref("bpf_hrtimer", 9)}});
    t.emit(6, 0, 3, "second", {{"s", "other"}, {"obj", obj_ref("bpf_hrtimer", 0x100000001ULL)}});
    t.emit(TraceRecord{7, -1, 0, "third", {TraceField("n", 3), TraceField("s", "callback_a")}});
    REQUIRE(seen.size() == 3);
    CHECK(seen[0].event == "first");
    CHECK(seen[0].n == 42);
    CHECK(seen[0].has_n);
    CHECK(seen[0].s == "callback_a");
    CHECK(seen[0].str_is);
    CHECK(seen[0].name == "bpf_hrtimer#9");
    CHECK(seen[0].name_is);
    CHECK_FALSE(seen[0].s_is_int);
    CHECK(seen[1].n == -7);  // absent: the fallback
    CHECK_FALSE(seen[1].has_n);
    CHECK_FALSE(seen[1].str_is);
    CHECK(seen[1].name == "bpf_hrtimer#100000001");  // hex above 32 bits, as object_name
    CHECK_FALSE(seen[1].name_is);
    CHECK(seen[2].event == "third");
    CHECK(seen[2].n == 3);
    CHECK(seen[2].str_is);
    CHECK(seen[2].name.empty());
    CHECK(t.records().size() == (keep ? 3U : 0U));
    CHECK(t.count() == 3);
  }
}
