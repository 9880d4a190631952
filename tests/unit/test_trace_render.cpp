// The three renderings of a trace (sim/trace_render.h): every Perfetto event obeys the Chrome
// trace-event rules (phases, microsecond timestamps with exactly three decimals equal to the
// record's t_ns, B/E matched and nested per track, one "s" and one "f" per flow id, numeric
// counters, a name for every process and thread), every JSON line is its record, every text line
// is its record, the output is byte-identical for the same run and seed, and python3's json module
// (an independent strict consumer) loads the Perfetto file.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "sim/trace_render.h"
#include "tools/runner.h"
#include "tools/scenario.h"

using namespace bpftsim;
using nlohmann::json;
using sim::TraceRecord;

namespace {

// Runs the library scenario scenarios/<rel> at `seed`, keeping its trace.
tools::RunResult run_file(const std::string& rel, std::uint64_t seed) {
  auto sc = tools::load_scenario(std::string(BPFTSIM_SOURCE_DIR) + "/scenarios/" + rel);
  if (auto* e = std::get_if<tools::InputError>(&sc)) FAIL(e->text());
  tools::RunOptions opts;
  opts.seed = seed;
  auto r = tools::run_scenario(std::get<tools::Scenario>(sc), opts);
  if (auto* e = std::get_if<tools::InputError>(&r)) FAIL(e->text());
  REQUIRE(std::get<tools::RunResult>(r).trace().keeps_records());
  return std::get<tools::RunResult>(std::move(r));
}

// Every race scenario (scenarios/races/*.json, relative to scenarios/), sorted.
std::vector<std::string> race_files() {
  std::vector<std::string> out;
  for (const auto& e :
       std::filesystem::directory_iterator(std::string(BPFTSIM_SOURCE_DIR) + "/scenarios/races"))
    if (e.path().extension() == ".json") out.push_back("races/" + e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

const char* const k41 = "races/4.1-cancel-while-running.json";

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

// A field's value as JSON holds it. A string that is not UTF-8 is rendered with its bad bytes as
// code points (checked on its own below), so it is not compared here.
bool same_value(const json& j, const sim::TraceValue& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return j.is_number_integer() && j == *i;
  const std::string& s = std::get<std::string>(v);
  try {
    (void)json(s).dump();
  } catch (const json::type_error&) {
    return j.is_string();
  }
  return j == s;
}

// What a checked Perfetto file contained, for tests that want more than validity.
struct PerfettoSummary {
  std::size_t instants = 0;
  std::size_t flows = 0;  // complete s/f pairs
  std::set<std::string> slice_names;
  std::size_t helper_slices = 0;
  std::set<std::string> counters;
};

// Checks every event of a render_perfetto output of `recs`; returns the problems found (empty:
// valid) so that a large trace costs one assertion, not one per event.
std::vector<std::string> check_perfetto(const std::string& text,
                                        const std::vector<TraceRecord>& recs,
                                        PerfettoSummary* summary = nullptr) {
  std::vector<std::string> errors;
  const auto fail = [&](std::size_t line, const std::string& what) {
    if (errors.size() < 20) errors.push_back("line " + std::to_string(line + 1) + ": " + what);
  };
  json doc;
  try {
    doc = json::parse(text);
  } catch (const std::exception& e) {
    return {std::string("not valid JSON: ") + e.what()};
  }
  if (!doc.is_object() || !doc.contains("traceEvents") || !doc["traceEvents"].is_array())
    return {"no traceEvents array"};

  // The renderer writes one event per line, so the raw `ts` text is checked line by line.
  const std::vector<std::string> lines = lines_of(text);
  if (lines.size() != doc["traceEvents"].size() + 2)
    return {"expected one event per line between the header and the footer"};
  const std::regex ts_re(R"re("ts":(-?)([0-9]+)\.([0-9]{3})[,}])re");
  const std::set<std::string> phases{"M", "X", "i", "s", "f", "C"};
  std::set<std::int64_t> record_times;
  std::int64_t t_max = 0;
  for (const auto& r : recs) {
    record_times.insert(r.t_ns);
    t_max = std::max(t_max, r.t_ns);
  }

  struct Flow {
    int s = 0, f = 0;
    std::size_t s_line = 0, f_line = 0;
    std::int64_t s_ns = 0, f_ns = 0;
    std::string s_key, f_key;
  };
  struct Slice {
    std::string name;
    std::int64_t begin = 0, end = 0;
  };
  std::map<std::pair<std::int64_t, std::int64_t>, std::vector<Slice>>
      stacks;                                         // (pid, tid) -> enclosing slices
  std::map<std::int64_t, std::string> process_names;  // pid -> name
  std::map<std::int64_t, std::int64_t> thread_pid;    // tid -> pid (a tid lives in one process)
  std::set<std::pair<std::int64_t, std::int64_t>> named_threads, used_tracks;
  std::map<std::int64_t, Flow> flows;
  std::size_t next_rec = 0;
  std::int64_t last_ns = 0;

  for (std::size_t n = 0; n < doc["traceEvents"].size(); ++n) {
    const std::size_t line = n + 1;
    const json& e = doc["traceEvents"][n];
    if (!e.is_object() || !e.contains("ph") || !e["ph"].is_string() ||
        !phases.count(e["ph"].get<std::string>())) {
      fail(line, "missing or unknown ph");
      continue;
    }
    const std::string ph = e["ph"];
    if (!e.contains("pid") || !e["pid"].is_number_integer() || !e.contains("tid") ||
        !e["tid"].is_number_integer()) {
      fail(line, "pid/tid not integers");
      continue;
    }
    if (!e.contains("name") || !e["name"].is_string()) fail(line, "no name");
    const std::int64_t pid = e["pid"], tid = e["tid"];
    if (pid <= 0 || tid <= 0) fail(line, "pid/tid 0 is the idle task to Perfetto");
    if (auto [it, fresh] = thread_pid.emplace(tid, pid); !fresh && it->second != pid)
      fail(line, "tid in two processes");
    const std::string name = e.value("name", "");
    if (ph == "M") {
      if (e.contains("ts")) fail(line, "metadata with ts");
      if (!e.contains("args") || !e["args"].is_object()) {
        fail(line, "metadata without args");
        continue;
      }
      if (name == "process_name" && e["args"].value("name", "").size())
        process_names[pid] = e["args"]["name"];
      if (name == "thread_name" && e["args"].value("name", "").size())
        named_threads.insert({pid, tid});
      continue;
    }
    used_tracks.insert({pid, tid});
    std::smatch m;
    if (!std::regex_search(lines[line], m, ts_re) || !e.contains("ts") || !e["ts"].is_number()) {
      fail(line, "ts missing or not microseconds with three decimals");
      continue;
    }
    const std::int64_t ns =
        (std::stoll(m[2].str()) * 1000 + std::stoll(m[3].str())) * (m[1].str().empty() ? 1 : -1);
    if (ns < last_ns) fail(line, "ts goes backwards in file order");
    last_ns = ns;
    const json* rec = e.contains("args") && e["args"].contains("rec") ? &e["args"]["rec"] : nullptr;
    if (rec && (!rec->is_number_unsigned() || *rec >= recs.size())) {
      fail(line, "args.rec is not a record index");
      rec = nullptr;
    }
    if (ph == "X" && e.value("cat", "") == "helper") {
      // A helper call's slice: it begins dur_ns before its record (which ends it), and is named
      // after the helper.
      const TraceRecord* r = rec ? &recs[rec->get<std::size_t>()] : nullptr;
      if (!r || r->event != "bpf_helper" || !r->field("dur_ns")) {
        fail(line, "helper slice without its bpf_helper record");
      } else {
        if (ns != r->t_ns - r->int_field("dur_ns")) fail(line, "helper slice ts != t_ns - dur_ns");
        const sim::TraceValue* h = r->field("helper");
        if (!h || !std::holds_alternative<std::string>(*h) || std::get<std::string>(*h) != name)
          fail(line, "helper slice not named after its helper");
      }
    } else {
      if (!record_times.count(ns) && ns != t_max) fail(line, "ts is no record's time");
      if (rec && recs[rec->get<std::size_t>()].t_ns != ns) fail(line, "ts != t_ns / 1000");
    }
    auto& stack = stacks[{pid, tid}];

    if (ph == "i") {
      if (e.value("s", "") != "t") fail(line, "instant not thread-scoped");
      if (!rec) {
        fail(line, "instant without its record");
        continue;
      }
      const std::size_t i = rec->get<std::size_t>();
      if (i != next_rec++) fail(line, "instants out of record order");
      const TraceRecord& r = recs[i];
      if (name != r.event) fail(line, "instant name is not the event");
      for (const auto& f : r.fields)
        if (!same_value(e["args"].value(f.key, json()), f.value))
          fail(line, "field " + f.key + " lost");
      if (summary) ++summary->instants;
    } else if (ph == "X") {
      // A complete slice: a duration in microseconds with three decimals, nested in (or after)
      // the slices before it on its track.
      const std::regex dur_re(R"re("dur":([0-9]+)\.([0-9]{3})[,}])re");
      std::smatch d;
      if (!std::regex_search(lines[line], d, dur_re) || !e.contains("dur")) {
        fail(line, "X without a dur in microseconds with three decimals");
        continue;
      }
      const std::int64_t end = ns + std::stoll(d[1].str()) * 1000 + std::stoll(d[2].str());
      while (!stack.empty() && stack.back().end <= ns)
        stack.pop_back();  // ended before this one begins
      if (!stack.empty() && stack.back().end < end)
        fail(line, "X '" + name + "' overlaps '" + stack.back().name + "' without nesting");
      if (!rec) fail(line, "X without its record");
      stack.push_back(Slice{name, ns, end});
      if (summary) summary->slice_names.insert(name);
      if (summary && e.value("cat", "") == "helper") ++summary->helper_slices;
    } else if (ph == "s" || ph == "f") {
      if (!e.contains("id") || !e["id"].is_number_integer()) {
        fail(line, "flow without integer id");
        continue;
      }
      const bool inside = std::any_of(stack.begin(), stack.end(), [&](const Slice& sl) {
        return sl.begin <= ns && ns <= sl.end;
      });
      if (!inside) fail(line, "flow event outside any slice (nothing to bind to)");
      Flow& fl = flows[e["id"].get<std::int64_t>()];
      const std::string key = name + "/" + e.value("cat", "");
      if (ph == "s") {
        ++fl.s;
        fl.s_line = line;
        fl.s_ns = ns;
        fl.s_key = key;
      } else {
        ++fl.f;
        fl.f_line = line;
        fl.f_ns = ns;
        fl.f_key = key;
        if (e.value("bp", "") != "e") fail(line, "flow end not bound to the enclosing slice");
      }
    } else if (ph == "C") {
      if (!e.contains("args") || !e["args"].is_object() || e["args"].empty()) {
        fail(line, "counter without args");
        continue;
      }
      for (const auto& [k, v] : e["args"].items())
        if (!v.is_number()) fail(line, "counter value " + k + " not numeric");
      if (summary) summary->counters.insert(name);
    }
  }
  if (next_rec != recs.size())
    errors.push_back(std::to_string(recs.size() - next_rec) + " records have no instant event");
  for (const auto& [id, fl] : flows) {
    if (fl.s != 1 || fl.f != 1)
      errors.push_back("flow " + std::to_string(id) + ": " + std::to_string(fl.s) + " s, " +
                       std::to_string(fl.f) + " f");
    else if (fl.f_line < fl.s_line || fl.f_ns < fl.s_ns)
      errors.push_back("flow " + std::to_string(id) + " ends before it starts");
    else if (fl.s_key != fl.f_key)
      errors.push_back("flow " + std::to_string(id) + ": s and f differ in name/cat");
  }
  for (const auto& [pid, tid] : used_tracks) {
    if (!process_names.count(pid)) errors.push_back("pid " + std::to_string(pid) + " unnamed");
    if (!named_threads.count({pid, tid}))
      errors.push_back("tid " + std::to_string(tid) + " unnamed");
  }
  if (summary) summary->flows = flows.size();
  return errors;
}

void check_jsonl(const std::string& text, const std::vector<TraceRecord>& recs) {
  const std::vector<std::string> lines = lines_of(text);
  REQUIRE(lines.size() == recs.size());
  std::size_t bad = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const TraceRecord& r = recs[i];
    json j;
    try {
      j = json::parse(lines[i]);
    } catch (const std::exception&) {
      ++bad;
      continue;
    }
    bool ok = j.is_object() && j.size() == 5 && j["t_ns"].is_number_integer() &&
              j["t_ns"] == r.t_ns && j["cpu"].is_number_integer() && j["cpu"] == r.cpu &&
              j["ctx"].is_number_integer() && j["ctx"] == r.ctx && j["event"] == r.event &&
              j["fields"].is_object() && j["fields"].size() == r.fields.size();
    for (const auto& f : r.fields)
      ok = ok && same_value(j["fields"].value(f.key, json()), f.value);
    bad += ok ? 0 : 1;
    if (!ok && bad == 1) UNSCOPED_INFO("first bad JSON line " << i + 1 << ": " << lines[i]);
  }
  CHECK(bad == 0);
}

void check_text(const std::string& text, const std::vector<TraceRecord>& recs) {
  const std::vector<std::string> lines = lines_of(text);
  REQUIRE(lines.size() == recs.size());
  // "<label>-<ctx> [cpu] <seconds> event:" (or "-" without a context); the time a number.
  const std::regex head(R"(^([^ ]+-[0-9]+|-) +\[[0-9]{3}\] +([0-9]+\.[0-9]{9}) [^ ]+:)");
  sim::ContextLabels labels;
  std::size_t bad = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    labels.see(recs[i]);
    std::smatch m;
    if (lines[i] != sim::Trace::format_text(recs[i], &labels) ||
        !std::regex_search(lines[i], m, head) ||
        std::llround(std::stod(m[2].str()) * 1e9) != recs[i].t_ns)
      ++bad;
  }
  CHECK(bad == 0);
}

struct Rendered {
  std::string text, jsonl, perfetto;
  bool operator==(const Rendered&) const = default;
};
Rendered render_all(const std::vector<TraceRecord>& recs) {
  return {sim::render_text(recs), sim::render_jsonl(recs), sim::render_perfetto(recs)};
}

}  // namespace

