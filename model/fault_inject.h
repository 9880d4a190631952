// Fault injection (lib/fault-inject.c in spirit, FoundationDB's BUGGIFY in use): the next `count`
// passes through a named site fail. The sites are one closed list with its name table, shared by
// the model (where each site is), the scenario format ("faults") and the CLI.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace bpftsim::model {

enum class FaultSite : std::uint8_t {
  kBpfTimerInitKmalloc,  // the bpf_hrtimer allocation of bpf_timer_init: -ENOMEM
  kHtabKmalloc,          // a BPF_F_NO_PREALLOC hash element allocation: the update gets -ENOMEM
};

// "bpf_timer_init.kmalloc", "htab.kmalloc" (the names scenarios use).
const char* fault_site_name(FaultSite site);
std::optional<FaultSite> fault_site_by_name(std::string_view name);
std::span<const FaultSite> all_fault_sites();

class FaultInjection {
 public:
  void fail_next(FaultSite site, int count = 1) { fail_[index(site)] += count; }
  // Whether this pass through `site` fails (and counts it).
  bool should_fail(FaultSite site);

 private:
  static std::size_t index(FaultSite site) { return static_cast<std::size_t>(site); }
  std::array<int, 2> fail_{};
};

}  // namespace bpftsim::model
