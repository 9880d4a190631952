// Loading a clang-built BPF object into the model: what libbpf's bpf_object__load does against a
// kernel (tools/lib/bpf/libbpf.c: bpf_object__create_maps, init_map_in_map_slots,
// bpf_object__relocate_data, bpf_object__load_progs), done against a Kernel for one Process.
//
//   maps      every MapSpec becomes a map (BPF_MAP_CREATE): type, sizes, flags, timer and spin lock
//             offsets, inner template; .data/.bss/.rodata become single-element ARRAY maps holding
//             their initial bytes, .rodata with BPF_F_RDONLY_PROG (read-only to BPF, as libbpf
//             creates it); static map-in-map slots are filled (ArrayOfMaps::init_slot).
//   programs  every ProgSpec becomes a VmProg whose used_maps are the maps it references; each
//             ld_imm64 is patched: a map's `struct bpf_map *` (handle_addr), a global's address
//             (value of the global-data map + offset), a callback's bpf_func_address(prog id, pc).
//   fds       every map and program fd is installed in the process, so closing them (or the
//             process exiting) tears the object down as in the kernel.
// Refused before anything is created (LoadError naming the file and ELF section): a call to a
// helper the model does not implement, relocations that do not fit the object, what the
// verifier refuses (bpf_object_verify: a bpf_timer in a map type that cannot hold one, a program
// breaking a timer or spin-lock rule). Any other map the kernel would refuse fails with its
// errno; maps created before it stay installed in the process.
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "model/libbpf_loader.h"
#include "model/verifier.h"
#include "model/vm_prog.h"
#include "sim/assert.h"

namespace bpftsim::model {

class Kernel;
class BpfMap;
struct Process;

// What loading one ObjectSpec that no longer changes (a scenario's object, loaded once and run
// many times) can share between its loads: bpf_object_verify's results (the verifier was most of
// a run's time), one per distinct VerifierOptions; one immutable copy of the spec for every
// loaded object to name; each program's relocated code prepared for the VM (reused while the
// relocations come out the same, which they do in every run of a scenario). Thread-safe.
// Whoever changes the spec must drop its memo.
class VerifyMemo {
 public:
  std::optional<LoadError> verify(const ObjectSpec& spec, const VerifierOptions& opts);
  // The shared copy of `spec` (made on the first call).
  std::shared_ptr<const ObjectSpec> shared_spec(const ObjectSpec& spec);
  // Program `index`'s prepared code for these relocated instructions (copied only when no
  // code prepared before has the same).
  std::shared_ptr<const BpfVm::Code> code(std::size_t index, const std::string& name,
                                          const std::vector<BpfInsn>& insns);

 private:
  std::mutex mu_;
  std::vector<std::pair<VerifierOptions, std::optional<LoadError>>> done_;
  std::shared_ptr<const ObjectSpec> spec_;
  std::vector<std::vector<std::shared_ptr<const BpfVm::Code>>> code_;  // per program
};

struct BpfObjectOptions {
  // Instruction budget of each program run (VmProg::kDefaultInsnBudget).
  std::uint64_t insn_budget = VmProg::kDefaultInsnBudget;
  // The verifier's era-dependent rules (model/verifier.h); the default is v5.15.
  VerifierOptions verifier;
  // When set, the verifier's result for this spec is taken from (or added to) the memo.
  VerifyMemo* verify_memo = nullptr;
};

// A loaded object: the skeleton's view (maps, progs, global data) of what now lives in the
// Kernel. The kernel objects are owned by the Kernel and held through the process's fds; this
// handle only names them, and stays valid as long as the Kernel.
class BpfObject {
 public:
  const ObjectSpec& spec() const { return *spec_; }
  Process& process() const { return *proc_; }

  // By BTF map name, or ".data"/".bss"/".rodata" for global data. nullptr / -1 if none.
  BpfMap* map(const std::string& name) const;
  int map_fd(const std::string& name) const;
  // By entry function name. nullptr / -1 if none.
  VmProg* prog(const std::string& name) const;
  int prog_fd(const std::string& name) const;
  const std::vector<VmProg*>& progs() const { return progs_; }

  // Global data by section and byte offset: host
  // memory of `size` bytes at `offset` of the section's value, nullptr when out of range. This is
  // what a skeleton's ->bss/->data/->rodata pointers see.
  std::uint8_t* global(const std::string& section, std::uint32_t offset, std::uint32_t size) const;
  // A global variable by BTF name (any data section): host memory of its size, nullptr if none.
  std::uint8_t* global_var(const std::string& name, std::uint32_t* size) const;
  template <class T>
  T read_global(const std::string& section, std::uint32_t offset) const {
    const std::uint8_t* p = global(section, offset, sizeof(T));
    SIM_ASSERT(p != nullptr, "{}: no {} bytes at {}+{}", spec_->path, sizeof(T), section, offset);
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
  }

 private:
  friend std::variant<std::unique_ptr<BpfObject>, LoadError> bpf_object_load(
      Kernel&, Process&, const ObjectSpec&, const BpfObjectOptions&);

  std::shared_ptr<const ObjectSpec> spec_;
  Process* proc_ = nullptr;
  std::vector<BpfMap*> maps_;  // index = ObjectSpec::maps index
  std::vector<int> map_fds_;
  std::vector<VmProg*> progs_;  // index = ObjectSpec::progs index
  std::vector<int> prog_fds_;
};

// Checks `spec` against what the model implements (helpers, relocations, init slots) without
// touching the kernel; the LoadError names the file and ELF section.
std::optional<LoadError> bpf_object_check(const ObjectSpec& spec);

// What the kernel refuses at load time (model/verifier.h): a bpf_timer in a map type that
// cannot hold one (map_check_btf, -EOPNOTSUPP), and each program's timer and spin-lock rules.
// The LoadError names the file, the ELF section and, for a program, "program 'P' insn N (in F):
// rule R: ...". bpf_object_load runs it before creating anything.
std::optional<LoadError> bpf_object_verify(const ObjectSpec& spec,
                                           const VerifierOptions& opts = {});

// bpf_object__load into `k` for `proc`.
std::variant<std::unique_ptr<BpfObject>, LoadError> bpf_object_load(
    Kernel& k, Process& proc, const ObjectSpec& spec, const BpfObjectOptions& opts = {});

// bpf_object__open_file + bpf_object__load.
std::variant<std::unique_ptr<BpfObject>, LoadError> bpf_object_open_and_load(
    Kernel& k, Process& proc, const std::string& path, const BpfObjectOptions& opts = {});

}  // namespace bpftsim::model
