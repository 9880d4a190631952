// Loader: the one boundary file for libbpf/libelf. Opens a clang-compiled BPF ELF object without a
// kernel (bpf_object__open_file works offline) and describes it as plain data: maps (BTF-defined
// and global-data maps), the value layout (bpf_timer / bpf_spin_lock offsets from BTF), programs
// by section with their subprograms appended and relocations resolved to symbolic references.
// Mirrors what libbpf's bpf_object__open + bpf_object__load relocation steps do
// (bpf_object__collect_relos, bpf_object__relocate), minus the kernel.
//
// Errors are returned, never thrown across this boundary: LoadError::message names the file, the
// ELF section and, where relevant, the instruction index.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "model/bpf_vm.h"
#include "model/uapi.h"

namespace bpftsim::model {

enum class MapOrigin : std::uint8_t { kUser, kData, kBss, kRodata };

// Signedness of a BTF type through typedefs and qualifiers: an INT's BTF_INT_SIGNED bit (kUnknown
// for anything else: enums, pointers, arrays, structs).
enum class BtfSign : std::uint8_t { kUnknown, kSigned, kUnsigned };

// A member of the BTF struct or union of a map value or a global variable, by dotted path
// ("in.x"; members of anonymous structs/unions by their own names, as C reaches them), in
// declaration order, nested structs before their members. Bitfields and arrays are kOther.
struct BtfField {
  enum class Kind : std::uint8_t { kInt, kStruct, kTimer, kSpinLock, kOther };
  std::string path;
  std::uint32_t offset = 0;  // bytes from the start of the value/variable
  std::uint32_t size = 0;
  Kind kind = Kind::kOther;
  BtfSign sign = BtfSign::kUnknown;  // kInt: the member type's (enums and pointers: kUnknown)
};
// At most this many members are described per type (deeper or further ones are left out).
inline constexpr std::size_t kMaxBtfFields = 1024;

// A global variable of a data section, from the section's BTF DATASEC (what a skeleton names).
struct GlobalVar {
  using Sign = BtfSign;
  std::string name;
  std::uint32_t offset = 0;  // in the section's value
  std::uint32_t size = 0;
  Sign sign = Sign::kUnknown;    // of its BTF type
  std::vector<BtfField> fields;  // a struct or union variable's members
};

struct MapSpec {
  std::string name;  // BTF map name, or ".bss"/".data"/".rodata" (libbpf's internal map names)
  MapOrigin origin = MapOrigin::kUser;
  std::uint32_t type = 0;
  std::uint32_t key_size = 0;
  std::uint32_t value_size = 0;
  std::uint32_t max_entries = 0;
  std::uint32_t map_flags = 0;
  std::int32_t timer_off = -1;      // offset of struct bpf_timer in the value, -1 if none
  std::int32_t spin_lock_off = -1;  // offset of struct bpf_spin_lock in the value, -1 if none
  std::string value_type;           // BTF name of the value type, "" if anonymous/none
  BtfSign value_sign = BtfSign::kUnknown;  // an integer value type's signedness
  std::vector<BtfField> value_fields;      // a struct or union value's members
  // Map-in-map: the inner map definition (from the BTF `values` member), if any. Its name is
  // libbpf's "<outer>.inner".
  std::vector<MapSpec> inner;  // 0 or 1 element
  // Static initial slots of a map-in-map: (index, name of the map stored there), sorted by index.
  // (For a BPF_MAP_TYPE_PROG_ARRAY the name is a program's.)
  std::vector<std::pair<std::uint32_t, std::string>> init_slots;
  // Initial bytes of a global-data map (value_size bytes; zeros for .bss).
  std::vector<std::uint8_t> initial_data;
  // Global-data maps: the section's variables in BTF order (empty without BTF).
  std::vector<GlobalVar> vars;
};

// A relocated ld_imm64 (two instruction slots starting at insn_idx). The slots are left in the
// form libbpf's gen_loader uses, so that they describe themselves:
//   kMapAddr:  src_reg = BPF_PSEUDO_MAP_IDX (5),       insn[0].imm = map_idx
//   kMapValue: src_reg = BPF_PSEUDO_MAP_IDX_VALUE (6), insn[0].imm = map_idx, insn[1].imm = offset
//   kFunc:     src_reg = BPF_PSEUDO_FUNC (4),          insn[0].imm = target_pc - insn_idx - 1
// (clang emits src_reg 0 for function addresses; libbpf marks them BPF_PSEUDO_FUNC as here).
struct LdImm64Reloc {
  enum class Kind : std::uint8_t {
    kMapAddr,   // BPF_PSEUDO_MAP_FD: address of the map object (struct bpf_map *)
    kMapValue,  // BPF_PSEUDO_MAP_VALUE: address of global data + offset
    kFunc,      // BPF_PSEUDO_FUNC: a callback subprogram, target_pc = its instruction index
  };
  std::uint32_t insn_idx = 0;
  Kind kind = Kind::kMapAddr;
  std::uint32_t map_idx = 0;    // into ObjectSpec::maps (kMapAddr, kMapValue)
  std::uint32_t offset = 0;     // kMapValue: byte offset into the value
  std::uint32_t target_pc = 0;  // kFunc
};

// One record of BTF line info (.BTF.ext): the source line that instructions from `pc` on (up to
// the next record) were compiled from.
struct SourceLine {
  std::uint32_t pc = 0;
  std::string file;  // the file's base name ("race.bpf.c"): paths differ between checkouts
  std::uint32_t line = 0;
  std::uint32_t col = 0;
  std::string text;  // the line's text as clang recorded it, trimmed
};

struct ProgSpec {
  std::string name;     // function name of the entry point
  std::string section;  // ELF section, e.g. "fentry/bpf_fentry_test1", "syscall", "tc"
  // Instructions of the entry function followed by every subprogram it reaches (bpf-to-bpf calls
  // and callbacks), with BPF_PSEUDO_CALL offsets fixed up to the appended copies. ld_imm64 slots
  // named in `relocs` still hold placeholders; the model patches them when it loads the program.
  std::vector<BpfInsn> insns;
  std::vector<LdImm64Reloc> relocs;
  std::vector<std::uint32_t> callbacks;  // target_pc of every kFunc reloc, sorted, unique
  std::vector<std::int32_t> helpers;     // helper ids called, sorted, unique
  // Subprogram entry points inside `insns`: (pc, function name), sorted by pc; [0] is the entry.
  std::vector<std::pair<std::uint32_t, std::string>> functions;
  // Entry pcs of the subprograms with global linkage (non-static .text functions), sorted.
  std::vector<std::uint32_t> global_functions;
  // BTF line info mapped onto `insns`, sorted by pc (empty when the object has no .BTF.ext).
  std::vector<SourceLine> lines;
  // The source line of instruction `pc` (the last record at or before it, within pc's
  // function), or nullptr.
  const SourceLine* source_at(std::uint32_t pc) const;
};

struct ObjectSpec {
  std::string path;
  std::string license;
  std::vector<MapSpec> maps;  // BTF-defined maps in ELF order, then .rodata/.data/.bss
  std::vector<ProgSpec> progs;

