#include "sim/trace.h"

#include <fmt/format.h>

#include "sim/hash.h"

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

void Trace::fold(TimeNs t, int cpu, std::uint32_t ctx, const std::string& event,
                 const TraceField* fields, std::size_t nfields) {
  Hasher h(digest_);
  h.u64(static_cast<std::uint64_t>(t)).u64(static_cast<std::uint64_t>(cpu)).u64(ctx).str(event);
  for (std::size_t i = 0; i < nfields; ++i) {
    const TraceField& f = fields[i];
    h.str(f.key);
    if (std::holds_alternative<std::int64_t>(f.value)) {
      h.u64(0).u64(static_cast<std::uint64_t>(std::get<std::int64_t>(f.value)));
    } else {
      h.u64(1).str(std::get<std::string>(f.value));
    }
  }
  digest_ = h.value();
  ++count_;
}

void Trace::emit(TimeNs t, int cpu, std::uint32_t ctx, std::string event,
                 std::initializer_list<TraceField> fields) {
  // Without records, fold straight from the arguments: no record (a vector and copies of every
  // field) is built per event just to be hashed and dropped. Same bytes, same digest.
  if (!keep_ && !observer_) {
    fold(t, cpu, ctx, event, fields.begin(), fields.size());
    return;
  }
  emit(TraceRecord{t, cpu, ctx, std::move(event), std::vector<TraceField>(fields)});
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
