#include "tools/shrink.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/input_file.h"
#include "tools/runfile.h"

namespace bpftsim::tools {

namespace {

namespace fs = std::filesystem;
using OJson = nlohmann::ordered_json;

// A candidate: which actions of the original timeline are kept (original indices, ascending),
// which ranged ones are narrowed to a point, and the decision list replayed leniently.
struct State {
  std::vector<std::size_t> actions;
  std::map<std::size_t, sim::TimeNs> points;
  sim::DecisionList decisions;
};

// The non-default decisions of a run: replayed leniently they give the same run.
sim::DecisionList non_default(const sim::DecisionList& list) {
  sim::DecisionList out;
  for (const sim::Decision& d : list)
    if (d.chosen != 0) out.push_back(d);
  return out;
}

constexpr std::string_view kTimelinePrefix = "/timeline/";

// outcome_of with a "/timeline/K" outcome renamed to the original index of position K.
std::string normalized_outcome(const RunResult& r, const std::vector<std::size_t>& order) {
  std::string o = outcome_of(r);
  if (o.rfind(kTimelinePrefix, 0) != 0) return o;
  const char* begin = o.data() + kTimelinePrefix.size();
  const char* end = o.data() + o.size();
  std::size_t k = 0;
  const auto [ptr, ec] = std::from_chars(begin, end, k);
  if (ec != std::errc() || k >= order.size()) return o;
  return std::string(kTimelinePrefix) + std::to_string(order[k]) + std::string(ptr, end);
}

// The original action an outcome "/timeline/I..." names.
std::optional<std::size_t> outcome_action(const std::string& o) {
  if (o.rfind(kTimelinePrefix, 0) != 0) return std::nullopt;
  std::size_t k = 0;
  const auto [ptr, ec] = std::from_chars(o.data() + kTimelinePrefix.size(), o.data() + o.size(), k);
  if (ec != std::errc()) return std::nullopt;
  return k;
}

bool is_action_ref(const EventRef& e) {
  return e.kind == EventRef::Kind::kActionStart || e.kind == EventRef::Kind::kActionDone;
}

class Shrinker {
 public:
  Shrinker(const Scenario& sc, const RunOptions& opts, const ShrinkOptions& so) : sc_(sc), so_(so) {
    base_ = opts;
    base_.make_scheduler = nullptr;
    base_.progress = nullptr;
    base_.replay.reset();
    base_.lenient = true;
    base_.keep_trace = false;
    base_.full_trace = false;
    for (const OrderExpect& o : sc.expect.order)
      for (const EventRef* e : {&o.first, &o.then})
        if (is_action_ref(*e)) protected_.insert(e->action);
  }

  // The timeline order of a state: kept actions sorted stably by their (least) time.
  std::vector<std::size_t> order(const State& s) const {
    std::vector<std::size_t> ord = s.actions;
    std::stable_sort(ord.begin(), ord.end(),
                     [&](std::size_t a, std::size_t b) { return time_of(s, a) < time_of(s, b); });
    return ord;
  }

  sim::TimeNs time_of(const State& s, std::size_t i) const {
    auto it = s.points.find(i);
    return it != s.points.end() ? it->second : sc_.timeline[i].at_ns;
  }

  Scenario build(const State& s, const std::vector<std::size_t>& ord) const {
    Scenario c = sc_;
    c.timeline.clear();
    std::map<std::size_t, std::size_t> pos;
    for (std::size_t k = 0; k < ord.size(); ++k) {
      Action a = sc_.timeline[ord[k]];
      a.index = k;
      a.pointer = fmt::format("/timeline/{}", k);
      if (auto it = s.points.find(ord[k]); it != s.points.end()) {
        a.at_ns = it->second;
        a.at_max_ns.reset();
      }
      c.timeline.push_back(std::move(a));
      pos[ord[k]] = k;
    }
    for (OrderExpect& o : c.expect.order)
      for (EventRef* e : {&o.first, &o.then})
        if (is_action_ref(*e)) e->action = pos.at(e->action);
    return c;
  }

