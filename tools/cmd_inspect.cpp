// `bpftsim inspect OBJECT [--json]`: what the loader sees in a BPF object (.o, or .c compiled
// through the cache): maps with their timer / spin-lock offsets, inner maps and static slots,
// global-data maps, and programs with their subprograms, callbacks and helpers.
// Text output is for people (aligned columns); --json is for tools and tests (stable key order).
#include <linux/bpf.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "model/bpf_compile.h"
#include "model/helpers.h"
#include "model/input_file.h"
#include "model/libbpf_loader.h"
#include "tools/commands.h"

namespace bpftsim::tools {
namespace {

using model::LdImm64Reloc;
using model::MapOrigin;
using model::MapSpec;
using model::ObjectSpec;
using model::ProgSpec;
using Json = nlohmann::ordered_json;

// Helper names in uapi order (id 0 = "unspec"), from the kernel header's own list. Until 6.1 the
// mapper is FN(name) joined by commas; from 6.2 it is FN(name, id, ctx...) without commas.
#if defined(__BPF_FUNC_MAPPER_APPLY)
#define BPFTSIM_HELPER_NAME(name, ...) #name,
#else
#define BPFTSIM_HELPER_NAME(name) #name
#endif
const char* const kHelperNames[] = {__BPF_FUNC_MAPPER(BPFTSIM_HELPER_NAME)};
#undef BPFTSIM_HELPER_NAME

std::string helper_name(std::int32_t id) {
  constexpr auto count = static_cast<std::int32_t>(std::size(kHelperNames));
  if (model::helpers::is_kfunc(id)) return model::helpers::helper_name(id);  // a kfunc, by name
  return id > 0 && id < count ? kHelperNames[id] : fmt::format("helper_{}", id);
}

std::vector<std::string> map_flag_names(std::uint32_t flags) {
  static const std::pair<std::uint32_t, const char*> kNames[] = {
      {BPF_F_NO_PREALLOC, "no_prealloc"}, {BPF_F_NO_COMMON_LRU, "no_common_lru"},
      {BPF_F_NUMA_NODE, "numa_node"},     {BPF_F_RDONLY, "rdonly"},
      {BPF_F_WRONLY, "wronly"},           {BPF_F_STACK_BUILD_ID, "stack_build_id"},
      {BPF_F_ZERO_SEED, "zero_seed"},     {BPF_F_RDONLY_PROG, "rdonly_prog"},
      {BPF_F_WRONLY_PROG, "wronly_prog"}, {BPF_F_CLONE, "clone"},
      {BPF_F_MMAPABLE, "mmapable"},       {BPF_F_PRESERVE_ELEMS, "preserve_elems"},
      {BPF_F_INNER_MAP, "inner_map"},
  };
  std::vector<std::string> out;
  std::uint32_t rest = flags;
  for (const auto& [bit, name] : kNames) {
    if ((flags & bit) == 0) continue;
    out.emplace_back(name);
    rest &= ~bit;
  }
  if (rest != 0) out.push_back(fmt::format("{:#x}", rest));
  return out;
}

std::string flags_text(std::uint32_t flags) {
  if (flags == 0) return "0";
  return fmt::format("{:#x} ({})", flags, fmt::join(map_flag_names(flags), "|"));
}

const char* origin_name(MapOrigin origin) {
  switch (origin) {
    case MapOrigin::kUser:
      return "user";
    case MapOrigin::kData:
      return "data";
    case MapOrigin::kBss:
      return "bss";
    case MapOrigin::kRodata:
      return "rodata";
  }
  return "?";
}

const char* reloc_kind_name(LdImm64Reloc::Kind kind) {
  switch (kind) {
    case LdImm64Reloc::Kind::kMapAddr:
      return "map_addr";
    case LdImm64Reloc::Kind::kMapValue:
      return "map_value";
    case LdImm64Reloc::Kind::kFunc:
      return "func";
  }
  return "?";
}

std::string hex_bytes(const std::vector<std::uint8_t>& bytes) {
  std::string out;
  for (std::uint8_t b : bytes)
    out += fmt::format("{:02x}", b);
  return out;
}

// Name of the function starting at `pc`, or "pc N".
std::string function_at(const ProgSpec& prog, std::uint32_t pc) {
  for (const auto& [start, name] : prog.functions)
    if (start == pc) return name;
  return fmt::format("pc {}", pc);
}

std::uint32_t function_size(const ProgSpec& prog, std::size_t i) {
  const std::uint32_t end = i + 1 < prog.functions.size()
                                ? prog.functions[i + 1].first
                                : static_cast<std::uint32_t>(prog.insns.size());
  return end - prog.functions[i].first;
}

// ---------------------------------------------------------------------------------------------
// JSON

Json map_json(const MapSpec& m) {
  Json j;
  j["name"] = m.name;
  j["origin"] = origin_name(m.origin);
  j["type"] = m.type;
  j["type_name"] = model::map_type_name(m.type);
  j["key_size"] = m.key_size;
  j["value_size"] = m.value_size;
  j["max_entries"] = m.max_entries;
  j["map_flags"] = m.map_flags;
  j["map_flag_names"] = map_flag_names(m.map_flags);
  j["value_type"] = m.value_type;
  j["timer_off"] = m.timer_off;
  j["spin_lock_off"] = m.spin_lock_off;
  j["inner"] = m.inner.empty() ? Json(nullptr) : map_json(m.inner.front());
  Json slots = Json::array();
  for (const auto& [index, name] : m.init_slots)
    slots.push_back({{"index", index}, {"map", name}});
  j["init_slots"] = std::move(slots);
  if (m.origin != MapOrigin::kUser) {
    j["initial_data"] = hex_bytes(m.initial_data);
    Json vars = Json::array();
    for (const model::GlobalVar& v : m.vars)
      vars.push_back({{"name", v.name},
                      {"offset", v.offset},
                      {"size", v.size},
                      {"sign", v.sign == model::GlobalVar::Sign::kSigned     ? "signed"
                               : v.sign == model::GlobalVar::Sign::kUnsigned ? "unsigned"
                                                                             : "-"}});
    j["vars"] = std::move(vars);
  }
  return j;
}

Json prog_json(const ObjectSpec& obj, const ProgSpec& p) {
  Json j;
  j["name"] = p.name;
  j["section"] = p.section;
  j["insn_count"] = p.insns.size();
  Json functions = Json::array();
  for (std::size_t i = 0; i < p.functions.size(); ++i)
    functions.push_back({{"name", p.functions[i].second},
                         {"pc", p.functions[i].first},
                         {"insn_count", function_size(p, i)}});
  j["functions"] = std::move(functions);
  Json callbacks = Json::array();
  for (std::uint32_t pc : p.callbacks)
    callbacks.push_back(function_at(p, pc));
  j["callbacks"] = std::move(callbacks);
  Json helpers = Json::array();
  for (std::int32_t id : p.helpers)
    helpers.push_back({{"id", id}, {"name", helper_name(id)}});
  j["helpers"] = std::move(helpers);
  Json relocs = Json::array();
  for (const LdImm64Reloc& r : p.relocs) {
    Json rj;
    rj["insn"] = r.insn_idx;
    rj["kind"] = reloc_kind_name(r.kind);
    if (r.kind == LdImm64Reloc::Kind::kFunc) {
      rj["target_pc"] = r.target_pc;
      rj["function"] = function_at(p, r.target_pc);
    } else {
      rj["map"] = obj.maps[r.map_idx].name;
      if (r.kind == LdImm64Reloc::Kind::kMapValue) rj["offset"] = r.offset;
    }
    relocs.push_back(std::move(rj));
  }
  j["relocations"] = std::move(relocs);
  return j;
}

Json object_json(const ObjectSpec& obj) {
  Json j;
  j["object"] = obj.path;
  j["license"] = obj.license;
  Json maps = Json::array();
  for (const MapSpec& m : obj.maps)
    maps.push_back(map_json(m));
  j["maps"] = std::move(maps);
  Json progs = Json::array();
  for (const ProgSpec& p : obj.progs)
    progs.push_back(prog_json(obj, p));
  j["programs"] = std::move(progs);
  return j;
}

// ---------------------------------------------------------------------------------------------
// Text

class Table {
 public:
  explicit Table(std::vector<std::string> header) : rows_{std::move(header)} {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void print(std::FILE* out, const std::string& indent) const {
    std::vector<std::size_t> width;
    for (const auto& row : rows_)
      for (std::size_t c = 0; c < row.size(); ++c) {
        if (width.size() <= c) width.push_back(0);
        width[c] = std::max(width[c], row[c].size());
      }
    for (const auto& row : rows_) {
      std::string line = indent;
      for (std::size_t c = 0; c < row.size(); ++c) {
        line += row[c];
        if (c + 1 < row.size()) line += std::string(width[c] - row[c].size() + 2, ' ');
      }
      std::fprintf(out, "%s\n", line.c_str());
    }
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

std::string off_text(std::int32_t off) {
  return off < 0 ? "-" : std::to_string(off);
}

void print_text(const ObjectSpec& obj) {
  std::fprintf(stdout, "object   %s\nlicense  %s\n", obj.path.c_str(),
               obj.license.empty() ? "(none)" : obj.license.c_str());

  Table maps({"MAP", "TYPE", "KEY", "VALUE", "MAX_ENTRIES", "FLAGS", "VALUE_TYPE", "TIMER_OFF",
              "SPIN_LOCK_OFF"});
  std::vector<std::string> extra;
  auto row = [&](const std::string& name, const MapSpec& m) {
    maps.add({name, model::map_type_name(m.type), std::to_string(m.key_size),
              std::to_string(m.value_size), std::to_string(m.max_entries), flags_text(m.map_flags),
              m.value_type.empty() ? "-" : m.value_type, off_text(m.timer_off),
              off_text(m.spin_lock_off)});
  };
  bool any_user = false;
  for (const MapSpec& m : obj.maps) {
    if (m.origin != MapOrigin::kUser) continue;
    any_user = true;
    row(m.name, m);
    for (const MapSpec& inner : m.inner)
      row("  inner " + inner.name, inner);
    for (const auto& [index, name] : m.init_slots)
      maps.add({fmt::format("  slot [{}] = {}", index, name)});
  }
  std::fprintf(stdout, "\nmaps\n");
  if (any_user) {
    maps.print(stdout, "  ");
  } else {
    std::fprintf(stdout, "  (none)\n");
  }

  Table data({"GLOBAL_DATA", "ORIGIN", "SIZE", "FLAGS", "VALUE_TYPE", "TIMER_OFF", "SPIN_LOCK_OFF",
              "INITIAL_BYTES"});
  bool any_data = false;
  for (const MapSpec& m : obj.maps) {
    if (m.origin == MapOrigin::kUser) continue;
    any_data = true;
    const bool zero = std::all_of(m.initial_data.begin(), m.initial_data.end(),
                                  [](std::uint8_t b) { return b == 0; });
    std::string bytes = zero ? "zeros" : hex_bytes(m.initial_data);
    if (bytes.size() > 48) bytes = bytes.substr(0, 48) + "...";
    data.add({m.name, origin_name(m.origin), std::to_string(m.value_size), flags_text(m.map_flags),
              m.value_type.empty() ? "-" : m.value_type, off_text(m.timer_off),
              off_text(m.spin_lock_off), bytes});
  }
  std::fprintf(stdout, "\nglobal data\n");
  if (any_data) {
    data.print(stdout, "  ");
  } else {
    std::fprintf(stdout, "  (none)\n");
  }

  // The global variables, as scenarios name them (<object>.<name>) and with their initial values.
  Table vars({"GLOBAL", "SECTION", "OFFSET", "SIZE", "SIGN", "INITIAL"});
  bool any_var = false;
  for (const MapSpec& m : obj.maps) {
    if (m.origin == MapOrigin::kUser) continue;
    for (const model::GlobalVar& v : m.vars) {
      any_var = true;
      std::string initial = "0";
      if (v.size <= 8 && v.offset + v.size <= m.initial_data.size()) {
        std::uint64_t x = 0;
        for (std::uint32_t b = 0; b < v.size; ++b)
          x |= std::uint64_t{m.initial_data[v.offset + b]} << (8 * b);
        if (v.sign == model::GlobalVar::Sign::kSigned && v.size < 8 && (x >> (8 * v.size - 1)) & 1)
          x |= ~std::uint64_t{0} << (8 * v.size);
        initial = v.sign == model::GlobalVar::Sign::kSigned
                      ? std::to_string(static_cast<std::int64_t>(x))
                      : std::to_string(x);
      } else if (v.offset + v.size <= m.initial_data.size()) {
        initial = hex_bytes(std::vector<std::uint8_t>(m.initial_data.begin() + v.offset,
                                                      m.initial_data.begin() + v.offset + v.size));
        if (initial.size() > 34) initial = initial.substr(0, 34) + "...";
      }
      vars.add({v.name, m.name, std::to_string(v.offset), std::to_string(v.size),
                v.sign == model::GlobalVar::Sign::kSigned     ? "signed"
                : v.sign == model::GlobalVar::Sign::kUnsigned ? "unsigned"
                                                              : "-",
                initial});
    }
  }
  if (any_var) {
    std::fprintf(stdout, "\nglobal variables (name them <object>.<GLOBAL> in scenarios)\n");
    vars.print(stdout, "  ");
  }

  Table progs({"PROGRAM", "SECTION", "INSNS", "FUNCTIONS", "CALLBACKS", "HELPERS"});
  for (const ProgSpec& p : obj.progs) {
    std::vector<std::string> funcs, callbacks, helpers;
    for (std::size_t i = 0; i < p.functions.size(); ++i)
      funcs.push_back(fmt::format("{}@{}", p.functions[i].second, p.functions[i].first));
    for (std::uint32_t pc : p.callbacks)
      callbacks.push_back(function_at(p, pc));
    for (std::int32_t id : p.helpers)
      helpers.push_back(fmt::format("{}({})", helper_name(id), id));
    auto list = [](const std::vector<std::string>& v) {
      return v.empty() ? std::string("-") : fmt::format("{}", fmt::join(v, ", "));
    };
    progs.add({p.name, p.section, std::to_string(p.insns.size()), list(funcs), list(callbacks),
               list(helpers)});
  }
  std::fprintf(stdout, "\nprograms\n");
  if (obj.progs.empty()) {
    std::fprintf(stdout, "  (none)\n");
  } else {
    progs.print(stdout, "  ");
  }
}

struct InspectArgs {
  std::string object;
  bool json = false;
};

int run_inspect(const InspectArgs& args) {
  // A .bpf.c goes to clang, which would read /dev/zero forever: check the path first (an object
  // is checked again by the loader).
  const bool source = model::is_bpf_source_path(args.object);
  if (auto why = model::check_input_file(args.object,
                                         source ? model::kMaxSourceBytes : model::kMaxObjectBytes,
                                         source ? "BPF C source" : "BPF object file")) {
    std::fprintf(stderr, "bpftsim inspect: %s: %s\n", args.object.c_str(), why->c_str());
    return kExitBadInput;
  }
  auto loaded = model::load_bpf_input(args.object);
  if (auto* e = std::get_if<model::LoadError>(&loaded)) {
    std::fprintf(stderr, "bpftsim inspect: %s\n", e->message.c_str());
    return kExitBadInput;
  }
  const ObjectSpec& obj = std::get<ObjectSpec>(loaded);
  if (args.json) {
    // Names come from the ELF file and need not be UTF-8: replace what is not.
    std::cout << object_json(obj).dump(2, ' ', false, Json::error_handler_t::replace) << '\n';
  } else {
    print_text(obj);
  }
  std::fflush(stdout);
  return kExitOk;
}

const Registrar kRegisterInspect{
    "inspect", [](CLI::App& app) {
      auto args = std::make_shared<InspectArgs>();
      auto* sub = app.add_subcommand(
          "inspect", "Describe a BPF object (.o, or .c compiled with clang): maps, programs");
      sub->add_option("object", args->object, "BPF ELF object or C source")->required();
      sub->add_flag("--json", args->json, "JSON output (stable key order)");
      return std::function<int()>([args] { return run_inspect(*args); });
    }};

}  // namespace
}  // namespace bpftsim::tools
