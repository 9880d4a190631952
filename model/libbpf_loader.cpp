// Loader: the boundary to libbpf 1.1 and libelf. libbpf parses the object (maps, BTF, program
// sections) exactly as it would before loading into a kernel; the steps libbpf only performs at
// load time (bpf_object__relocate: bpf_object__reloc_code appending subprograms, and
// bpf_object__relocate_data resolving map and global-data references) and the static map-in-map
// slots it keeps private (obj->maps[i].init_slots, from bpf_object__collect_map_relos) are redone
// here from the ELF with libelf.
//
// Internally, failures travel as a Failure exception; load_bpf_object() converts every exception
// into a LoadError, so nothing crosses the boundary.
#include "model/libbpf_loader.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include <fmt/format.h>

#include "model/helpers.h"
#include "model/input_file.h"

namespace bpftsim::model {
namespace {

struct Failure {
  std::string message;
};

[[noreturn]] void fail(std::string message) {
  throw Failure{std::move(message)};
}

// ---------------------------------------------------------------------------------------------
// libbpf logging: libbpf prints through one process-wide callback. While we hold the lock, its
// warnings are collected instead of printed, so that a failed open can explain itself.

std::mutex g_libbpf_mutex;
std::string* g_libbpf_log = nullptr;  // guarded by g_libbpf_mutex

int capture_libbpf_print(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG || g_libbpf_log == nullptr) return 0;
  char buf[1024];
  va_list copy;
  va_copy(copy, args);
  const int n = std::vsnprintf(buf, sizeof buf, format, copy);
  va_end(copy);
  if (n < 0) return 0;
  std::string line(buf, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof buf - 1));
  if (line.rfind("libbpf: ", 0) == 0) line.erase(0, 8);
  while (!line.empty() && (line.back() == '\n' || line.back() == ' '))
    line.pop_back();
  if (line.empty()) return 0;
  if (!g_libbpf_log->empty()) g_libbpf_log->append("; ");
  g_libbpf_log->append(line);
  return 0;
}

class LibbpfSession {
 public:
  LibbpfSession() : lock_(g_libbpf_mutex) {
    g_libbpf_log = &log_;
    previous_ = libbpf_set_print(capture_libbpf_print);
  }
  ~LibbpfSession() {
    libbpf_set_print(previous_);
    g_libbpf_log = nullptr;
  }
  LibbpfSession(const LibbpfSession&) = delete;
  LibbpfSession& operator=(const LibbpfSession&) = delete;
  const std::string& log() const { return log_; }

 private:
  std::lock_guard<std::mutex> lock_;
  std::string log_;
  libbpf_print_fn_t previous_ = nullptr;
};

struct BpfObjectCloser {
  void operator()(bpf_object* obj) const { bpf_object__close(obj); }
};
using BpfObjectPtr = std::unique_ptr<bpf_object, BpfObjectCloser>;

// ---------------------------------------------------------------------------------------------
// ELF view: sections, the symbol table and REL sections, validated once up front so that the
// relocation code below can index without re-checking.

struct ElfSection {
  std::string name;
  GElf_Shdr shdr{};
  const std::uint8_t* data = nullptr;  // nullptr for SHT_NOBITS and empty sections
  std::size_t size = 0;
};

struct ElfSymbol {
  GElf_Sym sym{};
  std::string name;
  int type() const { return GELF_ST_TYPE(sym.st_info); }
  int bind() const { return GELF_ST_BIND(sym.st_info); }
  bool is_extern() const {
    return sym.st_shndx == SHN_UNDEF && (bind() == STB_GLOBAL || bind() == STB_WEAK) &&
           type() == STT_NOTYPE;
  }
};

// Owners for the descriptor and the libelf handle, so that a constructor that fails half-way
// (the usual case for bad input) still releases both.
struct FdCloser {
  void operator()(const int* fd) const {
    if (*fd >= 0) ::close(*fd);
    delete fd;
  }
};
struct ElfEnder {
  void operator()(Elf* elf) const { elf_end(elf); }
};

