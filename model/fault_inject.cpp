#include "model/fault_inject.h"

namespace bpftsim::model {

namespace {
struct SiteName {
  FaultSite site;
  const char* name;
};
constexpr std::array<SiteName, 2> kSiteNames = {{
    {FaultSite::kBpfTimerInitKmalloc, "bpf_timer_init.kmalloc"},
    {FaultSite::kHtabKmalloc, "htab.kmalloc"},
}};
constexpr std::array<FaultSite, kSiteNames.size()> kAllSites = {FaultSite::kBpfTimerInitKmalloc,
                                                                FaultSite::kHtabKmalloc};
}  // namespace

const char* fault_site_name(FaultSite site) {
  for (const SiteName& s : kSiteNames)
    if (s.site == site) return s.name;
  return "?";
}

std::optional<FaultSite> fault_site_by_name(std::string_view name) {
  for (const SiteName& s : kSiteNames)
    if (name == s.name) return s.site;
  return std::nullopt;
}

std::span<const FaultSite> all_fault_sites() {
  return kAllSites;
}

bool FaultInjection::should_fail(FaultSite site) {
  int& left = fail_[index(site)];
  if (left <= 0) return false;
  --left;
  return true;
}

}  // namespace bpftsim::model
