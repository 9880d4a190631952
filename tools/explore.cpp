#include "tools/explore.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "sim/prng.h"

namespace bpftsim::tools {

namespace {

using Clock = std::chrono::steady_clock;

std::uint64_t mix(std::uint64_t v) {
  return sim::SplitMix64(v).next();
}

// ---------------------------------------------------------------------------------------------
// Schedulers of the strategies.

// PCT (Burckhardt et al. 2010) over context keys: see tools/explore.h.
class PctScheduler final : public sim::Scheduler {
 public:
  PctScheduler(std::uint64_t seed, unsigned depth, std::uint64_t k) : prng_(seed) {
    for (unsigned c = 1; c < depth; ++c)
      change_points_.push_back(prng_.below(std::max<std::uint64_t>(k, 1)));
    std::sort(change_points_.begin(), change_points_.end());
  }

 protected:
  std::uint32_t pick(std::size_t n, sim::DecisionKind kind, std::uint64_t, std::uint32_t options,
                     std::span<const sim::Candidate> candidates) override {
    if (kind != sim::DecisionKind::kTie || candidates.empty())
      return static_cast<std::uint32_t>(prng_.below(options));
    std::uint32_t best = highest(candidates);
    // A change point at this decision: the owner of the chosen step drops below every initial
    // priority (and below earlier change points' owners), then the highest is chosen again.
    for (std::size_t c = 0; c < change_points_.size(); ++c)
      if (change_points_[c] == n) {
        priority_[candidates[best].owner] = change_points_.size() - c;
        best = highest(candidates);
      }
    return best;
  }

 private:
  std::uint64_t priority(std::uint64_t owner) {
    auto it = priority_.find(owner);
    if (it != priority_.end()) return it->second;
    // Initial priorities lie above every change-point priority (< depth).
    const std::uint64_t p = (prng_.next_u64() >> 8) + 1024;
    priority_.emplace(owner, p);
    return p;
  }
  std::uint32_t highest(std::span<const sim::Candidate> candidates) {
    std::uint32_t best = 0;
    std::uint64_t best_p = priority(candidates[0].owner);
    for (std::uint32_t i = 1; i < candidates.size(); ++i) {
      const std::uint64_t p = priority(candidates[i].owner);
      if (p > best_p) {
        best = i;
        best_p = p;
      }
    }
    return best;
  }

  sim::Prng prng_;
  std::vector<std::uint64_t> change_points_;
  std::map<std::uint64_t, std::uint64_t> priority_;
};

// The number of values DFS tries of a decision with `options` options.
std::uint32_t dfs_width(std::uint32_t options, bool draw, unsigned points) {
  if (draw && options > points) return points;
  return options;
}

// DFS: decision n takes choice prefix[n] (0 past the prefix); a wide draw's choice c is the c-th
// of `points` evenly spaced values in [0, options). Records the width of every decision.
class DfsScheduler final : public sim::Scheduler {
 public:
  DfsScheduler(const std::vector<std::uint32_t>& prefix, unsigned points,
               std::shared_ptr<std::vector<std::uint32_t>> widths)
      : prefix_(prefix), points_(points), widths_(std::move(widths)) {}

 protected:
  std::uint32_t pick(std::size_t n, sim::DecisionKind, std::uint64_t, std::uint32_t options,
                     std::span<const sim::Candidate> candidates) override {
    const bool draw = candidates.empty();
    const std::uint32_t width = dfs_width(options, draw, points_);
    widths_->push_back(width);
    std::uint32_t c = n < prefix_.size() ? prefix_[n] : 0;
    if (c >= width) c = 0;  // cannot happen in a deterministic run; the default is safe
    if (draw && width != options)
      return static_cast<std::uint32_t>(std::uint64_t{c} * (options - 1) / (width - 1));
    return c;
  }