class ElfImage {
 public:
  explicit ElfImage(const std::string& path) : path_(path) {
    if (auto why = check_input_file(path, kMaxObjectBytes, "BPF ELF object"))
      fail(fmt::format("{}: {}", path, *why));
    fd_.reset(new int(::open(path.c_str(), O_RDONLY | O_CLOEXEC)));
    if (*fd_ < 0) fail(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
    if (elf_version(EV_CURRENT) == EV_NONE) fail(not_bpf("libelf is too old"));
    elf_.reset(elf_begin(*fd_, ELF_C_READ_MMAP, nullptr));
    if (!elf_) fail(not_bpf(elf_errmsg(-1)));
    if (elf_kind(elf()) != ELF_K_ELF) fail(not_bpf("no ELF header"));
    GElf_Ehdr ehdr;
    if (gelf_getehdr(elf(), &ehdr) == nullptr) fail(not_bpf(elf_errmsg(-1)));
    if (ehdr.e_ident[EI_CLASS] != ELFCLASS64) fail(not_bpf("not a 64-bit ELF file"));
    if (ehdr.e_ident[EI_DATA] != ELFDATA2LSB) fail(not_bpf("not little-endian"));
    if (ehdr.e_machine != EM_BPF)
      fail(not_bpf(fmt::format("e_machine is {}, not EM_BPF ({})", ehdr.e_machine, EM_BPF)));
    if (ehdr.e_type != ET_REL) fail(not_bpf("not a relocatable object (ET_REL)"));
    read_sections();
    read_symbols();
    read_relocations();
  }
  ElfImage(const ElfImage&) = delete;
  ElfImage& operator=(const ElfImage&) = delete;

  const std::vector<ElfSection>& sections() const { return sections_; }
  const std::vector<ElfSymbol>& symbols() const { return symbols_; }
  std::size_t text_shndx() const { return text_shndx_; }  // 0 if the object has no .text
  std::size_t maps_shndx() const { return maps_shndx_; }  // 0 if the object has no .maps

  // Index of the section called `name`, 0 if none.
  std::size_t section_index(const std::string& name) const {
    for (std::size_t i = 1; i < sections_.size(); ++i)
      if (sections_[i].name == name) return i;
    return 0;
  }
  std::string section_name(std::size_t idx) const {
    return idx < sections_.size() ? sections_[idx].name : fmt::format("#{}", idx);
  }
  // Relocations applying to section `idx`, keyed by r_offset.
  const std::map<std::uint64_t, GElf_Rel>* relocations_for(std::size_t idx) const {
    auto it = rels_.find(idx);
    return it == rels_.end() ? nullptr : &it->second;
  }
  // The name libbpf would print for a relocation's symbol (section symbols carry no name).
  std::string symbol_display_name(const ElfSymbol& s) const {
    if (s.type() == STT_SECTION && s.name.empty()) return section_name(s.sym.st_shndx);
    return s.name.empty() ? "<?>" : s.name;
  }

 private:
  Elf* elf() const { return elf_.get(); }
  std::string not_bpf(const std::string& why) const {
    return fmt::format("{}: not a BPF ELF object: {}", path_, why);
  }

  void read_sections() {
    std::size_t shnum = 0, shstrndx = 0;
    if (elf_getshdrnum(elf(), &shnum) != 0 || elf_getshdrstrndx(elf(), &shstrndx) != 0)
      fail(not_bpf(elf_errmsg(-1)));
    sections_.resize(shnum);
    for (std::size_t i = 1; i < shnum; ++i) {
      Elf_Scn* scn = elf_getscn(elf(), i);
      ElfSection& sec = sections_[i];
      if (scn == nullptr || gelf_getshdr(scn, &sec.shdr) == nullptr)
        fail(not_bpf(fmt::format("section #{}: {}", i, elf_errmsg(-1))));
      const char* name = elf_strptr(elf(), shstrndx, sec.shdr.sh_name);
      if (name == nullptr) fail(not_bpf(fmt::format("section #{}: bad name", i)));
      sec.name = name;
      if (sec.shdr.sh_type == SHT_NOBITS) {
        sec.size = sec.shdr.sh_size;
        continue;
      }
      Elf_Data* data = elf_getdata(scn, nullptr);
      if (data == nullptr && sec.shdr.sh_size != 0)
        fail(not_bpf(fmt::format("section '{}': {}", sec.name, elf_errmsg(-1))));
      if (data != nullptr) {
        if (data->d_size != sec.shdr.sh_size)
          fail(not_bpf(fmt::format("section '{}': truncated data", sec.name)));
        sec.data = static_cast<const std::uint8_t*>(data->d_buf);
        sec.size = data->d_size;
      }
      if (sec.name == ".text") text_shndx_ = i;
      if (sec.name == ".maps") maps_shndx_ = i;
    }
  }

  void read_symbols() {
    std::size_t symtab_idx = 0;
    for (std::size_t i = 1; i < sections_.size(); ++i)
      if (sections_[i].shdr.sh_type == SHT_SYMTAB) symtab_idx = i;
    if (symtab_idx == 0) fail(not_bpf("no symbol table"));
    const ElfSection& symtab = sections_[symtab_idx];
    if (symtab.shdr.sh_entsize != sizeof(Elf64_Sym) || symtab.data == nullptr)
      fail(not_bpf("malformed symbol table"));
    Elf_Data* data = elf_getdata(elf_getscn(elf(), symtab_idx), nullptr);
    const std::size_t count = symtab.size / sizeof(Elf64_Sym);
    symbols_.resize(count);
    for (std::size_t i = 0; i < count; ++i) {
      ElfSymbol& s = symbols_[i];
      if (gelf_getsym(data, static_cast<int>(i), &s.sym) == nullptr)
        fail(not_bpf(fmt::format("symbol #{}: {}", i, elf_errmsg(-1))));
      const char* name = elf_strptr(elf(), symtab.shdr.sh_link, s.sym.st_name);
      s.name = name != nullptr ? name : "";
      if (s.sym.st_shndx != SHN_UNDEF && s.sym.st_shndx < SHN_LORESERVE &&
          s.sym.st_shndx >= sections_.size())
        fail(not_bpf(
            fmt::format("symbol '{}' points to missing section #{}", s.name, s.sym.st_shndx)));
    }
  }

  void read_relocations() {
    for (std::size_t i = 1; i < sections_.size(); ++i) {
      const ElfSection& sec = sections_[i];
      if (sec.shdr.sh_type != SHT_REL) continue;
      const std::size_t target = sec.shdr.sh_info;
      if (target == 0 || target >= sections_.size())
        fail(not_bpf(fmt::format("section '{}': relocates missing section #{}", sec.name, target)));
      // Only relocations of code and of .maps matter; DWARF and BTF ones are libbpf's or nobody's.
      const bool code = (sections_[target].shdr.sh_flags & SHF_EXECINSTR) != 0;
      if (!code && target != maps_shndx_) continue;
      if (sec.shdr.sh_entsize != sizeof(Elf64_Rel) || sec.data == nullptr)
        fail(not_bpf(fmt::format("section '{}': malformed relocations", sec.name)));
      Elf_Data* data = elf_getdata(elf_getscn(elf(), i), nullptr);
      auto& out = rels_[target];
      const std::size_t count = sec.size / sizeof(Elf64_Rel);
      for (std::size_t r = 0; r < count; ++r) {
        GElf_Rel rel;
        if (gelf_getrel(data, static_cast<int>(r), &rel) == nullptr)
          fail(not_bpf(fmt::format("section '{}': relo #{}: {}", sec.name, r, elf_errmsg(-1))));
        if (GELF_R_SYM(rel.r_info) >= symbols_.size())
          fail(not_bpf(fmt::format("section '{}': relo #{}: symbol #{} not found", sec.name, r,
                                   GELF_R_SYM(rel.r_info))));
        if (rel.r_offset >= sections_[target].size || (code && rel.r_offset % 8 != 0))
          fail(not_bpf(fmt::format("section '{}': relo #{}: invalid offset {:#x}", sec.name, r,
                                   rel.r_offset)));
        out.emplace(rel.r_offset, rel);
      }
    }
  }

  std::string path_;
  std::unique_ptr<int, FdCloser> fd_;
  std::unique_ptr<Elf, ElfEnder> elf_;
  std::vector<ElfSection> sections_;
  std::vector<ElfSymbol> symbols_;
  std::map<std::size_t, std::map<std::uint64_t, GElf_Rel>> rels_;
  std::size_t text_shndx_ = 0;
  std::size_t maps_shndx_ = 0;
};

// ---------------------------------------------------------------------------------------------
// BTF: value type names and the offsets of struct bpf_timer / struct bpf_spin_lock, found the way
// the kernel's btf_find_field does (members of the value struct, or variables of a DATASEC),
// extended to nested structs, unions and arrays.

const btf_type* skip_modifiers(const btf* btf, std::uint32_t* id) {
  const btf_type* t = btf__type_by_id(btf, *id);
  for (int guard = 0; t != nullptr && guard < 64; ++guard) {
    if (!btf_is_mod(t) && !btf_is_typedef(t) && !btf_is_type_tag(t)) return t;
    *id = t->type;
    t = btf__type_by_id(btf, *id);
  }
  return nullptr;
}

std::string btf_value_type_name(const btf* btf, std::uint32_t id) {
  const btf_type* t = btf__type_by_id(btf, id);
  for (int guard = 0; t != nullptr && guard < 64 && btf_is_mod(t); ++guard)
    t = btf__type_by_id(btf, t->type);
  if (t == nullptr) return "";
  const char* name = btf__name_by_offset(btf, t->name_off);
  return name != nullptr ? name : "";
}

void find_struct_fields(const btf* btf, std::uint32_t id, std::uint32_t base_off,
                        const char* wanted, bool top, int depth,
                        std::vector<std::uint32_t>* found) {
  if (depth > 32) fail("BTF type nesting too deep");
  const btf_type* t = skip_modifiers(btf, &id);
  if (t == nullptr) return;
  if (btf_is_struct(t) && !top) {
    const char* name = btf__name_by_offset(btf, t->name_off);
    if (name != nullptr && std::strcmp(name, wanted) == 0) {
      found->push_back(base_off);
      return;
    }
  }
  if (btf_is_composite(t)) {
    const btf_member* m = btf_members(t);
    for (std::uint16_t i = 0; i < btf_vlen(t); ++i)
      find_struct_fields(btf, m[i].type, base_off + btf_member_bit_offset(t, i) / 8, wanted, false,
                         depth + 1, found);
  } else if (btf_is_array(t)) {
    // Two elements are enough to tell "one field" from "more than one".
    const struct btf_array* arr = btf_array(t);
    const long long elem_size = btf__resolve_size(btf, arr->type);
    if (elem_size <= 0) return;
    for (std::uint32_t i = 0; i < std::min<std::uint32_t>(arr->nelems, 2); ++i)
      find_struct_fields(btf, arr->type, base_off + i * static_cast<std::uint32_t>(elem_size),
                         wanted, false, depth + 1, found);
  } else if (btf_is_datasec(t)) {
    const btf_var_secinfo* vi = btf_var_secinfos(t);
    for (std::uint16_t i = 0; i < btf_vlen(t); ++i)
      find_struct_fields(btf, vi[i].type, base_off + vi[i].offset, wanted, false, depth + 1, found);
  } else if (btf_is_var(t)) {
    find_struct_fields(btf, t->type, base_off, wanted, false, depth + 1, found);
  }
}

// -1 if absent; fails if the value holds more than one (the kernel rejects such maps).
std::int32_t find_unique_field(const btf* btf, std::uint32_t value_type_id, const char* wanted,
                               const std::string& what) {
  std::vector<std::uint32_t> found;
  find_struct_fields(btf, value_type_id, 0, wanted, true, 0, &found);
  if (found.empty()) return -1;
  if (found.size() > 1)
    fail(fmt::format("{}: value has more than one struct {} (offsets {} and {})", what, wanted,
                     found[0], found[1]));
  return static_cast<std::int32_t>(found[0]);
}

// libbpf 1.1 trusts the type references inside .BTF (range checks on them arrived in later
// releases), so a corrupted object can crash bpf_object__open. Check every reference first.
void validate_btf(const ElfImage& elf, const std::string& path) {
  const std::size_t idx = elf.section_index(".BTF");
  if (idx == 0) return;
  const ElfSection& sec = elf.sections()[idx];
  auto bad = [&](const std::string& why) {
    fail(fmt::format("{}: section '.BTF': {}", path, why));
  };
  if (sec.data == nullptr || sec.size > UINT32_MAX) bad("no data");
  std::unique_ptr<btf, void (*)(btf*)> parsed(
      btf__new(sec.data, static_cast<std::uint32_t>(sec.size)), btf__free);
  if (!parsed) bad(fmt::format("cannot parse: {}", std::strerror(errno)));
  const btf* b = parsed.get();
  const std::uint32_t count = btf__type_cnt(b);
  for (std::uint32_t id = 1; id < count; ++id) {
    const btf_type* t = btf__type_by_id(b, id);
    auto check_ref = [&](std::uint32_t ref) {
      if (ref >= count) bad(fmt::format("type #{} refers to missing type #{}", id, ref));
    };
    auto check_name = [&](std::uint32_t off) {
      if (btf__name_by_offset(b, off) == nullptr)
        bad(fmt::format("type #{} has a name outside the string section", id));
    };
    if (t == nullptr) bad(fmt::format("type #{} missing", id));
    check_name(t->name_off);
    switch (btf_kind(t)) {
      case BTF_KIND_PTR:
      case BTF_KIND_TYPEDEF:
      case BTF_KIND_VOLATILE:
      case BTF_KIND_CONST:
      case BTF_KIND_RESTRICT:
      case BTF_KIND_FUNC:
      case BTF_KIND_VAR:
      case BTF_KIND_DECL_TAG:
      case BTF_KIND_TYPE_TAG:
        check_ref(t->type);
        break;
      case BTF_KIND_ARRAY:
        check_ref(btf_array(t)->type);
        check_ref(btf_array(t)->index_type);
        break;
      case BTF_KIND_STRUCT:
      case BTF_KIND_UNION:
        for (std::uint16_t i = 0; i < btf_vlen(t); ++i) {
          check_ref(btf_members(t)[i].type);
          check_name(btf_members(t)[i].name_off);
        }
        break;
      case BTF_KIND_ENUM:
        for (std::uint16_t i = 0; i < btf_vlen(t); ++i)
          check_name(btf_enum(t)[i].name_off);
        break;
      case BTF_KIND_ENUM64:
        for (std::uint16_t i = 0; i < btf_vlen(t); ++i)
          check_name(btf_enum64(t)[i].name_off);
        break;
      case BTF_KIND_FUNC_PROTO:
        check_ref(t->type);
        for (std::uint16_t i = 0; i < btf_vlen(t); ++i) {
          check_ref(btf_params(t)[i].type);
          check_name(btf_params(t)[i].name_off);
        }
        break;
      case BTF_KIND_DATASEC:
        for (std::uint16_t i = 0; i < btf_vlen(t); ++i) {
          const std::uint32_t var = btf_var_secinfos(t)[i].type;
          check_ref(var);
          // Variables, and functions for extern kfuncs (DATASEC ".ksyms").
          const btf_type* vt = btf__type_by_id(b, var);
          if (var == 0 || (!btf_is_var(vt) && !btf_is_func(vt)))
            bad(fmt::format("DATASEC #{} lists type #{}, which is not a variable", id, var));
        }
        break;
      default:
        break;
    }
  }
}

// The "values" member of a map-in-map definition: its byte offset in the definition.
std::uint32_t values_member_offset(const btf* btf, const std::string& map_name) {
  const std::int32_t sec_id = btf__find_by_name_kind(btf, ".maps", BTF_KIND_DATASEC);
  if (sec_id <= 0) fail("no BTF DATASEC for .maps");
  const btf_type* sec = btf__type_by_id(btf, static_cast<std::uint32_t>(sec_id));
  const btf_var_secinfo* vi = btf_var_secinfos(sec);
  for (std::uint16_t i = 0; i < btf_vlen(sec); ++i) {
    const btf_type* var = btf__type_by_id(btf, vi[i].type);
    if (var == nullptr || !btf_is_var(var)) continue;
    const char* name = btf__name_by_offset(btf, var->name_off);
    if (name == nullptr || map_name != name) continue;
    std::uint32_t def_id = var->type;
    const btf_type* def = skip_modifiers(btf, &def_id);
    if (def == nullptr || !btf_is_struct(def) || btf_vlen(def) == 0)
      fail(fmt::format("map '{}': definition is not a struct", map_name));
    const std::uint16_t last = btf_vlen(def) - 1;
    const char* mname = btf__name_by_offset(btf, btf_members(def)[last].name_off);
    if (mname == nullptr || std::strcmp(mname, "values") != 0)
      fail(fmt::format("map '{}': static slots need a last member called 'values'", map_name));
    return btf_member_bit_offset(def, last) / 8;
  }
  fail(fmt::format("map '{}': no BTF variable in .maps", map_name));
}

// ---------------------------------------------------------------------------------------------
// Maps.

bool is_map_in_map(std::uint32_t type) {
  return type == kBpfMapTypeArrayOfMaps || type == kBpfMapTypeHashOfMaps;
}

std::optional<MapOrigin> data_origin(const std::string& section) {
  auto is = [&](const char* prefix) {
    const std::size_t n = std::strlen(prefix);
    return section.compare(0, n, prefix) == 0 && (section.size() == n || section[n] == '.');
  };
  if (is(".data")) return MapOrigin::kData;
  if (is(".bss")) return MapOrigin::kBss;
  if (is(".rodata")) return MapOrigin::kRodata;
  return std::nullopt;
}

// libbpf names internal maps "<object prefix><section>" (".data.custom" sections without the
// prefix, everything truncated to 15 characters). Recover the ELF section: the DATASEC name in
// BTF where there is one, else the data section whose name the map name ends with.
std::string internal_map_section(const ElfImage& elf, const btf* btf, const bpf_map* map) {
  const std::string libbpf_name = bpf_map__name(map);
  auto exists = [&](const std::string& s) { return elf.section_index(s) != 0; };
  if (btf != nullptr && bpf_map__btf_value_type_id(map) != 0) {
    const std::string sec = btf_value_type_name(btf, bpf_map__btf_value_type_id(map));
    if (data_origin(sec) && exists(sec)) return sec;
  }
  std::string best;
  for (const ElfSection& sec : elf.sections()) {
    if (!data_origin(sec.name)) continue;
    const bool suffix =
        libbpf_name.size() >= sec.name.size() &&
        libbpf_name.compare(libbpf_name.size() - sec.name.size(), sec.name.size(), sec.name) == 0;
    const bool truncated = sec.name.size() > 15 && libbpf_name == sec.name.substr(0, 15);
    if ((suffix || truncated) && sec.name.size() > best.size()) best = sec.name;
  }
  if (best.empty()) fail(fmt::format("internal map '{}' is not supported", libbpf_name));
  return best;
}

GlobalVar::Sign btf_sign(const btf* btf, std::uint32_t id);

// The members of struct/union `id` (through typedefs and qualifiers), flattened (BtfField).
void btf_fields(const btf* btf, std::uint32_t id, const std::string& prefix, std::uint32_t base,
                int depth, std::vector<BtfField>* out) {
  const btf_type* t = skip_modifiers(btf, &id);
  if (t == nullptr || !btf_is_composite(t) || depth > 16) return;
  const btf_member* m = btf_members(t);
  for (std::uint16_t i = 0; i < btf_vlen(t) && out->size() < kMaxBtfFields; ++i) {
    const char* raw = btf__name_by_offset(btf, m[i].name_off);
    const std::string name = raw != nullptr ? raw : "";
    const std::uint32_t off = base + btf_member_bit_offset(t, i) / 8;
    std::uint32_t mid = m[i].type;
    const btf_type* mt = skip_modifiers(btf, &mid);
    if (mt == nullptr) continue;
    if (name.empty()) {  // an anonymous struct/union: its members are the parent's
      btf_fields(btf, mid, prefix, off, depth + 1, out);
      continue;
    }
    BtfField f;
    f.path = prefix.empty() ? name : prefix + "." + name;
    f.offset = off;
    const long long size = btf__resolve_size(btf, mid);
    f.size = size > 0 ? static_cast<std::uint32_t>(size) : 0;
    const char* tname = btf__name_by_offset(btf, mt->name_off);
    const std::string type_name = tname != nullptr ? tname : "";
    if (btf_member_bitfield_size(t, i) != 0 || btf_member_bit_offset(t, i) % 8 != 0) {
      f.kind = BtfField::Kind::kOther;
    } else if (btf_is_struct(mt) && type_name == "bpf_timer") {
      f.kind = BtfField::Kind::kTimer;
    } else if (btf_is_struct(mt) && type_name == "bpf_spin_lock") {
      f.kind = BtfField::Kind::kSpinLock;
    } else if (btf_is_composite(mt)) {
      f.kind = BtfField::Kind::kStruct;
    } else if (btf_is_int(mt) || btf_is_enum(mt) || btf_is_enum64(mt) || btf_is_ptr(mt)) {
      f.kind = BtfField::Kind::kInt;
      f.sign = btf_sign(btf, m[i].type);
    }
    const bool nested = f.kind == BtfField::Kind::kStruct;
    const std::string path = f.path;
    out->push_back(std::move(f));
    if (nested) btf_fields(btf, mid, path, off, depth + 1, out);
  }
}

MapSpec describe_map(const btf* btf, bpf_map* map, const std::string& name) {
  MapSpec spec;
  spec.name = name;
  spec.type = static_cast<std::uint32_t>(bpf_map__type(map));
  spec.key_size = bpf_map__key_size(map);
  spec.value_size = bpf_map__value_size(map);
  spec.max_entries = bpf_map__max_entries(map);
  spec.map_flags = bpf_map__map_flags(map);
  const std::uint32_t value_id = bpf_map__btf_value_type_id(map);
  if (btf != nullptr && value_id != 0) {
    const std::string what = fmt::format("map '{}'", name);
    spec.value_type = btf_value_type_name(btf, value_id);
    spec.timer_off = find_unique_field(btf, value_id, "bpf_timer", what);
    spec.spin_lock_off = find_unique_field(btf, value_id, "bpf_spin_lock", what);
    spec.value_sign = btf_sign(btf, value_id);
    btf_fields(btf, value_id, "", 0, 0, &spec.value_fields);
  }
  if (bpf_map* inner = bpf_map__inner_map(map))
    spec.inner.push_back(describe_map(btf, inner, bpf_map__name(inner)));
  return spec;
}

// Whether BTF type `id` is a signed integer, through typedefs and const/volatile/restrict.
GlobalVar::Sign btf_sign(const btf* btf, std::uint32_t id) {
  for (int depth = 0; depth < 32; ++depth) {
    const btf_type* t = btf__type_by_id(btf, id);
    if (t == nullptr) return GlobalVar::Sign::kUnknown;
    if (btf_is_int(t))
      return (btf_int_encoding(t) & BTF_INT_SIGNED) != 0 ? GlobalVar::Sign::kSigned
                                                         : GlobalVar::Sign::kUnsigned;
    if (!btf_is_typedef(t) && !btf_is_mod(t)) return GlobalVar::Sign::kUnknown;
    id = t->type;
  }
  return GlobalVar::Sign::kUnknown;
}

// The variables of a DATASEC type (a global-data map's value type), by name, offset and size.
std::vector<GlobalVar> datasec_vars(const btf* btf, std::uint32_t datasec_id) {
  std::vector<GlobalVar> out;
  if (btf == nullptr || datasec_id == 0) return out;
  const btf_type* sec = btf__type_by_id(btf, datasec_id);
  if (sec == nullptr || !btf_is_datasec(sec)) return out;
  const btf_var_secinfo* vi = btf_var_secinfos(sec);
  for (std::uint16_t i = 0; i < btf_vlen(sec); ++i) {
    const btf_type* var = btf__type_by_id(btf, vi[i].type);
    if (var == nullptr || !btf_is_var(var)) continue;
    const char* name = btf__name_by_offset(btf, var->name_off);
    if (name == nullptr || *name == '\0') continue;
    out.push_back(GlobalVar{name, vi[i].offset, vi[i].size, btf_sign(btf, var->type), {}});
    btf_fields(btf, var->type, "", 0, 0, &out.back().fields);
  }
  return out;
}

// Refuses a map or a global-data section bigger than the simulator's limits (the model allocates
// every map's memory when it is created); returns the bytes it will take.
std::uint64_t check_map_size(const MapSpec& spec, std::uint64_t* total) {
  const std::uint64_t bytes = map_model_bytes(spec);
  auto mib = [](std::uint64_t b) {
    return fmt::format("{:.1f} MiB", static_cast<double>(b) / (1 << 20));
  };
  if (spec.origin != MapOrigin::kUser) {
    if (bytes > kMaxMapBytes)
      fail(fmt::format("section '{}': {} bytes of global data; bpftsim's limit is {} per section",
                       spec.name, spec.value_size, mib(kMaxMapBytes)));
  } else if (bytes > kMaxMapBytes) {
    fail(
        fmt::format("map '{}' ({}, max_entries {}, key_size {}, value_size {}) needs {} in the "
                    "model; bpftsim's limit is {} per map",
                    spec.name, map_type_name(spec.type), spec.max_entries, spec.key_size,
                    spec.value_size, mib(bytes), mib(kMaxMapBytes)));
  }
  *total += bytes;
  if (*total > kMaxObjectMapBytes)
    fail(
        fmt::format("{} '{}' brings the object's maps and global data to {}; bpftsim's limit is "
                    "{} per object",
                    spec.origin == MapOrigin::kUser ? "map" : "section", spec.name, mib(*total),
                    mib(kMaxObjectMapBytes)));
  return bytes;
}

std::vector<MapSpec> describe_maps(const ElfImage& elf, bpf_object* obj) {
  const btf* btf = bpf_object__btf(obj);
  std::vector<MapSpec> user, internal;
  std::uint64_t total = 0;
  bpf_map* map = nullptr;
  bpf_object__for_each_map(map, obj) {
    if (!bpf_map__is_internal(map)) {
      user.push_back(describe_map(btf, map, bpf_map__name(map)));
      check_map_size(user.back(), &total);
      for (const MapSpec& inner : user.back().inner)
        check_map_size(inner, &total);
      continue;
    }
    const std::string section = internal_map_section(elf, btf, map);
    MapSpec spec = describe_map(btf, map, section);
    spec.origin = *data_origin(section);
    check_map_size(spec, &total);  // before its initial value is copied
    std::size_t size = 0;
    const void* init = bpf_map__initial_value(map, &size);
    if (init != nullptr) {
      const auto* bytes = static_cast<const std::uint8_t*>(init);
      spec.initial_data.assign(bytes, bytes + std::min<std::size_t>(size, spec.value_size));
    }
    spec.initial_data.resize(spec.value_size, 0);
    spec.vars = datasec_vars(btf, bpf_map__btf_value_type_id(map));
    internal.push_back(std::move(spec));
  }
  std::stable_sort(internal.begin(), internal.end(), [](const MapSpec& a, const MapSpec& b) {
    auto rank = [](MapOrigin o) {
      return o == MapOrigin::kRodata ? 0 : o == MapOrigin::kData ? 1 : 2;
    };
    return rank(a.origin) < rank(b.origin);
  });
  for (MapSpec& m : internal)
    user.push_back(std::move(m));
  return user;
}

// Symbols of .maps: offset in the section -> map variable.
std::map<std::uint64_t, const ElfSymbol*> map_symbols(const ElfImage& elf) {
  std::map<std::uint64_t, const ElfSymbol*> out;
  if (elf.maps_shndx() == 0) return out;
  for (const ElfSymbol& s : elf.symbols())
    if (s.sym.st_shndx == elf.maps_shndx() && s.type() == STT_OBJECT && !s.name.empty())
      out.emplace(s.sym.st_value, &s);
  return out;
}

// Static slots (`.values = { [i] = &m }`): relocations of .maps, as bpf_object__collect_map_relos
// reads them (libbpf 1.1 keeps the result in obj->maps[i].init_slots, which is not public).
void collect_init_slots(const ElfImage& elf, const btf* btf, const std::string& path,
                        ObjectSpec* spec) {
  const auto* rels = elf.maps_shndx() != 0 ? elf.relocations_for(elf.maps_shndx()) : nullptr;
  if (rels == nullptr) return;
  const auto by_offset = map_symbols(elf);
  for (const auto& [offset, rel] : *rels) {
    const ElfSymbol& target = elf.symbols()[GELF_R_SYM(rel.r_info)];
    const std::string where = fmt::format("{}: section '.maps': relo at offset {}", path, offset);
    const ElfSymbol* outer = nullptr;
    for (const auto& [start, sym] : by_offset)
      if (start <= offset && offset + 8 <= start + sym->sym.st_size) outer = sym;
    if (outer == nullptr) fail(fmt::format("{}: no map contains it", where));
    const auto outer_idx = spec->find_map(outer->name);
    if (!outer_idx) fail(fmt::format("{}: map '{}' unknown to libbpf", where, outer->name));
    MapSpec& outer_map = spec->maps[*outer_idx];
    const bool prog_array = outer_map.type == BPF_MAP_TYPE_PROG_ARRAY;
    if (!is_map_in_map(outer_map.type) && !prog_array)
      fail(fmt::format("{}: map '{}' is neither map-in-map nor prog array", where, outer->name));
    if (!prog_array && target.sym.st_shndx != elf.maps_shndx())
      fail(fmt::format("{}: '{}' is not a BTF-defined map", where, target.name));
    if (!prog_array && !spec->find_map(target.name))
      fail(fmt::format("{}: '{}' is not a valid map reference", where, target.name));
    if (btf == nullptr) fail(fmt::format("{}: object has no BTF", where));
    std::uint32_t moff = 0;
    try {
      moff = values_member_offset(btf, outer->name);
    } catch (const Failure& f) {
      fail(fmt::format("{}: {}", where, f.message));
    }
    const std::uint64_t rel_in_def = offset - outer->sym.st_value;
    if (rel_in_def < moff || (rel_in_def - moff) % 8 != 0)
      fail(fmt::format("{}: not a slot of 'values' of map '{}'", where, outer->name));
    const auto slot = static_cast<std::uint32_t>((rel_in_def - moff) / 8);
    if (slot >= outer_map.max_entries)
      fail(fmt::format("{}: slot {} beyond max_entries {}", where, slot, outer_map.max_entries));
    outer_map.init_slots.emplace_back(slot, target.name);
  }
  for (MapSpec& m : spec->maps)
    std::sort(m.init_slots.begin(), m.init_slots.end());
}

// ---------------------------------------------------------------------------------------------
// Programs: bpf_object__reloc_code + bpf_object__relocate_data, minus the kernel.

constexpr std::uint8_t kLdImm64 = BPF_LD | BPF_IMM | BPF_DW;
constexpr std::uint8_t kCall = BPF_JMP | BPF_CALL;
constexpr std::size_t kMaxInsns = 1u << 20;
constexpr int kMaxNesting = 256;

struct TextFunction {
  std::uint64_t start = 0;  // instruction index in .text
  std::uint64_t count = 0;
  std::string name;
  bool global = false;  // STB_GLOBAL: a non-static function (BTF linkage "global")
};

BpfInsn decode_insn(const std::uint8_t* p) {
  BpfInsn insn;
  insn.code = p[0];
  insn.regs = p[1];
  insn.off = static_cast<std::int16_t>(static_cast<std::uint16_t>(p[2] | (p[3] << 8)));
  std::uint32_t imm = 0;
  for (int b = 3; b >= 0; --b)
    imm = (imm << 8) | p[4 + b];
  insn.imm = static_cast<std::int32_t>(imm);
  return insn;
}

void set_src(BpfInsn* insn, std::uint8_t src) {
  insn->regs = static_cast<std::uint8_t>((insn->regs & 0x0f) | (src << 4));
}

// Where the instructions of a linked program came from: `count` instructions of section
// `shndx` from instruction `sec_start` on were copied to pc `base`.
struct Segment {
  std::size_t shndx = 0;
  std::uint64_t sec_start = 0;
  std::uint64_t count = 0;
  std::uint32_t base = 0;
};

class ProgramLinker {
 public:
  ProgramLinker(const ElfImage& elf, const ObjectSpec& spec) : elf_(elf), spec_(spec) {
    for (const ElfSymbol& s : elf.symbols()) {
      if (elf.text_shndx() == 0 || s.sym.st_shndx != elf.text_shndx() || s.type() != STT_FUNC)
        continue;
      text_funcs_.push_back(
          {s.sym.st_value / 8, s.sym.st_size / 8, s.name, s.bind() == STB_GLOBAL});
    }
    std::sort(text_funcs_.begin(), text_funcs_.end(),
              [](const TextFunction& a, const TextFunction& b) { return a.start < b.start; });
    map_syms_ = map_symbols(elf);
  }

