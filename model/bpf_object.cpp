#include "model/bpf_object.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "model/arraymap.h"
#include "model/errno.h"
#include "model/helpers.h"
#include "model/kernel.h"
#include "model/verifier.h"

namespace bpftsim::model {

namespace {

std::string map_section(const MapSpec& m) {
  return m.origin == MapOrigin::kUser ? ".maps" : m.name;
}

MapDef map_def(const MapSpec& m) {
  MapDef d;
  d.name = m.name;
  d.type = m.type;
  d.key_size = m.key_size;
  d.value_size = m.value_size;
  d.max_entries = m.max_entries;
  d.map_flags = m.map_flags;
  // libbpf creates .rodata with BPF_F_RDONLY_PROG (bpf_object__init_internal_map).
  if (m.origin == MapOrigin::kRodata) d.map_flags |= kBpfFRdonlyProg;
  d.timer_off = m.timer_off;
  d.spin_lock_off = m.spin_lock_off;
  d.global_data = m.origin != MapOrigin::kUser;
  if (!m.inner.empty()) d.inner = std::make_shared<MapDef>(map_def(m.inner.front()));
  return d;
}

// BpfInsn is 8 bytes without padding (static_assert in bpf_vm.h): compared as bytes.
bool same_insns(const std::vector<BpfInsn>& a, const std::vector<BpfInsn>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(BpfInsn)) == 0);
}

bool is_function_entry(const ProgSpec& p, std::uint32_t pc) {
  return std::any_of(p.functions.begin(), p.functions.end(),
                     [pc](const auto& f) { return f.first == pc; });
}

std::optional<std::string> check_prog(const ObjectSpec& spec, const ProgSpec& p) {
  for (const std::int32_t id : p.helpers) {
    if (!helpers::dispatch_supported(id))
      return fmt::format("program '{}' calls {} (helper {}), which the model does not implement",
                         p.name, helpers::helper_name(id), id);
  }
  if (p.functions.empty() || p.functions.front().first != 0)
    return fmt::format("program '{}' has no entry function", p.name);
  for (const LdImm64Reloc& r : p.relocs) {
    if (std::size_t{r.insn_idx} + 1 >= p.insns.size())
      return fmt::format("program '{}': ld_imm64 relocation at insn {} is outside the program",
                         p.name, r.insn_idx);
    switch (r.kind) {
      case LdImm64Reloc::Kind::kMapAddr:
      case LdImm64Reloc::Kind::kMapValue:
        if (r.map_idx >= spec.maps.size())
          return fmt::format("program '{}': insn {} names map #{} of {}", p.name, r.insn_idx,
                             r.map_idx, spec.maps.size());
        if (r.kind == LdImm64Reloc::Kind::kMapValue &&
            (spec.maps[r.map_idx].origin == MapOrigin::kUser ||
             r.offset >= spec.maps[r.map_idx].value_size))
          return fmt::format(
              "program '{}': insn {} points at offset {} of map '{}', which is no "
              "global data there",
              p.name, r.insn_idx, r.offset, spec.maps[r.map_idx].name);
        break;
      case LdImm64Reloc::Kind::kFunc:
        if (!is_function_entry(p, r.target_pc))
          return fmt::format(
              "program '{}': insn {} takes the address of pc {}, which starts no "
              "function",
              p.name, r.insn_idx, r.target_pc);
        break;
    }
  }
  return std::nullopt;
}

std::optional<std::string> check_map(const ObjectSpec& spec, const MapSpec& m) {
  if (m.init_slots.empty()) return std::nullopt;
  if (m.type != kBpfMapTypeArrayOfMaps)
    return fmt::format(
        "map '{}': static initial slots are only modeled for array_of_maps (type "
        "{})",
        m.name, map_type_name(m.type));
  for (const auto& [index, name] : m.init_slots) {
    if (index >= m.max_entries)
      return fmt::format("map '{}': initial slot {} is past max_entries {}", m.name, index,
                         m.max_entries);
    if (!spec.find_map(name))
      return fmt::format("map '{}': initial slot {} names '{}', which is no map of the object",
                         m.name, index, name);
  }
  return std::nullopt;
}

