#include "sim/trace.h"

#include <bit>
#include <cstring>
#include <string_view>

#include <fmt/format.h>

namespace bpftsim::sim {
namespace {

// Control characters in a string value (a trace_printk message ends in '\n') are escaped so that
// a record stays one line.
void append_text_value(std::string& out, const std::string& v) {
  for (const char ch : v) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else if (c == '\r')
      out += "\\r";
    else if (c < 0x20 || c == 0x7f)
      out += fmt::format("\\x{:02x}", c);
    else
      out += ch;
  }
}
}  // namespace

const TraceValue* TraceRecord::field(const std::string& key) const {
  for (const auto& f : fields)
    if (f.key == key) return &f.value;
  return nullptr;
}

std::int64_t TraceRecord::int_field(const std::string& key, std::int64_t fallback) const {
  const TraceValue* v = field(key);
  if (v && std::holds_alternative<std::int64_t>(*v)) return std::get<std::int64_t>(*v);
  return fallback;
}

void Trace::fold(const TraceRecord& r) {
  fold(r.t_ns, r.cpu, r.ctx, r.event, r.fields.data(), r.fields.size());
}

// The digest folds 64-bit words, not bytes (traces/README.md defines it). A record is: t_ns; cpu
// (low 32 bits, two's complement) << 32 | ctx; the event name; per field its key, then an integer
// value as one word or a string value. A string of n bytes, with a tag saying what it is (0 event
// name, 1 key of an integer field, 2 key of a string field, 3 string value), is one word when
// n <= 7: its bytes little-endian in the low 7 bytes, n | tag << 4 in the top byte; else a head
// word n | (0x80 | tag << 4) << 56, then its bytes 8 at a time as little-endian words, the last
// zero-padded. Each word goes through one multiply-xorshift step. Loads are memcpy into bytes
// read in a fixed order, so the digest is the same on any host byte order and alignment.
namespace {

constexpr std::uint64_t kDigestMul = 0x9e3779b97f4a7c15ULL;  // odd: the multiply is a bijection

inline std::uint64_t mix(std::uint64_t h, std::uint64_t w) {
  h = (h ^ w) * kDigestMul;
  return h ^ (h >> 32);
}

inline std::uint64_t load_le64(const char* p) {
  if constexpr (std::endian::native == std::endian::little) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
  } else {
    unsigned char b[8];
    std::memcpy(b, p, 8);
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i)
      v = (v << 8) | b[i];
    return v;
  }
}

// The last 0..7 bytes of a string, zero-padded to a word (4-, 2- and 1-byte loads: no 8-byte
// load from a buffer just written byte-wise, which stalls store forwarding).
inline std::uint64_t load_le_tail(const char* p, std::size_t n) {
  if constexpr (std::endian::native == std::endian::little) {
    std::uint64_t v = 0;
    unsigned shift = 0;
    if (n & 4) {
      std::uint32_t x;
      std::memcpy(&x, p, 4);
      v = x;
      p += 4;
      shift = 32;
    }
    if (n & 2) {
      std::uint16_t x;
      std::memcpy(&x, p, 2);
      v |= std::uint64_t{x} << shift;
      p += 2;
      shift += 16;
    }
    if (n & 1) v |= std::uint64_t{static_cast<unsigned char>(*p)} << shift;
    return v;
  } else {
    std::uint64_t v = 0;
    for (std::size_t i = n; i-- > 0;)
      v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
  }
}

enum : std::uint64_t { kTagEvent = 0, kTagIntKey = 1, kTagStrKey = 2, kTagStrValue = 3 };

inline std::uint64_t mix_str(std::uint64_t h, std::string_view s, std::uint64_t tag) {
  const std::size_t n = s.size();
  if (n <= 7) return mix(h, load_le_tail(s.data(), n) | (n | tag << 4) << 56);
  h = mix(h, n | (0x80 | tag << 4) << 56);
  const char* p = s.data();
  std::size_t left = n;
  for (; left >= 8; left -= 8, p += 8)
    h = mix(h, load_le64(p));
  if (left != 0) h = mix(h, load_le_tail(p, left));
  return h;
}

}  // namespace

void Trace::fold(TimeNs t, int cpu, std::uint32_t ctx, std::string_view event,
                 const TraceField* fields, std::size_t nfields) {
  std::uint64_t h = digest_;
  h = mix(h, static_cast<std::uint64_t>(t));
  h = mix(h, std::uint64_t{static_cast<std::uint32_t>(cpu)} << 32 | ctx);
  h = mix_str(h, event, kTagEvent);
  for (std::size_t i = 0; i < nfields; ++i) {
    const TraceField& f = fields[i];
    if (const auto* v = std::get_if<std::int64_t>(&f.value)) {
      h = mix(mix_str(h, f.key, kTagIntKey), static_cast<std::uint64_t>(*v));
    } else {
      h = mix_str(mix_str(h, f.key, kTagStrKey), std::get<std::string>(f.value), kTagStrValue);
    }
  }
  digest_ = h;
  ++count_;
}