  ProgSpec link(const std::string& name, const std::string& section) {
    prog_ = ProgSpec{};
    prog_.name = name;
    prog_.section = section;
    appended_.clear();
    helpers_.clear();
    segments_.clear();
    const std::size_t shndx = elf_.section_index(section);
    if (shndx == 0) fail(fmt::format("{}: section '{}': not found", spec_.path, section));
    const ElfSymbol* entry = nullptr;
    for (const ElfSymbol& s : elf_.symbols())
      if (s.sym.st_shndx == shndx && s.type() == STT_FUNC && s.name == name) entry = &s;
    if (entry == nullptr)
      fail(fmt::format("{}: section '{}': no function symbol '{}'", spec_.path, section, name));
    if (entry->sym.st_value % 8 != 0 || entry->sym.st_size % 8 != 0 || entry->sym.st_size == 0)
      fail(fmt::format("{}: section '{}': function '{}' is misaligned", spec_.path, section, name));
    append(shndx, {entry->sym.st_value / 8, entry->sym.st_size / 8, name}, 0);
    std::sort(prog_.relocs.begin(), prog_.relocs.end(),
              [](const LdImm64Reloc& a, const LdImm64Reloc& b) { return a.insn_idx < b.insn_idx; });
    std::set<std::uint32_t> callbacks;
    for (const LdImm64Reloc& r : prog_.relocs)
      if (r.kind == LdImm64Reloc::Kind::kFunc) callbacks.insert(r.target_pc);
    prog_.callbacks.assign(callbacks.begin(), callbacks.end());
    prog_.helpers.assign(helpers_.begin(), helpers_.end());
    return std::move(prog_);
  }
  // The segments of the program link() returned last.
  const std::vector<Segment>& segments() const { return segments_; }

