#include "sim/finding.h"

#include <array>

namespace bpftsim::sim {

namespace {
struct KindName {
  FindingKind kind;
  const char* name;
};
constexpr std::array<KindName, 10> kKindNames = {{
    {FindingKind::kDeadlock, "deadlock"},
    {FindingKind::kLiveness, "liveness"},
    {FindingKind::kReplayDivergence, "replay_divergence"},
    {FindingKind::kUseAfterFree, "use_after_free"},
    {FindingKind::kDoubleFree, "double_free"},
    {FindingKind::kLeak, "leak"},
    {FindingKind::kRefcountUnderflow, "refcount_underflow"},
    {FindingKind::kProgramFault, "program_fault"},
    {FindingKind::kWildPointer, "wild_pointer"},
    {FindingKind::kInvariant, "invariant"},
}};
constexpr std::array<FindingKind, kKindNames.size()> kAllKinds = [] {
  std::array<FindingKind, kKindNames.size()> all{};
  for (std::size_t i = 0; i < kKindNames.size(); ++i)
    all[i] = kKindNames[i].kind;
  return all;
}();
}  // namespace

const char* finding_kind_name(FindingKind kind) {
  for (const KindName& k : kKindNames)
    if (k.kind == kind) return k.name;
  return "?";
}

std::optional<FindingKind> finding_kind_by_name(std::string_view name) {
  for (const KindName& k : kKindNames)
    if (name == k.name) return k.kind;
  return std::nullopt;
}

std::span<const FindingKind> all_finding_kinds() {
  return kAllKinds;
}

}  // namespace bpftsim::sim