TEST_CASE("Perfetto JSON of a real run satisfies the trace-event format rules", "[trace]") {
  auto w = run_file(k41, 1);
  const auto& recs = w.trace().records();
  REQUIRE(recs.size() > 50);
  const std::string text = sim::render_perfetto(recs);
  PerfettoSummary s;
  const auto errors = check_perfetto(text, recs, &s);
  for (const auto& e : errors)
    UNSCOPED_INFO(e);
  CHECK(errors.empty());
  CHECK(s.instants == recs.size());
  // The model's conventions show up: timer start -> callback arrows, expiry, callback and lock
  // slices, counters of armed timers and refcounts.
  CHECK(s.flows >= 1);
  const auto has_prefix = [&](const std::string& p) {
    for (const auto& n : s.slice_names)
      if (n.rfind(p, 0) == 0) return true;
    return false;
  };
  CHECK(has_prefix("hrtimer "));
  CHECK(has_prefix("bpf_timer_cb "));
  CHECK(has_prefix("bpf_timer_lock#"));
  // Every helper call is a slice on its context's track, named after the helper.
  std::size_t helper_calls = 0;
  for (const auto& r : recs)
    helper_calls += r.event == "bpf_helper" && r.field("dur_ns") ? 1 : 0;
  CHECK(helper_calls > 5);
  CHECK(s.helper_slices == helper_calls);
  CHECK(s.slice_names.count("bpf_timer_cancel"));
  CHECK(s.counters.count("armed_timers"));
  CHECK(std::any_of(s.counters.begin(), s.counters.end(),
                    [](const std::string& c) { return c.find(".refcnt") != std::string::npos; }));
}