 private:
  // Copies function `fn` of section `shndx` to the end of the program, then resolves its calls
  // (appending callees depth-first, in the order libbpf does) and its ld_imm64 references.
  std::uint32_t append(std::size_t shndx, const TextFunction& fn, int depth) {
    const ElfSection& sec = elf_.sections()[shndx];
    if (depth > kMaxNesting) fail(where(sec.name, fn.start, "subprogram nesting too deep"));
    if (sec.data == nullptr || (fn.start + fn.count) * 8 > sec.size)
      fail(where(sec.name, fn.start,
                 fmt::format("function '{}' lies outside its section", fn.name)));
    if (prog_.insns.size() + fn.count > kMaxInsns)
      fail(where(sec.name, fn.start, "program too large"));
    const auto base = static_cast<std::uint32_t>(prog_.insns.size());
    if (shndx == elf_.text_shndx()) appended_.emplace(fn.start, base);
    segments_.push_back({shndx, fn.start, fn.count, base});
    prog_.functions.emplace_back(base, fn.name);
    if (shndx == elf_.text_shndx() && fn.global) prog_.global_functions.push_back(base);
    for (std::uint64_t i = 0; i < fn.count; ++i)
      prog_.insns.push_back(decode_insn(sec.data + (fn.start + i) * 8));
    const auto* rels = elf_.relocations_for(shndx);
    for (std::uint64_t i = 0; i < fn.count; ++i) {
      const std::uint64_t sec_idx = fn.start + i;
      const GElf_Rel* rel = nullptr;
      if (rels != nullptr) {
        auto it = rels->find(sec_idx * 8);
        if (it != rels->end()) rel = &it->second;
      }
      const auto pc = static_cast<std::uint32_t>(base + i);
      const std::uint8_t code = prog_.insns[pc].code;
      if (code == kLdImm64) {
        if (i + 1 >= fn.count) fail(where(sec.name, sec_idx, "ld_imm64 cut off by function end"));
        if (rels != nullptr && rels->count((sec_idx + 1) * 8) != 0)
          fail(where(sec.name, sec_idx + 1, "relocation against the second half of ld_imm64"));
        resolve_ldimm64(shndx, sec_idx, pc, rel, depth);
        ++i;
      } else if (code == kCall) {
        resolve_call(shndx, sec_idx, pc, rel, depth);
      } else if (rel != nullptr) {
        fail(where(
            sec.name, sec_idx,
            fmt::format("invalid relo against '{}' for insn code {:#04x}", rel_name(*rel), code)));
      }
    }
    return base;
  }