  bool exhausted() const { return runs_ >= so_.max_runs; }
  std::size_t runs() const { return runs_; }

  // Runs `s`; when it fails as the target does, it becomes the best state (with the run's own
  // non-default decisions). False when it does not, or when the budget is spent.
  bool attempt(State s) {
    // A timeline has at least one action (the schema's minItems): no run needed to refuse.
    if (exhausted() || s.actions.empty()) return false;
    ++runs_;
    std::sort(s.actions.begin(), s.actions.end());
    for (auto it = s.points.begin(); it != s.points.end();)
      it = std::binary_search(s.actions.begin(), s.actions.end(), it->first) ? std::next(it)
                                                                             : s.points.erase(it);
    const std::vector<std::size_t> ord = order(s);
    Scenario c = build(s, ord);
    RunOptions o = base_;
    o.replay = s.decisions;
    if (step_cap_) o.max_steps = step_cap_;
    auto ran = run_scenario(c, o);
    auto* r = std::get_if<RunResult>(&ran);
    if (r == nullptr) return false;
    const std::string outcome = normalized_outcome(*r, ord);
    if (!target_) {
      // The failing run itself.
      if (outcome == "pass") return false;
      target_ = outcome;
      if (!base_.max_steps) {
        const std::uint64_t limit = sc_.max_steps.value_or(kDefaultMaxSteps);
        step_cap_ = std::min(limit, std::max<std::uint64_t>(4 * r->steps, 100000));
      }
    } else if (outcome != *target_) {
      return false;
    }
    s.decisions = non_default(r->decisions);
    best_ = std::move(s);
    best_sc_ = std::move(c);
    best_run_ = std::move(*r);
    return true;
  }

  // Delta debugging over a set of items: `with(items)` is the candidate that keeps only those
  // items (of the current best), `current()` the items of the current best. Subsets first, then
  // complements, at growing granularity; the empty set is tried first.
  template <class T, class With, class Current>
  bool ddmin(With with, Current current) {
    std::vector<T> c = current();
    if (c.empty()) return false;
    if (attempt(with(std::vector<T>{}))) return true;
    bool changed = false;
    std::size_t n = 2;
    while (c.size() >= 2 && !exhausted()) {
      n = std::min(n, c.size());
      std::vector<std::vector<T>> chunks(n);
      for (std::size_t i = 0; i < c.size(); ++i)
        chunks[i * n / c.size()].push_back(c[i]);
      bool found = false;
      for (std::size_t i = 0; i < n && !found; ++i)
        if (attempt(with(chunks[i]))) {
          found = true;
          n = 2;
        }
      if (!found && n > 2)
        for (std::size_t i = 0; i < n && !found; ++i) {
          std::vector<T> rest;
          for (std::size_t j = 0; j < n; ++j)
            if (j != i) rest.insert(rest.end(), chunks[j].begin(), chunks[j].end());
          if (attempt(with(rest))) {
            found = true;
            n = std::max<std::size_t>(n - 1, 2);
          }
        }
      if (found) {
        changed = true;
        c = current();
        continue;
      }
      if (n >= c.size()) break;
      n = std::min(2 * n, c.size());
    }
    return changed;
  }

  // Ranged actions of the best state that are still ranges.
  std::vector<std::size_t> open_ranges() const {
    std::vector<std::size_t> out;
    for (std::size_t i : best_.actions)
      if (sc_.timeline[i].at_max_ns && !best_.points.count(i)) out.push_back(i);
    return out;
  }

  // The time the best run drew for ranged action `i` (its least time when no draw was made).
  sim::TimeNs drawn(std::size_t i) const {
    const std::vector<std::size_t> ord = order(best_);
    const auto at = std::find(ord.begin(), ord.end(), i);
    if (at != ord.end()) {
      const std::uint64_t key = action_key(best_sc_, static_cast<std::size_t>(at - ord.begin()));
      for (const sim::Decision& d : best_run_.decisions)
        if (d.kind == sim::DecisionKind::kRange && d.key == key)
          return sc_.timeline[i].at_ns + static_cast<sim::TimeNs>(d.value);
    }
    return sc_.timeline[i].at_ns;
  }

