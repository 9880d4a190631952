// Structured trace records: the one stream from which the text, JSON-lines and Perfetto files are
// rendered, and over which a run's digest is computed. Every step that changes state emits one
// record: integer t_ns, CPU, context, an event named after the kernel tracepoint where one exists
// (hrtimer_start, hrtimer_cancel, hrtimer_expire_entry, hrtimer_expire_exit, ...) and fields.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "sim/time.h"

namespace bpftsim::sim {

using TraceValue = std::variant<std::int64_t, std::string>;

// The digest's word fold and the id of a name (an event or a field key, see traces/README.md),
// constexpr so that the id of a literal is computed at compile time (TraceKey).
namespace digest {

inline constexpr std::uint64_t kMul = 0x9e3779b97f4a7c15ULL;  // odd: the multiply is a bijection
// The state a name's id starts from (the next constant after Trace::kDigestSeed's in SHA-512's IV).
inline constexpr std::uint64_t kNameSeed = 0xbb67ae8584caa73bULL;

constexpr std::uint64_t mix(std::uint64_t h, std::uint64_t w) {
  h = (h ^ w) * kMul;
  return h ^ (h >> 32);
}

// Bytes [p, p + n), n <= 8, as a little-endian number (zero-padded): by arithmetic at compile
// time and on big-endian hosts (the same number on any host); at run time on a little-endian host
// by at most two loads, overlapping (a byte read twice lands on the same bits both times), not a
// loop over the bytes.
constexpr std::uint64_t load_le(const char* p, std::size_t n) {
  if (!std::is_constant_evaluated() && std::endian::native == std::endian::little) {
    if (n == 8) {
      std::uint64_t v;
      std::memcpy(&v, p, 8);
      return v;
    }
    if (n >= 4) {
      std::uint32_t lo;
      std::uint32_t hi;
      std::memcpy(&lo, p, 4);
      std::memcpy(&hi, p + n - 4, 4);
      return lo | std::uint64_t{hi} << (8 * (n - 4));
    }
    if (n == 0) return 0;
    const auto byte = [p](std::size_t i) {
      return std::uint64_t{static_cast<unsigned char>(p[i])};
    };
    return byte(0) | byte(n / 2) << (8 * (n / 2)) | byte(n - 1) << (8 * (n - 1));
  }
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i)
    v |= std::uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
  return v;
}

// A string of n bytes with a tag (0: a name, 3: a string value): one word when n <= 7 (its bytes
// in the low 7 bytes, n | tag << 4 in the top byte); else a head word n | (0x80 | tag << 4) << 56
// then its bytes 8 at a time, the last word zero-padded.
constexpr std::uint64_t mix_str(std::uint64_t h, std::string_view s, std::uint64_t tag) {
  const std::size_t n = s.size();
  if (n <= 7) return mix(h, load_le(s.data(), n) | (n | tag << 4) << 56);
  h = mix(h, n | (0x80 | tag << 4) << 56);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    h = mix(h, load_le(s.data() + i, 8));
  if (i != n) h = mix(h, load_le(s.data() + i, n - i));
  return h;
}

// The id of a name: its text folded from kNameSeed (tag 0). A function of the text alone, so the
// same in every process, thread and build, whatever order names are first seen in.
constexpr std::uint64_t name_id(std::string_view s) {
  return mix_str(kNameSeed, s, 0);
}

}  // namespace digest

// An event name or a field key with its id (digest::name_id), computed once: at compile time for
// a literal (the consteval constructor), at run time for a string built at run time.
struct TraceKey {
  std::string_view text;
  std::uint64_t id = 0;
  consteval TraceKey(const char* s)  // NOLINT(google-explicit-constructor): {"key", value}
      : text(s), id(digest::name_id(text)) {}
  TraceKey(std::string_view s) : text(s), id(digest::name_id(s)) {}    // NOLINT
  TraceKey(const std::string& s) : text(s), id(digest::name_id(s)) {}  // NOLINT
};