  void resolve_call(std::size_t shndx, std::uint64_t sec_idx, std::uint32_t pc, const GElf_Rel* rel,
                    int depth) {
    const std::string& sec = elf_.sections()[shndx].name;
    BpfInsn& insn = prog_.insns[pc];
    if (insn.src() == 0) {
      if (rel != nullptr) fail(where(sec, sec_idx, "incorrect bpf_call opcode"));
      helpers_.insert(insn.imm);
      return;
    }
    if (insn.src() == BPF_PSEUDO_KFUNC_CALL) {
      if (rel == nullptr || !symbol(*rel).is_extern())
        fail(where(sec, sec_idx, "kfunc call without a relocation against an extern function"));
      resolve_kfunc(sec, sec_idx, insn, symbol(*rel).name);
      return;
    }
    if (insn.src() != BPF_PSEUDO_CALL)
      fail(where(sec, sec_idx, fmt::format("call with unknown src_reg {}", insn.src())));
    std::int64_t target = 0;
    if (rel != nullptr) {
      const ElfSymbol& sym = symbol(*rel);
      if (sym.is_extern()) {
        // clang emits a call of an extern function (a __ksym kfunc) as a bpf-to-bpf call
        // relocated against the extern; libbpf turns it into a kfunc call.
        resolve_kfunc(sec, sec_idx, insn, sym.name);
        return;
      }
      if (elf_.text_shndx() == 0 || sym.sym.st_shndx != elf_.text_shndx())
        fail(
            where(sec, sec_idx,
                  fmt::format("bad call relo against '{}' in section '{}'",
                              elf_.symbol_display_name(sym), elf_.section_name(sym.sym.st_shndx))));
      if (sym.sym.st_value % 8 != 0)
        fail(where(
            sec, sec_idx,
            fmt::format("bad call relo against '{}' at offset {}", sym.name, sym.sym.st_value)));
      target = static_cast<std::int64_t>(sym.sym.st_value / 8) + insn.imm + 1;
    } else {
      // No relocation: a pc-relative call inside the same section, which must then be .text.
      if (shndx != elf_.text_shndx())
        fail(where(sec, sec_idx, "bpf-to-bpf call without relocation outside .text"));
      target = static_cast<std::int64_t>(sec_idx) + insn.imm + 1;
    }
    const std::uint32_t target_pc = subprogram(sec, sec_idx, target, depth);
    prog_.insns[pc].imm = static_cast<std::int32_t>(static_cast<std::int64_t>(target_pc) - pc - 1);
  }

