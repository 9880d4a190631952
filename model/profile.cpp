#include "model/profile.h"

#include "model/errno.h"

namespace bpftsim::model {

const char* errno_name(long err) {
  switch (err < 0 ? -err : err) {
    case 0:
      return "0";
    case kEPERM:
      return "EPERM";
    case kENOENT:
      return "ENOENT";
    case kE2BIG:
      return "E2BIG";
    case kEBADF:
      return "EBADF";
    case kENOMEM:
      return "ENOMEM";
    case kEACCES:
      return "EACCES";
    case kEBUSY:
      return "EBUSY";
    case kEEXIST:
      return "EEXIST";
    case kEINVAL:
      return "EINVAL";
    case kEDEADLK:
      return "EDEADLK";
    case kEOPNOTSUPP:
      return "EOPNOTSUPP";
    case kENOTSUPP:
      return "ENOTSUPP";
    default:
      return "E?";
  }
}

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
      {"2.12", "bpf: Defer work in bpf_timer_cancel_and_free (v6.10)",
       &KernelProfile::defer_free_in_callback},
  };
  return fixes;
}

const KernelProfile& default_profile() {
  static const KernelProfile seed{};
  return seed;
}

std::optional<KernelProfile> profile_by_name(const std::string& name, std::string* error) {
  const auto plus = name.find('+');
  const std::string base = name.substr(0, plus);
  if (base != "v5.15" && base != "seed") {
    if (error) *error = "unknown kernel profile '" + base + "' (the seed is v5.15)";
    return std::nullopt;
  }
  KernelProfile p;
  p.name = "v5.15";
  std::size_t pos = plus;
  while (pos != std::string::npos) {
    const auto next = name.find('+', pos + 1);
    const std::string id = name.substr(pos + 1, next == std::string::npos ? next : next - pos - 1);
    bool found = false;
    for (const auto& f : profile_fixes())
      if (f.id == id) {
        p.*(f.flag) = true;
        found = true;
      }
    if (!found) {
      if (error)
        *error =
            "unknown fix '" + id + "' in profile '" + name + "' (known: 2.2, 2.8, 2.9, 2.11, 2.12)";
      return std::nullopt;
    }
    p.name += "+" + id;
    pos = next;
  }
  return p;
}

std::vector<std::string> profile_names() {
  std::vector<std::string> names{"v5.15"};
  for (const auto& f : profile_fixes())
    names.push_back("v5.15+" + f.id);
  return names;
}

}  // namespace bpftsim::model