struct TraceField {
  std::string key;
  TraceValue value;
  TraceField(std::string k, std::int64_t v) : key(std::move(k)), value(v) {}
  TraceField(std::string k, int v) : key(std::move(k)), value(std::int64_t{v}) {}
  TraceField(std::string k, unsigned v) : key(std::move(k)), value(std::int64_t{v}) {}
  TraceField(std::string k, std::uint64_t v)
      : key(std::move(k)), value(static_cast<std::int64_t>(v)) {}
  TraceField(std::string k, std::string v) : key(std::move(k)), value(std::move(v)) {}
  TraceField(std::string k, const char* v) : key(std::move(k)), value(std::string(v)) {}
};

// An object's name given as its parts ("bpf_hrtimer", '#', 7): rendered to text ("bpf_hrtimer#7",
// see object_name) only when a record is kept or its digest is folded, never as a heap string.
// `hex_above_32`: the id in hex when it is above 32 bits (object_name's rule); else always decimal.
struct TraceName {
  std::string_view prefix;
  char sep = '#';
  std::uint64_t id = 0;
  bool hex_above_32 = true;
  // Writes the text into buf (at least kMaxLen bytes when prefix.size() <= kMaxPrefix); returns
  // its length.
  static constexpr std::size_t kMaxPrefix = 40;
  static constexpr std::size_t kMaxLen = kMaxPrefix + 1 + 20;
  std::size_t render(char* buf) const;
  std::string str() const;
};

// An object's name, "<kind>#<id>", as a trace field value (no string built on the emit path).
inline TraceName obj_ref(std::string_view kind, std::uint64_t id) {
  return TraceName{kind, '#', id, true};
}

// A field as passed to Trace::emit: the key (with its id, a literal's computed at compile time)
// and a string value are views of the caller's strings (literals or temporaries that live until
// the end of the emit call), so emitting builds no std::string; a record that is kept (or
// observed) copies them into TraceFields. Same initializer-list syntax as TraceField:
// {"key", value}.
struct TraceArg {
  enum class Kind : std::uint8_t { kInt, kStr, kName };
  TraceKey key;
  Kind kind = Kind::kInt;
  // The value, by kind (read only the member `kind` names): a record's ten or so arguments are
  // built on every emit, so the value is not three members initialised side by side.
  union {
    std::int64_t i;
    std::string_view s;
    TraceName name;
  };
  TraceArg(TraceKey k, std::int64_t v) : key(k), i(v) {}
  TraceArg(TraceKey k, int v) : key(k), i(v) {}
  TraceArg(TraceKey k, unsigned v) : key(k), i(v) {}
  TraceArg(TraceKey k, std::uint64_t v) : key(k), i(static_cast<std::int64_t>(v)) {}
  TraceArg(TraceKey k, const std::string& v) : key(k), kind(Kind::kStr), s(v) {}
  TraceArg(TraceKey k, std::string_view v) : key(k), kind(Kind::kStr), s(v) {}
  TraceArg(TraceKey k, const char* v) : key(k), kind(Kind::kStr), s(v) {}
  TraceArg(TraceKey k, const TraceName& v) : key(k), kind(Kind::kName), name(v) {}
  TraceField field() const;
};

struct TraceRecord {
  TimeNs t_ns = 0;
  int cpu = -1;           // -1: not on a CPU (e.g. a scheduler decision, the final checker)
  std::uint32_t ctx = 0;  // context id, 0: none
  std::string event;
  std::vector<TraceField> fields;

  const TraceValue* field(const std::string& key) const;
  std::int64_t int_field(const std::string& key, std::int64_t fallback = 0) const;
};

// A record as it is emitted, for an observer: views of the emitter's arguments (no TraceRecord,
// no string built), valid only during the observer's call.
struct TraceView {
  TimeNs t_ns = 0;
  int cpu = -1;
  std::uint32_t ctx = 0;
  TraceKey event;
  const TraceArg* args = nullptr;
  std::size_t nargs = 0;