  bool narrow_ranges() {
    auto with = [&](const std::vector<std::size_t>& keep_ranged) {
      State s = best_;
      for (std::size_t i : open_ranges())
        if (std::find(keep_ranged.begin(), keep_ranged.end(), i) == keep_ranged.end())
          s.points[i] = drawn(i);
      return s;
    };
    return ddmin<std::size_t>(with, [&] { return open_ranges(); });
  }

  std::vector<std::size_t> removable() const {
    std::vector<std::size_t> out;
    for (std::size_t i : best_.actions)
      if (!protected_.count(i)) out.push_back(i);
    return out;
  }

  bool remove_actions() {
    auto with = [&](const std::vector<std::size_t>& keep) {
      State s = best_;
      s.actions.clear();
      for (std::size_t i : best_.actions)
        if (protected_.count(i) || std::find(keep.begin(), keep.end(), i) != keep.end())
          s.actions.push_back(i);
      return s;
    };
    return ddmin<std::size_t>(with, [&] { return removable(); });
  }

  bool cut_decisions() {
    bool changed = false;
    std::size_t drop = best_.decisions.size() / 2;
    while (drop >= 1 && !exhausted()) {
      State s = best_;
      s.decisions.resize(s.decisions.size() - std::min(drop, s.decisions.size()));
      if (attempt(std::move(s))) {
        changed = true;
        drop = std::min(drop, best_.decisions.size());
      } else {
        drop /= 2;
      }
    }
    return changed;
  }

  bool reset_decisions() {
    auto with = [&](const sim::DecisionList& keep) {
      State s = best_;
      s.decisions = keep;
      return s;
    };
    return ddmin<sim::Decision>(with, [&] { return best_.decisions; });
  }

  // One at a time: each remaining action removed, each remaining decision reset, until none of
  // these still fails. True when it completed (the result is 1-minimal).
  bool one_at_a_time() {
    while (!exhausted()) {
      bool changed = false;
      for (std::size_t i : removable()) {
        State s = best_;
        s.actions.erase(std::find(s.actions.begin(), s.actions.end(), i));
        if (attempt(std::move(s))) {
          changed = true;
          break;
        }
        if (exhausted()) return false;
      }
      if (changed) continue;
      for (std::size_t j = 0; j < best_.decisions.size(); ++j) {
        State s = best_;
        s.decisions.erase(s.decisions.begin() + static_cast<std::ptrdiff_t>(j));
        if (attempt(std::move(s))) {
          changed = true;
          break;
        }
        if (exhausted()) return false;
      }
      if (!changed) return true;
    }
    return false;
  }

  bool run_all(const sim::DecisionList& failing) {
    State s;
    for (std::size_t i = 0; i < sc_.timeline.size(); ++i)
      s.actions.push_back(i);
    s.decisions = failing;
    if (!attempt(std::move(s))) return false;
    if (auto a = outcome_action(*target_)) protected_.insert(*a);
    nondefault_before_ = best_.decisions.size();
    bool changed = true;
    while (changed && !exhausted()) {
      changed = false;
      changed |= narrow_ranges();
      changed |= remove_actions();
      changed |= cut_decisions();
      changed |= reset_decisions();
    }
    minimal_ = one_at_a_time();
    return true;
  }

