#include "sim/scheduler.h"

#include <fmt/format.h>

#include <charconv>
#include <string_view>

#include "sim/assert.h"
#include "sim/hash.h"

namespace bpftsim::sim {

namespace {

// What a finished scheduler leaves to the next one of its thread: at most a few sets of buffers,
// none larger than a long run's (a run of a million decisions does not pin its log).
constexpr std::size_t kMaxSpares = 4;
constexpr std::size_t kMaxKeptDecisions = 4096;
constexpr std::size_t kMaxKeptSlots = 8192;

constexpr const char* kDecisionKindNames[kDecisionKinds] = {"tie",   "jitter", "model", "land",
                                                            "range", "grace",  "cpu"};

bool all_of_chars(std::string_view s, std::string_view allowed) {
  return !s.empty() && s.find_first_not_of(allowed) == std::string_view::npos;
}

bool parse_dec32(std::string_view w, std::uint32_t* out) {
  std::uint64_t v = 0;
  if (!all_of_chars(w, "0123456789") || w.size() > 10 ||
      std::from_chars(w.data(), w.data() + w.size(), v).ec != std::errc() || v > 0xffffffffULL)
    return false;
  *out = static_cast<std::uint32_t>(v);
  return true;
}

bool parse_hex64(std::string_view w, std::uint64_t* out) {
  return all_of_chars(w, "0123456789abcdefABCDEF") && w.size() <= 16 &&
         std::from_chars(w.data(), w.data() + w.size(), *out, 16).ec == std::errc();
}

}  // namespace

const char* decision_kind_name(DecisionKind kind) {
  const auto i = static_cast<int>(kind) - 1;
  return i >= 0 && i < kDecisionKinds ? kDecisionKindNames[i] : "?";
}

std::optional<DecisionKind> decision_kind_from_name(std::string_view name) {
  for (int i = 0; i < kDecisionKinds; ++i)
    if (name == kDecisionKindNames[i]) return static_cast<DecisionKind>(i + 1);
  return std::nullopt;
}

std::string format_decisions(const DecisionList& list) {
  std::string out;
  for (const auto& d : list)
    out += fmt::format("{} {:x} {} {} {:x}\n", decision_kind_name(d.kind), d.key, d.options,
                       d.chosen, d.value);
  return out;
}

std::optional<DecisionList> parse_decisions(const std::string& text, std::string* error) {
  DecisionList list;
  std::size_t lineno = 0;
  std::size_t start = 0;
  auto bad = [&](const std::string& why) -> std::optional<DecisionList> {
    if (error) *error = fmt::format("decision line {}: {}", lineno, why);
    return std::nullopt;
  };
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string_view line = std::string_view(text).substr(start, end - start);
    start = end + 1;
    ++lineno;
    if (line.empty() || line.front() == '#') continue;
    std::vector<std::string_view> words;
    for (std::size_t i = 0; i < line.size();) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
        ++i;
      const std::size_t w = i;
      while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
        ++i;
      if (i > w) words.push_back(line.substr(w, i - w));
    }
    if (words.empty()) continue;
    if (words.size() != 5) return bad("expected 'kind key options chosen value'");
    Decision d;
    const auto kind = decision_kind_from_name(words[0]);
    if (!kind)
      return bad(fmt::format("unknown decision kind '{}' (one of {})", words[0],
                             fmt::join(kDecisionKindNames, ", ")));
    d.kind = *kind;
    if (!parse_hex64(words[1], &d.key))
      return bad(fmt::format("key '{}' is not 1 to 16 hex digits", words[1]));
    if (!parse_dec32(words[2], &d.options) || !parse_dec32(words[3], &d.chosen))
      return bad(
          fmt::format("options '{}' and choice '{}' must be decimal numbers in "
                      "[0, 4294967295]",
                      words[2], words[3]));
    if (d.options < 2 || d.chosen >= d.options)
      return bad(fmt::format("choice {} out of {} options (options >= 2, choice below them)",
                             d.chosen, d.options));
    if (!parse_hex64(words[4], &d.value))
      return bad(fmt::format("value '{}' is not 1 to 16 hex digits", words[4]));
    list.push_back(d);
  }
  return list;
}

