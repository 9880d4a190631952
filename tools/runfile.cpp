#include "tools/runfile.h"

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <set>
#include <string_view>

#include <nlohmann/json.hpp>

#include "model/input_file.h"
#include "tools/json_schema.h"

namespace bpftsim::tools {

namespace {
using Json = nlohmann::json;
constexpr int kRunFileFormat = 2;  // 2: decisions by stable key (sim/scheduler.h)

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

std::string RunFile::scenario_path(const std::string& run_file) const {
  const std::filesystem::path p(scenario);
  if (p.is_absolute()) return scenario;
  if (!cwd.empty()) return (std::filesystem::path(cwd) / p).lexically_normal().string();
  // No cwd (a run file kept next to its scenario, as traces/replay/ does): relative to the run
  // file's own directory.
  if (run_file.empty()) return scenario;
  return (std::filesystem::path(run_file).parent_path() / p).lexically_normal().string();
}

std::variant<Scenario, InputError> load_run_file_scenario(const RunFile& f,
                                                          const std::string& run_file) {
  const std::string path = f.scenario_path(run_file);
  auto loaded = load_scenario(path);
  if (auto* e = std::get_if<InputError>(&loaded); e && e->line == 0)
    return InputError{run_file, "/scenario", f.scenario_line, f.scenario_column,
                      fmt::format("the scenario {}: {}", path, e->message)};
  return loaded;
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
  f.window_ns = r.window_ns;
  f.decisions = r.decisions;
  f.digest = r.digest;
  f.status = sim::run_status_name(r.status);
  f.outcome = outcome_of(r);
  f.parts = sc.parts;
  f.failures = r.failures;
  return f;
}

std::string run_file_json(const RunFile& f) {
  nlohmann::ordered_json j;
  j["bpftsim_run"] = kRunFileFormat;
  j["tool_version"] = f.tool_version;
  j["scenario"] = f.scenario;
  j["cwd"] = f.cwd;
  j["scenario_hash"] = fmt::format("fnv1a64:{:016x}", f.scenario_hash);
  j["name"] = f.name;
  j["profile"] = f.profile;
  j["seed"] = f.seed;
  if (f.window_ns) j["window_ns"] = *f.window_ns;
  j["decisions"] = sim::format_decisions(f.decisions);
  j["digest"] = fmt::format("{:016x}", f.digest);
  j["status"] = f.status;
  if (!f.outcome.empty()) j["outcome"] = f.outcome;
  if (f.parts)
    j["parts"] = {{"programs", fmt::format("{:016x}", f.parts->programs)},
                  {"setup", fmt::format("{:016x}", f.parts->setup)},
                  {"expect", fmt::format("{:016x}", f.parts->expect)}};
  j["failures"] = f.failures;
  return j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

std::variant<RunFile, InputError> parse_run_file(const std::string& path, const std::string& text) {
  const JsonPositions pos(text);
  auto err = [&](const std::string& ptr, const std::string& msg) {
    const TextPos p = text_pos(text, pos.offset(ptr));
    return InputError{path, ptr, p.line, p.column, msg};
  };
  Json j;
  if (auto e = parse_json_input(text, pos, &j)) {
    const TextPos p = text_pos(text, e->offset);
    return InputError{path, e->pointer, p.line, p.column, e->message};
  }
  if (!j.is_object() || !j.contains("bpftsim_run"))
    return err("", "not a bpftsim run file (no \"bpftsim_run\" key)");
  if (j["bpftsim_run"] != kRunFileFormat)
    return err("/bpftsim_run", fmt::format("unsupported run file format {}, expected {}",
                                           j["bpftsim_run"].dump(), kRunFileFormat));
  static const std::set<std::string> known = {
      "bpftsim_run", "tool_version", "scenario",  "cwd",       "scenario_hash",
      "name",        "profile",      "seed",      "decisions", "digest",
      "status",      "failures",     "window_ns", "outcome",   "parts"};
  for (const auto& [k, v] : j.items())
    if (!known.count(k))
      return err("/" + json_pointer_escape(k),
                 fmt::format("unknown key '{}' in a run file",
                             k.size() > 60 ? k.substr(0, 57) + "..." : k));
  RunFile f;
  for (const char* key :
       {"tool_version", "scenario", "scenario_hash", "name", "profile", "decisions", "digest"})
    if (!j.contains(key) || !j[key].is_string())
      return err(std::string("/") + key, fmt::format("expected a string '{}'", key));
  if (!j.contains("seed") || !j["seed"].is_number_unsigned())
    return err("/seed", "expected an integer 'seed' in [0, 2^64-1]");
  if (j.contains("cwd") && !j["cwd"].is_string()) return err("/cwd", "expected a string 'cwd'");
  f.tool_version = j["tool_version"].get<std::string>();
  f.scenario = j["scenario"].get<std::string>();
  if (f.scenario.empty()) return err("/scenario", "expected the scenario's path, got \"\"");
  if (j.contains("cwd")) f.cwd = j["cwd"].get<std::string>();
  f.name = j["name"].get<std::string>();
  f.profile = j["profile"].get<std::string>();
  f.seed = j["seed"].get<std::uint64_t>();
  const auto hash = parse_hex64(j["scenario_hash"].get<std::string>());
  if (!hash) return err("/scenario_hash", "expected \"fnv1a64:<16 hex digits>\"");
  f.scenario_hash = *hash;
  const auto digest = parse_hex64(j["digest"].get<std::string>());
  if (!digest) return err("/digest", "expected 16 hex digits");
  f.digest = *digest;
  const std::string& decisions_text = j["decisions"].get_ref<const std::string&>();
  std::string why;
  auto decisions = sim::parse_decisions(decisions_text, &why);
  if (!decisions) return err("/decisions", why);
  if (j.contains("window_ns")) {
    if (!j["window_ns"].is_number_unsigned() || j["window_ns"].get<std::uint64_t>() > 1000000000)
      return err("/window_ns", "expected an integer 'window_ns' in [0, 10^9]");
    f.window_ns = j["window_ns"].get<std::int64_t>();
  }
  f.decisions = std::move(*decisions);
  if (j.contains("status")) {
    if (!j["status"].is_string()) return err("/status", "expected a string 'status'");
    f.status = j["status"].get<std::string>();
  }
  if (j.contains("outcome")) {
    if (!j["outcome"].is_string() || j["outcome"].get_ref<const std::string&>().size() > 4096)
      return err("/outcome", "expected a string 'outcome' of at most 4096 characters");
    f.outcome = j["outcome"].get<std::string>();
  }
  if (j.contains("parts")) {
    const Json& p = j["parts"];
    ScenarioParts parts;
    if (!p.is_object() || p.size() != 3) return err("/parts", "expected {programs, setup, expect}");
    for (auto [key, field] :
         {std::pair{"programs", &parts.programs}, std::pair{"setup", &parts.setup},
          std::pair{"expect", &parts.expect}}) {
      const auto v = p.contains(key) && p[key].is_string() ? parse_hex64(p[key].get<std::string>())
                                                           : std::nullopt;
      if (!v) return err(std::string("/parts/") + key, "expected 16 hex digits");
      *field = *v;
    }
    f.parts = parts;
  }
  if (j.contains("failures")) {
    if (!j["failures"].is_array()) return err("/failures", "expected an array of strings");
    for (std::size_t i = 0; i < j["failures"].size(); ++i) {
      if (!j["failures"][i].is_string())
        return err(fmt::format("/failures/{}", i), "expected a string");
      f.failures.push_back(j["failures"][i].get<std::string>());
    }
  }
  f.path = path;
  const TextPos at = text_pos(text, pos.offset("/scenario"));
  f.scenario_line = at.line;
  f.scenario_column = at.column;
  const TextPos dat = text_pos(text, pos.offset("/decisions"));
  f.decisions_line = dat.line;
  f.decisions_column = dat.column;
  return f;
}

std::variant<RunFile, InputError> read_run_file(const std::string& path) {
  std::string text;
  if (auto why = model::read_input_file(path, model::kMaxRunFileBytes, "run file", &text))
    return InputError{path, "", 0, 0, *why};
  return parse_run_file(path, text);
}

std::variant<std::string, InputError> write_run_file(const RunFile& f, const std::string& dir) {
  const std::string target = dir.empty() ? "." : dir;
  std::error_code ec;
  std::filesystem::create_directories(target, ec);
  if (ec)
    return InputError{target, "", 0, 0,
                      fmt::format("cannot create the run directory: {}", ec.message())};
  const std::string path = (std::filesystem::path(target) / (f.name + ".run.json")).string();
  const std::string text = run_file_json(f);
  if (text.size() > model::kMaxRunFileBytes)
    return InputError{path, "", 0, 0,
                      fmt::format("not written: the run file would be {} bytes, over the {}-byte "
                                  "limit that replay reads",
                                  text.size(), model::kMaxRunFileBytes)};
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return InputError{path, "", 0, 0,
                      fmt::format("cannot write the run file: {}", std::strerror(errno))};
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      ::close(fd);
      return InputError{path, "", 0, 0,
                        fmt::format("cannot write the run file: {}", std::strerror(err))};
    }
    done += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0)
    return InputError{path, "", 0, 0,
                      fmt::format("cannot write the run file: {}", std::strerror(errno))};
  return path;
}

std::optional<std::string> check_trace_output(const std::string& path) {
  if (path.empty() || path == "-") return std::nullopt;
  struct stat st {};
  const bool existed = ::stat(path.c_str(), &st) == 0;
  if (existed && S_ISDIR(st.st_mode)) return fmt::format("--trace {}: is a directory", path);
  // A device or a pipe (/dev/null, /dev/stdout): written as it is, nothing to check.
  if (existed && !S_ISREG(st.st_mode)) return std::nullopt;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return fmt::format("--trace {}: cannot open for writing: {}", path, std::strerror(errno));
  ::close(fd);
  if (!existed) ::unlink(path.c_str());
  return std::nullopt;
}

}  // namespace bpftsim::tools