  // A call to a .ksyms extern function: the kfuncs the model knows, by name, become calls of
  // their model ids (helpers::kfunc_by_name); whether the kernel has one is the profile's
  // (checked at load, as for helpers).
  void resolve_kfunc(const std::string& sec, std::uint64_t sec_idx, BpfInsn& insn,
                     const std::string& name) {
    const auto id = helpers::kfunc_by_name(name);
    if (!id)
      fail(where(sec, sec_idx,
                 fmt::format("kfunc call to '{}' is not supported (the model knows: "
                             "bpf_timer_cancel_async)",
                             name)));
    insn.code = kCall;
    insn.regs = 0;  // src 0: a helper call, by the model's id
    insn.off = 0;
    insn.imm = *id;
    helpers_.insert(*id);
  }

  void resolve_ldimm64(std::size_t shndx, std::uint64_t sec_idx, std::uint32_t pc,
                       const GElf_Rel* rel, int depth) {
    const std::string& sec = elf_.sections()[shndx].name;
    const BpfInsn insn = prog_.insns[pc];
    if (rel == nullptr) {
      if (insn.src() == BPF_PSEUDO_FUNC) fail(where(sec, sec_idx, "missing subprog addr relo"));
      if (insn.src() != 0)
        fail(where(sec, sec_idx,
                   fmt::format("ld_imm64 with src_reg {} and no relocation", insn.src())));
      return;  // a plain 64-bit constant
    }
    const ElfSymbol& sym = symbol(*rel);
    const std::string sym_name = elf_.symbol_display_name(sym);
    const std::size_t sym_shndx = sym.sym.st_shndx;
    if (sym.is_extern())
      fail(where(
          sec, sec_idx,
          fmt::format("extern '{}' is not supported (ksyms and kconfig need a kernel)", sym.name)));
    if (sym_shndx == SHN_UNDEF || sym_shndx >= SHN_LORESERVE)
      fail(where(sec, sec_idx,
                 fmt::format("relo against '{}' in special section {:#x}; uninitialised global?",
                             sym_name, sym_shndx)));
    LdImm64Reloc reloc;
    reloc.insn_idx = pc;
    if (sym_shndx == elf_.text_shndx() && (sym.type() == STT_SECTION || sym.type() == STT_FUNC)) {
      if (sym.sym.st_value % 8 != 0 || insn.imm % 8 != 0)
        fail(where(sec, sec_idx,
                   fmt::format("bad subprog addr relo against '{}' at offset {}+{}", sym_name,
                               sym.sym.st_value, insn.imm)));
      const std::int64_t target = (static_cast<std::int64_t>(sym.sym.st_value) + insn.imm) / 8;
      reloc.kind = LdImm64Reloc::Kind::kFunc;
      reloc.target_pc = subprogram(sec, sec_idx, target, depth);
      // As libbpf leaves it: marked BPF_PSEUDO_FUNC (clang emits src_reg 0) with a pc-relative
      // imm like a call. The model replaces it with the callback's address.
      set_src(&prog_.insns[pc], BPF_PSEUDO_FUNC);
      prog_.insns[pc].imm =
          static_cast<std::int32_t>(static_cast<std::int64_t>(reloc.target_pc) - pc - 1);
    } else if (sym_shndx == elf_.maps_shndx()) {
      auto it = map_syms_.find(sym.sym.st_value);
      const std::string map_name = it != map_syms_.end() ? it->second->name : sym.name;
      const auto idx = spec_.find_map(map_name);
      if (!idx)
        fail(where(sec, sec_idx,
                   fmt::format("map relo failed to find map for '{}' at offset {}", sym_name,
                               sym.sym.st_value)));
      reloc.kind = LdImm64Reloc::Kind::kMapAddr;
      reloc.map_idx = *idx;
      set_src(&prog_.insns[pc], BPF_PSEUDO_MAP_IDX);
      prog_.insns[pc].imm = static_cast<std::int32_t>(*idx);
    } else if (data_origin(elf_.section_name(sym_shndx))) {
      const std::string data_sec = elf_.section_name(sym_shndx);
      const auto idx = spec_.find_map(data_sec);
      if (!idx)
        fail(where(sec, sec_idx,
                   fmt::format("data relo failed to find map for section '{}'", data_sec)));
      const std::int64_t offset = static_cast<std::int64_t>(sym.sym.st_value) + insn.imm;
      if (offset < 0 || offset > spec_.maps[*idx].value_size)
        fail(where(
            sec, sec_idx,
            fmt::format("offset {} of '{}' outside section '{}'", offset, sym_name, data_sec)));
      reloc.kind = LdImm64Reloc::Kind::kMapValue;
      reloc.map_idx = *idx;
      reloc.offset = static_cast<std::uint32_t>(offset);
      set_src(&prog_.insns[pc], BPF_PSEUDO_MAP_IDX_VALUE);
      prog_.insns[pc].imm = static_cast<std::int32_t>(*idx);
      prog_.insns[pc + 1].imm = static_cast<std::int32_t>(offset);
    } else {
      fail(where(sec, sec_idx,
                 fmt::format("bad map relo against '{}' in section '{}'", sym_name,
                             elf_.section_name(sym_shndx))));
    }
    prog_.relocs.push_back(reloc);
  }