 private:
  std::vector<std::uint32_t> prefix_;
  unsigned points_;
  std::shared_ptr<std::vector<std::uint32_t>> widths_;
};

// ---------------------------------------------------------------------------------------------
// Schedules and their order.

using Deviations = std::vector<std::pair<std::uint32_t, std::uint32_t>>;  // (decision, choice)

Deviations deviations_of(const std::vector<std::uint32_t>& prefix) {
  Deviations d;
  for (std::uint32_t i = 0; i < prefix.size(); ++i)
    if (prefix[i] != 0) d.emplace_back(i, prefix[i]);
  return d;
}

// Lexicographic order of the zero-padded choice vectors two deviation lists stand for.
bool dev_less(const Deviations& a, const Deviations& b) {
  for (std::size_t k = 0;; ++k) {
    if (k == a.size() || k == b.size()) return a.size() < b.size() && k == a.size();
    if (a[k].first != b[k].first) return a[k].first > b[k].first;  // b has 0 there
    if (a[k].second != b[k].second) return a[k].second < b[k].second;
  }
}

std::string dev_name(const Deviations& d) {
  if (d.empty()) return "root";
  std::string s;
  for (const auto& [p, v] : d)
    s += fmt::format("{}{}={}", s.empty() ? "" : ",", p, v);
  return s;
}

std::optional<Deviations> parse_dev_name(const std::string& s) {
  Deviations d;
  if (s == "root") return d;
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t end = s.find(',', i);
    if (end == std::string::npos) end = s.size();
    const std::string part = s.substr(i, end - i);
    const auto eq = part.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == part.size() ||
        part.find_first_not_of("0123456789=") != std::string::npos)
      return std::nullopt;
    try {
      d.emplace_back(static_cast<std::uint32_t>(std::stoul(part.substr(0, eq))),
                     static_cast<std::uint32_t>(std::stoul(part.substr(eq + 1))));
    } catch (...) {
      return std::nullopt;
    }
    i = end + 1;
  }
  return d;
}

struct OrderKey {
  std::uint64_t index = 0;  // random, pct
  Deviations dev;           // dfs
};

bool key_less(Strategy s, const OrderKey& a, const OrderKey& b) {
  return s == Strategy::kDfs ? dev_less(a.dev, b.dev) : a.index < b.index;
}

std::string key_name(Strategy s, const OrderKey& k) {
  return s == Strategy::kDfs ? dev_name(k.dev) : std::to_string(k.index);
}

// The subtree a dfs schedule belongs to (its first non-default choice), hashed for sharding.
std::uint64_t subtree_hash(const Deviations& d) {
  if (d.empty()) return mix(0x726f6f74ULL);  // "root"
  return mix(mix(d[0].first) ^ d[0].second);
}

// ---------------------------------------------------------------------------------------------
// One schedule's run.

struct Record {
  OrderKey key;
  std::uint32_t outcome = 0;      // into the worker's outcome table
  std::uint32_t sites_begin = 0;  // into the worker's new-site list
  std::uint32_t sites_end = 0;
  bool self_checked = false;
};

struct Worker {
  std::vector<Record> records;
  std::vector<std::string> outcomes;  // interned
  std::vector<sim::DecisionSite> new_sites;
  std::set<sim::DecisionSite> seen_sites;
  std::map<std::uint32_t, ExploreFailure> first_failure;  // per outcome id: its first record
  bool exhausted = false;                                 // dfs: walked its whole part
  std::optional<InputError> error;

  std::uint32_t intern(const std::string& o) {
    for (std::uint32_t i = 0; i < outcomes.size(); ++i)
      if (outcomes[i] == o) return i;
    outcomes.push_back(o);
    return static_cast<std::uint32_t>(outcomes.size() - 1);
  }
};

struct Shared {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<OrderKey> cut;  // the earliest failure so far (without --all)
  std::atomic<std::uint64_t> next_index{0};
  std::atomic<std::uint64_t> done{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<bool> error{false};
  unsigned running = 0;
};

struct Explorer {
  const Scenario& sc;
  const ExploreOptions& o;
  Strategy strategy;
  std::uint64_t seed;
  std::uint64_t pct_k = 1;
  std::optional<Clock::time_point> deadline;
  std::optional<std::uint64_t> budget;
  Shared shared;

  Explorer(const Scenario& s, const ExploreOptions& opts)
      : sc(s), o(opts), strategy(opts.strategy), seed(opts.seed.value_or(s.seed)) {}

