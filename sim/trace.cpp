#include "sim/trace.h"

#include <cstring>
#include <optional>
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

// The digest folds 64-bit words (traces/README.md defines it), names by their ids (TraceKey,
// digest::name_id: a hash of the text computed once, at compile time for a literal), so a record
// is about eight words rather than its text. A record is: t_ns; cpu (low 32 bits, two's
// complement) << 32 | ctx; the event's id; per field the key's id xor its kind (1 integer,
// 2 string, 3 object name), then the value: an integer as one word; a string as its bytes
// (digest::mix_str, tag 3); an object name as the id of its kind xor (separator | hex flag << 8),
// then its numeric id.
namespace {

using digest::mix;
using digest::mix_str;

enum : std::uint64_t { kFieldInt = 1, kFieldStr = 2, kFieldName = 3, kTagStrValue = 3 };

inline std::uint64_t fold_head(std::uint64_t h, TimeNs t, int cpu, std::uint32_t ctx,
                               std::uint64_t event_id) {
  h = mix(h, static_cast<std::uint64_t>(t));
  h = mix(h, std::uint64_t{static_cast<std::uint32_t>(cpu)} << 32 | ctx);
  return mix(h, event_id);
}

}  // namespace

// A record built by the caller (findings, helper results): names are hashed here, from the text.
void Trace::fold(const TraceRecord& r) {
  std::uint64_t h = fold_head(digest_, r.t_ns, r.cpu, r.ctx, digest::name_id(r.event));
  for (const TraceField& f : r.fields) {
    const std::uint64_t key = digest::name_id(f.key);
    if (const auto* v = std::get_if<std::int64_t>(&f.value)) {
      h = mix(mix(h, key ^ kFieldInt), static_cast<std::uint64_t>(*v));
    } else {
      h = mix_str(mix(h, key ^ kFieldStr), std::get<std::string>(f.value), kTagStrValue);
    }
  }
  digest_ = h;
  ++count_;
}

// The same words from the emit arguments, the ids already in their TraceKeys.
void Trace::fold(TimeNs t, int cpu, std::uint32_t ctx, TraceKey event, const TraceArg* fields,
                 std::size_t nfields) {
  std::uint64_t h = fold_head(digest_, t, cpu, ctx, event.id);
  for (std::size_t i = 0; i < nfields; ++i) {
    const TraceArg& f = fields[i];
    switch (f.kind) {
      case TraceArg::Kind::kInt:
        h = mix(mix(h, f.key.id ^ kFieldInt), static_cast<std::uint64_t>(f.i));
        break;
      case TraceArg::Kind::kStr:
        h = mix_str(mix(h, f.key.id ^ kFieldStr), f.s, kTagStrValue);
        break;
      case TraceArg::Kind::kName:
        h = mix(h, f.key.id ^ kFieldName);
        h = mix(h, digest::name_id(f.name.prefix) ^
                       (std::uint64_t{static_cast<unsigned char>(f.name.sep)} |
                        std::uint64_t{f.name.hex_above_32} << 8));
        h = mix(h, f.name.id);
        break;
    }
  }
  digest_ = h;
  ++count_;
}

void Trace::emit(TimeNs t, int cpu, std::uint32_t ctx, TraceKey event,
                 std::initializer_list<TraceArg> fields) {
  // Folded from the arguments whether or not the record is kept: without records, no record (a
  // vector and copies of every field) is built per event just to be hashed and dropped.
  fold(t, cpu, ctx, event, fields.begin(), fields.size());
  if (observer_) observer_(TraceView{t, cpu, ctx, event, fields.begin(), fields.size()});
  if (!keep_) return;
  TraceRecord r{t, cpu, ctx, std::string(event.text), {}};
  r.fields.reserve(fields.size());
  for (const TraceArg& f : fields)
    r.fields.push_back(f.field());
  store(std::move(r));
}

void Trace::emit(TraceRecord record) {
  fold(record);
  if (observer_) {
    std::vector<TraceArg> args;
    args.reserve(record.fields.size());
    for (const TraceField& f : record.fields) {
      if (const auto* v = std::get_if<std::int64_t>(&f.value))
        args.emplace_back(TraceKey(f.key), *v);
      else
        args.emplace_back(TraceKey(f.key), std::get<std::string>(f.value));
    }
    observer_(TraceView{record.t_ns, record.cpu, record.ctx, TraceKey(record.event), args.data(),
                        args.size()});
  }
  if (keep_) store(std::move(record));
}

void Trace::store(TraceRecord record) {
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

const TraceArg* TraceView::arg(std::string_view key) const {
  for (std::size_t i = 0; i < nargs; ++i)
    if (args[i].key.text == key) return &args[i];
  return nullptr;
}

std::int64_t TraceView::int_field(std::string_view key, std::int64_t fallback) const {
  const TraceArg* a = arg(key);
  return a != nullptr && a->kind == TraceArg::Kind::kInt ? a->i : fallback;
}

bool TraceView::has_int(std::string_view key) const {
  const TraceArg* a = arg(key);
  return a != nullptr && a->kind == TraceArg::Kind::kInt;
}

namespace {

// The text of a string or object-name argument: a string as it is, a name rendered into `buf`
// (TraceName::kMaxLen bytes; into *spill when its prefix is longer); nullopt for an absent or
// integer argument.
std::optional<std::string_view> arg_text(const TraceArg* a, char* buf, std::string* spill) {
  if (a == nullptr || a->kind == TraceArg::Kind::kInt) return std::nullopt;
  if (a->kind == TraceArg::Kind::kStr) return a->s;
  if (a->name.prefix.size() > TraceName::kMaxPrefix) {
    *spill = a->name.str();
    return std::string_view(*spill);
  }
  return std::string_view(buf, a->name.render(buf));
}

}  // namespace

bool TraceView::str_is(std::string_view key, std::string_view want) const {
  char buf[TraceName::kMaxLen];
  std::string spill;
  const auto text = arg_text(arg(key), buf, &spill);
  return text && *text == want;
}

bool TraceView::str(std::string_view key, std::string* out) const {
  char buf[TraceName::kMaxLen];
  std::string spill;
  const auto text = arg_text(arg(key), buf, &spill);
  if (!text) return false;
  out->assign(*text);
  return true;
}

TraceField TraceArg::field() const {
  switch (kind) {
    case Kind::kInt:
      return TraceField(std::string(key.text), i);
    case Kind::kStr:
      return TraceField(std::string(key.text), std::string(s));
    case Kind::kName:
      break;
  }
  return TraceField(std::string(key.text), name.str());
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
