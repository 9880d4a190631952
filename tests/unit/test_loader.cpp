// Loader tests: the compiled scenario programs are described with the layout their C source
// implies (offsets checked against the same structs compiled for the host), relocations point
// where libbpf would point them, `bpftsim inspect --json` agrees with libbpf's own API for every
// map and program, and bad input (missing, non-ELF, truncated, unsupported) becomes a LoadError
// naming the file, never a crash.
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "model/bpf_compile.h"
#include "model/libbpf_loader.h"

namespace fs = std::filesystem;
using bpftsim::model::BpfInsn;
using bpftsim::model::LdImm64Reloc;
using bpftsim::model::LoadError;
using bpftsim::model::MapOrigin;
using bpftsim::model::MapSpec;
using bpftsim::model::ObjectSpec;
using bpftsim::model::ProgSpec;

namespace {

// The value types of scenarios/progs, compiled for the host: BPF and x86-64 lay them out alike.
struct SeedHmapElem {
  int counter;
  struct bpf_timer timer;
  struct bpf_spin_lock lock;
};
struct SeedElem {
  struct bpf_timer t;
};
struct MimHmapElem {
  int pad;
  struct bpf_timer timer;
};

std::string prog_object(const std::string& stem) {
  return std::string(BPFTSIM_PROGS_DIR) + "/" + stem + ".bpf.o";
}

ObjectSpec load_ok(const std::string& path) {
  auto result = bpftsim::model::load_bpf_object(path);
  if (auto* e = std::get_if<LoadError>(&result)) FAIL(e->message);
  return std::get<ObjectSpec>(std::move(result));
}

std::string load_error(const std::string& path) {
  auto result = bpftsim::model::load_bpf_object(path);
  REQUIRE(std::holds_alternative<LoadError>(result));
  return std::get<LoadError>(result).message;
}

const MapSpec& map_named(const ObjectSpec& obj, const std::string& name) {
  auto idx = obj.find_map(name);
  INFO("map " << name);
  REQUIRE(idx.has_value());
  return obj.maps[*idx];
}

const ProgSpec& prog_named(const ObjectSpec& obj, const std::string& name) {
  const ProgSpec* p = obj.find_prog(name);
  INFO("program " << name);
  REQUIRE(p != nullptr);
  return *p;
}

std::optional<std::uint32_t> function_pc(const ProgSpec& p, const std::string& name) {
  for (const auto& [pc, fn] : p.functions)
    if (fn == name) return pc;
  return std::nullopt;
}

std::set<std::string> callback_names(const ProgSpec& p) {
  std::set<std::string> out;
  for (std::uint32_t pc : p.callbacks)
    for (const auto& [start, fn] : p.functions)
      if (start == pc) out.insert(fn);
  return out;
}

bool is_ldimm64(const BpfInsn& i) {
  return i.code == (BPF_LD | BPF_IMM | BPF_DW);
}
bool is_call(const BpfInsn& i) {
  return i.code == (BPF_JMP | BPF_CALL);
}

// Structural checks every linked program must pass.
void check_linked(const ObjectSpec& obj, const ProgSpec& p) {
  INFO("program " << p.name);
  REQUIRE_FALSE(p.functions.empty());
  CHECK(p.functions.front() == std::make_pair(std::uint32_t{0}, p.name));
  CHECK(std::is_sorted(p.functions.begin(), p.functions.end()));
  std::set<std::uint32_t> starts;
  for (const auto& f : p.functions)
    starts.insert(f.first);
  std::set<std::uint32_t> reloc_insns;
  for (const LdImm64Reloc& r : p.relocs) {
    REQUIRE(r.insn_idx + 1 < p.insns.size());
    const BpfInsn& insn = p.insns[r.insn_idx];
    CHECK(is_ldimm64(insn));
    reloc_insns.insert(r.insn_idx);
    switch (r.kind) {
      case LdImm64Reloc::Kind::kFunc:
        CHECK(insn.src() == BPF_PSEUDO_FUNC);
        CHECK(starts.count(r.target_pc) == 1);
        CHECK(static_cast<std::int64_t>(r.insn_idx) + insn.imm + 1 == r.target_pc);
        break;
      case LdImm64Reloc::Kind::kMapAddr:
        CHECK(insn.src() == BPF_PSEUDO_MAP_IDX);
        CHECK(r.map_idx < obj.maps.size());
        CHECK(obj.maps[r.map_idx].origin == MapOrigin::kUser);
        break;
      case LdImm64Reloc::Kind::kMapValue:
        CHECK(insn.src() == BPF_PSEUDO_MAP_IDX_VALUE);
        REQUIRE(r.map_idx < obj.maps.size());
        CHECK(obj.maps[r.map_idx].origin != MapOrigin::kUser);
        CHECK(r.offset < obj.maps[r.map_idx].value_size);
        CHECK(p.insns[r.insn_idx + 1].imm == static_cast<std::int32_t>(r.offset));
        break;
    }
  }
  std::set<std::int32_t> helpers;
  for (std::size_t pc = 0; pc < p.insns.size(); ++pc) {
    const BpfInsn& insn = p.insns[pc];
    if (is_ldimm64(insn)) {
      if (insn.src() != 0) CHECK(reloc_insns.count(static_cast<std::uint32_t>(pc)) == 1);
      ++pc;
    } else if (is_call(insn) && insn.src() == BPF_PSEUDO_CALL) {
      CHECK(starts.count(static_cast<std::uint32_t>(pc + insn.imm + 1)) == 1);
    } else if (is_call(insn) && insn.src() == 0) {
      helpers.insert(insn.imm);
    }
  }
  CHECK(std::vector<std::int32_t>(helpers.begin(), helpers.end()) == p.helpers);
  std::set<std::uint32_t> callbacks;
  for (const LdImm64Reloc& r : p.relocs)
    if (r.kind == LdImm64Reloc::Kind::kFunc) callbacks.insert(r.target_pc);
  CHECK(std::vector<std::uint32_t>(callbacks.begin(), callbacks.end()) == p.callbacks);
}

std::set<std::uint32_t> value_offsets(const ObjectSpec& obj, const ProgSpec& p,
                                      const std::string& map) {
  std::set<std::uint32_t> out;
  for (const LdImm64Reloc& r : p.relocs)
    if (r.kind == LdImm64Reloc::Kind::kMapValue && obj.maps[r.map_idx].name == map)
      out.insert(r.offset);
  return out;
}

std::set<std::string> referenced_maps(const ObjectSpec& obj, const ProgSpec& p) {
  std::set<std::string> out;
  for (const LdImm64Reloc& r : p.relocs)
    if (r.kind == LdImm64Reloc::Kind::kMapAddr) out.insert(obj.maps[r.map_idx].name);
  return out;
}

struct CommandResult {
  int exit_code = -1;
  std::string output;
};

// Runs a command line through popen (the paths used here are ours and need no quoting).
CommandResult run(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0)
    result.output.append(buf, n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// A scratch directory removed at the end of the test.
class LoaderTempDir {
 public:
  LoaderTempDir() {
    path_ = fs::temp_directory_path() /
            ("bpftsim-test-loader-" + std::to_string(::getpid()) + "-" + std::to_string(next_++));
    fs::create_directories(path_);
  }
  ~LoaderTempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string write(const std::string& name, const std::string& bytes) const {
    std::ofstream out(file(name), std::ios::binary);
    out << bytes;
    return file(name);
  }

 private:
  static inline int next_ = 0;
  fs::path path_;
};

std::string read_loader_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

template <typename T>
T read_le(const std::string& bytes, std::size_t off) {
  T v{};
  REQUIRE(off + sizeof v <= bytes.size());
  std::memcpy(&v, bytes.data() + off, sizeof v);
  return v;
}

// File offset and size of ELF section `name` (64-bit little-endian ELF, as clang emits for BPF).
std::pair<std::size_t, std::size_t> elf_section(const std::string& bytes, const std::string& name) {
  const auto shoff = read_le<std::uint64_t>(bytes, 0x28);
  const auto shentsize = read_le<std::uint16_t>(bytes, 0x3a);
  const auto shnum = read_le<std::uint16_t>(bytes, 0x3c);
  const auto shstrndx = read_le<std::uint16_t>(bytes, 0x3e);
  auto header = [&](std::size_t i) { return shoff + i * shentsize; };
  const auto strtab = read_le<std::uint64_t>(bytes, header(shstrndx) + 0x18);
  for (std::size_t i = 1; i < shnum; ++i) {
    const auto name_off = read_le<std::uint32_t>(bytes, header(i));
    if (std::string(bytes.c_str() + strtab + name_off) != name) continue;
    return {read_le<std::uint64_t>(bytes, header(i) + 0x18),
            read_le<std::uint64_t>(bytes, header(i) + 0x20)};
  }
  FAIL("no section " << name);
  return {0, 0};
}

}  // namespace

TEST_CASE("timer_seed: maps, value layouts and global data", "[loader]") {
  const ObjectSpec obj = load_ok(prog_object("timer_seed"));
  CHECK(obj.license == "GPL");
  REQUIRE(obj.maps.size() == 6);

  const MapSpec& hmap = map_named(obj, "hmap");
  CHECK(hmap.origin == MapOrigin::kUser);
  CHECK(hmap.type == bpftsim::model::kBpfMapTypeHash);
  CHECK(hmap.key_size == 4);
  CHECK(hmap.value_size == sizeof(SeedHmapElem));
  CHECK(hmap.value_size == 32);
  CHECK(hmap.max_entries == 1000);
  CHECK(hmap.map_flags == 0);
  CHECK(hmap.value_type == "hmap_elem");
  CHECK(hmap.timer_off == offsetof(SeedHmapElem, timer));
  CHECK(hmap.timer_off == 8);
  CHECK(hmap.spin_lock_off == offsetof(SeedHmapElem, lock));
  CHECK(hmap.spin_lock_off == 24);
  CHECK(hmap.inner.empty());
  CHECK(hmap.init_slots.empty());

  const MapSpec& hmap_malloc = map_named(obj, "hmap_malloc");
  CHECK(hmap_malloc.type == bpftsim::model::kBpfMapTypeHash);
  CHECK(hmap_malloc.map_flags == bpftsim::model::kBpfFNoPrealloc);
  CHECK(hmap_malloc.timer_off == 8);
  CHECK(hmap_malloc.spin_lock_off == 24);

  const MapSpec& array = map_named(obj, "array");
  CHECK(array.type == bpftsim::model::kBpfMapTypeArray);
  CHECK(array.max_entries == 2);
  CHECK(array.value_size == sizeof(SeedElem));
  CHECK(array.value_type == "elem");
  CHECK(array.timer_off == offsetof(SeedElem, t));
  CHECK(array.spin_lock_off == -1);

  const MapSpec& lru = map_named(obj, "lru");
  CHECK(lru.type == bpftsim::model::kBpfMapTypeLruHash);
  CHECK(lru.max_entries == 4);
  CHECK(lru.timer_off == 0);

  // Global data comes after the BTF-defined maps, under libbpf's section names.
  for (std::size_t i = 0; i < 4; ++i)
    CHECK(obj.maps[i].origin == MapOrigin::kUser);
  const MapSpec& data = map_named(obj, ".data");
  CHECK(data.origin == MapOrigin::kData);
  CHECK(data.type == bpftsim::model::kBpfMapTypeArray);
  CHECK(data.max_entries == 1);
  CHECK(data.key_size == 4);
  CHECK(data.value_size == 16);  // callback_check, callback2_check
  REQUIRE(data.initial_data.size() == 16);
  std::uint64_t first = 0, second = 0;
  std::memcpy(&first, data.initial_data.data(), 8);
  std::memcpy(&second, data.initial_data.data() + 8, 8);
  CHECK(first == 52);
  CHECK(second == 52);
  const MapSpec& bss = map_named(obj, ".bss");
  CHECK(bss.origin == MapOrigin::kBss);
  CHECK(bss.value_size == 24);  // bss_data, err, ok
  CHECK(bss.initial_data == std::vector<std::uint8_t>(24, 0));
  CHECK(bss.timer_off == -1);
  CHECK(*obj.find_map(".data") < *obj.find_map(".bss"));
  CHECK_FALSE(obj.find_map("nope").has_value());
}

TEST_CASE("timer_seed: programs with subprograms, callbacks and relocations", "[loader]") {
  const ObjectSpec obj = load_ok(prog_object("timer_seed"));
  REQUIRE(obj.progs.size() == 2);
  CHECK(obj.find_prog("timer_cb1") == nullptr);  // subprograms are not programs

  const ProgSpec& test1 = prog_named(obj, "test1");
  CHECK(test1.section == "fentry/bpf_fentry_test1");
  check_linked(obj, test1);
  CHECK(callback_names(test1) == std::set<std::string>{"timer_cb1"});
  CHECK(function_pc(test1, "timer_cb1").has_value());
  CHECK_FALSE(function_pc(test1, "timer_cb2").has_value());
  CHECK(referenced_maps(obj, test1) == std::set<std::string>{"array", "lru"});
  // timer_cb1 touches bss_data, err and ok: every .bss variable.
  CHECK(value_offsets(obj, test1, ".bss") == std::set<std::uint32_t>{0, 8, 16});
  for (std::int32_t helper :
       {BPF_FUNC_map_lookup_elem, BPF_FUNC_map_update_elem, BPF_FUNC_timer_init,
        BPF_FUNC_timer_set_callback, BPF_FUNC_timer_start, BPF_FUNC_timer_cancel})
    CHECK(std::count(test1.helpers.begin(), test1.helpers.end(), helper) == 1);

  const ProgSpec& test2 = prog_named(obj, "test2");
  CHECK(test2.section == "fentry/bpf_fentry_test2");
  check_linked(obj, test2);
  CHECK(callback_names(test2) == std::set<std::string>{"timer_cb2"});
  // bpf_timer_test is a real bpf-to-bpf call: appended first, then the callback it references.
  const auto callee = function_pc(test2, "bpf_timer_test");
  REQUIRE(callee.has_value());
  REQUIRE(test2.functions.size() == 3);
  CHECK(test2.functions[1].second == "bpf_timer_test");
  CHECK(test2.functions[2].second == "timer_cb2");
  bool calls_it = false;
  for (std::size_t pc = 0; pc < test2.functions[1].first; ++pc) {
    const BpfInsn& insn = test2.insns[pc];
    if (is_call(insn) && insn.src() == BPF_PSEUDO_CALL && pc + insn.imm + 1 == *callee)
      calls_it = true;
  }
  CHECK(calls_it);
  CHECK(referenced_maps(obj, test2) == std::set<std::string>{"hmap", "hmap_malloc", "array"});
  // callback_check and callback2_check (in timer_cb2).
  CHECK(value_offsets(obj, test2, ".data") == std::set<std::uint32_t>{0, 8});
  CHECK(std::count(test2.helpers.begin(), test2.helpers.end(), BPF_FUNC_map_delete_elem) == 1);
}

TEST_CASE("timer_mim: inner map definition and static slot", "[loader]") {
  const ObjectSpec obj = load_ok(prog_object("timer_mim"));
  const MapSpec& inner_htab = map_named(obj, "inner_htab");
  CHECK(inner_htab.type == bpftsim::model::kBpfMapTypeHash);
  CHECK(inner_htab.max_entries == 1024);
  CHECK(inner_htab.value_size == sizeof(MimHmapElem));
  CHECK(inner_htab.timer_off == offsetof(MimHmapElem, timer));
  CHECK(inner_htab.timer_off == 8);
  CHECK(inner_htab.spin_lock_off == -1);

  const MapSpec& outer = map_named(obj, "outer_arr");
  CHECK(outer.type == bpftsim::model::kBpfMapTypeArrayOfMaps);
  CHECK(outer.max_entries == 2);
  CHECK(outer.key_size == 4);
  CHECK(outer.value_size == 4);
  CHECK(outer.timer_off == -1);
  REQUIRE(outer.inner.size() == 1);
  const MapSpec& inner = outer.inner.front();
  CHECK(inner.type == bpftsim::model::kBpfMapTypeHash);
  CHECK(inner.key_size == 4);
  CHECK(inner.value_size == 24);
  CHECK(inner.max_entries == 1024);
  CHECK(inner.value_type == "hmap_elem");
  CHECK(inner.timer_off == 8);
  CHECK(outer.init_slots == std::vector<std::pair<std::uint32_t, std::string>>{{1, "inner_htab"}});

  const MapSpec& bss = map_named(obj, ".bss");
  CHECK(bss.value_size == 24);  // err, ok, cnt
  CHECK_FALSE(obj.find_map(".data").has_value());

  const ProgSpec& test1 = prog_named(obj, "test1");
  check_linked(obj, test1);
  // timer_cb2 is reached only through timer_cb1's set_callback: still appended.
  CHECK(callback_names(test1) == std::set<std::string>{"timer_cb1", "timer_cb2"});
  CHECK(referenced_maps(obj, test1) == std::set<std::string>{"outer_arr"});
}

TEST_CASE("vm_bench: two self-contained syscall programs", "[loader]") {
  const ObjectSpec obj = load_ok(prog_object("vm_bench"));
  CHECK(obj.maps.empty());
  for (const char* name : {"arith_loop", "stack_loop"}) {
    const ProgSpec& p = prog_named(obj, name);
    CHECK(p.section == "syscall");
    CHECK(p.functions.size() == 1);
    CHECK(p.relocs.empty());
    CHECK(p.helpers.empty());
    CHECK(p.insns.back().code == (BPF_JMP | BPF_EXIT));
    check_linked(obj, p);
  }
}

TEST_CASE("map_type_name uses bpftool's names", "[loader]") {
  using bpftsim::model::map_type_name;
  CHECK(map_type_name(1) == "hash");
  CHECK(map_type_name(2) == "array");
  CHECK(map_type_name(9) == "lru_hash");
  CHECK(map_type_name(12) == "array_of_maps");
  CHECK(map_type_name(13) == "hash_of_maps");
  CHECK(map_type_name(4242) == "type 4242");
}

TEST_CASE("inspect --json agrees with libbpf's own view of each object", "[loader]") {
  for (const char* stem : {"timer_seed", "timer_mim", "vm_bench"}) {
    const std::string path = prog_object(stem);
    INFO("object " << path);
    const CommandResult r = run(std::string(BPFTSIM_BINARY) + " inspect --json " + path);
    REQUIRE(r.exit_code == 0);
    const nlohmann::json j = nlohmann::json::parse(r.output);
    CHECK(j["object"] == path);

    bpf_object* obj = bpf_object__open_file(path.c_str(), nullptr);
    REQUIRE(obj != nullptr);
    std::size_t libbpf_maps = 0;
    bpf_map* map = nullptr;
    bpf_object__for_each_map(map, obj) {
      ++libbpf_maps;
      const std::string name = bpf_map__name(map);
      INFO("map " << name);
      // Internal maps: libbpf says "<object prefix>.bss", we say ".bss".
      const nlohmann::json* found = nullptr;
      for (const auto& m : j["maps"]) {
        const std::string ours = m["name"];
        const bool match = bpf_map__is_internal(map)
                               ? name.size() >= ours.size() &&
                                     name.compare(name.size() - ours.size(), ours.size(), ours) == 0
                               : name == ours;
        if (match) found = &m;
      }
      REQUIRE(found != nullptr);
      CHECK((*found)["type"] == static_cast<int>(bpf_map__type(map)));
      CHECK((*found)["key_size"] == bpf_map__key_size(map));
      CHECK((*found)["value_size"] == bpf_map__value_size(map));
      CHECK((*found)["max_entries"] == bpf_map__max_entries(map));
      CHECK((*found)["map_flags"] == bpf_map__map_flags(map));
      CHECK(((*found)["origin"] == "user") == !bpf_map__is_internal(map));
      bpf_map* inner = bpf_map__inner_map(map);
      CHECK((*found)["inner"].is_null() == (inner == nullptr));
      if (inner != nullptr) {
        CHECK((*found)["inner"]["type"] == static_cast<int>(bpf_map__type(inner)));
        CHECK((*found)["inner"]["value_size"] == bpf_map__value_size(inner));
        CHECK((*found)["inner"]["max_entries"] == bpf_map__max_entries(inner));
      }
    }
    CHECK(j["maps"].size() == libbpf_maps);

    std::size_t libbpf_progs = 0;
    bpf_program* prog = nullptr;
    bpf_object__for_each_program(prog, obj) {
      ++libbpf_progs;
      const std::string name = bpf_program__name(prog);
      INFO("program " << name);
      const nlohmann::json* found = nullptr;
      for (const auto& p : j["programs"])
        if (p["name"] == name) found = &p;
      REQUIRE(found != nullptr);
      CHECK((*found)["section"] == bpf_program__section_name(prog));
      // Before load, libbpf holds only the entry function: that is our first function.
      const auto& functions = (*found)["functions"];
      REQUIRE_FALSE(functions.empty());
      CHECK(functions[0]["name"] == name);
      CHECK(functions[0]["pc"] == 0);
      CHECK(functions[0]["insn_count"] == bpf_program__insn_cnt(prog));
      std::size_t total = 0;
      for (const auto& f : functions)
        total += f["insn_count"].get<std::size_t>();
      CHECK((*found)["insn_count"] == total);

      // The entry function's instructions are libbpf's, except where we resolved a reference.
      const ObjectSpec spec = load_ok(path);
      const ProgSpec& ours = prog_named(spec, name);
      const bpf_insn* raw = bpf_program__insns(prog);
      std::set<std::uint32_t> patched;
      for (const LdImm64Reloc& rel : ours.relocs) {
        patched.insert(rel.insn_idx);
        patched.insert(rel.insn_idx + 1);
      }
      for (std::uint32_t pc = 0; pc < bpf_program__insn_cnt(prog); ++pc) {
        INFO("insn " << pc);
        const BpfInsn& a = ours.insns[pc];
        const bpf_insn& b = raw[pc];
        CHECK(a.code == b.code);
        CHECK(a.dst() == b.dst_reg);
        CHECK(a.off == b.off);
        const bool pseudo_call = is_call(a) && a.src() == BPF_PSEUDO_CALL;
        if (patched.count(pc) == 0 && !pseudo_call) {
          CHECK(a.src() == b.src_reg);
          CHECK(a.imm == b.imm);
        }
      }
    }
    CHECK(j["programs"].size() == libbpf_progs);
    bpf_object__close(obj);
  }
}

TEST_CASE("inspect prints a table and rejects bad input with exit code 2", "[loader]") {
  const CommandResult text =
      run(std::string(BPFTSIM_BINARY) + " inspect " + prog_object("timer_mim") + " 2>&1");
  CHECK(text.exit_code == 0);
  CHECK(text.output.find("outer_arr") != std::string::npos);
  CHECK(text.output.find("slot [1] = inner_htab") != std::string::npos);
  CHECK(text.output.find("timer_cb1, timer_cb2") != std::string::npos);

  LoaderTempDir tmp;
  const std::string missing = tmp.file("missing.bpf.o");
  const CommandResult r = run(std::string(BPFTSIM_BINARY) + " inspect " + missing + " 2>&1");
  CHECK(r.exit_code == 2);
  CHECK(r.output.find(missing) != std::string::npos);

  const std::string junk = tmp.write("junk.o", "this is not an ELF file\n");
  const CommandResult j = run(std::string(BPFTSIM_BINARY) + " inspect --json " + junk + " 2>&1");
  CHECK(j.exit_code == 2);
  CHECK(j.output.find(junk + ": not a BPF ELF object") != std::string::npos);
}

TEST_CASE("bad files become LoadErrors naming the file", "[loader]") {
  LoaderTempDir tmp;
  SECTION("missing file") {
    const std::string path = tmp.file("nope.bpf.o");
    const std::string msg = load_error(path);
    CHECK(msg.rfind(path + ": cannot open", 0) == 0);
  }
  SECTION("not an ELF file") {
    const std::string path = tmp.write("text.o", "#include <linux/bpf.h>\n");
    CHECK(load_error(path) == path + ": not a BPF ELF object: no ELF header");
  }
  SECTION("empty file") {
    const std::string path = tmp.write("empty.o", "");
    CHECK(load_error(path).rfind(path + ": not a BPF ELF object", 0) == 0);
  }
  SECTION("an ELF file for another machine") {
    const std::string msg = load_error("/proc/self/exe");
    CHECK(msg.find("not a BPF ELF object: ") != std::string::npos);
  }
  SECTION("truncated BPF objects, at every 97th byte") {
    const std::string bytes = read_loader_file(prog_object("timer_seed"));
    REQUIRE(bytes.size() > 1000);
    for (std::size_t len = 0; len < bytes.size(); len += 97) {
      const std::string path = tmp.write("cut.o", bytes.substr(0, len));
      INFO("length " << len);
      CHECK(load_error(path).rfind(path + ": ", 0) == 0);
    }
  }
  SECTION("corrupted BTF: every 5th byte of .BTF overwritten, one at a time") {
    // libbpf 1.1 trusts type ids inside .BTF; the loader checks them before libbpf sees them.
    const std::string bytes = read_loader_file(prog_object("timer_mim"));
    const auto [off, size] = elf_section(bytes, ".BTF");
    REQUIRE(size > 100);
    std::size_t rejected = 0;
    for (std::size_t pos = off; pos < off + size; pos += 5) {
      std::string copy = bytes;
      copy[pos] = static_cast<char>(copy[pos] ^ 0xa5);
      const std::string path = tmp.write("btf.o", copy);
      auto result = bpftsim::model::load_bpf_object(path);
      if (auto* e = std::get_if<LoadError>(&result)) {
        INFO("byte " << pos);
        CHECK(e->message.rfind(path + ": ", 0) == 0);
        ++rejected;
      }
    }
    CHECK(rejected > 0);
  }
  SECTION("corrupted section headers") {
    std::string bytes = read_loader_file(prog_object("timer_mim"));
    // e_shoff (offset 0x28, 8 bytes): point the section header table past the end of the file.
    const std::uint64_t bad = bytes.size() + 4096;
    std::memcpy(bytes.data() + 0x28, &bad, sizeof bad);
    const std::string path = tmp.write("badshoff.o", bytes);
    CHECK(load_error(path).rfind(path + ": ", 0) == 0);
  }
}

TEST_CASE("compile_bpf_source caches by content and reports clang's errors", "[loader]") {
  LoaderTempDir tmp;
  bpftsim::model::BpfCompileOptions options;
  options.cache_dir = tmp.file("cache");

  const std::string good = tmp.write("ok.bpf.c", R"(#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char _license[] SEC("license") = "GPL";
const volatile int limit = 7;
SEC("syscall") int count(void *ctx) { return limit; }
)");
  auto first = bpftsim::model::compile_bpf_source(good, options);
  REQUIRE(std::holds_alternative<std::string>(first));
  const std::string object = std::get<std::string>(first);
  CHECK(object.rfind(options.cache_dir + "/ok-", 0) == 0);
  auto again = bpftsim::model::compile_bpf_source(good, options);
  REQUIRE(std::holds_alternative<std::string>(again));
  CHECK(std::get<std::string>(again) == object);

  auto loaded = bpftsim::model::load_bpf_input(good, options);
  REQUIRE(std::holds_alternative<ObjectSpec>(loaded));
  const ObjectSpec& obj = std::get<ObjectSpec>(loaded);
  const MapSpec& rodata = map_named(obj, ".rodata");
  CHECK(rodata.origin == MapOrigin::kRodata);
  CHECK((rodata.map_flags & bpftsim::model::kBpfFRdonlyProg) != 0);
  CHECK(rodata.initial_data == std::vector<std::uint8_t>{7, 0, 0, 0});
  CHECK(value_offsets(obj, prog_named(obj, "count"), ".rodata") == std::set<std::uint32_t>{0});

  // A changed source compiles to a different object.
  tmp.write("ok.bpf.c", read_loader_file(good) + "\n// edited\n");
  auto edited = bpftsim::model::compile_bpf_source(good, options);
  REQUIRE(std::holds_alternative<std::string>(edited));
  CHECK(std::get<std::string>(edited) != object);

  const std::string bad = tmp.write("bad.bpf.c", "int broken(void) { return undeclared_thing; }\n");
  auto failed = bpftsim::model::compile_bpf_source(bad, options);
  REQUIRE(std::holds_alternative<bpftsim::model::BpfCompileError>(failed));
  const std::string msg = std::get<bpftsim::model::BpfCompileError>(failed).message;
  CHECK(msg.rfind(bad + ": clang failed", 0) == 0);
  CHECK(msg.find("undeclared_thing") != std::string::npos);

  // The CLI compiles sources too, and reports compile errors as bad input.
  const CommandResult r = run(std::string("BPFTSIM_CACHE_DIR=") + options.cache_dir + " " +
                              BPFTSIM_BINARY + " inspect " + bad + " 2>&1");
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("undeclared_thing") != std::string::npos);
}

TEST_CASE("unsupported references are rejected with section and instruction", "[loader]") {
  LoaderTempDir tmp;
  bpftsim::model::BpfCompileOptions options;
  options.cache_dir = tmp.file("cache");
  const std::string src = tmp.write("ksym.bpf.c", R"(#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char _license[] SEC("license") = "GPL";
extern void bpf_rcu_read_lock(void) __ksym;
SEC("syscall") int uses_kfunc(void *ctx) { bpf_rcu_read_lock(); return 0; }
)");
  auto loaded = bpftsim::model::load_bpf_input(src, options);
  REQUIRE(std::holds_alternative<LoadError>(loaded));
  const std::string msg = std::get<LoadError>(loaded).message;
  CHECK(msg.rfind(src + " (compiled to ", 0) == 0);
  CHECK(msg.find("section 'syscall': insn ") != std::string::npos);
  CHECK(msg.find("bpf_rcu_read_lock") != std::string::npos);
}