  // Program counter of the .text function starting at instruction `target`, appending it first
  // if this program does not contain it yet.
  std::uint32_t subprogram(const std::string& sec, std::uint64_t sec_idx, std::int64_t target,
                           int depth) {
    auto it = std::find_if(text_funcs_.begin(), text_funcs_.end(), [&](const TextFunction& f) {
      return target >= 0 && static_cast<std::uint64_t>(target) >= f.start &&
             static_cast<std::uint64_t>(target) < f.start + f.count;
    });
    if (it == text_funcs_.end())
      fail(where(sec, sec_idx, fmt::format("no .text function at insn {}", target)));
    if (it->start != static_cast<std::uint64_t>(target))
      fail(where(
          sec, sec_idx,
          fmt::format("target insn {} is inside function '{}', not its start", target, it->name)));
    auto done = appended_.find(it->start);
    if (done != appended_.end()) return done->second;
    return append(elf_.text_shndx(), *it, depth + 1);
  }

  const ElfSymbol& symbol(const GElf_Rel& rel) const {
    return elf_.symbols()[GELF_R_SYM(rel.r_info)];
  }
  std::string rel_name(const GElf_Rel& rel) const { return elf_.symbol_display_name(symbol(rel)); }
  std::string where(const std::string& sec, std::uint64_t sec_idx, const std::string& why) const {
    return fmt::format("{}: section '{}': insn {}: {}", spec_.path, sec, sec_idx, why);
  }

