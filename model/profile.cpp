#include "model/profile.h"

namespace bpftsim::model {

const std::vector<ProfileFix>& profile_fixes() {
  static const std::vector<ProfileFix> fixes = {
      {"2.2", "bpf: Fix crash due to incorrect copy_map_value (v5.17)",
       &KernelProfile::copy_skips_lock_and_timer},
      {"2.8", "bpf: Check map->usercnt after timer->timer is assigned (v6.7)",
       &KernelProfile::init_checks_usercnt_after_publish},
      {"2.9", "bpf: Fix racing between bpf_timer_cancel_and_free and bpf_timer_cancel (v6.8)",
       &KernelProfile::cancel_and_free_kfree_rcu},
      {"2.11", "bpf: Fail bpf_timer_cancel when callback is being cancelled (v6.10)",
       &KernelProfile::cancelling_counters},
      {"2.12",
       "bpf: Defer work in bpf_timer_cancel_and_free (v6.10)",
       &KernelProfile::defer_free_in_callback,
       {"2.9"}},
  };
  return fixes;
}

const KernelProfile& default_profile() {
  static const KernelProfile seed{};
  return seed;
}

std::optional<KernelProfile> profile_by_name(const std::string& name, std::string* error) {
  const auto fail = [&](std::string why) -> std::optional<KernelProfile> {
    if (error) *error = std::move(why);
    return std::nullopt;
  };
  const auto plus = name.find('+');
  const std::string base = name.substr(0, plus);
  if (base != "v5.15" && base != "seed")
    return fail("unknown kernel profile '" + base + "' (the seed is v5.15)");
  const auto& fixes = profile_fixes();
  std::vector<bool> on(fixes.size(), false);
  std::size_t pos = plus;
  while (pos != std::string::npos) {
    const auto next = name.find('+', pos + 1);
    const std::string id = name.substr(pos + 1, next == std::string::npos ? next : next - pos - 1);
    std::size_t i = 0;
    while (i < fixes.size() && fixes[i].id != id)
      ++i;
    if (i == fixes.size()) {
      std::string known;
      for (const auto& f : fixes)
        known += (known.empty() ? "" : ", ") + f.id;
      return fail("unknown fix '" + id + "' in profile '" + name + "' (known: " + known + ")");
    }
    on[i] = true;  // a fix named twice is the same switch
    pos = next;
  }
  // The canonical name lists the fixes once each, in the order of profile_fixes().
  KernelProfile p;
  p.name = "v5.15";
  for (std::size_t i = 0; i < fixes.size(); ++i) {
    if (!on[i]) continue;
    for (const std::string& dep : fixes[i].requires_fixes) {
      std::size_t d = 0;
      while (d < fixes.size() && fixes[d].id != dep)
        ++d;
      if (d == fixes.size() || !on[d])
        return fail("fix " + fixes[i].id + " needs fix " + dep + " (it landed on top of it): " +
                    "name both, e.g. 'v5.15+" + dep + "+" + fixes[i].id + "'");
    }
    p.*(fixes[i].flag) = true;
    p.name += "+" + fixes[i].id;
  }
  return p;
}

std::vector<std::string> profile_names() {
  std::vector<std::string> names{"v5.15"};
  for (const auto& f : profile_fixes()) {
    std::string n = "v5.15";
    for (const std::string& dep : f.requires_fixes)
      n += "+" + dep;
    names.push_back(n + "+" + f.id);
  }
  return names;
}

}  // namespace bpftsim::model