  std::unique_ptr<sim::Scheduler> make(const OrderKey& k,
                                       const std::shared_ptr<std::vector<std::uint32_t>>& widths,
                                       const std::vector<std::uint32_t>& prefix) const {
    switch (strategy) {
      case Strategy::kRandom:
        return std::make_unique<sim::SeededScheduler>(mix(seed ^ mix(k.index)));
      case Strategy::kPct:
        return std::make_unique<PctScheduler>(mix(seed ^ mix(k.index)), o.depth, pct_k);
      case Strategy::kDfs:
        break;
    }
    return std::make_unique<DfsScheduler>(prefix, o.dfs_points, widths);
  }

  struct Ran {
    std::string outcome;
    std::uint64_t digest = 0;
    sim::DecisionList decisions;
    std::vector<std::uint64_t> bases;
  };

  std::variant<Ran, InputError> run(const OrderKey& k,
                                    const std::shared_ptr<std::vector<std::uint32_t>>& widths,
                                    const std::vector<std::uint32_t>& prefix, bool rerun) const {
    RunOptions ro = explore_run_options(sc, o);
    sim::Scheduler* used = nullptr;
    ro.make_scheduler = [&]() {
      auto s = make(k, widths, prefix);
      if (o.wrap_scheduler) s = o.wrap_scheduler(std::move(s), rerun);
      used = s.get();
      return s;
    };
    auto ran = run_scenario(sc, ro);
    if (auto* e = std::get_if<InputError>(&ran)) return *e;
    const RunResult& r = std::get<RunResult>(ran);
    Ran out;
    out.outcome = outcome_of(r);
    out.digest = r.digest;
    out.decisions = r.decisions;
    if (used) out.bases = used->bases();  // the scheduler lives as long as `r`
    return out;
  }

  bool self_checked(const OrderKey& k) const {
    if (o.self_check == 0) return false;
    if (strategy == Strategy::kDfs) {
      std::uint64_t h = mix(k.dev.size());
      for (const auto& [p, v] : k.dev)
        h = mix(h ^ mix(p) ^ v);
      return h % o.self_check == 0;
    }
    return (k.index + 1) % o.self_check == 0;
  }

  bool past_cut(const OrderKey& k) {
    std::lock_guard<std::mutex> lock(shared.mu);
    return shared.cut && key_less(strategy, *shared.cut, k);
  }

  bool out_of_time() const { return deadline && Clock::now() >= *deadline; }

  // Runs schedule `k` (and its self-check) and records it in `w`. False on an input error.
  bool one(Worker& w, const OrderKey& k, const std::vector<std::uint32_t>& prefix,
           std::shared_ptr<std::vector<std::uint32_t>> widths, bool count) {
    auto first = run(k, widths, prefix, false);
    if (auto* e = std::get_if<InputError>(&first)) {
      w.error = *e;
      shared.error = true;
      return false;
    }
    if (!count) return true;
    Ran& r = std::get<Ran>(first);
    Record rec;
    rec.key = k;
    if (self_checked(k)) {
      rec.self_checked = true;
      auto again = run(k, std::make_shared<std::vector<std::uint32_t>>(), prefix, true);
      if (auto* e = std::get_if<InputError>(&again)) {
        w.error = *e;
        shared.error = true;
        return false;
      }
      if (std::get<Ran>(again).digest != r.digest) r.outcome = kNondeterminismOutcome;
    }
    rec.outcome = w.intern(r.outcome);
    rec.sites_begin = static_cast<std::uint32_t>(w.new_sites.size());
    for (std::size_t i = 0; i < r.bases.size() && i < r.decisions.size(); ++i) {
      const sim::DecisionSite site{r.decisions[i].kind, r.bases[i]};
      if (w.seen_sites.insert(site).second) w.new_sites.push_back(site);
    }
    rec.sites_end = static_cast<std::uint32_t>(w.new_sites.size());
    w.records.push_back(rec);
    shared.done++;
    if (r.outcome != "pass") {
      shared.failed++;
      if (!w.first_failure.count(rec.outcome))
        w.first_failure.emplace(rec.outcome, ExploreFailure{r.outcome, key_name(strategy, k),
                                                            std::move(r.decisions), r.digest});
      if (!o.all) {
        std::lock_guard<std::mutex> lock(shared.mu);
        if (!shared.cut || key_less(strategy, k, *shared.cut)) shared.cut = k;
      }
    }
    return true;
  }