std::uint64_t reloc_value(const Kernel&, const LdImm64Reloc& r, const std::vector<BpfMap*>& maps,
                          std::uint32_t prog_id) {
  switch (r.kind) {
    case LdImm64Reloc::Kind::kMapAddr:
      return maps[r.map_idx]->handle_addr;
    case LdImm64Reloc::Kind::kMapValue: {
      const BpfMap& m = *maps[r.map_idx];
      return m.arena().addr(0) + m.value_off() + r.offset;
    }
    case LdImm64Reloc::Kind::kFunc:
      return bpf_func_address(prog_id, r.target_pc);
  }
  return 0;
}

}  // namespace

BpfMap* BpfObject::map(const std::string& name) const {
  auto i = spec_->find_map(name);
  return i ? maps_[*i] : nullptr;
}

int BpfObject::map_fd(const std::string& name) const {
  auto i = spec_->find_map(name);
  return i ? map_fds_[*i] : -1;
}

VmProg* BpfObject::prog(const std::string& name) const {
  for (std::size_t i = 0; i < spec_->progs.size(); ++i)
    if (spec_->progs[i].name == name) return progs_[i];
  return nullptr;
}

int BpfObject::prog_fd(const std::string& name) const {
  for (std::size_t i = 0; i < spec_->progs.size(); ++i)
    if (spec_->progs[i].name == name) return prog_fds_[i];
  return -1;
}

std::uint8_t* BpfObject::global(const std::string& section, std::uint32_t offset,
                                std::uint32_t size) const {
  auto i = spec_->find_map(section);
  if (!i || spec_->maps[*i].origin == MapOrigin::kUser) return nullptr;
  const BpfMap& m = *maps_[*i];
  if (std::uint64_t{offset} + size > m.def.value_size) return nullptr;
  return m.arena().elem(0) + m.value_off() + offset;
}

std::uint8_t* BpfObject::global_var(const std::string& name, std::uint32_t* size) const {
  std::uint32_t idx = 0;
  const GlobalVar* v = spec_->find_global(name, &idx);
  if (v == nullptr) return nullptr;
  if (size) *size = v->size;
  return global(spec_->maps[idx].name, v->offset, v->size);
}

std::optional<LoadError> bpf_object_check(const ObjectSpec& spec) {
  for (const MapSpec& m : spec.maps) {
    if (auto why = check_map(spec, m))
      return LoadError{fmt::format("{}: section '{}': {}", spec.path, map_section(m), *why)};
  }
  for (const ProgSpec& p : spec.progs) {
    if (auto why = check_prog(spec, p))
      return LoadError{fmt::format("{}: section '{}': {}", spec.path, p.section, *why)};
  }
  return std::nullopt;
}

std::optional<LoadError> bpf_object_verify(const ObjectSpec& spec, const VerifierOptions& opts) {
  // libbpf creates the maps (inner templates first) before it loads any program.
  for (const MapSpec& m : spec.maps) {
    if (auto why = check_map_timer_type(m))
      return LoadError{
          fmt::format("{}: section '{}': map '{}': {}", spec.path, map_section(m), m.name, *why)};
  }
  for (const ProgSpec& p : spec.progs) {
    if (auto e = verify_prog(spec, p, opts))
      return LoadError{fmt::format("{}: section '{}': {}", spec.path, p.section, e->message(p))};
  }
  return std::nullopt;
}

std::optional<LoadError> VerifyMemo::verify(const ObjectSpec& spec, const VerifierOptions& opts) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [o, result] : done_)
      if (o == opts) return result;
  }
  std::optional<LoadError> result = bpf_object_verify(spec, opts);
  std::lock_guard<std::mutex> lock(mu_);
  done_.emplace_back(opts, result);
  return result;
}