std::optional<std::uint32_t> index_of_value(std::uint64_t value, std::uint32_t options,
                                            std::span<const Candidate> candidates) {
  if (candidates.empty()) {
    if (value < options) return static_cast<std::uint32_t>(value);
    return std::nullopt;
  }
  for (std::size_t i = 0; i < candidates.size(); ++i)
    if (candidates[i].key == value) return static_cast<std::uint32_t>(i);
  return std::nullopt;
}

std::uint32_t Scheduler::decide(DecisionKind kind, std::uint64_t base, std::uint32_t options,
                                std::span<const Candidate> candidates) {
  // The nth time this (kind, base) is asked in the run.
  const std::uint32_t nth = occurrences_.next(static_cast<std::uint8_t>(kind), base);
  const std::uint64_t key =
      nth == 0 ? base : Hasher().u64(base).u64(nth).value();  // the first keeps the base
  const std::uint32_t chosen = pick(log_.size(), kind, key, options, candidates);
  if (log_.capacity() == 0) {  // a run asks a few dozen: one allocation, not one per doubling
    log_.reserve(32);
    bases_.reserve(32);
  }
  const std::uint64_t value = candidates.empty() ? chosen : candidates[chosen].key;
  log_.push_back(Decision{kind, key, options, chosen, value});
  bases_.push_back(base);
  return chosen;
}

struct Scheduler::Spare {
  DecisionList log;
  std::vector<std::uint64_t> bases;
  CountTable occurrences;
};

std::vector<Scheduler::Spare>& Scheduler::spares() {
  thread_local std::vector<Spare> spares;
  return spares;
}

Scheduler::Scheduler() {
  std::vector<Spare>& pool = spares();
  if (pool.empty()) return;
  log_ = std::move(pool.back().log);
  bases_ = std::move(pool.back().bases);
  occurrences_ = std::move(pool.back().occurrences);
  pool.pop_back();
}

Scheduler::~Scheduler() {
  std::vector<Spare>& pool = spares();
  if (pool.size() >= kMaxSpares || log_.capacity() > kMaxKeptDecisions ||
      !occurrences_.reset(kMaxKeptSlots))
    return;
  log_.clear();
  bases_.clear();
  pool.push_back(Spare{std::move(log_), std::move(bases_), std::move(occurrences_)});
}

std::uint32_t Scheduler::choose(DecisionKind kind, std::uint64_t key,
                                std::span<const Candidate> candidates) {
  return decide(kind, key, static_cast<std::uint32_t>(candidates.size()), candidates);
}

std::uint32_t Scheduler::draw(DecisionKind kind, std::uint64_t key, std::uint32_t options) {
  return decide(kind, key, options, {});
}

void Scheduler::diverged(std::string why) {
  if (!divergence_) divergence_ = std::move(why);
}

std::uint32_t SeededScheduler::pick(std::size_t, DecisionKind, std::uint64_t, std::uint32_t options,
                                    std::span<const Candidate>) {
  return static_cast<std::uint32_t>(prng_.below(options));
}

ReplayScheduler::ReplayScheduler(DecisionList list, bool lenient)
    : list_(std::move(list)), lenient_(lenient) {
  if (lenient_)
    for (const Decision& d : list_)
      by_key_.try_emplace({static_cast<std::uint8_t>(d.kind), d.key}, &d);
}

std::uint32_t ReplayScheduler::pick(std::size_t, DecisionKind kind, std::uint64_t key,
                                    std::uint32_t options, std::span<const Candidate> candidates) {
  if (lenient_) {
    auto it = by_key_.find({static_cast<std::uint8_t>(kind), key});
    if (it == by_key_.end()) return 0;
    ++matched_;
    return index_of_value(it->second->value, options, candidates).value_or(0);
  }
  if (divergence() || next_ >= list_.size()) return 0;
  const Decision& want = list_[next_];
  if (want.kind != kind || want.key != key) {
    diverged(
        fmt::format("replay diverged at decision #{}: recorded a {} decision with key {:x}, "
                    "the run asks a {} decision with key {:x}",
                    next_, decision_kind_name(want.kind), want.key, decision_kind_name(kind), key));
    return 0;
  }
  const auto index = index_of_value(want.value, options, candidates);
  if (!index) {
    diverged(
        fmt::format("replay diverged at decision #{} ({} {:x}): the recorded choice {:x} is "
                    "not among the run's {} options",
                    next_, decision_kind_name(kind), key, want.value, options));
    return 0;
  }
  ++next_;
  return *index;
}

}  // namespace bpftsim::sim
