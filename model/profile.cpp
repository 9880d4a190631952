#include "model/profile.h"

#include <algorithm>
#include <map>
#include <mutex>

namespace bpftsim::model {

const std::vector<ProfileFix>& profile_changes() {
  static const std::vector<ProfileFix> changes = {
      {"2.1", "bpf: Forbid bpf_ktime_get_coarse_ns and bpf_timer_* in tracing progs (v5.16)",
       &KernelProfile::tracing_progs_no_timer},
      {"2.2", "bpf: Fix crash due to incorrect copy_map_value (v5.17)",
       &KernelProfile::copy_skips_lock_and_timer},
      {"bpf_loop", "bpf: Add bpf_loop helper (v5.17)", &KernelProfile::has_bpf_loop, {}, true},
      {"2.4",
       "bpf: Optimize call_rcu in non-preallocated hash map (v6.1)",
       &KernelProfile::htab_noprealloc_free_at_once,
       {},
       true},
      {"2.6",
       "bpf: Add support for absolute value BPF timers: BPF_F_TIMER_ABS (v6.4)",
       &KernelProfile::timer_start_abs,
       {},
       true},
      {"2.7",
       "bpf: Add ability to pin bpf timer to calling CPU: BPF_F_TIMER_CPU_PIN (v6.7)",
       &KernelProfile::timer_start_cpu_pin,
       {},
       true},
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
      {"2.14", "bpf: Call free_htab_elem() after htab_unlock_bucket() (v6.13)",
       &KernelProfile::htab_delete_frees_after_unlock},
      {"lock_subprog",
       "bpf: Allow calling static subprogs while holding a bpf_spin_lock (v6.9, verifier)",
       &KernelProfile::static_subprog_calls_under_lock,
       {},
       true},
      {"2.20",
       "timer_nolock part 1: lock-free bpf_async_cb, intermediate revision (v7.0)",
       &KernelProfile::timer_nolock,
       {},
       true},
      {"2.21",
       "bpf: Enable bpf_timer and bpf_wq in any context (v7.0)",
       &KernelProfile::timer_any_context,
       {"2.20"}},
      {"2.22",
       "bpf: Tighten conditions when timer/wq can be called synchronously, recursion check, "
       "reset prog callback in cancel_and_free (v7.0)",
       &KernelProfile::timer_defer_irqs_off,
       {"2.20", "2.21"}},
  };
  return changes;
}

const std::vector<ProfileFix>& profile_fixes() {
  static const std::vector<ProfileFix> fixes = [] {
    std::vector<ProfileFix> out;
    for (const ProfileFix& f : profile_changes())
      if (!f.feature) out.push_back(f);
    return out;
  }();
  return fixes;
}

const std::vector<KernelVersion>& kernel_versions() {
  static const std::vector<KernelVersion> versions = {
      {"v5.15", {}, ""},
      {"v5.16", {"2.1"}, ""},
      {"v5.17",
       {"2.2", "bpf_loop"},
       "2.3 (timer bytes of a new no-prealloc element zeroed): the model zeroes them in every "
       "era (ARCHITECTURE \"Profiles\" says why)"},
      {"v6.1", {"2.4"}, ""},
      {"v6.4", {"2.6"}, ""},
      {"v6.7", {"2.7", "2.8"}, ""},
      {"v6.8", {"2.9"}, ""},
      {"v6.10",
       {"2.11", "2.12", "lock_subprog"},
       "2.10 (the bpf_wq / bpf_async refactor; no timer change)"},
      {"v6.14", {"2.14"}, "2.15 (PREEMPT_RT only)"},
      {"v7.0",
       {"2.20", "2.21", "2.22"},
       "2.16-2.19 (memcg, PREEMPT_RT, allocator, unpin warning), 2.22's bpf_wq busy check (no "
       "bpf_wq); deferred commands never fail to allocate (-ENOMEM)"},
  };
  return versions;
}

const KernelProfile& default_profile() {
  static const KernelProfile seed{};
  return seed;
}

namespace {

std::size_t change_index(const std::string& id) {
  const auto& changes = profile_changes();
  std::size_t i = 0;
  while (i < changes.size() && changes[i].id != id)
    ++i;
  return i;
}

// The changes each version holds (cumulative), as flags over profile_changes().
std::vector<std::vector<bool>> version_sets() {
  std::vector<std::vector<bool>> sets;
  std::vector<bool> on(profile_changes().size(), false);
  for (const KernelVersion& v : kernel_versions()) {
    for (const std::string& id : v.adds)
      on[change_index(id)] = true;
    sets.push_back(on);
  }
  return sets;
}

bool subset(const std::vector<bool>& a, const std::vector<bool>& b) {
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i] && !b[i]) return false;
  return true;
}

}  // namespace

