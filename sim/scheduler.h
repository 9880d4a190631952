// The scheduler: the one interface through which every nondeterministic choice of a run goes.
//
// A choice is asked at a *site* (DecisionKind) under a stable *key* (what is being decided: a
// step, an action's start time, a softirq landing, ...), either
//   choose(kind, key, candidates)  which of several candidates (each named by a stable key)
//                                  goes first; the answer is an index into `candidates`, or
//   draw(kind, key, options)       a number in [0, options) (a time offset, a jitter).
// Keys are stable across schedules of one scenario: they are built from context keys (spawn site
// plus ordinal under the parent, see sim/context.h) and step counters, never from addresses or
// sequence numbers of the run. A key asked more than once in a run is told apart by its
// occurrence (the nth time it is asked), so every recorded Decision has a key of its own.
//
// Each choice is recorded as a Decision: kind, key, number of options, chosen index, and the
// chosen *value* (the candidate's key, or the number drawn). A DecisionList replays a run:
//   strict   (ReplayScheduler, lenient = false): the run must ask exactly the recorded keys in
//            the recorded order; the first one that does not fit is a divergence;
//   lenient  (lenient = true): each asked key takes its recorded value when the list has it and
//            that value is still among the candidates, else the default (candidate 0, draw 0).
//            Any edited list (entries dropped, reset, reordered) therefore still yields a run:
//            this is what the shrinker and `replay --lenient` use.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "sim/count_table.h"
#include "sim/prng.h"

namespace bpftsim::sim {

enum class DecisionKind : std::uint8_t {
  kTie = 1,     // which of the steps/events due within the window W runs first
  kJitter = 2,  // extra cost of a step, in [0, jitter_max_ns]
  kModel = 3,   // a choice the model asks for (kept for model code that has no better kind)
  kLand = 4,    // a raised interrupt or softirq: land at this boundary (0) or defer one (1)
  kRange = 5,   // a time given as a range (an action's at_ns, a timer expiry's jitter)
  kGrace = 6,   // extra length of an RCU grace period, bounded
  kCpu = 7,     // the CPU that runs deferred work (candidates are CPU numbers)
};
inline constexpr int kDecisionKinds = 7;

const char* decision_kind_name(DecisionKind kind);
std::optional<DecisionKind> decision_kind_from_name(std::string_view name);

// One candidate of a choice: its stable key, and the key of the context it belongs to (the same
// for every step of one context; PCT's priorities are per context).
struct Candidate {
  std::uint64_t key = 0;
  std::uint64_t owner = 0;
};

struct Decision {
  DecisionKind kind = DecisionKind::kTie;
  std::uint64_t key = 0;      // stable key of the decision (occurrence folded in)
  std::uint32_t options = 0;  // number of candidates / values (chosen is in [0, options))
  std::uint32_t chosen = 0;   // index (choose) or the value itself (draw)
  std::uint64_t value = 0;    // the chosen candidate's key, or the value drawn
  bool operator==(const Decision&) const = default;
};

using DecisionList = std::vector<Decision>;

// Text form: one decision per line, "kind key options chosen value" (key and value in hex).
// Blank lines and lines starting with '#' are ignored. Parsing is strict: a bad line is an error
// naming its number.
std::string format_decisions(const DecisionList& list);
std::optional<DecisionList> parse_decisions(const std::string& text, std::string* error);

// The identity of a decision site without its occurrence: what explorers count as "covered".
struct DecisionSite {
  DecisionKind kind;
  std::uint64_t base;
  auto operator<=>(const DecisionSite&) const = default;
};

class Scheduler {
 public:
  // The decision log and the occurrence table start from buffers an earlier scheduler of this
  // thread left (emptied; an explorer's runs one after the other), not from nothing.
  Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;
  virtual ~Scheduler();
  // Which candidate goes first; candidates.size() >= 2. Returns an index into candidates.
  std::uint32_t choose(DecisionKind kind, std::uint64_t key, std::span<const Candidate> candidates);
  // A number in [0, options); options >= 2.
  std::uint32_t draw(DecisionKind kind, std::uint64_t key, std::uint32_t options);

  const DecisionList& decisions() const { return log_; }
  // The base key (before the occurrence is folded in) of each decision, in order.
  const std::vector<std::uint64_t>& bases() const { return bases_; }
  // Set when a replay no longer fits the run; the simulator stops at the next step boundary.
  const std::optional<std::string>& divergence() const { return divergence_; }

 protected:
  // The choice for a decision about to be recorded (index `n` in the log). `candidates` is empty
  // for draws. Must return a value below `options`.
  virtual std::uint32_t pick(std::size_t n, DecisionKind kind, std::uint64_t key,
                             std::uint32_t options, std::span<const Candidate> candidates) = 0;
  void diverged(std::string why);

 private:
  std::uint32_t decide(DecisionKind kind, std::uint64_t base, std::uint32_t options,
                       std::span<const Candidate> candidates);

  struct Spare;  // a finished scheduler's emptied buffers
  static std::vector<Spare>& spares();

  DecisionList log_;
  std::vector<std::uint64_t> bases_;
  CountTable occurrences_;  // (kind, base) -> times asked so far in the run
  std::optional<std::string> divergence_;
};

// Uniform random choices from the run's seed.
class SeededScheduler final : public Scheduler {
 public:
  explicit SeededScheduler(std::uint64_t seed) : prng_(seed) {}

 protected:
  std::uint32_t pick(std::size_t n, DecisionKind kind, std::uint64_t key, std::uint32_t options,
                     std::span<const Candidate> candidates) override;

 private:
  Prng prng_;
};

// Every choice the default (candidate 0: the earliest due, land at once, draw 0).
class DefaultScheduler final : public Scheduler {
 protected:
  std::uint32_t pick(std::size_t, DecisionKind, std::uint64_t, std::uint32_t,
                     std::span<const Candidate>) override {
    return 0;
  }
};

// Replays a recorded list, strictly or leniently (see the top of this file). After the list's
// end, and after a divergence, every choice is the default.
class ReplayScheduler final : public Scheduler {
 public:
  explicit ReplayScheduler(DecisionList list, bool lenient = false);
  std::size_t consumed() const { return next_; }
  // Lenient mode: recorded decisions whose key the run asked (the rest were not used).
  std::size_t matched() const { return matched_; }

 protected:
  std::uint32_t pick(std::size_t n, DecisionKind kind, std::uint64_t key, std::uint32_t options,
                     std::span<const Candidate> candidates) override;

 private:
  DecisionList list_;
  bool lenient_;
  std::size_t next_ = 0;
  std::size_t matched_ = 0;
  std::map<std::pair<std::uint8_t, std::uint64_t>, const Decision*> by_key_;
};

// The index of `value` among `candidates` (or the value itself for a draw below `options`);
// nullopt when it is not there.
std::optional<std::uint32_t> index_of_value(std::uint64_t value, std::uint32_t options,
                                            std::span<const Candidate> candidates);

}  // namespace bpftsim::sim