// The same words as the TraceField fold above, from the emit arguments: a TraceName is rendered
// into a stack buffer, so the digest is that of its text.
void Trace::fold(TimeNs t, int cpu, std::uint32_t ctx, std::string_view event,
                 const TraceArg* fields, std::size_t nfields) {
  std::uint64_t h = digest_;
  h = mix(h, static_cast<std::uint64_t>(t));
  h = mix(h, std::uint64_t{static_cast<std::uint32_t>(cpu)} << 32 | ctx);
  h = mix_str(h, event, kTagEvent);
  for (std::size_t i = 0; i < nfields; ++i) {
    const TraceArg& f = fields[i];
    switch (f.kind) {
      case TraceArg::Kind::kInt:
        h = mix(mix_str(h, f.key, kTagIntKey), static_cast<std::uint64_t>(f.i));
        break;
      case TraceArg::Kind::kStr:
        h = mix_str(mix_str(h, f.key, kTagStrKey), f.s, kTagStrValue);
        break;
      case TraceArg::Kind::kName: {
        h = mix_str(h, f.key, kTagStrKey);
        if (f.name.prefix.size() <= TraceName::kMaxPrefix) {
          char buf[TraceName::kMaxLen];
          h = mix_str(h, std::string_view(buf, f.name.render(buf)), kTagStrValue);
        } else {
          h = mix_str(h, f.name.str(), kTagStrValue);
        }
        break;
      }
    }
  }
  digest_ = h;
  ++count_;
}

void Trace::emit(TimeNs t, int cpu, std::uint32_t ctx, std::string_view event,
                 std::initializer_list<TraceArg> fields) {
  // Without records, fold straight from the arguments: no record (a vector and copies of every
  // field) is built per event just to be hashed and dropped. Same words, same digest.
  if (!keep_ && !observer_) {
    fold(t, cpu, ctx, event, fields.begin(), fields.size());
    return;
  }
  TraceRecord r{t, cpu, ctx, std::string(event), {}};
  r.fields.reserve(fields.size());
  for (const TraceArg& f : fields)
    r.fields.push_back(f.field());
  emit(std::move(r));
}

void Trace::emit(TraceRecord record) {
  fold(record);
  if (observer_) observer_(record);
  if (!keep_) return;
  records_.push_back(std::move(record));
  if (tail_only_ && max_kept_ >= 2 && records_.size() >= max_kept_) {
    const std::size_t drop = records_.size() - max_kept_ / 2;
    records_.erase(records_.begin(), records_.begin() + static_cast<std::ptrdiff_t>(drop));
    dropped_ += drop;
  }
}

std::size_t TraceName::render(char* buf) const {
  std::size_t n = prefix.size();
  std::memcpy(buf, prefix.data(), n);
  buf[n++] = sep;
  char digits[20];
  std::size_t d = 0;
  std::uint64_t v = id;
  if (hex_above_32 && v > 0xffffffffULL) {
    do {
      digits[d++] = "0123456789abcdef"[v & 0xf];
      v >>= 4;
    } while (v != 0);
  } else {
    do {
      digits[d++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
  }
  while (d > 0)
    buf[n++] = digits[--d];
  return n;
}

std::string TraceName::str() const {
  std::string out(prefix);
  out += sep;
  if (hex_above_32 && id > 0xffffffffULL)
    out += fmt::format("{:x}", id);
  else
    out += fmt::format("{}", id);
  return out;
}

TraceField TraceArg::field() const {
  switch (kind) {
    case Kind::kInt:
      return TraceField(std::string(key), i);
    case Kind::kStr:
      return TraceField(std::string(key), std::string(s));
    case Kind::kName:
      break;
  }
  return TraceField(std::string(key), name.str());
}

std::string object_name(std::string_view kind, std::uint64_t id) {
  if (id > 0xffffffffULL) return fmt::format("{}#{:x}", kind, id);
  return fmt::format("{}#{}", kind, id);
}

void ContextLabels::see(const TraceRecord& r) {
  if (r.ctx == 0 || r.event != "ctx_begin") return;
  const TraceValue* name = r.field("name");
  if (name == nullptr || !std::holds_alternative<std::string>(*name)) return;
  std::string s = std::get<std::string>(*name);
  for (char& c : s)
    if (c == ' ' || c == '\t' || c == '\n') c = '_';
  names_[r.ctx] = std::move(s);
}

std::string ContextLabels::label(std::uint32_t ctx) const {
  if (ctx == 0) return "-";
  auto it = names_.find(ctx);
  return fmt::format("{}-{}", it == names_.end() ? "ctx" : it->second, ctx);
}

std::string Trace::format_text(const TraceRecord& r, const ContextLabels* labels) {
  const std::string who = labels ? labels->label(r.ctx)
                                 : (r.ctx == 0 ? std::string("-") : fmt::format("ctx-{}", r.ctx));
  std::string out =
      fmt::format("{:<20} [{:03}] {:6}.{:06}{:03} {}:", who, r.cpu < 0 ? 999 : r.cpu,
                  r.t_ns / kNsPerSec, (r.t_ns % kNsPerSec) / kNsPerUs, r.t_ns % kNsPerUs, r.event);
  for (const auto& f : r.fields) {
    out += fmt::format(" {}=", f.key);
    if (std::holds_alternative<std::int64_t>(f.value))
      out += fmt::format("{}", std::get<std::int64_t>(f.value));
    else
      append_text_value(out, std::get<std::string>(f.value));
  }
  return out;
}

}  // namespace bpftsim::sim