TEST_CASE("every race case renders valid Perfetto JSON and JSON lines", "[trace]") {
  for (const auto& file : race_files()) {
    INFO(file);
    auto w = run_file(file, 3);
    const auto& recs = w.trace().records();
    const auto errors = check_perfetto(sim::render_perfetto(recs), recs);
    for (const auto& e : errors)
      UNSCOPED_INFO(e);
    CHECK(errors.empty());
    check_jsonl(sim::render_jsonl(recs), recs);
  }
}

TEST_CASE("JSON lines: one object per record with t_ns, cpu, ctx, event and fields", "[trace]") {
  auto w = run_file(k41, 1);
  check_jsonl(sim::render_jsonl(w.trace().records()), w.trace().records());
}

TEST_CASE("text: one ftrace-style line per record", "[trace]") {
  auto w = run_file(k41, 1);
  check_text(sim::render_text(w.trace().records()), w.trace().records());
}

TEST_CASE("scheduler ties are trace records", "[trace]") {
  auto w = run_file("races/4.5-ctrl-c.json",
                    1);  // Ctrl-C with self re-arming timers: many simultaneous events
  std::size_t ties = 0;
  for (const auto& r : w.trace().records())
    if (r.event == "sched_decision") {
      ++ties;
      CHECK(r.cpu == -1);
      CHECK(r.int_field("chosen", -1) < r.int_field("options"));
    }
  std::size_t decided = 0;
  for (const auto& d : w.decisions)
    decided += d.kind == sim::DecisionKind::kTie ? 1 : 0;
  CHECK(ties > 0);
  CHECK(ties == decided);
}