std::shared_ptr<const ObjectSpec> VerifyMemo::shared_spec(const ObjectSpec& spec) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!spec_) spec_ = std::make_shared<const ObjectSpec>(spec);
  return spec_;
}

std::shared_ptr<const BpfVm::Code> VerifyMemo::code(std::size_t index, const std::string& name,
                                                    const std::vector<BpfInsn>& insns) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (index < code_.size())
      for (const auto& c : code_[index])
        if (same_insns(BpfVm::insns_of(*c), insns)) return c;
  }
  auto c = BpfVm::prepare(BpfProgramImage{name, insns});
  std::lock_guard<std::mutex> lock(mu_);
  if (code_.size() <= index) code_.resize(index + 1);
  // A few variants at most (relocations differ only when the kernel's ids do); bounded anyway.
  if (code_[index].size() < 8) code_[index].push_back(c);
  return c;
}

std::variant<std::unique_ptr<BpfObject>, LoadError> bpf_object_load(Kernel& k, Process& proc,
                                                                    const ObjectSpec& spec,
                                                                    const BpfObjectOptions& opts) {
  if (auto err = bpf_object_check(spec)) return *err;
  // The helpers of the kernel's era (the verifier's "unknown func" for one it does not have).
  for (const ProgSpec& p : spec.progs)
    for (const std::int32_t id : p.helpers)
      if (!helpers::helper_in_profile(id, k.profile) && helpers::is_kfunc(id))
        return LoadError{
            fmt::format("{}: section '{}': program '{}': kfunc {} is not in kernel {} "
                        "(the kernel's BTF has no such function)",
                        spec.path, p.section, p.name, helpers::helper_name(id), k.profile.name)};
      else if (!helpers::helper_in_profile(id, k.profile))
        return LoadError{fmt::format(
            "{}: section '{}': program '{}': unknown func {}#{} (kernel "
            "{} does not have it)",
            spec.path, p.section, p.name, helpers::helper_name(id), id, k.profile.name)};
  // The verifier's rules of the kernel's era (reference 2.1: tracing programs and timers).
  VerifierOptions vopts = opts.verifier;
  vopts.tracing_progs_no_timer = vopts.tracing_progs_no_timer || k.profile.tracing_progs_no_timer;
  vopts.static_subprog_calls_under_lock =
      vopts.static_subprog_calls_under_lock || k.profile.static_subprog_calls_under_lock;
  if (k.profile.timer_any_context) vopts.tracing_progs_no_timer = false;  // 2.21 lifts it
  if (auto err =
          opts.verify_memo ? opts.verify_memo->verify(spec, vopts) : bpf_object_verify(spec, vopts))
    return *err;
  std::uint64_t bytes = 0;
  for (const MapSpec& ms : spec.maps) {
    bytes += map_model_bytes(ms);
    for (const MapSpec& inner : ms.inner)
      bytes += map_model_bytes(inner);
  }
  if (k.loaded_map_bytes + bytes > kMaxLoadedMapBytes)
    return LoadError{fmt::format(
        "{}: its maps and global data ({} MiB) would bring the run's to {} MiB; bpftsim's limit "
        "is {} MiB per run",
        spec.path, bytes >> 20, (k.loaded_map_bytes + bytes) >> 20, kMaxLoadedMapBytes >> 20)};
  k.loaded_map_bytes += bytes;
  auto obj = std::make_unique<BpfObject>();
  obj->spec_ = opts.verify_memo ? opts.verify_memo->shared_spec(spec)
                                : std::make_shared<const ObjectSpec>(spec);
  obj->proc_ = &proc;
  obj->maps_.reserve(spec.maps.size());
  obj->map_fds_.reserve(spec.maps.size());
  obj->progs_.reserve(spec.progs.size());
  obj->prog_fds_.reserve(spec.progs.size());

  // bpf_object__create_maps (global data maps get their initial bytes before any program runs).
  for (const MapSpec& ms : spec.maps) {
    int err = 0;
    BpfMap* m = k.create_map(nullptr, map_def(ms), &err);
    if (!m)
      return LoadError{fmt::format("{}: section '{}': map '{}': BPF_MAP_CREATE failed: {} ({})",
                                   spec.path, map_section(ms), ms.name, err, errno_name(err))};
    obj->maps_.push_back(m);
    obj->map_fds_.push_back(k.sys.map_create(proc, m));
    if (ms.origin != MapOrigin::kUser) {
      std::uint8_t* value = m->arena().elem(0) + m->value_off();
      std::copy_n(ms.initial_data.begin(),
                  std::min<std::size_t>(ms.initial_data.size(), ms.value_size), value);
    }
  }
  // init_map_in_map_slots
  for (std::size_t i = 0; i < spec.maps.size(); ++i) {
    for (const auto& [index, name] : spec.maps[i].init_slots) {
      auto* outer = dynamic_cast<ArrayOfMaps*>(obj->maps_[i]);
      SIM_ASSERT(outer != nullptr, "checked: {} is an array of maps", spec.maps[i].name);
      outer->init_slot(index, obj->maps_[*spec.find_map(name)]);
    }
  }
  // bpf_object__relocate + bpf_object__load_progs
  for (std::size_t pi = 0; pi < spec.progs.size(); ++pi) {
    const ProgSpec& ps = spec.progs[pi];
    const std::uint32_t prog_id = k.next_prog_id();
    // Relocated into a buffer of the thread, reused by every load: with a memo, a run whose
    // relocations come out as before copies nothing.
    thread_local std::vector<BpfInsn> insns;
    insns.assign(ps.insns.begin(), ps.insns.end());
    thread_local std::vector<char> used;  // per map of the object: the program refers to it
    used.assign(obj->maps_.size(), 0);
    std::size_t nused = 0;
    for (const LdImm64Reloc& r : ps.relocs) {
      const std::uint64_t v = reloc_value(k, r, obj->maps_, prog_id);
      insns[r.insn_idx].imm = static_cast<std::int32_t>(static_cast<std::uint32_t>(v));
      insns[r.insn_idx + 1].imm = static_cast<std::int32_t>(static_cast<std::uint32_t>(v >> 32));
      if (r.kind != LdImm64Reloc::Kind::kFunc && !used[r.map_idx]) {
        used[r.map_idx] = 1;
        ++nused;
      }
    }
    std::vector<BpfMap*> used_maps;
    used_maps.reserve(nused);
    for (std::size_t i = 0; i < used.size(); ++i)
      if (used[i]) used_maps.push_back(obj->maps_[i]);
    auto code = opts.verify_memo ? opts.verify_memo->code(pi, ps.name, insns)
                                 : BpfVm::prepare(BpfProgramImage{ps.name, insns});
    const ObjId o = k.alloc_prog_obj(ps.name);
    // The object's shared spec names the program (aliasing: kept alive with the object's spec).
    std::shared_ptr<const ProgSpec> pspec(obj->spec_, &obj->spec_->progs[pi]);
    auto prog = std::make_unique<VmProg>(k, std::move(pspec), std::move(code), o, prog_id,
                                         opts.insn_budget);
    VmProg* raw = prog.get();
    k.adopt_prog(std::move(prog), std::move(used_maps));
    obj->progs_.push_back(raw);
    obj->prog_fds_.push_back(k.sys.prog_load(proc, raw));
  }
  return obj;
}

std::variant<std::unique_ptr<BpfObject>, LoadError> bpf_object_open_and_load(
    Kernel& k, Process& proc, const std::string& path, const BpfObjectOptions& opts) {
  auto opened = load_bpf_object(path);
  if (auto* err = std::get_if<LoadError>(&opened)) return *err;
  return bpf_object_load(k, proc, std::get<ObjectSpec>(opened), opts);
}

}  // namespace bpftsim::model
