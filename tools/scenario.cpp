#include "tools/scenario.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <set>
#include <tuple>

#include <nlohmann/json.hpp>

#include "model/bpf_compile.h"
#include "model/bpf_object.h"
#include "model/bpf_trace.h"
#include "model/input_file.h"
#include "sim/hash.h"
#include "tools/json_schema.h"

namespace bpftsim::tools {

extern const char* const kScenarioSchemaText;  // generated from scenarios/scenario.schema.json

namespace {

using Json = nlohmann::json;

// Thrown inside this file only, caught by the Parser's guards (which collect them) and by
// parse_scenario.
struct Bad {
  std::string pointer;
  std::string message;
};
// Every error the meaning checks found (thrown at the end of Parser::parse).
struct Errors {
  std::vector<Bad> all;
};
// An error that follows from one already reported (a name of an object that failed to load):
// dropped by the guard.
struct Suppressed {};

[[noreturn]] void bad(std::string pointer, std::string message) {
  throw Bad{std::move(pointer), std::move(message)};
}

std::string child(const std::string& ptr, const std::string& key) {
  return ptr + "/" + json_pointer_escape(key);
}
std::string child(const std::string& ptr, std::size_t i) {
  return ptr + "/" + std::to_string(i);
}

std::int64_t as_i64(const Json& v, const std::string& ptr) {
  if (v.is_number_unsigned() &&
      v.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    bad(ptr, fmt::format("expected an integer below 2^63, got {}", v.dump()));
  return v.get<std::int64_t>();
}

std::uint64_t as_u64(const Json& v, const std::string& ptr) {
  if (!v.is_number_unsigned() && v.get<std::int64_t>() < 0)
    bad(ptr, fmt::format("expected a non-negative integer, got {}", v.dump()));
  return v.get<std::uint64_t>();
}

// An integer as two's complement bytes of `size`, refusing what does not fit.
std::vector<std::uint8_t> int_bytes(const Json& v, std::size_t size, const std::string& ptr,
                                    const std::string& what) {
  std::uint64_t bits = 0;
  bool fits = true;
  if (v.is_number_unsigned()) {
    bits = v.get<std::uint64_t>();
    fits = size >= 8 || bits < (1ULL << (8 * size));
  } else {
    const std::int64_t s = v.get<std::int64_t>();
    bits = static_cast<std::uint64_t>(s);
    if (size < 8) {
      const std::int64_t lo = -(std::int64_t{1} << (8 * size - 1));
      const std::int64_t hi = static_cast<std::int64_t>(1ULL << (8 * size)) - 1;
      fits = s >= lo && s <= hi;
    }
  }
  if (size > 8 && v.is_number_integer() && !v.is_number_unsigned() && v.get<std::int64_t>() < 0)
    fits = false;
  if (!fits || size == 0)
    bad(ptr, fmt::format("{} {} does not fit in {} byte(s)", what, v.dump(), size));
  std::vector<std::uint8_t> out(size, 0);
  for (std::size_t i = 0; i < size && i < 8; ++i)
    out[i] = static_cast<std::uint8_t>(bits >> (8 * i));
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

// A key or value: integer, hex string (memory order) or byte array, of exactly `size` bytes.
std::vector<std::uint8_t> to_bytes(const Json& v, std::size_t size, const std::string& ptr,
                                   const std::string& what) {
  if (v.is_number_integer()) return int_bytes(v, size, ptr, what);
  std::vector<std::uint8_t> out;
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    const std::size_t start = s.rfind("hex:", 0) == 0 ? 4 : 2;
    for (std::size_t i = start; i + 1 < s.size(); i += 2)
      out.push_back(static_cast<std::uint8_t>(hex_digit(s[i]) * 16 + hex_digit(s[i + 1])));
  } else {
    for (const auto& b : v)
      out.push_back(static_cast<std::uint8_t>(b.get<int>()));
  }
  if (out.size() != size)
    bad(ptr, fmt::format("expected {} byte(s) for this {}, got {}", size, what, out.size()));
  return out;
}

std::string names_list(const std::vector<std::string>& names) {
  if (names.empty()) return "none";
  return fmt::format("{}", fmt::join(names, ", "));
}

class Parser {
 public:
  Parser(std::string file, const Json& doc, const std::string& text, const JsonPositions& pos)
      : file_(std::move(file)), doc_(doc), text_(text), pos_(pos) {}

  Scenario parse() {
    expect_load_error_ = doc_.contains("expect") && doc_["expect"].contains("load_error");
    Scenario sc;
    sc.file = file_;
    sc.name = doc_["name"].get<std::string>();
    sc.description = doc_["description"].get<std::string>();
    if (doc_.contains("profile"))
      guard([&] {
        sc.profile = doc_["profile"].get<std::string>();
        if (!model::profile_by_name(sc.profile))
          bad("/profile", fmt::format("unknown kernel profile '{}' (known: {})", sc.profile,
                                      names_list(model::profile_names())));
      });
    sc.cpus = doc_["cpus"].get<int>();
    if (doc_.contains("seed")) sc.seed = as_u64(doc_["seed"], "/seed");
    parse_objects(sc);
    parse_costs(sc);
    if (doc_.contains("jitter_ns")) sc.jitter_ns = as_i64(doc_["jitter_ns"], "/jitter_ns");
    if (doc_.contains("window_ns")) sc.window_ns = as_i64(doc_["window_ns"], "/window_ns");
    if (doc_.contains("interrupt_defer_max")) sc.land_max = doc_["interrupt_defer_max"].get<int>();
    if (doc_.contains("work_on_any_cpu")) sc.work_on_any_cpu = doc_["work_on_any_cpu"].get<bool>();
    if (doc_.contains("limits")) {
      const Json& l = doc_["limits"];
      if (l.contains("max_time_ns"))
        sc.max_time_ns = as_i64(l["max_time_ns"], "/limits/max_time_ns");
      if (l.contains("max_steps")) sc.max_steps = as_u64(l["max_steps"], "/limits/max_steps");
    }
    if (doc_.contains("faults"))
      for (std::size_t i = 0; i < doc_["faults"].size(); ++i)
        guard([&] {
          const Json& f = doc_["faults"][i];
          const std::string site = f["site"].get<std::string>();
          const auto s = model::fault_site_by_name(site);
          if (!s)
            bad(child(child("/faults", i), "site"), fmt::format("unknown fault site '{}'", site));
          sc.faults.push_back(Scenario::Fault{*s, f.contains("count") ? f["count"].get<int>() : 1});
        });
    scenario_ = &sc;
    if (expect_load_error_) {
      const Json& ex = doc_["expect"];
      sc.expect.load_error = ex["load_error"].get<std::string>();
      for (auto it = ex.begin(); it != ex.end(); ++it)
        if (const std::string key = it.key(); key != "load_error" && key != "comment")
          guard([&] {
            bad(child("/expect", key),
                "with load_error nothing runs after the objects fail to load: expect only "
                "load_error (and a comment)");
          });
    }
    // When an object failed to load as expected, its names cannot be resolved: the timeline,
    // which never runs, is left unchecked.
    if (doc_["timeline"].empty() && !expect_load_error_)
      guard([&] {
        bad("/timeline",
            "expected at least 1 action (only a scenario expecting a load error, which runs "
            "nothing, may have an empty timeline)");
      });
    if (!sc.load_failure) parse_timeline(sc);
    if (doc_.contains("expect") && !expect_load_error_)
      parse_expect(doc_["expect"], "/expect", sc.expect);
    parse_closed_by(sc);
    if (!errors_.empty()) throw Errors{errors_};
    return sc;
  }

 private:
  void parse_objects(Scenario& sc) {
    const auto dir = std::filesystem::path(file_).parent_path();
    std::set<std::string> names;
    for (std::size_t i = 0; i < doc_["objects"].size() && !sc.load_failure; ++i)
      guard([&] { parse_object(sc, i, dir, names); });
  }

  // Object `i`; one that fails to load is noted in failed_objects_, so that names of it are not
  // reported again.
  void parse_object(Scenario& sc, std::size_t i, const std::filesystem::path& dir,
                    std::set<std::string>& names) {
    {
      const Json& o = doc_["objects"][i];
      const std::string ptr = child("/objects", i);
      ScenarioObject obj;
      obj.name = o["name"].get<std::string>();
      if (!names.insert(obj.name).second)
        bad(child(ptr, "name"), fmt::format("object name '{}' is used twice", obj.name));
      failed_objects_.insert(obj.name);
      obj.path = o["path"].get<std::string>();
      const TextPos at = text_pos(text_, pos_.offset(child(ptr, "path")));
      obj.line = at.line;
      obj.column = at.column;
      const std::filesystem::path p(obj.path);
      obj.resolved_path = (p.is_absolute() || dir.empty() ? p : dir / p).lexically_normal();
      std::error_code ec;
      if (!std::filesystem::exists(obj.resolved_path, ec))
        bad(child(ptr, "path"),
            fmt::format("object file '{}' does not exist (resolved to '{}', relative to the "
                        "scenario's directory)",
                        obj.path, obj.resolved_path));
      // A directory, a device or an oversized file is refused before the compiler or libbpf
      // opens it (/dev/zero would be read forever).
      const bool source = model::is_bpf_source_path(obj.resolved_path);
      if (auto why = model::check_input_file(
              obj.resolved_path, source ? model::kMaxSourceBytes : model::kMaxObjectBytes,
              source ? "BPF C source" : "BPF object file"))
        bad(child(ptr, "path"), fmt::format("object file '{}' (resolved to '{}') {}", obj.path,
                                            obj.resolved_path, *why));
      model::BpfCompileOptions copts;
      if (o.contains("cflags")) {
        if (!source)
          bad(child(ptr, "cflags"),
              fmt::format("cflags apply to a BPF C source; '{}' is an object file", obj.path));
        for (const auto& f : o["cflags"])
          copts.extra_flags.push_back(f.get<std::string>());
      }
      // A source that does not compile is bad input even when a load error is expected: the
      // expectation is about what the loader refuses, not about clang.
      if (source && expect_load_error_)
        if (auto c = model::compile_bpf_source(obj.resolved_path, copts);
            std::holds_alternative<model::BpfCompileError>(c))
          bad(child(ptr, "path"),
              fmt::format("cannot load object: {}", std::get<model::BpfCompileError>(c).message));
      auto loaded = model::load_bpf_input(obj.resolved_path, copts);
      std::optional<model::LoadError> failed;
      if (auto* e = std::get_if<model::LoadError>(&loaded)) {
        failed = *e;
      } else {
        obj.spec = std::move(std::get<model::ObjectSpec>(loaded));
        obj.verify_memo = std::make_shared<model::VerifyMemo>();
        failed = model::bpf_object_check(obj.spec);
      }
      if (failed && expect_load_error_) {
        sc.load_failure = failed->message;
        return;  // the objects after it are not loaded either
      }
      if (failed) bad(child(ptr, "path"), fmt::format("cannot load object: {}", failed->message));
      failed_objects_.erase(obj.name);
      sc.objects.push_back(std::move(obj));
    }
  }

  void parse_costs(Scenario& sc) {
    if (!doc_.contains("costs")) return;
    const std::map<std::string, sim::TimeNs*> fields = {
        {"insn_ns", &sc.costs.insn_ns},
        {"helper_ns", &sc.costs.helper_ns},
        {"lock_ns", &sc.costs.lock_ns},
        {"spin_ns", &sc.costs.spin_ns},
        {"hrtimer_op_ns", &sc.costs.hrtimer_op_ns},
        {"alloc_ns", &sc.costs.alloc_ns},
        {"map_op_ns", &sc.costs.map_op_ns},
        {"syscall_ns", &sc.costs.syscall_ns},
        {"softirq_ns", &sc.costs.softirq_ns},
        {"refcnt_ns", &sc.costs.refcnt_ns},
        {"rcu_gp_min_ns", &sc.costs.rcu_gp_min_ns},
        {"rcu_gp_jitter_ns", &sc.costs.rcu_gp_jitter_ns},
        {"expiry_jitter_ns", &sc.costs.expiry_jitter_ns},
    };
    for (const auto& [k, v] : doc_["costs"].items())
      if (k != "comment") *fields.at(k) = as_i64(v, child("/costs", k));
  }

  // <object>.<rest>: the object's index, and `rest`.
  std::uint32_t object_of(const std::string& text, const std::string& ptr, std::string* rest) {
    const auto dot = text.find('.');
    const std::string obj = text.substr(0, dot);
    *rest = text.substr(dot + 1);
    if (failed_objects_.count(obj) != 0) throw Suppressed{};
    std::vector<std::string> names;
    for (std::uint32_t i = 0; i < scenario_->objects.size(); ++i) {
      if (scenario_->objects[i].name == obj) return i;
      names.push_back(scenario_->objects[i].name);
    }
    bad(ptr,
        fmt::format("unknown object '{}' in '{}' (objects: {})", obj, text, names_list(names)));
  }

  NameRef map_ref(const Json& v, const std::string& ptr) {
    NameRef r{v.get<std::string>(), 0, 0};
    std::string rest;
    r.object = object_of(r.text, ptr, &rest);
    const model::ObjectSpec& spec = scenario_->objects[r.object].spec;
    if (auto i = spec.find_map(rest)) {
      r.index = *i;
      return r;
    }
    // libbpf's name of a map-in-map's inner template: "<outer>.inner".
    static const std::string kInner = ".inner";
    if (rest.size() > kInner.size() &&
        rest.compare(rest.size() - kInner.size(), kInner.size(), kInner) == 0)
      if (auto i = spec.find_map(rest.substr(0, rest.size() - kInner.size()));
          i && !spec.maps[*i].inner.empty()) {
        r.index = *i;
        r.inner_template = true;
        return r;
      }
    std::vector<std::string> names;
    for (const auto& m : spec.maps) {
      names.push_back(m.name);
      if (!m.inner.empty()) names.push_back(m.name + kInner);
    }
    bad(ptr, fmt::format("unknown map '{}' (object '{}' has maps: {})", r.text,
                         scenario_->objects[r.object].name, names_list(names)));
  }

  // A map that must exist as a kernel map after load (an id, elements, alive or not): not an
  // inner map template.
  NameRef live_map_ref(const Json& v, const std::string& ptr, const char* what_it_lacks) {
    NameRef r = map_ref(v, ptr);
    if (r.inner_template)
      bad(ptr, fmt::format("'{}' is the inner map template of '{}.{}': libbpf closes it as soon as "
                           "the outer map exists, so after load it {}; name a map of the object "
                           "instead",
                           r.text, scenario_->objects[r.object].name,
                           scenario_->objects[r.object].spec.maps[r.index].name, what_it_lacks));
    return r;
  }

  NameRef prog_ref(const Json& v, const std::string& ptr) {
    NameRef r{v.get<std::string>(), 0, 0};
    std::string rest;
    r.object = object_of(r.text, ptr, &rest);
    const model::ObjectSpec& spec = scenario_->objects[r.object].spec;
    std::vector<std::string> names;
    for (std::uint32_t i = 0; i < spec.progs.size(); ++i) {
      if (spec.progs[i].name == rest) {
        r.index = i;
        return r;
      }
      names.push_back(spec.progs[i].name);
    }
    bad(ptr, fmt::format("unknown program '{}' (object '{}' has programs: {})", r.text,
                         scenario_->objects[r.object].name, names_list(names)));
  }

  // <object>.<var>, or <object>.<var>.<member path> of a struct variable. A variable of any size
  // resolves (`any_size`); else only integers of 1..8 bytes.
  GlobalRef global_ref(const std::string& text, const std::string& ptr, bool any_size) {
    GlobalRef g{text, 0, "", 0};
    std::string rest;
    g.object = object_of(text, ptr, &rest);
    const model::ObjectSpec& spec = scenario_->objects[g.object].spec;
    g.var = rest;
    const model::GlobalVar* v = spec.find_global(rest);
    std::string member;
    if (v == nullptr && rest.find('.') != std::string::npos) {
      g.var = rest.substr(0, rest.find('.'));
      member = rest.substr(rest.find('.') + 1);
      v = spec.find_global(g.var);
    }
    if (v == nullptr) {
      std::vector<std::string> names;
      for (const auto& m : spec.maps)
        for (const auto& var : m.vars)
          names.push_back(var.name);
      bad(ptr, fmt::format("unknown global variable '{}' (object '{}' has: {})", text,
                           scenario_->objects[g.object].name, names_list(names)));
    }
    g.size = v->size;
    g.sign = v->sign;
    g.var_size = v->size;
    if (!member.empty()) {
      const FieldExpect f =
          member_of(v->fields, member, ptr,
                    fmt::format("global '{}.{}'", scenario_->objects[g.object].name, g.var));
      g.offset = f.offset;
      g.size = f.size;
      g.sign = f.sign;
      return g;
    }
    if (!any_size && (g.size == 0 || g.size > 8))
      bad(ptr, fmt::format("global '{}' is {} bytes; only integers of 1 to 8 bytes can be "
                           "compared: give all its bytes (\"0x...\" or a byte array) or its "
                           "members ({{\"fields\": {{...}}}})",
                           text, g.size));
    return g;
  }

  // The map's spec (an inner template's: the template's own key/value sizes).
  const model::MapSpec& map_spec(const NameRef& r) const {
    const model::MapSpec& m = scenario_->objects[r.object].spec.maps[r.index];
    return r.inner_template ? m.inner.front() : m;
  }

  static bool is_map_in_map(const model::MapSpec& m) {
    return m.type == model::kBpfMapTypeArrayOfMaps || m.type == model::kBpfMapTypeHashOfMaps;
  }

  void parse_timeline(Scenario& sc) {
    const Json& tl = doc_["timeline"];
    sim::TimeNs prev = 0;
    for (std::size_t i = 0; i < tl.size(); ++i)
      guard([&] { parse_timeline_entry(sc, i, prev); });
  }

  void parse_timeline_entry(Scenario& sc, std::size_t i, sim::TimeNs& prev) {
    const Json& tl = doc_["timeline"];
    {
      const Json& j = tl[i];
      const std::string ptr = child("/timeline", i);
      Action a;
      a.index = i;
      a.pointer = ptr;
      const Json& at = j["at_ns"];
      if (at.is_object()) {
        // A range: the time is drawn by the scheduler (a kRange decision) when the run starts.
        a.at_ns = as_i64(at["min"], child(child(ptr, "at_ns"), "min"));
        const sim::TimeNs hi = as_i64(at["max"], child(child(ptr, "at_ns"), "max"));
        if (hi < a.at_ns)
          bad(child(child(ptr, "at_ns"), "max"),
              fmt::format("the range is empty: max {} is below min {}", hi, a.at_ns));
        else if (hi - a.at_ns >= kMaxAtRangeNs)
          bad(child(ptr, "at_ns"),
              fmt::format("the range {}..{} is wider than {} ns (a decision counts its options "
                          "in 32 bits)",
                          a.at_ns, hi, kMaxAtRangeNs - 1));
        a.at_max_ns = hi;
      } else {
        a.at_ns = as_i64(at, child(ptr, "at_ns"));
      }
      // Against the previous action even when that one was out of order: one misplaced action is
      // one error. Neither error stops the rest of the action's checks.
      const sim::TimeNs before = prev;
      prev = a.at_ns;
      if (a.at_ns < before)
        guard([&] {
          bad(child(ptr, "at_ns"),
              fmt::format("time goes backwards: at_ns {} is before the previous action's {} "
                          "(the timeline must be in non-decreasing at_ns; a range counts by its "
                          "min)",
                          a.at_ns, before));
        });
      if (j.contains("cpu")) {
        a.cpu = j["cpu"].get<int>();
        if (a.cpu >= sc.cpus)
          guard([&] {
            bad(child(ptr, "cpu"),
                fmt::format("cpu {} does not exist: the scenario has {} CPU(s)", a.cpu, sc.cpus));
          });
      }
      if (j.contains("process")) a.process = j["process"].get<std::string>();
      if (j.contains("expect_ret")) {
        const Json& want = j["expect_ret"];
        if (want.is_number_integer()) {
          a.expect_ret = as_i64(want, child(ptr, "expect_ret"));
        } else {
          a.expect_ret_match = parse_value(want, child(ptr, "expect_ret"), 8,
                                           model::GlobalVar::Sign::kSigned, "a return value");
        }
      }
      parse_action(j, ptr, a);
      sc.timeline.push_back(std::move(a));
    }
  }

  void parse_action(const Json& j, const std::string& ptr, Action& a) {
    static const std::map<std::string, ActionKind> kinds = {
        {"run", ActionKind::kRun},
        {"run_fentry", ActionKind::kRunFentry},
        {"attach", ActionKind::kAttach},
        {"nanosleep", ActionKind::kNanosleep},
        {"map_lookup", ActionKind::kMapLookup},
        {"map_update", ActionKind::kMapUpdate},
        {"map_delete", ActionKind::kMapDelete},
        {"close", ActionKind::kClose},
        {"pin", ActionKind::kPin},
        {"unpin", ActionKind::kUnpin},
        {"obj_get", ActionKind::kObjGet},
        {"get_fd_by_id", ActionKind::kGetFdById},
        {"exit", ActionKind::kExit},
        {"wait", ActionKind::kWait},
    };
    a.kind = kinds.at(j["action"].get<std::string>());
    switch (a.kind) {
      case ActionKind::kRun: {
        a.target = prog_ref(j["prog"], child(ptr, "prog"));
        a.target_kind = FdKind::kProg;
        if (j.contains("args"))
          for (std::size_t n = 0; n < j["args"].size(); ++n)
            a.args[n] = as_u64(j["args"][n], child(child(ptr, "args"), n));
        if (j.contains("context")) {
          const std::string c = j["context"].get<std::string>();
          a.context = c == "hardirq" ? RunContext::kHardirq
                      : c == "nmi"   ? RunContext::kNmi
                                     : RunContext::kTask;
        }
        break;
      }
      case ActionKind::kRunFentry: {
        const std::string f = j["fentry"].get<std::string>();
        a.fentry = f.back() - '0';
        break;
      }
      case ActionKind::kAttach: {
        a.target = prog_ref(j["prog"], child(ptr, "prog"));
        a.target_kind = FdKind::kProg;
        // The hook the program's section names must be one the model has (model/bpf_trace.h).
        const ScenarioObject& so = scenario_->objects[a.target->object];
        std::string err;
        model::parse_hook_section(so.spec.progs[a.target->index].section, &err);
        if (!err.empty())
          bad(child(ptr, "prog"),
              fmt::format("cannot attach '{}' ({}): {}", a.target->text, so.resolved_path, err));
        break;
      }
      case ActionKind::kNanosleep:
        a.duration_ns = j["duration_ns"].get<sim::TimeNs>();
        break;
      case ActionKind::kMapLookup:
      case ActionKind::kMapUpdate:
      case ActionKind::kMapDelete: {
        a.target = map_ref(j["map"], child(ptr, "map"));
        const model::MapSpec& m = map_spec(*a.target);
        a.key = to_bytes(j["key"], m.key_size, child(ptr, "key"), "key of " + a.target->text);
        if (a.kind == ActionKind::kMapUpdate) parse_update_value(j, ptr, m, a);
        if (j.contains("expect_value")) {
          if (is_map_in_map(m))
            bad(child(ptr, "expect_value"),
                fmt::format("'{}' is a map-in-map: its lookup yields a map id, which cannot be "
                            "expected",
                            a.target->text));
          a.expect_value =
              parse_value_match(j["expect_value"], child(ptr, "expect_value"), m.value_size,
                                m.value_sign, m.value_fields, "value of " + a.target->text);
        }
        break;
      }
      case ActionKind::kClose:
      case ActionKind::kPin: {
        std::vector<std::string> given;
        for (const char* k : {"map", "prog", "link"})
          if (j.contains(k)) given.push_back(k);
        const std::string allowed = a.kind == ActionKind::kClose ? "map, prog, link" : "map, prog";
        if (given.size() != 1)
          bad(ptr, fmt::format("{} takes exactly one of {}; got {}", action_kind_name(a.kind),
                               allowed, given.empty() ? "none" : names_list(given)));
        const std::string& k = given.front();
        if (k == "map") {
          a.target = map_ref(j["map"], child(ptr, "map"));
          a.target_kind = FdKind::kMap;
        } else {
          a.target = prog_ref(j[k], child(ptr, k));
          a.target_kind = k == "prog" ? FdKind::kProg : FdKind::kLink;
        }
        if (a.kind == ActionKind::kPin) a.path = j["path"].get<std::string>();
        break;
      }
      case ActionKind::kUnpin:
      case ActionKind::kObjGet:
        a.path = j["path"].get<std::string>();
        break;
      case ActionKind::kGetFdById:
        a.target = live_map_ref(j["map"], child(ptr, "map"), "has no id");
        break;
      case ActionKind::kExit:
      case ActionKind::kWait:
        break;
    }
  }

  void parse_update_value(const Json& j, const std::string& ptr, const model::MapSpec& m,
                          Action& a) {
    const Json& v = j["value"];
    const std::string vptr = child(ptr, "value");
    const bool is_name = v.is_string() && v.get_ref<const std::string&>().rfind("0x", 0) != 0 &&
                         v.get_ref<const std::string&>().rfind("hex:", 0) != 0;
    if (is_map_in_map(m)) {
      if (!is_name)
        bad(vptr, fmt::format("'{}' is a map-in-map: the value must name a map (its fd), e.g. "
                              "\"{}.inner_map\"",
                              a.target->text, scenario_->objects[a.target->object].name));
      a.value_map = map_ref(v, vptr);
    } else {
      if (is_name)
        bad(vptr, fmt::format("'{}' is no map-in-map: expected {} byte(s) of value, got a map "
                              "name",
                              a.target->text, m.value_size));
      a.value = to_bytes(v, m.value_size, vptr, "value of " + a.target->text);
    }
    static const std::map<std::string, std::uint64_t> flags = {{"BPF_ANY", 0},
                                                               {"BPF_NOEXIST", 1},
                                                               {"BPF_EXIST", 2},
                                                               {"BPF_F_LOCK", 4},
                                                               {"BPF_EXIST|BPF_F_LOCK", 6}};
    if (j.contains("flags")) a.flags = flags.at(j["flags"].get<std::string>());
  }

  // N, "N", ">=N", "<=N", "!=N" or {"in": [N, ...]} for a value of `size` bytes and signedness
  // `sign` (the schema checked the form); `what` names it in messages.
  ValueExpect parse_value(const Json& v, const std::string& p, std::uint32_t size,
                          model::GlobalVar::Sign sign, const std::string& what) {
    ValueExpect e;
    e.written = v.is_string() ? v.get<std::string>() : v.dump();
    auto number = [&](const Json& n, const std::string& at, bool* negative) -> std::uint64_t {
      (void)int_bytes(n, size, at, what);
      *negative = !n.is_number_unsigned() && n.get<std::int64_t>() < 0;
      return n.is_number_unsigned() ? n.get<std::uint64_t>()
                                    : static_cast<std::uint64_t>(n.get<std::int64_t>());
    };
    if (v.is_object()) {
      e.op = ValueExpect::Op::kIn;
      const Json& in = v["in"];
      for (std::size_t i = 0; i < in.size(); ++i) {
        bool neg = false;
        e.set.push_back(number(in[i], child(child(p, "in"), i), &neg));
      }
      e.written = "in " + in.dump();
      return e;
    }
    Json n = v;
    if (v.is_string()) {
      std::string t = v.get<std::string>();
      static const std::map<std::string, ValueExpect::Op> ops = {
          {">=", ValueExpect::Op::kGe}, {"<=", ValueExpect::Op::kLe}, {"!=", ValueExpect::Op::kNe}};
      if (auto it = ops.find(t.substr(0, 2)); it != ops.end()) {
        e.op = it->second;
        t = t.substr(2);
      }
      try {
        if (t.front() == '-') {
          n = static_cast<std::int64_t>(std::stoll(t));
        } else {
          n = static_cast<std::uint64_t>(std::stoull(t));
        }
      } catch (const std::exception&) {
        bad(p, fmt::format("'{}' is out of range (64 bits)", v.get<std::string>()));
      }
    }
    e.value = number(n, p, &e.negative);
    const bool ordered = e.op == ValueExpect::Op::kGe || e.op == ValueExpect::Op::kLe;
    if (ordered && e.negative && sign == model::GlobalVar::Sign::kUnsigned)
      bad(p,
          fmt::format("{} is unsigned (BTF): a negative bound {} orders nothing", what, e.written));
    if (ordered && !e.negative && sign == model::GlobalVar::Sign::kSigned &&
        e.value > (std::uint64_t{1} << (8 * size - 1)) - 1)
      bad(p, fmt::format("{} is signed (BTF, {} byte(s)): the bound {} is beyond its largest "
                         "value",
                         what, size, e.written));
    return e;
  }

  // Member `name` (a dotted path) of a value whose BTF struct has `fields`, as an integer to
  // expect; `what` names the value ("the value of t.vals", "global 't.stats'").
  FieldExpect member_of(const std::vector<model::BtfField>& fields, const std::string& name,
                        const std::string& p, const std::string& what) {
    std::vector<std::string> names;
    for (const model::BtfField& f : fields)
      names.push_back(f.path);
    if (fields.empty())
      bad(p, fmt::format("{} has no BTF struct or union type: there are no members to name", what));
    const auto it = std::find_if(fields.begin(), fields.end(),
                                 [&](const model::BtfField& f) { return f.path == name; });
    if (it == fields.end())
      bad(p, fmt::format("{} has no member '{}' (members: {})", what, name, names_list(names)));
    const std::string member = fmt::format("member '{}' of {}", name, what);
    switch (it->kind) {
      case model::BtfField::Kind::kTimer:
      case model::BtfField::Kind::kSpinLock:
        bad(p,
            fmt::format("{} is a struct {}: it reads as zero and cannot be expected "
                        "(members: {})",
                        member,
                        it->kind == model::BtfField::Kind::kTimer ? "bpf_timer" : "bpf_spin_lock",
                        names_list(names)));
      case model::BtfField::Kind::kStruct: {
        std::vector<std::string> inner;
        for (const model::BtfField& f : fields)
          if (f.path.rfind(name + ".", 0) == 0) inner.push_back(f.path);
        bad(p, fmt::format("{} is a struct or union: name its members ({})", member,
                           names_list(inner)));
      }
      case model::BtfField::Kind::kOther:
        bad(p, fmt::format("{} is no integer (an array or a bitfield): it cannot be expected",
                           member));
      case model::BtfField::Kind::kInt:
        break;
    }
    if (it->size == 0 || it->size > 8)
      bad(p, fmt::format("{} is {} bytes; only integers of 1 to 8 bytes can be expected", member,
                         it->size));
    FieldExpect fe;
    fe.path = it->path;
    fe.offset = it->offset;
    fe.size = it->size;
    fe.sign = it->sign;
    fe.pointer = p;
    return fe;
  }

  // A value of `size` bytes whose BTF type has signedness `sign` and members `fields`: bytes (an
  // integer, "0x..." or a byte array), a comparison or set (values of at most 8 bytes), or
  // {"fields": {...}} naming members of its struct. `what` names it in messages.
  ValueMatch parse_value_match(const Json& v, const std::string& ptr, std::uint32_t size,
                               model::GlobalVar::Sign sign,
                               const std::vector<model::BtfField>& fields,
                               const std::string& what) {
    ValueMatch m;
    m.size = size;
    m.sign = sign;
    if (v.is_object() && v.contains("fields")) {
      const std::string fptr = child(ptr, "fields");
      if (fields.empty())
        bad(fptr,
            fmt::format("the {} has no BTF struct or union type: there are no members to name",
                        what));
      for (const auto& [name, fv] : v["fields"].items()) {
        const std::string p = child(fptr, name);
        FieldExpect fe = member_of(fields, name, p, "the " + what);
        fe.want =
            parse_value(fv, p, fe.size, fe.sign, fmt::format("member '{}' of the {}", name, what));
        m.fields.push_back(std::move(fe));
      }
      return m;
    }
    const bool hex = v.is_string() && (v.get_ref<const std::string&>().rfind("0x", 0) == 0 ||
                                       v.get_ref<const std::string&>().rfind("hex:", 0) == 0);
    if (v.is_object() || (v.is_string() && !hex)) {
      if (size == 0 || size > 8)
        bad(ptr, fmt::format("the {} is {} bytes: a comparison needs a value of at most 8 bytes; "
                             "give all its bytes, or compare its members ({{\"fields\": ...}})",
                             what, size));
      m.want = parse_value(v, ptr, size, sign, "the " + what);
      return m;
    }
    m.bytes = to_bytes(v, size, ptr, what);
    return m;
  }

  std::vector<GlobalExpect> parse_globals(const Json& g, const std::string& ptr) {
    std::vector<GlobalExpect> out;
    for (auto it_ = g.begin(); it_ != g.end(); ++it_) {
      const std::string name = it_.key();
      const Json& v = it_.value();
      guard([&] {
        const std::string p = child(ptr, name);
        if (name.find('.') == std::string::npos)
          bad(p, fmt::format("expected <object>.<variable>, got '{}'", name));
        GlobalExpect e;
        e.pointer = p;
        // Bytes ("0x...", a byte array) or {"fields": ...}: a variable of any size.
        const bool whole =
            (v.is_object() && v.contains("fields")) || v.is_array() ||
            (v.is_string() && (v.get_ref<const std::string&>().rfind("0x", 0) == 0 ||
                               v.get_ref<const std::string&>().rfind("hex:", 0) == 0));
        e.global = global_ref(name, p, whole);
        if (whole) {
          if (e.global.size != e.global.var_size)
            bad(p, fmt::format("'{}' is a member: expect it as an integer, or give its variable's "
                               "bytes or fields",
                               name));
          std::uint32_t idx = 0;
          const model::GlobalVar* var =
              scenario_->objects[e.global.object].spec.find_global(e.global.var, &idx);
          e.match = std::make_shared<const ValueMatch>(parse_value_match(
              v, p, var->size, var->sign, var->fields, fmt::format("global '{}'", name)));
        } else if (v.is_string() && v.get<std::string>() == "unset") {
          e.want.value = initial_value(e.global);
          e.want.written =
              fmt::format("unset ({})", show_value(e.want.value, e.global.size, e.global.sign));
        } else {
          e.want = parse_value(v, p, e.global.size, e.global.sign, "'" + name + "'");
        }
        out.push_back(std::move(e));
      });
    }
    return out;
  }

  // The value a global has when its object is loaded (.data/.rodata bytes; .bss is zero).
  std::uint64_t initial_value(const GlobalRef& g) const {
    std::uint32_t map_idx = 0;
    const model::ObjectSpec& spec = scenario_->objects[g.object].spec;
    const model::GlobalVar* var = spec.find_global(g.var, &map_idx);
    const std::vector<std::uint8_t>& data = spec.maps[map_idx].initial_data;
    std::uint64_t v = 0;
    const std::uint32_t at = var->offset + g.offset;
    for (std::uint32_t b = 0; b < g.size && at + b < data.size(); ++b)
      v |= std::uint64_t{data[at + b]} << (8 * b);
    return v;
  }

  CountExpect parse_count(const Json& v, const std::string& ptr) {
    CountExpect c;
    if (v.is_number_integer()) {
      c.n = as_u64(v, ptr);
      return c;
    }
    std::string s = v.get<std::string>();
    if (s.rfind(">=", 0) == 0) c.op = CountExpect::Op::kGe;
    if (s.rfind("<=", 0) == 0) c.op = CountExpect::Op::kLe;
    if (c.op != CountExpect::Op::kEq) s = s.substr(2);
    try {
      c.n = std::stoull(s);
    } catch (const std::exception&) {
      bad(ptr, "count out of range");
    }
    return c;
  }

  AliveExpect parse_alive(const Json& a, const std::string& ptr) {
    AliveExpect out;
    if (a.contains("objects")) out.objects = as_u64(a["objects"], child(ptr, "objects"));
    if (a.contains("armed_timers"))
      out.armed_timers = as_u64(a["armed_timers"], child(ptr, "armed_timers"));
    if (a.contains("maps")) {
      out.maps.emplace();
      for (std::size_t i = 0; i < a["maps"].size(); ++i)
        guard([&] {
          out.maps->push_back(
              live_map_ref(a["maps"][i], child(child(ptr, "maps"), i), "is never alive"));
        });
    }
    if (a.contains("progs")) {
      out.progs.emplace();
      for (std::size_t i = 0; i < a["progs"].size(); ++i)
        guard(
            [&] { out.progs->push_back(prog_ref(a["progs"][i], child(child(ptr, "progs"), i))); });
    }
    return out;
  }

  AtExpect parse_at(const Json& g, const std::string& ptr) {
    AtExpect at;
    at.pointer = ptr;
    at.at_ns = as_i64(g["at_ns"], child(ptr, "at_ns"));
    if (g.contains("globals")) at.globals = parse_globals(g["globals"], child(ptr, "globals"));
    if (g.contains("alive")) at.alive = parse_alive(g["alive"], child(ptr, "alive"));
    if (g.contains("maps")) at.maps = parse_maps(g["maps"], child(ptr, "maps"));
    for (const char* field : {"refcnt", "usercnt"}) {
      if (!g.contains(field)) continue;
      for (auto it_ = g[field].begin(); it_ != g[field].end(); ++it_) {
        const std::string name = it_.key();
        const Json& v = it_.value();
        guard([&] {
          const std::string p = child(child(ptr, field), name);
          RefcntExpect r;
          r.pointer = p;
          r.user = std::string(field) == "usercnt";
          std::string rest;
          const std::uint32_t obj = object_of(name, p, &rest);
          const model::ObjectSpec& spec = scenario_->objects[obj].spec;
          if (!r.user && spec.find_prog(rest)) {
            r.target = prog_ref(Json(name), p);
            r.is_prog = true;
          } else {
            r.target = map_ref(Json(name), p);
          }
          r.want = parse_value(v, p, 8, model::GlobalVar::Sign::kSigned,
                               fmt::format("the {} of '{}'", field, name));
          at.refcnts.push_back(std::move(r));
        });
      }
    }
    if (g.contains("invariants")) at.invariants = g["invariants"].get<bool>();
    return at;
  }

  sim::FindingKind finding_kind(const std::string& name, const std::string& ptr) {
    if (auto k = sim::finding_kind_by_name(name)) return *k;
    bad(ptr, fmt::format("unknown finding kind '{}'", name));
  }

  FindingMatch parse_finding_match(const Json& m, const std::string& ptr) {
    FindingMatch f;
    f.pointer = ptr;
    f.kind = finding_kind(m["kind"].get<std::string>(), child(ptr, "kind"));
    if (m.contains("site")) f.site = m["site"].get<std::string>();
    if (m.contains("object")) f.object = m["object"].get<std::string>();
    if (m.contains("history"))
      for (const Json& h : m["history"])
        f.history.push_back(h.get<std::string>());
    if (m.contains("cycle")) {
      f.cycle.emplace();
      for (const Json& c : m["cycle"]) {
        CyclePattern cp;
        if (c.contains("ctx")) cp.ctx = c["ctx"].get<std::string>();
        if (c.contains("waits_in")) cp.waits_in = c["waits_in"].get<std::string>();
        if (c.contains("object")) cp.object = c["object"].get<std::string>();
        f.cycle->push_back(std::move(cp));
      }
    }
    return f;
  }

  EventRef parse_event_ref(const Json& r, const std::string& ptr) {
    EventRef e;
    e.text = r.dump();
    if (r.contains("nth")) e.nth = static_cast<std::uint32_t>(as_u64(r["nth"], child(ptr, "nth")));
    if (r.contains("prog")) e.prog = prog_ref(r["prog"], child(ptr, "prog"));
    for (const char* k : {"action_start", "action_done"}) {
      if (!r.contains(k)) continue;
      e.kind = std::string(k) == "action_start" ? EventRef::Kind::kActionStart
                                                : EventRef::Kind::kActionDone;
      e.action = static_cast<std::size_t>(as_u64(r[k], child(ptr, k)));
      if (e.action >= doc_["timeline"].size())
        bad(child(ptr, k), fmt::format("the timeline has {} action(s)", doc_["timeline"].size()));
      return e;
    }
    for (const char* k : {"callback_entry", "callback_exit"}) {
      if (!r.contains(k)) continue;
      e.kind = std::string(k) == "callback_entry" ? EventRef::Kind::kCallbackEntry
                                                  : EventRef::Kind::kCallbackExit;
      std::string fn;
      const std::uint32_t obj = object_of(r[k].get<std::string>(), child(ptr, k), &fn);
      bool found = false;
      for (const auto& prog : scenario_->objects[obj].spec.progs)
        for (const auto& [pc, name] : prog.functions)
          found = found || name == fn;
      if (!found)
        bad(child(ptr, k),
            fmt::format("object '{}' has no function '{}'", scenario_->objects[obj].name, fn));
      e.function = fn;
      return e;
    }
    e.kind = EventRef::Kind::kHelper;
    e.helper = r["helper"].get<std::string>();
    if (r.contains("ret")) e.ret = as_i64(r["ret"], child(ptr, "ret"));
    return e;
  }

  // expect.maps, or the maps of an expect.at entry.
  std::vector<MapExpect> parse_maps(const Json& list, const std::string& base) {
    std::vector<MapExpect> out;
    for (std::size_t i = 0; i < list.size(); ++i) {
      guard([&] {
        const std::string ptr = child(base, i);
        const Json& m = list[i];
        MapExpect me;
        me.pointer = ptr;
        me.map = live_map_ref(m["map"], child(ptr, "map"), "has no elements");
        const model::MapSpec& spec = map_spec(me.map);
        me.key = to_bytes(m["key"], spec.key_size, child(ptr, "key"), "key of " + me.map.text);
        if (m.contains("present")) me.present = m["present"].get<bool>();
        if (m.contains("value")) {
          if (is_map_in_map(spec))
            bad(child(ptr, "value"),
                fmt::format("'{}' is a map-in-map: expect only 'present'", me.map.text));
          if (!me.present)
            bad(child(ptr, "value"), "a value is expected of an element that must be absent");
          me.value =
              parse_value_match(m["value"], child(ptr, "value"), spec.value_size, spec.value_sign,
                                spec.value_fields, "value of " + me.map.text);
        }
        out.push_back(std::move(me));
      });
    }
    return out;
  }

  // The top-level expect (`base` "/expect") or one alternative of its any_of.
  void parse_expect(const Json& ex, const std::string& base, Expectations& e) {
    e.pointer = base;
    if (ex.contains("globals")) e.globals = parse_globals(ex["globals"], child(base, "globals"));
    for (const char* field : {"globals_at", "at", "maps_at"})
      if (ex.contains(field))
        for (std::size_t i = 0; i < ex[field].size(); ++i)
          guard([&] { e.at.push_back(parse_at(ex[field][i], child(child(base, field), i))); });
    if (ex.contains("maps")) e.maps = parse_maps(ex["maps"], child(base, "maps"));
    e.findings_given = ex.contains("findings") || ex.contains("finding_match");
    if (ex.contains("findings"))
      for (auto it_ = ex["findings"].begin(); it_ != ex["findings"].end(); ++it_) {
        const std::string kind = it_.key();
        const Json& v = it_.value();
        guard([&] {
          if (kind == "allow_other_findings") {
            e.allow_other_findings = v.get<bool>();
            return;
          }
          if (kind == "comment") return;
          const std::string ptr = child(child(base, "findings"), kind);
          e.findings.push_back(FindingCount{finding_kind(kind, ptr), parse_count(v, ptr)});
        });
      }
    if (ex.contains("finding_match"))
      for (std::size_t i = 0; i < ex["finding_match"].size(); ++i)
        guard([&] {
          e.finding_match.push_back(
              parse_finding_match(ex["finding_match"][i], child(child(base, "finding_match"), i)));
        });
    if (ex.contains("events"))
      for (auto it_ = ex["events"].begin(); it_ != ex["events"].end(); ++it_) {
        const std::string event = it_.key();
        const Json& v = it_.value();
        guard([&] {
          const std::string ptr = child(child(base, "events"), event);
          e.events.push_back(EventCount{event, parse_count(v, ptr), ptr});
        });
      }
    if (ex.contains("order"))
      for (std::size_t i = 0; i < ex["order"].size(); ++i) {
        guard([&] {
          const std::string ptr = child(child(base, "order"), i);
          const Json& o = ex["order"][i];
          e.order.push_back(OrderExpect{parse_event_ref(o["first"], child(ptr, "first")),
                                        parse_event_ref(o["then"], child(ptr, "then")), ptr});
        });
      }
    if (ex.contains("alive")) e.alive = parse_alive(ex["alive"], child(base, "alive"));
    e.status_given = ex.contains("status");
    if (ex.contains("status")) {
      const std::string s = ex["status"].get<std::string>();
      if (s == "stopped") {
        e.status = sim::RunStatus::kStopped;
      } else if (s == "limit") {
        e.status = sim::RunStatus::kLimit;
      } else {
        e.status = sim::RunStatus::kQuiescent;
      }
    }
    if (ex.contains("any_of"))
      for (std::size_t i = 0; i < ex["any_of"].size(); ++i) {
        Expectations alt;
        parse_expect(ex["any_of"][i], child(child(base, "any_of"), i), alt);
        e.any_of.push_back(std::move(alt));
      }
  }

  void parse_closed_by(Scenario& sc) {
    if (!doc_.contains("closed_by")) return;
    for (std::size_t i = 0; i < doc_["closed_by"].size(); ++i) {
      guard([&] {
        const std::string id = doc_["closed_by"][i].get<std::string>();
        std::vector<std::string> known;
        for (const auto& f : model::profile_fixes())
          known.push_back(f.id);
        if (std::find(known.begin(), known.end(), id) == known.end())
          bad(child("/closed_by", i),
              fmt::format("unknown fix '{}' (known: {})", id, names_list(known)));
        sc.closed_by.push_back(id);
      });
    }
  }

  std::string file_;
  const Json& doc_;
  const std::string& text_;
  const JsonPositions& pos_;
  Scenario* scenario_ = nullptr;
  bool expect_load_error_ = false;        // expect.load_error is given
  std::vector<Bad> errors_;               // every error found so far (guard)
  std::set<std::string> failed_objects_;  // objects that failed to load: their names say nothing

  // Runs one check; an error it throws is collected and checking goes on with the next one.
  template <class F>
  void guard(F&& check) {
    try {
      check();
    } catch (const Bad& b) {
      errors_.push_back(b);
    } catch (const Suppressed&) {
    }
  }
};

InputError located(const std::string& file, const std::string& text, std::string pointer,
                   std::string message, const JsonPositions& pos) {
  const TextPos p = text_pos(text, pos.offset(pointer));
  return InputError{file, std::move(pointer), p.line, p.column, std::move(message), {}, false};
}

// Errors (pointer, message) as one InputError: in document order (by line and column, then as
// found), at most kMaxInputErrors.
InputError all_located(const std::string& file, const std::string& text,
                       const std::vector<Bad>& errors, const JsonPositions& pos) {
  std::vector<InputError> all;
  for (const Bad& b : errors)
    all.push_back(located(file, text, b.pointer, b.message, pos));
  // A missing key of an object is placed at the object's start but reads best after the errors
  // inside the object (the object ends later than they do).
  using Place = std::tuple<int, int, int>;  // line, column, after the errors inside
  std::vector<std::pair<Place, std::size_t>> order;
  for (std::size_t i = 0; i < all.size(); ++i) {
    Place at{all[i].line, all[i].column, 0};
    if (all[i].message.rfind("missing required key", 0) == 0)
      for (const InputError& inside : all)
        if (&inside != &all[i] && inside.pointer.rfind(all[i].pointer + "/", 0) == 0)
          at = std::max(at, Place{inside.line, inside.column, 1});
    order.emplace_back(at, i);
  }
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<InputError> sorted;
  for (const auto& [at, i] : order)
    sorted.push_back(std::move(all[i]));
  all = std::move(sorted);
  const bool capped = all.size() > kMaxInputErrors;
  if (capped) all.resize(kMaxInputErrors);
  InputError first = std::move(all.front());
  first.more.assign(std::make_move_iterator(all.begin() + 1), std::make_move_iterator(all.end()));
  first.capped = capped;
  return first;
}

}  // namespace

std::string InputError::text() const {
  std::string s = file;
  if (line > 0) s += fmt::format(":{}:{}", line, column);
  s += ": ";
  if (line > 0 || !pointer.empty()) s += fmt::format("at {}: ", pointer.empty() ? "/" : pointer);
  s += message;
  if (more.empty()) return s;
  for (const InputError& e : more)
    s += "\n" + e.text();
  s += fmt::format("\n{} errors{}", more.size() + 1,
                   capped ? fmt::format(" (stopped after {})", kMaxInputErrors) : "");
  return s;
}

std::uint64_t fnv1a64(const std::string& bytes) {
  return sim::hash_bytes(bytes);
}

const std::string& scenario_schema_text() {
  static const std::string text(kScenarioSchemaText);
  return text;
}

const JsonSchema& scenario_schema() {
  static const JsonSchema schema(Json::parse(scenario_schema_text()));
  return schema;
}

const char* run_context_name(RunContext c) {
  switch (c) {
    case RunContext::kTask:
      return "task";
    case RunContext::kHardirq:
      return "hardirq";
    case RunContext::kNmi:
      return "nmi";
  }
  return "?";
}

const char* action_kind_name(ActionKind kind) {
  switch (kind) {
    case ActionKind::kRun:
      return "run";
    case ActionKind::kRunFentry:
      return "run_fentry";
    case ActionKind::kAttach:
      return "attach";
    case ActionKind::kNanosleep:
      return "nanosleep";
    case ActionKind::kMapLookup:
      return "map_lookup";
    case ActionKind::kMapUpdate:
      return "map_update";
    case ActionKind::kMapDelete:
      return "map_delete";
    case ActionKind::kClose:
      return "close";
    case ActionKind::kPin:
      return "pin";
    case ActionKind::kUnpin:
      return "unpin";
    case ActionKind::kObjGet:
      return "obj_get";
    case ActionKind::kGetFdById:
      return "get_fd_by_id";
    case ActionKind::kExit:
      return "exit";
    case ActionKind::kWait:
      return "wait";
  }
  return "?";
}

std::string Action::describe() const {
  std::string s = action_kind_name(kind);
  if (kind == ActionKind::kRunFentry) s += fmt::format(" bpf_fentry_test{}", fentry);
  if (kind == ActionKind::kNanosleep) s += fmt::format(" {} ns", duration_ns);
  if (target) {
    if (kind == ActionKind::kClose || kind == ActionKind::kPin)
      s += target_kind == FdKind::kMap ? " map" : target_kind == FdKind::kProg ? " prog" : " link";
    s += " " + target->text;
  }
  if (!path.empty()) s += " " + path;
  if (kind == ActionKind::kRun && context != RunContext::kTask)
    s += fmt::format(" in {}", run_context_name(context));
  if (process != "loader") s += " (" + process + ")";
  return s;
}

ScenarioResult parse_scenario(const std::string& file, const std::string& text) {
  const JsonPositions pos(text);
  Json doc;
  if (auto e = parse_json_input(text, pos, &doc)) {
    const TextPos p = text_pos(text, e->offset);
    return InputError{file, e->pointer, p.line, p.column, e->message};
  }
  // Every schema error (the meaning checks need a document the schema admits).
  if (auto vs = scenario_schema().validate_all(doc, kMaxInputErrors); !vs.empty()) {
    std::vector<Bad> errors;
    for (const SchemaViolation& v : vs)
      errors.push_back(Bad{v.pointer, v.message});
    return all_located(file, text, errors, pos);
  }
  try {
    Scenario sc = Parser(file, doc, text, pos).parse();
    sc.hash = fnv1a64(text);
    // What a replay against a changed scenario reports as changed (tools/runfile.h).
    Json setup = doc;
    for (const char* k : {"expect", "description", "name", "$schema", "closed_by", "objects"})
      setup.erase(k);
    sc.parts.setup = fnv1a64(setup.dump());
    sc.parts.expect = doc.contains("expect") ? fnv1a64(doc["expect"].dump()) : 0;
    sim::Hasher programs;
    for (const ScenarioObject& o : sc.objects) {
      std::ifstream in(o.resolved_path, std::ios::binary);
      const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
      programs.str(o.name).str(bytes);
    }
    programs.str(doc["objects"].dump());  // names, paths and cflags
    sc.parts.programs = programs.value();
    return sc;
  } catch (const Errors& e) {
    return all_located(file, text, e.all, pos);
  } catch (const Bad& b) {
    return located(file, text, b.pointer, b.message, pos);
  } catch (const Json::exception& e) {
    // The schema admits only what the parser reads; should they ever disagree, the input is
    // still refused with exit 2 rather than aborting.
    return InputError{file, "", 0, 0,
                      "unexpected value (the schema and the loader disagree; please report): " +
                          json_error_text(e.what())};
  }
}

ScenarioResult load_scenario(const std::string& path) {
  std::string text;
  if (auto why = model::read_input_file(path, model::kMaxScenarioBytes, "scenario file", &text))
    return InputError{path, "", 0, 0, *why};
  return parse_scenario(path, text);
}

}  // namespace bpftsim::tools