TEST_CASE("same run and same seed give byte-identical renderings", "[trace][determinism]") {
  for (const auto& file : race_files()) {
    INFO(file);
    auto a = run_file(file, 7);
    auto b = run_file(file, 7);
    const Rendered ra = render_all(a.trace().records());
    CHECK(ra == render_all(a.trace().records()));
    CHECK(ra == render_all(b.trace().records()));
    // And the stream form is the string form.
    std::ostringstream t, j, p;
    sim::render_text(a.trace().records(), t);
    sim::render_jsonl(a.trace().records(), j);
    sim::render_perfetto(a.trace().records(), p);
    CHECK(ra == Rendered{t.str(), j.str(), p.str()});
  }
}

TEST_CASE("renderer conventions on hand-made records", "[trace]") {
  using F = sim::TraceField;
  std::vector<TraceRecord> recs{
      {0, 0, 1, "ctx_begin", {F("kind", "task"), F("name", "app")}},
      {1000, 0, 1, "lock_acquire", {F("slice_begin", "A")}},
      {1001, 0, 1, "lock_acquire", {F("slice_begin", "B")}},
      {1002, 0, 1, "start", {F("flow_out", 5), F("counter:armed", 1)}},
      {1003, 0, 1, "start", {F("flow_out", 6)}},            // never ends: dropped
      {1004, 0, 1, "lock_release", {F("slice_end", "A")}},  // B stays open above: reopened
      {1005, -1, 0, "stray_end", {F("flow_in", 99), F("slice_end", "nothing open")}},
      {2000, 1, 2, "ctx_begin", {F("kind", "softirq"), F("name", "softirq/1")}},
      {2000, 1, 2, "expire", {F("slice_begin", "hrtimer 3"), F("flow_in", 5)}},
      {2001, 1, 2, "msg", {F("s", "quote\" backslash\\ nl\n bad\xff utf8 \xc3\xa9")}},
      {2002, 1, 2, "again", {F("flow_out", 5)}},  // an id reused after its pair completed
      {3003, 0, 0, "start", {F("counter:armed", 0)}},
      {123456789, 1, 2, "expire", {F("flow_in", 5)}},
      // ctx 1 and ctx 2 never end, slice B and "hrtimer 3" stay open: closed at the end.
  };
  const std::string p = sim::render_perfetto(recs);
  PerfettoSummary s;
  const auto errors = check_perfetto(p, recs, &s);
  for (const auto& e : errors)
    UNSCOPED_INFO(e);
  CHECK(errors.empty());
  CHECK(s.flows == 2);
  CHECK(s.counters == std::set<std::string>{"armed"});
  CHECK(p.find("\"ts\":123456.789,") != std::string::npos);
  CHECK(p.find("\"ts\":0.000,") != std::string::npos);
  // Strict UTF-8 parsers accept it; the invalid byte becomes U+00FF.
  const json doc = json::parse(p);
  bool found = false;
  for (const auto& e : doc["traceEvents"])
    if (e.value("name", "") == "msg") {
      found = true;
      CHECK(e["args"]["s"] == "quote\" backslash\\ nl\n bad\xc3\xbf utf8 \xc3\xa9");
    }
  CHECK(found);
  const std::string text = sim::render_text(recs);
  CHECK(lines_of(text).size() == recs.size());  // the newline in a value is escaped
  CHECK(text.find("nl\\n bad") != std::string::npos);
  const json line = json::parse(lines_of(sim::render_jsonl(recs)).at(9));
  CHECK(line["fields"]["s"] == "quote\" backslash\\ nl\n bad\xc3\xbf utf8 \xc3\xa9");
  // No records: still a valid file (the kernel/global process and its thread, named).
  const std::string empty = sim::render_perfetto({});
  CHECK(check_perfetto(empty, {}).empty());
  CHECK(json::parse(empty)["traceEvents"].size() == 4);
}