  // random / pct: global indices shard + shards * m, m taken in turn by the workers.
  void work_indexed(Worker& w) {
    while (!shared.error) {
      const std::uint64_t m = shared.next_index++;
      const std::uint64_t idx = o.shard + std::uint64_t{o.shards} * m;
      if (budget && idx >= *budget) break;
      OrderKey k;
      k.index = idx;
      if (past_cut(k) || out_of_time()) break;
      if (!one(w, k, {}, nullptr, true)) break;
    }
  }

  // dfs: the walk of the subtrees this worker owns (see tools/explore.h).
  void work_dfs(Worker& w, unsigned part, unsigned parts) {
    std::vector<std::uint32_t> prefix;
    std::uint64_t owned = 0;
    while (!shared.error) {
      OrderKey k;
      k.dev = deviations_of(prefix);
      const bool mine = subtree_hash(k.dev) % parts == part;
      // The walk goes in schedule order: once past the first failure, or with the budget spent,
      // nothing further is kept.
      if ((budget && owned >= *budget) || past_cut(k) || out_of_time()) break;
      auto widths = std::make_shared<std::vector<std::uint32_t>>();
      if (!one(w, k, prefix, widths, mine)) break;
      if (mine) ++owned;
      // The next schedule: the deepest decision that can take its next choice within the bound;
      // outside this worker's subtrees only up to the subtree's first non-default choice.
      std::vector<std::uint32_t> c(widths->size(), 0);
      for (std::size_t j = 0; j < c.size() && j < prefix.size(); ++j)
        c[j] = prefix[j];
      std::size_t limit = c.size();
      if (!mine && !k.dev.empty()) limit = std::min<std::size_t>(limit, k.dev[0].first + 1);
      std::vector<unsigned> nondef(limit + 1, 0);  // non-default choices before j
      for (std::size_t j = 0; j < limit; ++j)
        nondef[j + 1] = nondef[j] + (c[j] != 0 ? 1 : 0);
      std::optional<std::size_t> next;
      for (std::size_t j = limit; j-- > 0;)
        if (c[j] + 1 < (*widths)[j] && nondef[j] + 1 <= o.bound) {
          next = j;
          break;
        }
      if (!next) {
        w.exhausted = true;
        break;
      }
      c.resize(*next + 1);
      ++c[*next];
      prefix = std::move(c);
    }
  }
};

}  // namespace

const char* strategy_name(Strategy s) {
  switch (s) {
    case Strategy::kRandom:
      return "random";
    case Strategy::kPct:
      return "pct";
    case Strategy::kDfs:
      return "dfs";
  }
  return "?";
}

std::optional<Strategy> strategy_from_name(const std::string& name) {
  for (Strategy s : {Strategy::kRandom, Strategy::kPct, Strategy::kDfs})
    if (name == strategy_name(s)) return s;
  return std::nullopt;
}

std::uint64_t ExploreSummary::failures() const {
  std::uint64_t n = 0;
  for (const OutcomeStat& s : outcomes)
    if (s.outcome != "pass") n += s.count;
  return n;
}

bool ExploreSummary::same_result(const ExploreSummary& o) const {
  return scenario == o.scenario && name == o.name && strategy == o.strategy && seed == o.seed &&
         profile == o.profile && window_ns == o.window_ns && depth == o.depth && bound == o.bound &&
         dfs_points == o.dfs_points && all == o.all && budget == o.budget &&
         schedules == o.schedules && self_checks == o.self_checks && complete == o.complete &&
         outcomes == o.outcomes && sites == o.sites && shards == o.shards &&
         shards_merged == o.shards_merged;
}

