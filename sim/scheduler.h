// The scheduler: the one interface through which every nondeterministic choice of a run goes —
// which of several events due at the same instant runs first (kTie), the jitter added to a step's
// cost (kJitter), and any choice the model asks for (kModel). Each choice is recorded as a
// Decision; a DecisionList replays a run exactly, and a replay that no longer fits (other kind,
// other candidates) is reported at the first decision that diverges instead of running on.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sim/prng.h"

namespace bpftsim::sim {

enum class DecisionKind : std::uint8_t { kTie = 1, kJitter = 2, kModel = 3 };

const char* decision_kind_name(DecisionKind kind);

struct Decision {
  DecisionKind kind = DecisionKind::kTie;
  std::uint32_t options = 0;  // number of candidates (choice is in [0, options))
  std::uint32_t chosen = 0;
  std::uint64_t context = 0;  // hash of what was chosen among (candidate tags), for divergence
  bool operator==(const Decision&) const = default;
};

using DecisionList = std::vector<Decision>;

// Text form: one decision per line, "kind options chosen context" (context in hex).
std::string format_decisions(const DecisionList& list);
std::optional<DecisionList> parse_decisions(const std::string& text, std::string* error);

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  // Returns a choice in [0, options); options >= 2. Every call is recorded in decisions().
  std::uint32_t decide(DecisionKind kind, std::uint32_t options, std::uint64_t context);
  const DecisionList& decisions() const { return log_; }
  // Set when a replay no longer fits the run; the simulator stops at the next step boundary.
  const std::optional<std::string>& divergence() const { return divergence_; }

 protected:
  virtual std::uint32_t pick(DecisionKind kind, std::uint32_t options, std::uint64_t context) = 0;
  void diverged(std::string why);

 private:
  DecisionList log_;
  std::optional<std::string> divergence_;
};

// Uniform random choices from the run's seed.
class SeededScheduler final : public Scheduler {
 public:
  explicit SeededScheduler(std::uint64_t seed) : prng_(seed) {}

 protected:
  std::uint32_t pick(DecisionKind kind, std::uint32_t options, std::uint64_t context) override;

 private:
  Prng prng_;
};

// Replays a recorded list; after its end (or after a divergence) falls back to the first candidate.
class ReplayScheduler final : public Scheduler {
 public:
  explicit ReplayScheduler(DecisionList list) : list_(std::move(list)) {}
  std::size_t consumed() const { return next_; }

 protected:
  std::uint32_t pick(DecisionKind kind, std::uint32_t options, std::uint64_t context) override;

 private:
  DecisionList list_;
  std::size_t next_ = 0;
};

}  // namespace bpftsim::sim