namespace {
std::optional<KernelProfile> make_profile(const std::string& name, std::string* error) {
  const auto fail = [&](std::string why) -> std::optional<KernelProfile> {
    if (error) *error = std::move(why);
    return std::nullopt;
  };
  const auto& versions = kernel_versions();
  const auto& changes = profile_changes();
  // Immutable once made (thread-safe initialisation): not rebuilt for every run.
  static const std::vector<std::vector<bool>> sets = version_sets();
  const auto plus = name.find('+');
  std::string base = name.substr(0, plus);
  if (base == "seed") base = "v5.15";
  std::size_t bv = 0;
  while (bv < versions.size() && versions[bv].name != base)
    ++bv;
  if (bv == versions.size()) {
    std::string known;
    for (const auto& v : versions)
      known += (known.empty() ? "" : ", ") + v.name;
    return fail("unknown kernel profile '" + base + "' (versions: " + known +
                "; the seed is v5.15)");
  }
  std::vector<bool> on = sets[bv];
  std::size_t pos = plus;
  while (pos != std::string::npos) {
    const auto next = name.find('+', pos + 1);
    const std::string id = name.substr(pos + 1, next == std::string::npos ? next : next - pos - 1);
    const std::size_t i = change_index(id);
    if (i == changes.size()) {
      std::string known;
      for (const auto& f : changes)
        known += (known.empty() ? "" : ", ") + f.id;
      return fail("unknown fix '" + id + "' in profile '" + name + "' (known: " + known + ")");
    }
    on[i] = true;  // a change named twice, or already in the version, is the same switch
    pos = next;
  }
  // The latest version whose changes the profile holds; the named one if several hold the same.
  std::size_t fit = 0;
  for (std::size_t v = 0; v < versions.size(); ++v)
    if (subset(sets[v], on)) fit = v;
  std::size_t chosen = fit;
  if (sets[bv] == sets[fit]) {
    chosen = bv;
  } else {
    while (chosen > 0 && sets[chosen - 1] == sets[fit])
      --chosen;
  }
  KernelProfile p;
  p.version = versions[chosen].name;
  p.name = p.version;
  for (std::size_t i = 0; i < changes.size(); ++i) {
    if (!on[i]) continue;
    for (const std::string& dep : changes[i].requires_fixes) {
      const std::size_t d = change_index(dep);
      if (d == changes.size() || !on[d])
        return fail("fix " + changes[i].id + " needs fix " + dep +
                    " (it landed on top of it): name both, e.g. '" + versions[bv].name + "+" + dep +
                    "+" + changes[i].id + "'");
    }
    p.*(changes[i].flag) = true;
    if (!sets[chosen][i]) p.name += "+" + changes[i].id;
  }
  return p;
}
}  // namespace

std::optional<KernelProfile> profile_by_name(const std::string& name, std::string* error) {
  // Every run of a scenario names its profile: the profiles made so far are remembered (a name
  // that fails is not, so that its error is said again). Shared by threads (explore --jobs).
  static std::mutex mu;
  static std::map<std::string, KernelProfile, std::less<>> made;
  {
    const std::lock_guard<std::mutex> lock(mu);
    if (auto it = made.find(name); it != made.end()) return it->second;
  }
  std::optional<KernelProfile> p = make_profile(name, error);
  if (p) {
    const std::lock_guard<std::mutex> lock(mu);
    if (made.size() < 1024) made.emplace(name, *p);  // bounded: names come from the user
  }
  return p;
}

std::vector<std::string> profile_names() {
  std::vector<std::string> names;
  for (const KernelVersion& v : kernel_versions())
    names.push_back(v.name);
  for (const auto& f : profile_changes()) {
    std::string n = "v5.15";
    for (const std::string& dep : f.requires_fixes)
      n += "+" + dep;
    const std::string canonical = profile_by_name(n + "+" + f.id)->name;
    if (std::find(names.begin(), names.end(), canonical) == names.end()) names.push_back(canonical);
  }
  return names;
}

}  // namespace bpftsim::model