  const ElfImage& elf_;
  const ObjectSpec& spec_;
  std::vector<TextFunction> text_funcs_;
  std::map<std::uint64_t, const ElfSymbol*> map_syms_;
  ProgSpec prog_;
  std::map<std::uint64_t, std::uint32_t> appended_;  // .text insn index -> pc in prog_
  std::set<std::int32_t> helpers_;
  std::vector<Segment> segments_;
};

// ---------------------------------------------------------------------------------------------
// BTF line info (.BTF.ext), as the kernel documents the format (Documentation/bpf/btf.rst,
// "BTF.ext section") and libbpf reads it in btf_ext__new / btf_ext_setup_line_info: a header with
// the offset and length of the line-info part (after the header); that part is a record size
// followed by, per ELF section, its name (a .BTF string offset), a record count and the records
// {byte offset of the instruction in the section, file name, line text, line << 10 | column}.
// Line info only helps reports: a malformed part is ignored, never an error.

struct RawLine {
  std::uint64_t insn = 0;  // instruction index in its section
  SourceLine where;
};
using LineTable = std::map<std::string, std::vector<RawLine>>;  // by section name

std::uint32_t read_u32(const std::uint8_t* p) {
  std::uint32_t v = 0;
  std::memcpy(&v, p, 4);
  return v;
}

std::string trim(std::string s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  const auto last = s.find_last_not_of(" \t\r\n");
  return s.substr(first, last - first + 1);
}

LineTable read_line_info(const ElfImage& elf, const btf* types) {
  LineTable table;
  const std::size_t idx = elf.section_index(".BTF.ext");
  if (idx == 0 || types == nullptr) return table;
  const ElfSection& sec = elf.sections()[idx];
  const std::uint8_t* d = sec.data;
  const std::size_t n = sec.size;
  constexpr std::size_t kMinHeader = 24;
  if (d == nullptr || n < kMinHeader) return table;
  std::uint16_t magic = 0;
  std::memcpy(&magic, d, 2);
  const std::uint32_t hdr_len = read_u32(d + 4);
  if (magic != 0xeB9F || hdr_len < kMinHeader || hdr_len > n) return table;
  const std::uint64_t off = std::uint64_t{hdr_len} + read_u32(d + 16);
  const std::uint64_t len = read_u32(d + 20);
  if (len < 4 || off + len > n) return table;
  const std::uint8_t* p = d + off;
  const std::uint8_t* end = p + len;
  const std::uint32_t rec_size = read_u32(p);
  p += 4;
  if (rec_size < 16 || rec_size > 1024) return table;
  auto str = [&](std::uint32_t o) {
    const char* s = btf__name_by_offset(types, o);
    return s != nullptr ? std::string(s) : std::string();
  };
  while (end - p >= 8) {
    const std::string name = str(read_u32(p));
    const std::uint32_t count = read_u32(p + 4);
    p += 8;
    if (count == 0 || static_cast<std::uint64_t>(end - p) / rec_size < count) break;
    std::vector<RawLine>& lines = table[name];
    for (std::uint32_t i = 0; i < count; ++i, p += rec_size) {
      const std::uint32_t insn_off = read_u32(p);
      if (insn_off % 8 != 0) continue;
      RawLine l;
      l.insn = insn_off / 8;
      std::string file = str(read_u32(p + 4));
      const auto slash = file.rfind('/');
      l.where.file = slash == std::string::npos ? file : file.substr(slash + 1);
      l.where.text = trim(str(read_u32(p + 8)));
      const std::uint32_t line_col = read_u32(p + 12);
      l.where.line = line_col >> 10;
      l.where.col = line_col & 0x3ff;
      lines.push_back(std::move(l));
    }
    std::stable_sort(lines.begin(), lines.end(),
                     [](const RawLine& a, const RawLine& b) { return a.insn < b.insn; });
  }
  return table;
}

// The line records of the sections a program's instructions came from, moved to their pcs.
std::vector<SourceLine> program_lines(const ElfImage& elf, const LineTable& table,
                                      const std::vector<Segment>& segments) {
  std::vector<SourceLine> out;
  for (const Segment& seg : segments) {
    auto it = table.find(elf.sections()[seg.shndx].name);
    if (it == table.end()) continue;
    for (const RawLine& l : it->second) {
      if (l.insn < seg.sec_start || l.insn >= seg.sec_start + seg.count) continue;
      SourceLine s = l.where;
      s.pc = static_cast<std::uint32_t>(seg.base + (l.insn - seg.sec_start));
      out.push_back(std::move(s));
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const SourceLine& a, const SourceLine& b) { return a.pc < b.pc; });
  return out;
}

std::string read_license(const ElfImage& elf) {
  const std::size_t idx = elf.section_index("license");
  if (idx == 0) return "";
  const ElfSection& sec = elf.sections()[idx];
  if (sec.data == nullptr) return "";
  const char* p = reinterpret_cast<const char*>(sec.data);
  return std::string(p, strnlen(p, sec.size));
}

ObjectSpec load(const std::string& path) {
  ElfImage elf(path);
  ObjectSpec spec;
  spec.path = path;
  spec.license = read_license(elf);

  LibbpfSession session;
  validate_btf(elf, path);
  errno = 0;
  BpfObjectPtr obj(bpf_object__open_file(path.c_str(), nullptr));
  if (!obj) {
    const int err = errno;
    std::string why = session.log().empty() ? std::strerror(err) : session.log();
    if (elf.section_index(".BTF") == 0)
      why +=
          " (the object has no .BTF section: compile it with -g; `bpftsim cflags` prints the "
          "flags bpftsim uses)";
    fail(fmt::format("{}: libbpf cannot open it: {}", path, why));
  }
  try {
    spec.maps = describe_maps(elf, obj.get());
    collect_init_slots(elf, bpf_object__btf(obj.get()), path, &spec);
  } catch (const Failure& f) {
    if (f.message.rfind(path + ": ", 0) == 0) throw;
    fail(fmt::format("{}: {}", path, f.message));
  }

  ProgramLinker linker(elf, spec);
  const LineTable lines = read_line_info(elf, bpf_object__btf(obj.get()));
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, obj.get()) {
    const std::string name = bpf_program__name(prog);
    const std::string section = bpf_program__section_name(prog);
    ProgSpec linked = linker.link(name, section);
    linked.lines = program_lines(elf, lines, linker.segments());
    const std::uint32_t entry_len = linked.functions.size() > 1
                                        ? linked.functions[1].first
                                        : static_cast<std::uint32_t>(linked.insns.size());
    if (entry_len != bpf_program__insn_cnt(prog))
      fail(fmt::format("{}: section '{}': program '{}' has {} insns, libbpf says {}", path, section,
                       name, entry_len, bpf_program__insn_cnt(prog)));
    spec.progs.push_back(std::move(linked));
  }
  return spec;
}

}  // namespace

std::optional<std::uint32_t> ObjectSpec::find_map(const std::string& name) const {
  for (std::size_t i = 0; i < maps.size(); ++i)
    if (maps[i].name == name) return static_cast<std::uint32_t>(i);
  return std::nullopt;
}

const ProgSpec* ObjectSpec::find_prog(const std::string& name) const {
  for (const ProgSpec& p : progs)
    if (p.name == name) return &p;
  return nullptr;
}

const SourceLine* ProgSpec::source_at(std::uint32_t pc) const {
  auto it = std::upper_bound(lines.begin(), lines.end(), pc,
                             [](std::uint32_t p, const SourceLine& l) { return p < l.pc; });
  if (it == lines.begin()) return nullptr;
  const SourceLine* line = &*std::prev(it);
  // The record must belong to pc's own function.
  auto fn = std::upper_bound(functions.begin(), functions.end(), pc,
                             [](std::uint32_t p, const auto& f) { return p < f.first; });
  if (fn != functions.begin() && line->pc < std::prev(fn)->first) return nullptr;
  return line;
}

const GlobalVar* ObjectSpec::find_global(const std::string& name, std::uint32_t* map_idx) const {
  for (std::uint32_t i = 0; i < maps.size(); ++i) {
    if (maps[i].origin == MapOrigin::kUser) continue;
    for (const GlobalVar& v : maps[i].vars) {
      if (v.name != name) continue;
      if (map_idx) *map_idx = i;
      return &v;
    }
  }
  return nullptr;
}

std::variant<ObjectSpec, LoadError> load_bpf_object(const std::string& path) {
  try {
    return load(path);
  } catch (const Failure& f) {
    return LoadError{f.message};
  } catch (const std::exception& e) {
    return LoadError{fmt::format("{}: {}", path, e.what())};
  }
}

std::uint64_t map_model_bytes(const MapSpec& spec) {
  auto round8 = [](std::uint64_t v) { return (v + 7) & ~std::uint64_t{7}; };
  const std::uint64_t entries = std::max<std::uint64_t>(spec.max_entries, 1);
  const std::uint64_t stride = round8(spec.key_size) + round8(spec.value_size);
  switch (spec.type) {
    case BPF_MAP_TYPE_HASH:
    case BPF_MAP_TYPE_LRU_HASH:
    case BPF_MAP_TYPE_HASH_OF_MAPS: {
      std::uint64_t buckets = 1;
      while (buckets < entries)
        buckets <<= 1;
      // element bytes, the element's bookkeeping, and a bucket (list + lock) per power of two
      return entries * (stride + kModelBytesPerElem) + buckets * kModelBytesPerBucket;
    }
    default:
      return entries * round8(spec.value_size);
  }
}

std::string map_type_name(std::uint32_t type) {
  // Casting a number past the last enumerator into the C enum would be undefined behaviour.
  const char* name = type <= BPF_MAP_TYPE_USER_RINGBUF
                         ? libbpf_bpf_map_type_str(static_cast<enum bpf_map_type>(type))
                         : nullptr;
  return name != nullptr ? name : fmt::format("type {}", type);
}

}  // namespace bpftsim::model
