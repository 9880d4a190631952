#include "sim/scheduler.h"

#include <fmt/format.h>

#include <sstream>

namespace bpftsim::sim {

const char* decision_kind_name(DecisionKind kind) {
  switch (kind) {
    case DecisionKind::kTie:
      return "tie";
    case DecisionKind::kJitter:
      return "jitter";
    case DecisionKind::kModel:
      return "model";
  }
  return "?";
}

std::string format_decisions(const DecisionList& list) {
  std::string out;
  for (const auto& d : list)
    out +=
        fmt::format("{} {} {} {:x}\n", decision_kind_name(d.kind), d.options, d.chosen, d.context);
  return out;
}

std::optional<DecisionList> parse_decisions(const std::string& text, std::string* error) {
  DecisionList list;
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::string kind;
    Decision d;
    std::string ctx;
    if (!(ls >> kind >> d.options >> d.chosen >> ctx)) {
      if (error) *error = fmt::format("line {}: expected 'kind options chosen context'", lineno);
      return std::nullopt;
    }
    if (kind == "tie") {
      d.kind = DecisionKind::kTie;
    } else if (kind == "jitter") {
      d.kind = DecisionKind::kJitter;
    } else if (kind == "model") {
      d.kind = DecisionKind::kModel;
    } else {
      if (error) *error = fmt::format("line {}: unknown decision kind '{}'", lineno, kind);
      return std::nullopt;
    }
    if (d.options < 2 || d.chosen >= d.options) {
      if (error)
        *error = fmt::format("line {}: choice {} out of {} options", lineno, d.chosen, d.options);
      return std::nullopt;
    }
    try {
      d.context = std::stoull(ctx, nullptr, 16);
    } catch (...) {
      if (error) *error = fmt::format("line {}: bad context '{}'", lineno, ctx);
      return std::nullopt;
    }
    list.push_back(d);
  }
  return list;
}

std::uint32_t Scheduler::decide(DecisionKind kind, std::uint32_t options, std::uint64_t context) {
  const std::uint32_t chosen = pick(kind, options, context);
  log_.push_back(Decision{kind, options, chosen, context});
  return chosen;
}

void Scheduler::diverged(std::string why) {
  if (!divergence_) divergence_ = std::move(why);
}

std::uint32_t SeededScheduler::pick(DecisionKind, std::uint32_t options, std::uint64_t) {
  return static_cast<std::uint32_t>(prng_.below(options));
}

std::uint32_t ReplayScheduler::pick(DecisionKind kind, std::uint32_t options,
                                    std::uint64_t context) {
  if (divergence() || next_ >= list_.size()) return 0;
  const Decision& want = list_[next_];
  if (want.kind != kind || want.options != options || want.context != context) {
    diverged(fmt::format(
        "replay diverged at decision #{}: recorded {} of {} options (context {:x}), run asks "
        "{} of {} options (context {:x})",
        next_, decision_kind_name(want.kind), want.options, want.context, decision_kind_name(kind),
        options, context));
    return 0;
  }
  ++next_;
  return want.chosen;
}

}  // namespace bpftsim::sim
