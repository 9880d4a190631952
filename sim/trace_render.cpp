#include "sim/trace_render.h"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <sstream>
#include <string_view>

namespace bpftsim::sim {

namespace {

using Buf = fmt::memory_buffer;
constexpr std::size_t kFlushBytes = std::size_t{1} << 16;
constexpr std::string_view kCounterPrefix = "counter:";

void put(Buf& b, std::string_view s) {
  b.append(s.data(), s.data() + s.size());
}

void put_int(Buf& b, std::int64_t v) {
  fmt::format_to(std::back_inserter(b), "{}", v);
}

void flush(Buf& b, std::ostream& out) {
  out.write(b.data(), static_cast<std::streamsize>(b.size()));
  b.clear();
}

void maybe_flush(Buf& b, std::ostream& out) {
  if (b.size() >= kFlushBytes) flush(b, out);
}

// Length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlongs, no surrogates, at most
// U+10FFFF), or 0 if the byte there does not start one.
std::size_t utf8_len(std::string_view s, std::size_t i) {
  const auto at = [&](std::size_t k) -> unsigned {
    return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u;
  };
  const auto cont = [&](std::size_t k, unsigned lo = 0x80, unsigned hi = 0xbf) {
    return at(k) >= lo && at(k) <= hi;
  };
  const unsigned c = at(0);
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c == 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (c == 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (c == 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xf1 && c <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c == 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

// A JSON string literal. Bytes that are not well-formed UTF-8 (a BPF program's trace_printk can
// print anything) become the code point of the same value (\u0080..\u00ff), so every strict
// parser accepts the output and the mapping stays deterministic.
void put_json_string(Buf& b, std::string_view s) {
  b.push_back('"');
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"':
        put(b, "\\\"");
        break;
      case '\\':
        put(b, "\\\\");
        break;
      case '\n':
        put(b, "\\n");
        break;
      case '\r':
        put(b, "\\r");
        break;
      case '\t':
        put(b, "\\t");
        break;
      default:
        if (c < 0x20) {
          fmt::format_to(std::back_inserter(b), "\\u{:04x}", c);
        } else if (c >= 0x80) {
          const std::size_t n = utf8_len(s, i);
          if (n == 0) {
            fmt::format_to(std::back_inserter(b), "\\u{:04x}", c);
          } else {
            put(b, s.substr(i, n));
            i += n;
            continue;
          }
        } else {
          b.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  b.push_back('"');
}

void put_json_value(Buf& b, const TraceValue& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v))
    put_int(b, *i);
  else
    put_json_string(b, std::get<std::string>(v));
}

// Microseconds with the nanosecond remainder as exactly three decimals: 12345 ns -> 12.345.
void put_us(Buf& b, std::int64_t t_ns) {
  std::uint64_t mag = static_cast<std::uint64_t>(t_ns);
  if (t_ns < 0) {
    b.push_back('-');
    mag = 0 - mag;
  }
  fmt::format_to(std::back_inserter(b), "{}.{:03}", mag / 1000, mag % 1000);
}

std::string value_text(const TraceValue& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return fmt::format("{}", *i);
  return std::get<std::string>(v);
}

// ---- Perfetto / Chrome trace-event JSON ---------------------------------------------------------

class PerfettoWriter {
 public:
  PerfettoWriter(const std::vector<TraceRecord>& records, std::ostream& out)
      : recs_(records), out_(out) {}

  // Slices are complete ("X") events with a duration, written at their begin so that the file
  // stays in time order: a first walk over the records, writing nothing, learns where each slice
  // ends; the second writes. (Begin/end pairs would do the same for Perfetto, but consumers that
  // pair B/E events on one stack in file order, such as the Chromium DevTools trace engine, mix up
  // the pairs of different threads.)
  void write() {
    scan();
    dry_ = true;
    walk();
    dry_ = false;
    serial_ = 0;
    for (auto& [tid, track] : tracks_) {
      track.open.clear();
      track.alive = false;
    }
    buf_.clear();
    first_ = true;
    put(buf_, "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n");
    write_metadata();
    walk();
    put(buf_, "\n]}\n");
    flush(buf_, out_);
  }

 private:
  struct Open {
    std::string name;
    const char* cat;
    std::int64_t begin_ns;
    std::size_t serial;  // the slice's number in walk order (an index into durations_)
  };

  void walk() {
    std::int64_t t_end = 0;
    for (std::size_t i = 0; i < recs_.size(); ++i) {
      write_record(i);
      t_end = std::max(t_end, recs_[i].t_ns);
      if (dry_) {
        buf_.clear();
      } else {
        maybe_flush(buf_, out_);
      }
    }
    for (auto& [tid, track] : tracks_)
      close_all(track, t_end);
  }
  struct Track {
    int pid = 0;
    std::int64_t tid = 0;
    std::string name;
    std::vector<Open> open;  // bottom first
    bool alive = false;      // the context's lifetime slice is open
  };

  static int norm_cpu(int cpu) { return cpu < 0 ? -1 : cpu; }
  int pid_of(int cpu) const { return cpu < 0 ? global_pid_ : cpu + 1; }
  std::int64_t noctx_tid(int cpu) const { return std::int64_t{max_ctx_} + 2 + norm_cpu(cpu); }

  // Tracks, processes, names and flow pairs, before anything is written.
  void scan() {
    for (const auto& r : recs_) {
      max_cpu_ = std::max(max_cpu_, norm_cpu(r.cpu));
      max_ctx_ = std::max(max_ctx_, r.ctx);
    }
    global_pid_ = max_cpu_ + 2;
    track_for(-1, 0);  // the kernel/global process always exists: counters live there
    for (const auto& r : recs_) {
      Track& t = track_for(r.cpu, r.ctx);
      if (r.ctx != 0 && r.event == "ctx_begin" && t.name.empty()) {
        const TraceValue* name = r.field("name");
        t.name = fmt::format("{} (ctx {})", name ? value_text(*name) : "ctx", r.ctx);
      }
    }
    for (auto& [tid, t] : tracks_) {
      if (!t.name.empty()) continue;
      if (tid <= max_ctx_)
        t.name = fmt::format("ctx {}", tid);
      else
        t.name = t.pid == global_pid_ ? "global" : fmt::format("cpu {} (no context)", t.pid - 1);
    }
    pair_flows();
    place_helpers();
  }

  // A helper call's record comes at its end and says how long it ran (dur_ns): its slice is
  // written just before the first record (of any context) later than the call's beginning, so
  // the file stays in time order and the slice encloses what the helper did. Its args name the
  // helper's record.
  void place_helpers() {
    for (std::size_t i = 0; i < recs_.size(); ++i) {
      const TraceRecord& r = recs_[i];
      if (r.ctx == 0 || r.event != "bpf_helper") continue;
      const TraceValue* dur = r.field("dur_ns");
      const TraceValue* name = r.field("helper");
      if (!dur || !name || !std::holds_alternative<std::int64_t>(*dur)) continue;
      const std::int64_t begin_ns =
          r.t_ns - std::max<std::int64_t>(0, std::get<std::int64_t>(*dur));
      auto at =
          std::upper_bound(recs_.begin(), recs_.begin() + static_cast<std::ptrdiff_t>(i), begin_ns,
                           [](std::int64_t t, const TraceRecord& x) { return t < x.t_ns; });
      const auto j = static_cast<std::size_t>(at - recs_.begin());
      helper_begins_[j].push_back(HelperBegin{value_text(*name), begin_ns, i, r.cpu, r.ctx});
    }
    // Several beginning before one record: the outer (earlier, or ending later) first.
    for (auto& [j, v] : helper_begins_)
      std::sort(v.begin(), v.end(), [](const HelperBegin& a, const HelperBegin& b) {
        if (a.begin_ns != b.begin_ns) return a.begin_ns < b.begin_ns;
        return a.end_rec > b.end_rec;
      });
  }

  // A context's track lives in the process of the CPU of its first record.
  Track& track_for(int cpu, std::uint32_t ctx) {
    const std::int64_t tid = ctx != 0 ? std::int64_t{ctx} : noctx_tid(cpu);
    auto [it, fresh] = tracks_.try_emplace(tid);
    if (fresh) {
      it->second.pid = pid_of(norm_cpu(cpu));
      it->second.tid = tid;
    }
    return it->second;
  }

  void pair_flows() {
    std::map<std::int64_t, std::size_t> pending;  // flow_out id -> record index
    for (std::size_t i = 0; i < recs_.size(); ++i) {
      const TraceRecord& r = recs_[i];
      const TraceValue* in = r.field("flow_in");
      if (in && std::holds_alternative<std::int64_t>(*in)) {
        auto it = pending.find(std::get<std::int64_t>(*in));
        if (it != pending.end()) {
          flow_src_.push_back(it->second);
          const std::uint64_t fid = flow_src_.size();
          flow_out_[it->second] = fid;
          flow_in_[i] = fid;
          pending.erase(it);
        }
      }
      const TraceValue* out = r.field("flow_out");
      if (out && std::holds_alternative<std::int64_t>(*out))
        pending[std::get<std::int64_t>(*out)] = i;  // an earlier unmatched start is dropped
    }
  }

  // ---- events ----

  void head(std::string_view name, std::string_view cat, char ph) {
    if (!first_) put(buf_, ",\n");
    first_ = false;
    put(buf_, "{\"name\":");
    put_json_string(buf_, name);
    put(buf_, ",\"cat\":");
    put_json_string(buf_, cat);
    fmt::format_to(std::back_inserter(buf_), ",\"ph\":\"{}\"", ph);
  }
  void head(std::string_view name, std::string_view cat, char ph, const Track& t,
            std::int64_t t_ns) {
    head(name, cat, ph);
    put(buf_, ",\"ts\":");
    put_us(buf_, t_ns);
    fmt::format_to(std::back_inserter(buf_), ",\"pid\":{},\"tid\":{}", t.pid, t.tid);
  }

  void write_metadata() {
    std::map<int, const Track*> procs;  // pid -> its no-context track
    for (const auto& [tid, t] : tracks_)
      if (tid > max_ctx_) procs.emplace(t.pid, &t);
    for (const auto& [tid, t] : tracks_)
      procs.emplace(t.pid, &t);  // a CPU with contexts only
    for (const auto& [pid, t] : procs) {
      const std::string name =
          pid == global_pid_ ? "kernel/global" : fmt::format("cpu {}", pid - 1);
      head("process_name", "__metadata", 'M');
      fmt::format_to(std::back_inserter(buf_), ",\"pid\":{},\"tid\":{},\"args\":{{\"name\":", pid,
                     t->tid);
      put_json_string(buf_, name);
      put(buf_, "}}");
      head("process_sort_index", "__metadata", 'M');
      fmt::format_to(std::back_inserter(buf_),
                     ",\"pid\":{},\"tid\":{},\"args\":{{\"sort_index\":{}}}}}", pid, t->tid, pid);
    }
    for (const auto& [tid, t] : tracks_) {
      head("thread_name", "__metadata", 'M');
      fmt::format_to(std::back_inserter(buf_), ",\"pid\":{},\"tid\":{},\"args\":{{\"name\":", t.pid,
                     tid);
      put_json_string(buf_, t.name);
      put(buf_, "}}");
      head("thread_sort_index", "__metadata", 'M');
      fmt::format_to(std::back_inserter(buf_),
                     ",\"pid\":{},\"tid\":{},\"args\":{{\"sort_index\":{}}}}}", t.pid, tid, tid);
    }
  }

  void begin(Track& t, std::string name, const char* cat, std::int64_t t_ns, std::size_t rec) {
    const std::size_t serial = serial_++;
    if (!dry_) {
      head(name, cat, 'X', t, t_ns);
      put(buf_, ",\"dur\":");
      put_us(buf_, durations_.at(serial));
      fmt::format_to(std::back_inserter(buf_), ",\"args\":{{\"rec\":{}}}}}", rec);
    }
    t.open.push_back(Open{std::move(name), cat, t_ns, serial});
  }

  void end_top(Track& t, std::int64_t t_ns) {
    const Open& o = t.open.back();
    if (dry_) {
      if (durations_.size() <= o.serial) durations_.resize(o.serial + 1, 0);
      durations_[o.serial] = std::max(t_ns, o.begin_ns) - o.begin_ns;
    }
    t.open.pop_back();
  }

  // Closes the innermost open slice of category `cat` called `name`; slices opened after it are
  // closed first and reopened at the same instant, so every track stays properly nested.
  void end_named(Track& t, const std::string& name, const char* cat, std::int64_t t_ns,
                 std::size_t rec) {
    std::size_t k = t.open.size();
    while (k > 0 && !(std::string_view(t.open[k - 1].cat) == cat && t.open[k - 1].name == name))
      --k;
    if (k == 0) return;
    std::vector<Open> above(t.open.begin() + static_cast<std::ptrdiff_t>(k), t.open.end());
    while (t.open.size() >= k)
      end_top(t, t_ns);
    for (auto& o : above)
      begin(t, std::move(o.name), o.cat, t_ns, rec);
  }

  void close_all(Track& t, std::int64_t t_ns) {
    while (!t.open.empty())
      end_top(t, t_ns);
    t.alive = false;
  }

  void flow(char ph, std::uint64_t fid, const Track& t, std::int64_t t_ns) {
    head(recs_[flow_src_[fid - 1]].event, "flow", ph, t, t_ns);
    fmt::format_to(std::back_inserter(buf_), ",\"id\":{}", fid);
    if (ph == 'f') put(buf_, ",\"bp\":\"e\"");
    put(buf_, "}");
  }

  void instant(const TraceRecord& r, const Track& t, std::size_t rec) {
    head(r.event, "record", 'i', t, r.t_ns);
    fmt::format_to(std::back_inserter(buf_), ",\"s\":\"t\",\"args\":{{\"rec\":{}", rec);
    for (const auto& f : r.fields) {
      put(buf_, ",");
      put_json_string(buf_, f.key);
      put(buf_, ":");
      put_json_value(buf_, f.value);
    }
    put(buf_, "}}");
  }

  void counters(const TraceRecord& r) {
    const Track& g = tracks_.at(noctx_tid(-1));
    for (const auto& f : r.fields) {
      if (f.key.size() <= kCounterPrefix.size() ||
          f.key.compare(0, kCounterPrefix.size(), kCounterPrefix) != 0)
        continue;
      const auto* v = std::get_if<std::int64_t>(&f.value);
      if (!v) continue;
      head(std::string_view(f.key).substr(kCounterPrefix.size()), "counter", 'C', g, r.t_ns);
      fmt::format_to(std::back_inserter(buf_), ",\"args\":{{\"value\":{}}}}}", *v);
    }
  }

  void write_record(std::size_t i) {
    const TraceRecord& r = recs_[i];
    if (auto it = helper_begins_.find(i); it != helper_begins_.end())
      for (const HelperBegin& h : it->second)
        begin(track_for(h.cpu, h.ctx), h.name, kHelperCat, h.begin_ns, h.end_rec);
    Track& t = track_for(r.cpu, r.ctx);
    if (r.ctx != 0 && r.event == "ctx_begin" && !t.alive) {
      const TraceValue* name = r.field("name");
      begin(t, name ? value_text(*name) : fmt::format("ctx {}", r.ctx), kCtxCat, r.t_ns, i);
      t.alive = true;
    }
    if (const TraceValue* sb = r.field("slice_begin"))
      begin(t, value_text(*sb), kSliceCat, r.t_ns, i);
    if (auto it = flow_in_.find(i); it != flow_in_.end()) flow('f', it->second, t, r.t_ns);
    instant(r, t, i);
    if (auto it = flow_out_.find(i); it != flow_out_.end()) flow('s', it->second, t, r.t_ns);
    counters(r);
    if (r.ctx != 0 && r.event == "bpf_helper" && r.field("dur_ns") != nullptr)
      if (const TraceValue* h = r.field("helper"))
        end_named(t, value_text(*h), kHelperCat, r.t_ns, i);
    if (const TraceValue* se = r.field("slice_end"))
      end_named(t, value_text(*se), kSliceCat, r.t_ns, i);
    if (r.ctx != 0 && r.event == "ctx_end") close_all(t, r.t_ns);
  }

  static constexpr const char* kCtxCat = "ctx";
  static constexpr const char* kSliceCat = "slice";
  static constexpr const char* kHelperCat = "helper";
  struct HelperBegin {
    std::string name;
    std::int64_t begin_ns;
    std::size_t end_rec;  // the helper's own record
    int cpu;
    std::uint32_t ctx;
  };
  std::map<std::size_t, std::vector<HelperBegin>> helper_begins_;  // by the record it precedes

  const std::vector<TraceRecord>& recs_;
  std::ostream& out_;
  Buf buf_;
  bool first_ = true;
  bool dry_ = false;                     // the first walk: learn durations, write nothing
  std::size_t serial_ = 0;               // slices begun so far in this walk
  std::vector<std::int64_t> durations_;  // by serial
  int max_cpu_ = -1;
  std::uint32_t max_ctx_ = 0;
  int global_pid_ = 1;
  std::map<std::int64_t, Track> tracks_;  // by tid
  std::vector<std::size_t> flow_src_;     // flow id - 1 -> the record that starts it
  std::map<std::size_t, std::uint64_t> flow_out_, flow_in_;  // record index -> flow id
};

template <typename F>
std::string to_string(F render, const std::vector<TraceRecord>& records) {
  std::ostringstream s;
  render(records, s);
  return std::move(s).str();
}

}  // namespace

void render_text(const std::vector<TraceRecord>& records, std::ostream& out) {
  Buf b;
  ContextLabels labels;
  for (const auto& r : records) {
    labels.see(r);
    put(b, Trace::format_text(r, &labels));
    b.push_back('\n');
    maybe_flush(b, out);
  }
  flush(b, out);
}

void render_jsonl(const std::vector<TraceRecord>& records, std::ostream& out) {
  Buf b;
  for (const auto& r : records) {
    put(b, "{\"t_ns\":");
    put_int(b, r.t_ns);
    fmt::format_to(std::back_inserter(b), ",\"cpu\":{},\"ctx\":{},\"event\":", r.cpu, r.ctx);
    put_json_string(b, r.event);
    put(b, ",\"fields\":{");
    for (std::size_t i = 0; i < r.fields.size(); ++i) {
      if (i) b.push_back(',');
      put_json_string(b, r.fields[i].key);
      b.push_back(':');
      put_json_value(b, r.fields[i].value);
    }
    put(b, "}}\n");
    maybe_flush(b, out);
  }
  flush(b, out);
}

void render_perfetto(const std::vector<TraceRecord>& records, std::ostream& out) {
  PerfettoWriter(records, out).write();
}

std::string render_text(const std::vector<TraceRecord>& records) {
  return to_string(
      static_cast<void (*)(const std::vector<TraceRecord>&, std::ostream&)>(&render_text), records);
}
std::string render_jsonl(const std::vector<TraceRecord>& records) {
  return to_string(
      static_cast<void (*)(const std::vector<TraceRecord>&, std::ostream&)>(&render_jsonl),
      records);
}
std::string render_perfetto(const std::vector<TraceRecord>& records) {
  return to_string(
      static_cast<void (*)(const std::vector<TraceRecord>&, std::ostream&)>(&render_perfetto),
      records);
}

}  // namespace bpftsim::sim
