// Golden traces: every scenario below scenarios/ (races, errors, conformance, ...) replayed by the
// built bpftsim at its own seed must print, byte for byte, the text trace kept in
// traces/golden/<scenario name>.txt. A difference fails with the scenario, the line number and
// both versions of the first line that differs.
//
// Regenerate after an intended change of the model, the costs or the trace format:
//   tools/update-golden.sh          (or: BPFTSIM_UPDATE_GOLDEN=1 bpftsim_unit "[golden]")
// then review the diff of traces/golden/ like code.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

const fs::path kGoldenSource = BPFTSIM_SOURCE_DIR;

struct Scenario {
  fs::path file;
  std::string name;
};

// Every scenario file below scenarios/: *.json except the schema and run files.
std::vector<Scenario> all_scenarios() {
  std::vector<Scenario> out;
  for (const auto& e : fs::recursive_directory_iterator(kGoldenSource / "scenarios")) {
    if (!e.is_regular_file() || e.path().extension() != ".json") continue;
    const std::string base = e.path().filename().string();
    if (base == "scenario.schema.json") continue;
    if (base.size() > 9 && base.compare(base.size() - 9, 9, ".run.json") == 0) continue;
    std::ifstream in(e.path());
    const auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    INFO(e.path().string());
    REQUIRE((j.is_object() && j.contains("name") && j["name"].is_string()));
    out.push_back({e.path(), j["name"].get<std::string>()});
  }
  std::sort(out.begin(), out.end(),
            [](const Scenario& a, const Scenario& b) { return a.file < b.file; });
  return out;
}

std::vector<std::string> read_lines(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line))
    lines.push_back(line);
  return lines;
}

std::string quote(const std::string& s) {
  return "'" + s + "'";
}

// A temporary directory for one test run, removed at the end.
struct GoldenTempDir {
  GoldenTempDir() {
    std::string tmpl = (fs::temp_directory_path() / "bpftsim-golden-XXXXXX").string();
    path = mkdtemp(tmpl.data());
  }
  ~GoldenTempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path path;
};

// Runs the scenario with its text trace into `trace`; returns bpftsim's exit code.
int run_golden_scenario(const Scenario& s, const fs::path& trace, const fs::path& run_dir) {
  const std::string cmd = quote(BPFTSIM_BINARY) + " run " + quote(s.file.string()) + " --trace " +
                          quote(trace.string()) + " --trace-format text --run-dir " +
                          quote(run_dir.string()) + " > " + quote((run_dir / "out.txt").string()) +
                          " 2>&1";
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// Empty when equal, else where and how the first difference looks.
std::string first_difference(const std::vector<std::string>& golden,
                             const std::vector<std::string>& actual) {
  const std::size_t n = std::max(golden.size(), actual.size());
  for (std::size_t i = 0; i < n; ++i) {
    const bool hg = i < golden.size(), ha = i < actual.size();
    if (hg && ha && golden[i] == actual[i]) continue;
    std::ostringstream os;
    os << "first difference at line " << (i + 1) << " (golden has " << golden.size()
       << " lines, this run " << actual.size() << ")\n"
       << "  golden: " << (hg ? golden[i] : "<end of trace>") << "\n"
       << "  actual: " << (ha ? actual[i] : "<end of trace>");
    return os.str();
  }
  return {};
}

}  // namespace

TEST_CASE("every scenario replays its golden trace exactly", "[golden]") {
  const bool update = std::getenv("BPFTSIM_UPDATE_GOLDEN") != nullptr;
  const fs::path golden_dir = kGoldenSource / "traces" / "golden";
  const auto scenarios = all_scenarios();
  REQUIRE(!scenarios.empty());
  for (const auto& s : scenarios) {
    DYNAMIC_SECTION("scenario " << s.name) {
      GoldenTempDir tmp;
      const fs::path trace = tmp.path / "trace.txt";
      const int rc = run_golden_scenario(s, trace, tmp.path);
      const fs::path golden = golden_dir / (s.name + ".txt");
      INFO("scenario " << s.name << " (" << fs::relative(s.file, kGoldenSource).string() << ")");
      INFO("bpftsim exit code " << rc << "; its output:\n"
                                << [&] {
                                     std::ifstream in(tmp.path / "out.txt");
                                     std::stringstream ss;
                                     ss << in.rdbuf();
                                     return ss.str();
                                   }());
      // 0 pass, 1 an expectation failed (bpftsim check reports that); 2 is bad input.
      REQUIRE((rc == 0 || rc == 1));
      REQUIRE(fs::exists(trace));
      if (update) {
        fs::create_directories(golden_dir);
        fs::copy_file(trace, golden, fs::copy_options::overwrite_existing);
        continue;
      }
      INFO("golden trace " << fs::relative(golden, kGoldenSource).string()
                           << " (regenerate: tools/update-golden.sh)");
      REQUIRE(fs::exists(golden));
      const std::string diff = first_difference(read_lines(golden), read_lines(trace));
      INFO(diff);
      CHECK(diff.empty());
    }
  }
}

TEST_CASE("scenario names are unique (golden traces are keyed by name)", "[golden]") {
  std::set<std::string> names;
  for (const auto& s : all_scenarios()) {
    INFO("scenario file " << s.file.string() << " reuses the name " << s.name);
    CHECK(names.insert(s.name).second);
  }
}

TEST_CASE("every golden trace belongs to a scenario", "[golden]") {
  const fs::path golden_dir = kGoldenSource / "traces" / "golden";
  std::set<std::string> names;
  for (const auto& s : all_scenarios())
    names.insert(s.name);
  if (!fs::exists(golden_dir)) return;
  for (const auto& e : fs::directory_iterator(golden_dir)) {
    if (e.path().extension() != ".txt") continue;
    INFO("stale golden trace " << e.path().filename().string()
                               << ": no scenario has that name (delete it, or regenerate with "
                                  "tools/update-golden.sh)");
    CHECK(names.count(e.path().stem().string()) == 1);
  }
}