RunOptions explore_run_options(const Scenario& sc, const ExploreOptions& o) {
  RunOptions ro;
  ro.seed = o.seed.value_or(sc.seed);
  ro.profile = o.profile;
  ro.window_ns = o.window_ns;
  ro.max_steps = o.max_steps;
  ro.max_insns = o.max_insns;
  ro.keep_trace = false;
  ro.full_trace = false;
  return ro;
}

std::variant<ExploreResult, InputError> explore(const Scenario& sc, const ExploreOptions& opts) {
  if (opts.shards == 0 || opts.shard >= opts.shards)
    return InputError{
        sc.file, "", 0, 0,
        fmt::format("shard {}/{}: expected i/N with 0 <= i < N", opts.shard, opts.shards)};
  ExploreOptions o = opts;
  o.dfs_points = std::max(2u, o.dfs_points);  // min and max at least
  Explorer ex(sc, o);
  const auto start = Clock::now();
  if (o.time_s)
    ex.deadline = start + std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>(*o.time_s));
  ex.budget = o.schedules;
  if (!o.schedules && !o.time_s && o.strategy != Strategy::kDfs) ex.budget = kDefaultSchedules;

  // Learn the profile name (and refuse bad input) with one run of every default; its decisions
  // are PCT's k.
  {
    RunOptions ro = explore_run_options(sc, o);
    ro.make_scheduler = [] { return std::make_unique<sim::DefaultScheduler>(); };
    auto ran = run_scenario(sc, ro);
    if (auto* e = std::get_if<InputError>(&ran)) return *e;
    const std::size_t decisions = std::get<RunResult>(ran).decisions.size();
    ex.pct_k = std::max<std::size_t>(decisions, 1);
    // A run of all defaults that asks no decision is the only schedule there is: every scheduler
    // gives that run.
    if (decisions == 0 && o.strategy != Strategy::kDfs) ex.budget = 1;
  }

  const unsigned jobs = std::max(1u, o.jobs);
  std::vector<Worker> workers(jobs);
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(ex.shared.mu);
    ex.shared.running = jobs;
  }
  for (unsigned t = 0; t < jobs; ++t)
    threads.emplace_back([&ex, &workers, &o, t, jobs] {
      if (o.strategy == Strategy::kDfs) {
        // Thread t of shard i owns the subtrees whose hash mod (shards * jobs) is i + shards * t.
        ex.work_dfs(workers[t], o.shard + o.shards * t, o.shards * jobs);
      } else {
        ex.work_indexed(workers[t]);
      }
      std::lock_guard<std::mutex> lock(ex.shared.mu);
      --ex.shared.running;
      ex.shared.cv.notify_all();
    });
  {
    std::unique_lock<std::mutex> lock(ex.shared.mu);
    while (ex.shared.running > 0) {
      ex.shared.cv.wait_for(lock, std::chrono::milliseconds(200));
      if (o.progress && ex.shared.running > 0) {
        const double secs = std::chrono::duration<double>(Clock::now() - start).count();
        const std::uint64_t done = ex.shared.done, failed = ex.shared.failed;
        lock.unlock();
        o.progress(done, failed, secs);
        lock.lock();
      }
    }
  }
  for (auto& t : threads)
    t.join();
  for (const Worker& w : workers)
    if (w.error) return *w.error;

  // Aggregate in schedule order: all records, sorted; cut at the budget and (without --all) at
  // the first failure.
  struct Ref {
    const Worker* w;
    const Record* r;
  };
  std::vector<Ref> refs;
  for (const Worker& w : workers)
    for (const Record& r : w.records)
      refs.push_back({&w, &r});
  std::sort(refs.begin(), refs.end(),
            [&](const Ref& a, const Ref& b) { return key_less(o.strategy, a.r->key, b.r->key); });
  ExploreResult res;
  ExploreSummary& s = res.summary;
  s.scenario = sc.file;
  s.name = sc.name;
  s.strategy = strategy_name(o.strategy);
  s.seed = ex.seed;
  s.profile = o.profile.value_or(sc.profile);
  s.window_ns = o.window_ns;
  if (o.strategy == Strategy::kPct) s.depth = o.depth;
  if (o.strategy == Strategy::kDfs) {
    s.bound = o.bound;
    s.dfs_points = o.dfs_points;
  }
  s.all = o.all;
  s.budget = o.schedules.value_or(0);
  s.shards = o.shards;
  s.shards_merged = {o.shard};
  bool cut = false;
  std::map<std::string, std::size_t> at;  // outcome -> index in s.outcomes
  for (const Ref& ref : refs) {
    if (o.strategy == Strategy::kDfs && ex.budget && s.schedules >= *ex.budget) {
      cut = true;
      break;
    }
    const std::string& outcome = ref.w->outcomes[ref.r->outcome];
    ++s.schedules;
    if (ref.r->self_checked) ++s.self_checks;
    for (std::uint32_t i = ref.r->sites_begin; i < ref.r->sites_end; ++i)
      s.sites.insert(ref.w->new_sites[i]);
    if (o.record_schedules) res.schedule_ids.push_back(key_name(o.strategy, ref.r->key));
    auto it = at.find(outcome);
    if (it == at.end()) {
      at.emplace(outcome, s.outcomes.size());
      s.outcomes.push_back(OutcomeStat{outcome, 1, key_name(o.strategy, ref.r->key)});
      if (outcome != "pass") res.failures.push_back(ref.w->first_failure.at(ref.r->outcome));
    } else {
      ++s.outcomes[it->second].count;
    }
    if (outcome != "pass" && !o.all) {
      cut = true;
      break;
    }
  }
  if (o.strategy == Strategy::kDfs) {
    bool exhausted = true;
    for (const Worker& w : workers)
      exhausted = exhausted && w.exhausted;
    s.complete = exhausted && !cut;
  }
  std::sort(res.schedule_ids.begin(), res.schedule_ids.end());
  s.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return res;
}

