#include "tools/runfile.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tools/json_schema.h"

namespace bpftsim::tools {

namespace {
using Json = nlohmann::ordered_json;
constexpr int kRunFileFormat = 1;

std::optional<std::uint64_t> parse_hex64(std::string s) {
  if (s.rfind("fnv1a64:", 0) == 0) s = s.substr(8);
  if (s.empty() || s.size() > 16) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    int d = 0;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else {
      return std::nullopt;
    }
    v = v << 4 | static_cast<std::uint64_t>(d);
  }
  return v;
}
}  // namespace

std::string RunFile::scenario_path() const {
  const std::filesystem::path p(scenario);
  if (p.is_absolute() || cwd.empty()) return scenario;
  return (std::filesystem::path(cwd) / p).lexically_normal().string();
}

RunFile make_run_file(const Scenario& sc, const RunResult& r, const std::string& tool_version) {
  RunFile f;
  f.tool_version = tool_version;
  f.scenario = sc.file;
  std::error_code ec;
  f.cwd = std::filesystem::current_path(ec).string();
  f.scenario_hash = sc.hash;
  f.name = sc.name;
  f.profile = r.profile;
  f.seed = r.seed;
  f.decisions = r.decisions;
  f.digest = r.digest;
  f.status = sim::run_status_name(r.status);
  f.failures = r.failures;
  return f;
}

std::string run_file_json(const RunFile& f) {
  Json j;
  j["bpftsim_run"] = kRunFileFormat;
  j["tool_version"] = f.tool_version;
  j["scenario"] = f.scenario;
  j["cwd"] = f.cwd;
  j["scenario_hash"] = fmt::format("fnv1a64:{:016x}", f.scenario_hash);
  j["name"] = f.name;
  j["profile"] = f.profile;
  j["seed"] = f.seed;
  j["decisions"] = sim::format_decisions(f.decisions);
  j["digest"] = fmt::format("{:016x}", f.digest);
  j["status"] = f.status;
  j["failures"] = f.failures;
  return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

std::variant<RunFile, InputError> read_run_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InputError{path, "", 0, 0, "cannot read the run file"};
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  const JsonPositions pos(text);
  auto err = [&](const std::string& ptr, const std::string& msg) {
    const TextPos p = text_pos(text, pos.offset(ptr));
    return InputError{path, ptr, p.line, p.column, msg};
  };
  Json j;
  try {
    j = Json::parse(text);
  } catch (const Json::parse_error& e) {
    const TextPos p = text_pos(text, e.byte > 0 ? e.byte - 1 : 0);
    return InputError{path, "", p.line, p.column, std::string("invalid JSON: ") + e.what()};
  }
  if (!j.is_object() || !j.contains("bpftsim_run"))
    return err("", "not a bpftsim run file (no \"bpftsim_run\" key)");
  if (j["bpftsim_run"] != kRunFileFormat)
    return err("/bpftsim_run", fmt::format("unsupported run file format {}, expected {}",
                                           j["bpftsim_run"].dump(), kRunFileFormat));
  RunFile f;
  for (const char* key :
       {"tool_version", "scenario", "scenario_hash", "name", "profile", "decisions", "digest"})
    if (!j.contains(key) || !j[key].is_string())
      return err(std::string("/") + key, fmt::format("expected a string '{}'", key));
  if (!j.contains("seed") || !j["seed"].is_number_unsigned())
    return err("/seed", "expected a non-negative integer 'seed'");
  f.tool_version = j["tool_version"].get<std::string>();
  f.scenario = j["scenario"].get<std::string>();
  if (j.contains("cwd") && j["cwd"].is_string()) f.cwd = j["cwd"].get<std::string>();
  f.name = j["name"].get<std::string>();
  f.profile = j["profile"].get<std::string>();
  f.seed = j["seed"].get<std::uint64_t>();
  const auto hash = parse_hex64(j["scenario_hash"].get<std::string>());
  if (!hash) return err("/scenario_hash", "expected \"fnv1a64:<16 hex digits>\"");
  f.scenario_hash = *hash;
  const auto digest = parse_hex64(j["digest"].get<std::string>());
  if (!digest) return err("/digest", "expected 16 hex digits");
  f.digest = *digest;
  std::string why;
  auto decisions = sim::parse_decisions(j["decisions"].get<std::string>(), &why);
  if (!decisions) return err("/decisions", "bad decision list: " + why);
  f.decisions = std::move(*decisions);
  if (j.contains("status") && j["status"].is_string()) f.status = j["status"].get<std::string>();
  if (j.contains("failures") && j["failures"].is_array())
    for (const auto& l : j["failures"])
      if (l.is_string()) f.failures.push_back(l.get<std::string>());
  return f;
}

std::variant<std::string, InputError> write_run_file(const RunFile& f, const std::string& dir) {
  std::error_code ec;
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  const std::string path =
      (std::filesystem::path(dir.empty() ? "." : dir) / (f.name + ".run.json")).string();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << run_file_json(f);
  out.close();
  if (!out) return InputError{path, "", 0, 0, "cannot write the run file"};
  return path;
}

}  // namespace bpftsim::tools