TEST_CASE("python3's json module loads the Perfetto file and agrees on its structure", "[trace]") {
  if (std::system("command -v python3 >/dev/null 2>&1") != 0) {
    WARN("python3 not found: the independent consumer check is skipped");
    return;
  }
  auto w = run_file(k41, 1);
  const auto dir = std::filesystem::temp_directory_path();
  const auto trace = dir / ("bpftsim_trace_render_" + std::to_string(getpid()) + ".json");
  const auto script = dir / ("bpftsim_trace_render_" + std::to_string(getpid()) + ".py");
  {
    std::ofstream(trace) << sim::render_perfetto(w.trace().records());
    // Decimal timestamps: exact, so "at most three decimals" is checked without binary rounding.
    std::ofstream(script) << R"py(
import collections, decimal, json, sys
doc = json.load(open(sys.argv[1], encoding="utf-8"), parse_float=decimal.Decimal)
ev = doc["traceEvents"]
stacks = collections.defaultdict(list)
flows = collections.Counter()
for e in ev:
    ph = e["ph"]
    assert ph in "MXisfC", ph
    assert isinstance(e["pid"], int) and isinstance(e["tid"], int)
    if ph == "M":
        continue
    ts = decimal.Decimal(e["ts"])
    assert ts.as_tuple().exponent >= -3, e
    key = (e["pid"], e["tid"])
    if ph == "X":
        dur = decimal.Decimal(e["dur"])
        assert dur >= 0 and dur.as_tuple().exponent >= -3, e
        end = ts + dur
        st = stacks[key]
        while st and st[-1] <= ts:
            st.pop()
        assert not st or st[-1] >= end, ("overlapping slices", e)
        st.append(end)
    elif ph in "sf":
        flows[(e["id"], ph)] += 1
ids = {i for i, _ in flows}
assert all(flows[(i, "s")] == 1 and flows[(i, "f")] == 1 for i in ids)
print(len(ev))
)py";
  }
  const std::string cmd = "python3 " + script.string() + " " + trace.string() + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buf[256];
  while (std::fgets(buf, sizeof buf, pipe))
    out += buf;
  const int rc = pclose(pipe);
  std::filesystem::remove(trace);
  std::filesystem::remove(script);
  INFO(out);
  CHECK(rc == 0);
  const json doc = json::parse(sim::render_perfetto(w.trace().records()));
  CHECK(out == std::to_string(doc["traceEvents"].size()) + "\n");
}