// ---------------------------------------------------------------------------------------------
// Summaries.

namespace {

std::string site_text(const sim::DecisionSite& site) {
  return fmt::format("{}:{:016x}", sim::decision_kind_name(site.kind), site.base);
}

}  // namespace

std::string summary_json(const ExploreSummary& s) {
  nlohmann::ordered_json j;
  j["bpftsim_explore"] = 1;
  j["scenario"] = s.scenario;
  j["name"] = s.name;
  j["strategy"] = s.strategy;
  j["seed"] = s.seed;
  j["profile"] = s.profile;
  if (s.window_ns) j["window_ns"] = *s.window_ns;
  j["depth"] = s.depth;
  j["bound"] = s.bound;
  j["dfs_points"] = s.dfs_points;
  j["all"] = s.all;
  j["budget"] = s.budget;
  j["shards"] = s.shards;
  j["shards_merged"] = s.shards_merged;
  j["schedules"] = s.schedules;
  j["self_checks"] = s.self_checks;
  j["complete"] = s.complete;
  j["failures"] = s.failures();
  nlohmann::ordered_json outs = nlohmann::ordered_json::array();
  for (const OutcomeStat& o : s.outcomes) {
    nlohmann::ordered_json e;
    e["outcome"] = o.outcome;
    e["count"] = o.count;
    e["hit_rate"] =
        s.schedules ? static_cast<double>(o.count) / static_cast<double>(s.schedules) : 0.0;
    e["first"] = o.first;
    outs.push_back(e);
  }
  j["outcomes"] = outs;
  j["sites_covered"] = s.sites.size();
  std::vector<std::string> sites;
  for (const auto& site : s.sites)
    sites.push_back(site_text(site));
  j["sites"] = sites;
  j["run_files"] = s.run_files;
  j["timing"] = {
      {"seconds", s.seconds},
      {"schedules_per_second", s.seconds > 0 ? static_cast<double>(s.schedules) / s.seconds : 0.0}};
  return j.dump(2) + "\n";
}