  std::optional<std::uint32_t> find_map(const std::string& name) const;
  const ProgSpec* find_prog(const std::string& name) const;
  // A global variable by BTF name in any data section; *map_idx gets its section's map index.
  const GlobalVar* find_global(const std::string& name, std::uint32_t* map_idx = nullptr) const;
};

struct LoadError {
  std::string message;
};

// Opens and describes `path`. Never throws for bad input; never prints (libbpf logging is captured
// into the error message where it explains the failure). Thread-safe: libbpf's process-wide print
// callback is swapped under a lock for the duration of the call.
// Rejected (LoadError): unreadable or non-BPF ELF files (wrong class, endianness, machine, type),
// truncated or inconsistent sections, symbols and relocations; externs (kfuncs, __ksym,
// __kconfig); calls into the middle of a function or outside .text; relocations libbpf would
// reject; more than one bpf_timer or bpf_spin_lock in a map value. CO-RE relocations
// (.BTF.ext) are not applied: offsets stay as clang wrote them.
std::variant<ObjectSpec, LoadError> load_bpf_object(const std::string& path);

// Human-readable names for map types (as bpftool prints them, from libbpf's table: "hash",
// "array", "lru_hash", "array_of_maps", "hash_of_maps", ...; "type N" for unknown numbers).
std::string map_type_name(std::uint32_t type);

// Simulator limits on an object's maps (issue 7): the model allocates every map's memory, and
// every global-data section, when the map is created, so a legal but huge map (an ARRAY of 2^29
// entries, `char big[0x7fffffff]` in .bss) is refused when the object is opened, by `inspect`
// and `run` alike, with the object file, the map or section and the limit.
inline constexpr std::uint64_t kMaxMapBytes = std::uint64_t{64} << 20;         // per map/section
inline constexpr std::uint64_t kMaxObjectMapBytes = std::uint64_t{256} << 20;  // per object
inline constexpr std::uint64_t kMaxLoadedMapBytes = std::uint64_t{512} << 20;  // per run (Kernel)
// Host bytes the model spends per hash map element and per bucket, besides key and value.
inline constexpr std::uint64_t kModelBytesPerElem = 48;
inline constexpr std::uint64_t kModelBytesPerBucket = 160;
// What a map of this spec takes in the model (value arena, hash elements and buckets).
std::uint64_t map_model_bytes(const MapSpec& spec);

}  // namespace bpftsim::model
