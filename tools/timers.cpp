#include "tools/timers.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace bpftsim::tools {

namespace {

std::optional<std::int64_t> int_field(const sim::TraceRecord& r, const char* key) {
  const sim::TraceValue* v = r.field(key);
  if (v == nullptr) return std::nullopt;
  if (const auto* i = std::get_if<std::int64_t>(v)) return *i;
  return std::nullopt;
}

std::string str_field(const sim::TraceRecord& r, const char* key) {
  const sim::TraceValue* v = r.field(key);
  if (v == nullptr) return "";
  if (const auto* s = std::get_if<std::string>(v)) return *s;
  return std::to_string(std::get<std::int64_t>(*v));
}

// "timer of map 1 (m) key 0" -> "m[0]"; anything else as it is.
std::string element_of(const std::string& name) {
  const auto open = name.find(" (");
  const auto close = name.find(") key ");
  if (name.rfind("timer of map ", 0) != 0 || open == std::string::npos ||
      close == std::string::npos || close < open)
    return name;
  return fmt::format("{}[{}]", name.substr(open + 2, close - open - 2), name.substr(close + 6));
}

}  // namespace

std::vector<TimerRow> timer_table(const std::vector<sim::TraceRecord>& records,
                                  const std::vector<sim::Finding>& findings) {
  std::map<std::int64_t, TimerRow> rows;
  auto place = [](const sim::TraceRecord& r) { return fmt::format("t={} cpu{}", r.t_ns, r.cpu); };
  for (const sim::TraceRecord& r : records) {
    if (r.event == "kmalloc" && str_field(r, "kind") == "bpf_hrtimer") {
      const std::int64_t id = int_field(r, "obj").value_or(0);
      TimerRow& row = rows[id];
      row.id = id;
      row.element = element_of(str_field(r, "name"));
      row.init = place(r);
      continue;
    }
    auto known = [&](const char* key) -> TimerRow* {
      const auto id = int_field(r, key);
      if (!id) return nullptr;
      auto it = rows.find(*id);
      return it == rows.end() ? nullptr : &it->second;
    };
    if (r.event == "hrtimer_start") {
      if (TimerRow* t = known("hrtimer")) ++t->starts;
    } else if (r.event == "hrtimer_cancel") {
      if (TimerRow* t = known("hrtimer")) ++t->cancels;
    } else if (r.event == "hrtimer_expire_entry") {
      if (TimerRow* t = known("hrtimer")) ++t->expiries;
    } else if (r.event == "bpf_timer_cb") {
      if (TimerRow* t = known("timer")) {
        ++t->callback_runs;
        const std::string cb = str_field(r, "callback");
        if (std::find(t->callbacks.begin(), t->callbacks.end(), cb) == t->callbacks.end())
          t->callbacks.push_back(cb);
      }
    } else if (r.event == "kfree" && str_field(r, "kind") == "bpf_hrtimer") {
      if (TimerRow* t = known("obj")) t->freed = place(r) + " by " + str_field(r, "by");
    }
  }
  for (const sim::Finding& f : findings) {
    const std::string prefix = "bpf_hrtimer#";
    if (f.object.rfind(prefix, 0) != 0) continue;
    const std::string n = f.object.substr(prefix.size());
    if (n.empty() || n.size() > 12 || n.find_first_not_of("0123456789") != std::string::npos)
      continue;
    auto it = rows.find(std::stoll(n));
    if (it != rows.end()) it->second.findings.push_back(sim::finding_kind_name(f.kind));
  }
  std::vector<TimerRow> out;
  for (auto& [id, row] : rows)
    out.push_back(std::move(row));
  return out;
}

std::string timer_table_text(const std::vector<TimerRow>& rows) {
  if (rows.empty()) return "(no BPF timers)\n";
  std::vector<std::vector<std::string>> cells{{"TIMER", "ELEMENT", "INIT", "STARTS", "EXPIRIES",
                                               "CALLBACK_RUNS", "CALLBACKS", "CANCELS", "FREED",
                                               "FINDINGS"}};
  for (const TimerRow& r : rows)
    cells.push_back({fmt::format("bpf_hrtimer#{}", r.id), r.element, r.init,
                     std::to_string(r.starts), std::to_string(r.expiries),
                     std::to_string(r.callback_runs),
                     r.callbacks.empty() ? "-" : fmt::format("{}", fmt::join(r.callbacks, ",")),
                     std::to_string(r.cancels), r.freed.empty() ? "-" : r.freed,
                     r.findings.empty() ? "-" : fmt::format("{}", fmt::join(r.findings, ","))});
  std::vector<std::size_t> width(cells[0].size(), 0);
  for (const auto& row : cells)
    for (std::size_t c = 0; c < row.size(); ++c)
      width[c] = std::max(width[c], row[c].size());
  std::string out;
  for (const auto& row : cells) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line += std::string(width[c] - row[c].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

}  // namespace bpftsim::tools