std::string summary_text(const ExploreSummary& s) {
  std::string out = fmt::format("explore {}: strategy {}", s.name, s.strategy);
  if (s.strategy == "pct") out += fmt::format(" depth {}", s.depth);
  if (s.strategy == "dfs") out += fmt::format(" bound {} points {}", s.bound, s.dfs_points);
  out += fmt::format(", seed {}, profile {}", s.seed, s.profile);
  if (s.shards > 1)
    out += fmt::format(", shard{} {} of {}", s.shards_merged.size() > 1 ? "s" : "",
                       fmt::join(s.shards_merged, ","), s.shards);
  out += "\n";
  out += fmt::format("  {} schedule(s) in {:.2f} s ({:.0f}/s), {} self-checked{}\n", s.schedules,
                     s.seconds, s.seconds > 0 ? static_cast<double>(s.schedules) / s.seconds : 0.0,
                     s.self_checks, s.complete ? ", the whole bounded tree" : "");
  std::size_t width = 7;
  for (const OutcomeStat& o : s.outcomes)
    width = std::max(width, o.outcome.size());
  out += fmt::format("  {:<{}}  {:>9}  {:>9}  first schedule\n", "outcome", width, "count",
                     "hit rate");
  for (const OutcomeStat& o : s.outcomes)
    out += fmt::format(
        "  {:<{}}  {:>9}  {:>8.3f}%  {}\n", o.outcome, width, o.count,
        s.schedules ? 100.0 * static_cast<double>(o.count) / static_cast<double>(s.schedules) : 0.0,
        o.first);
  std::map<std::string, std::size_t> by_kind;
  for (const auto& site : s.sites)
    ++by_kind[sim::decision_kind_name(site.kind)];
  std::vector<std::string> parts;
  for (const auto& [k, n] : by_kind)
    parts.push_back(fmt::format("{} {}", k, n));
  out += fmt::format("  decision sites covered: {}{}\n", s.sites.size(),
                     parts.empty() ? "" : fmt::format(" ({})", fmt::join(parts, ", ")));
  return out;
}

std::variant<ExploreSummary, InputError> parse_summary(const std::string& path,
                                                       const std::string& text) {
  auto bad = [&](const std::string& ptr, const std::string& msg) {
    return InputError{path, ptr, 0, 0, msg};
  };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    return bad("", fmt::format("not JSON: {}", e.what()));
  }
  if (!j.is_object() || !j.contains("bpftsim_explore") || j["bpftsim_explore"] != 1)
    return bad("", "not a bpftsim explore summary (no \"bpftsim_explore\": 1)");
  ExploreSummary s;
  try {
    s.scenario = j.at("scenario").get<std::string>();
    s.name = j.at("name").get<std::string>();
    s.strategy = j.at("strategy").get<std::string>();
    if (!strategy_from_name(s.strategy)) return bad("/strategy", "unknown strategy");
    s.seed = j.at("seed").get<std::uint64_t>();
    s.profile = j.at("profile").get<std::string>();
    if (j.contains("window_ns")) s.window_ns = j["window_ns"].get<sim::TimeNs>();
    s.depth = j.at("depth").get<unsigned>();
    s.bound = j.at("bound").get<unsigned>();
    s.dfs_points = j.at("dfs_points").get<unsigned>();
    s.all = j.at("all").get<bool>();
    s.budget = j.at("budget").get<std::uint64_t>();
    s.shards = j.at("shards").get<unsigned>();
    s.shards_merged = j.at("shards_merged").get<std::vector<unsigned>>();
    s.schedules = j.at("schedules").get<std::uint64_t>();
    s.self_checks = j.at("self_checks").get<std::uint64_t>();
    s.complete = j.at("complete").get<bool>();
    for (const auto& e : j.at("outcomes"))
      s.outcomes.push_back(OutcomeStat{e.at("outcome").get<std::string>(),
                                       e.at("count").get<std::uint64_t>(),
                                       e.at("first").get<std::string>()});
    for (const auto& e : j.at("sites")) {
      const std::string t = e.get<std::string>();
      const auto colon = t.find(':');
      const auto kind = colon == std::string::npos
                            ? std::nullopt
                            : sim::decision_kind_from_name(t.substr(0, colon));
      if (!kind || t.size() != colon + 17) return bad("/sites", fmt::format("bad site '{}'", t));
      s.sites.insert(sim::DecisionSite{*kind, std::stoull(t.substr(colon + 1), nullptr, 16)});
    }
    if (j.contains("run_files")) s.run_files = j["run_files"].get<std::vector<std::string>>();
    if (j.contains("timing")) s.seconds = j["timing"].at("seconds").get<double>();
  } catch (const std::exception& e) {
    return bad("", fmt::format("malformed summary: {}", e.what()));
  }
  if (s.shards == 0) return bad("/shards", "expected at least 1");
  for (std::size_t i = 0; i < s.outcomes.size(); ++i) {
    const std::string& first = s.outcomes[i].first;
    const bool ok = s.strategy == "dfs"
                        ? parse_dev_name(first).has_value()
                        : !first.empty() && first.size() <= 19 &&
                              first.find_first_not_of("0123456789") == std::string::npos;
    if (!ok)
      return bad(fmt::format("/outcomes/{}/first", i),
                 fmt::format("bad {} schedule name '{}'", s.strategy, first));
  }
  return s;
}