  const Scenario& sc_;
  ShrinkOptions so_;
  RunOptions base_;
  std::set<std::size_t> protected_;
  std::optional<std::string> target_;
  std::optional<std::uint64_t> step_cap_;
  std::size_t runs_ = 0;
  State best_;
  Scenario best_sc_;
  RunResult best_run_;
  std::size_t nondefault_before_ = 0;
  bool minimal_ = false;
};

std::string shrunk_name(const std::string& name) {
  const std::string suffix = ".shrunk";
  return name.substr(0, 128 - suffix.size()) + suffix;
}

// The shrunk scenario's JSON: the original document with the state's timeline (in `ord` order,
// ranges narrowed), expect.order renumbered, objects made absolute, the run's options written in.
std::optional<std::string> shrunk_json(const Scenario& sc, const std::string& text, const State& s,
                                       const std::vector<std::size_t>& ord,
                                       const RunResult& failing, const RunOptions& opts,
                                       std::size_t actions_before) {
  OJson doc;
  try {
    doc = OJson::parse(text);
  } catch (const OJson::exception&) {
    return std::nullopt;
  }
  if (!doc.is_object() || !doc.contains("timeline") || !doc["timeline"].is_array() ||
      doc["timeline"].size() != sc.timeline.size())
    return std::nullopt;
  std::map<std::size_t, std::size_t> pos;
  OJson timeline = OJson::array();
  for (std::size_t k = 0; k < ord.size(); ++k) {
    OJson a = doc["timeline"][ord[k]];
    if (auto it = s.points.find(ord[k]); it != s.points.end()) a["at_ns"] = it->second;
    timeline.push_back(std::move(a));
    pos[ord[k]] = k;
  }
  doc["timeline"] = std::move(timeline);
  if (doc.contains("expect") && doc["expect"].contains("order"))
    for (OJson& o : doc["expect"]["order"])
      for (const char* side : {"first", "then"})
        for (const char* k : {"action_start", "action_done"})
          if (o.contains(side) && o[side].contains(k))
            o[side][k] = pos.at(o[side][k].get<std::size_t>());
  if (doc.contains("objects"))
    for (std::size_t i = 0; i < doc["objects"].size() && i < sc.objects.size(); ++i) {
      std::error_code ec;
      fs::path p = fs::absolute(sc.objects[i].resolved_path, ec);
      if (ec) p = sc.objects[i].resolved_path;
      doc["objects"][i]["path"] = p.lexically_normal().string();
    }
  doc["name"] = shrunk_name(sc.name);
  std::string desc = fmt::format(
      "Shrunk by bpftsim shrink from {} (seed {}, profile {}): {} of {} actions, {} non-default "
      "decision(s); fails with {}. ",
      sc.file, failing.seed, failing.profile, ord.size(), actions_before, s.decisions.size(),
      outcome_of(failing));
  if (doc.contains("description") && doc["description"].is_string())
    desc += doc["description"].get<std::string>();
  if (desc.size() > 4096) desc = desc.substr(0, 4093) + "...";
  doc["description"] = desc;
  doc["profile"] = failing.profile;
  doc["seed"] = failing.seed;
  if (opts.window_ns) doc["window_ns"] = *opts.window_ns;
  return doc.dump(2, ' ', false, OJson::error_handler_t::replace) + "\n";
}

}  // namespace

std::optional<ShrinkResult> shrink(const Scenario& sc, const RunOptions& opts,
                                   const sim::DecisionList& failing, const ShrinkOptions& so) {
  Shrinker sh(sc, opts, so);
  if (!sh.run_all(failing)) return std::nullopt;
  ShrinkResult res;
  res.outcome = *sh.target_;
  res.actions_before = sc.timeline.size();
  res.actions_after = sh.best_.actions.size();
  res.decisions_before = failing.size();
  res.nondefault_before = sh.nondefault_before_;
  res.decisions = sh.best_.decisions;
  res.decisions_after = res.decisions.size();
  res.ranges_narrowed = sh.best_.points.size();
  res.minimal = sh.minimal_;
  res.run = sh.best_run_;
  res.runs = sh.runs();

  // The scenario as a JSON document, loaded back and run once more with the full trace: the
  // result's run is the run of that document.
  std::string text;
  if (auto why =
          model::read_input_file(sc.file, model::kMaxScenarioBytes, "scenario file", &text)) {
    res.document_error = *why;
    return res;
  }
  if (fnv1a64(text) != sc.hash) {
    res.document_error = fmt::format("{} changed since it was loaded", sc.file);
    return res;
  }
  const std::vector<std::size_t> ord = sh.order(sh.best_);
  auto json = shrunk_json(sc, text, sh.best_, ord, sh.best_run_, opts, res.actions_before);
  if (!json) {
    res.document_error = fmt::format("{} is not the JSON document that was loaded", sc.file);
    return res;
  }
  const fs::path virtual_file = fs::path(sc.file).parent_path() / (shrunk_name(sc.name) + ".json");
  auto loaded = parse_scenario(virtual_file.string(), *json);
  if (auto* e = std::get_if<InputError>(&loaded)) {
    res.document_error = "the shrunk document does not load (please report): " + e->text();
    return res;
  }
  RunOptions o = sh.base_;
  o.window_ns.reset();  // written into the document
  o.replay = res.decisions;
  o.keep_trace = true;
  o.full_trace = true;
  ++res.runs;
  auto ran = run_scenario(std::get<Scenario>(loaded), o);
  auto* r = std::get_if<RunResult>(&ran);
  if (r == nullptr || normalized_outcome(*r, ord) != res.outcome) {
    res.document_error =
        fmt::format("the shrunk document came to {} instead of {} (please report)",
                    r != nullptr ? outcome_of(*r) : std::get<InputError>(ran).text(), res.outcome);
    return res;
  }
  res.run = std::move(*r);
  res.scenario_json = std::move(*json);
  return res;
}

std::variant<ShrunkFiles, InputError> write_shrunk(const ShrinkResult& r, const std::string& dir_in,
                                                   bool full_trace) {
  const std::string dir = dir_in.empty() ? "." : dir_in;
  if (r.scenario_json.empty())
    return InputError{dir, "", 0, 0, "no shrunk scenario document to write: " + r.document_error};
  OJson doc = OJson::parse(r.scenario_json);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return InputError{dir, "", 0, 0, fmt::format("cannot create the directory: {}", ec.message())};
  const fs::path dir_abs = fs::absolute(dir, ec).lexically_normal();
  for (OJson& o : doc["objects"]) {
    // Relative when the object and the directory share more than the root (a tree moved or
    // copied as a whole keeps working), else absolute.
    const fs::path p(o["path"].get<std::string>());
    const bool share = p.begin() != p.end() && dir_abs.begin() != dir_abs.end() &&
                       std::next(p.begin()) != p.end() &&
                       std::next(dir_abs.begin()) != dir_abs.end() &&
                       *std::next(p.begin()) == *std::next(dir_abs.begin());
    const fs::path rel = p.lexically_relative(dir_abs);
    if (share && !rel.empty()) o["path"] = rel.string();
  }
  const std::string name = doc["name"].get<std::string>();
  const std::string path = (fs::path(dir) / (name + ".json")).string();
  const std::string text = doc.dump(2, ' ', false, OJson::error_handler_t::replace) + "\n";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) return InputError{path, "", 0, 0, "cannot write the shrunk scenario"};
  }
  auto loaded = load_scenario(path);
  if (auto* e = std::get_if<InputError>(&loaded)) return *e;
  const Scenario& sc = std::get<Scenario>(loaded);
  RunOptions o;
  o.seed = r.run.seed;
  o.profile = r.run.profile;
  o.window_ns = r.run.window_ns;
  o.replay = r.run.decisions;
  o.lenient = false;
  o.full_trace = full_trace;
  auto ran = run_scenario(sc, o);
  if (auto* e = std::get_if<InputError>(&ran)) return *e;
  ShrunkFiles files;
  files.scenario = path;
  files.run = std::move(std::get<RunResult>(ran));
  if (outcome_of(files.run) != outcome_of(r.run))
    return InputError{path, "", 0, 0,
                      fmt::format("the written scenario, replayed strictly, came to {} instead of "
                                  "{} (please report)",
                                  outcome_of(files.run), outcome_of(r.run))};
  auto written = write_run_file(make_run_file(sc, files.run, BPFTSIM_VERSION), dir);
  if (auto* e = std::get_if<InputError>(&written)) return *e;
  files.run_file = std::get<std::string>(written);
  return files;
}

}  // namespace bpftsim::tools