  bool is(const TraceKey& k) const { return event.id == k.id && event.text == k.text; }
  const TraceArg* arg(std::string_view key) const;
  // An integer field's value; `fallback` when absent or not an integer.
  std::int64_t int_field(std::string_view key, std::int64_t fallback = 0) const;
  bool has_int(std::string_view key) const;
  // Whether a string or object-name field's text (an object name as rendered) equals `want`.
  bool str_is(std::string_view key, std::string_view want) const;
  // A string or object-name field's text; false (and `out` untouched) when absent or an integer.
  bool str(std::string_view key, std::string* out) const;
};

// The one name of a kernel object in traces, findings and reports: "<kind>#<id>", the id in hex
// when it is a composite above 32 bits (locks: region and offset), else in decimal
// ("bpf_hrtimer#7", "bpf_timer_lock#300000008").
std::string object_name(std::string_view kind, std::uint64_t id);

// Context labels for text renderings, learnt from ctx_begin records (see Trace::format_text).
class ContextLabels {
 public:
  void see(const TraceRecord& r);
  void see_all(const std::vector<TraceRecord>& records) {
    for (const auto& r : records)
      see(r);
  }
  std::string label(std::uint32_t ctx) const;

 private:
  std::map<std::uint32_t, std::string> names_;
};

class Trace {
 public:
  // The digest before any record: a fixed odd constant (the digest is computed a 64-bit word at a
  // time, see Trace::fold in trace.cpp and traces/README.md).
  static constexpr std::uint64_t kDigestSeed = 0x6a09e667f3bcc909ULL;

  // Records are kept only when enabled; the digest is always computed. `max_kept` (0: no limit)
  // bounds the records kept in memory: with `tail_only`, the oldest are dropped so that between
  // max_kept/2 and max_kept stay (the end of a run, for failure reports); otherwise reaching it
  // sets over_limit() and the simulator ends the run at a limit.
  explicit Trace(bool keep_records = true, std::uint64_t max_kept = 0, bool tail_only = false)
      : keep_(keep_records), max_kept_(max_kept), tail_only_(tail_only) {}

  void emit(TimeNs t, int cpu, std::uint32_t ctx, TraceKey event,
            std::initializer_list<TraceArg> fields);
  void emit(TraceRecord record);

  const std::vector<TraceRecord>& records() const { return records_; }
  std::uint64_t digest() const { return digest_; }
  std::uint64_t count() const { return count_; }
  bool keeps_records() const { return keep_; }
  // Records emitted but no longer kept (tail_only), and whether the kept ones reached max_kept.
  std::uint64_t dropped() const { return dropped_; }
  bool over_limit() const {
    return keep_ && !tail_only_ && max_kept_ != 0 && records_.size() >= max_kept_;
  }

  // An observer sees every record as it is emitted (kept or not), as a view of the emit's
  // arguments. It only reads: it never emits, so it cannot change the run or its digest.
  using Observer = std::function<void(const TraceView&)>;
  void set_observer(Observer observer) { observer_ = std::move(observer); }

  // One line per record in the style of ftrace output, the time a plain number of seconds:
  //   "<context>-<id> [cpu] <t_s.us_ns> event: k=v k=v"
  // where <context> is what the context runs (its name from its ctx_begin record, spaces as '_':
  // "softirq/0-4", "run_t.canceller-2") when `labels` knows it, else "ctx"; "-" for no context.
  static std::string format_text(const TraceRecord& r, const class ContextLabels* labels = nullptr);

 private:
  void fold(const TraceRecord& r);
  void fold(TimeNs t, int cpu, std::uint32_t ctx, TraceKey event, const TraceArg* fields,
            std::size_t nfields);
  void store(TraceRecord record);
  bool keep_;
  Observer observer_;
  std::uint64_t max_kept_ = 0;
  bool tail_only_ = false;
  std::uint64_t dropped_ = 0;
  std::vector<TraceRecord> records_;
  std::uint64_t digest_ = kDigestSeed;
  std::uint64_t count_ = 0;
};

}  // namespace bpftsim::sim