std::variant<ExploreSummary, std::string> merge_summaries(
    const std::vector<ExploreSummary>& parts) {
  if (parts.empty()) return std::string("no summaries to merge");
  const ExploreSummary& a = parts.front();
  ExploreSummary m = a;
  m.outcomes.clear();
  m.sites.clear();
  m.shards_merged.clear();
  m.run_files.clear();
  m.schedules = m.self_checks = 0;
  m.seconds = 0;
  bool complete = true;
  const Strategy strategy = *strategy_from_name(a.strategy);
  auto first_less = [&](const std::string& x, const std::string& y) {
    if (strategy == Strategy::kDfs) return dev_less(*parse_dev_name(x), *parse_dev_name(y));
    return std::stoull(x) < std::stoull(y);
  };
  for (const ExploreSummary& p : parts) {
    if (p.scenario != a.scenario || p.name != a.name || p.strategy != a.strategy ||
        p.seed != a.seed || p.profile != a.profile || p.window_ns != a.window_ns ||
        p.depth != a.depth || p.bound != a.bound || p.dfs_points != a.dfs_points ||
        p.all != a.all || p.budget != a.budget || p.shards != a.shards)
      return fmt::format(
          "the summaries are not shards of one exploration: {} ({} {} seed {}, {} shards) vs {} "
          "({} {} seed {}, {} shards), or their parameters differ",
          a.scenario, a.name, a.strategy, a.seed, a.shards, p.scenario, p.name, p.strategy, p.seed,
          p.shards);
    for (unsigned sh : p.shards_merged) {
      if (std::find(m.shards_merged.begin(), m.shards_merged.end(), sh) != m.shards_merged.end())
        return fmt::format("shard {} of {} appears twice", sh, a.shards);
      m.shards_merged.push_back(sh);
    }
    m.schedules += p.schedules;
    m.self_checks += p.self_checks;
    m.seconds += p.seconds;
    complete = complete && p.complete;
    m.sites.insert(p.sites.begin(), p.sites.end());
    m.run_files.insert(m.run_files.end(), p.run_files.begin(), p.run_files.end());
    for (const OutcomeStat& o : p.outcomes) {
      auto it = std::find_if(m.outcomes.begin(), m.outcomes.end(),
                             [&](const OutcomeStat& x) { return x.outcome == o.outcome; });
      if (it == m.outcomes.end()) {
        m.outcomes.push_back(o);
      } else {
        it->count += o.count;
        if (first_less(o.first, it->first)) it->first = o.first;
      }
    }
  }
  std::sort(m.shards_merged.begin(), m.shards_merged.end());
  // Outcomes in order of first appearance, as one run lists them.
  std::stable_sort(
      m.outcomes.begin(), m.outcomes.end(),
      [&](const OutcomeStat& x, const OutcomeStat& y) { return first_less(x.first, y.first); });
  m.complete = strategy == Strategy::kDfs && complete;
  if (m.shards_merged.size() == m.shards) {
    // Every shard: the merged summary is the unsharded run's.
    m.shards = 1;
    m.shards_merged = {0};
  }
  return m;
}

}  // namespace bpftsim::tools
