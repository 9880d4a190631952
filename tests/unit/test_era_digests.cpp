// The eras of the bpf_spin_lock design stay byte-identical: every scenario of
// scenarios/{races,errors,fixes,conformance} run on each version from v5.15 to v6.14 gives the
// trace digest that traces/era-digests.txt lists for it (a scenario that does not load on a
// version, such as one calling a kfunc of v7.0, is not listed there). The table was written by
// the binary before v7.0's lock-free unit existed and checked against it after; a change that
// alters those eras' traces shows here. BPFTSIM_UPDATE_GOLDEN=1 rewrites the table (review its
// diff like code).
#include <fmt/format.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "tests/unit/scenario_harness.h"

namespace fs = std::filesystem;
using namespace bpftsim;
using namespace bpftsim::tools;

namespace {

const fs::path kEraSource = BPFTSIM_SOURCE_DIR;
const fs::path kTable = kEraSource / "traces" / "era-digests.txt";
constexpr const char* kVersions[] = {"v5.15", "v5.16", "v5.17", "v6.1", "v6.4",
                                     "v6.7",  "v6.8",  "v6.10", "v6.14"};

std::vector<std::string> scenario_files() {
  std::vector<std::string> out;
  for (const char* d : {"races", "errors", "fixes", "conformance"})
    for (const auto& e : fs::directory_iterator(kEraSource / "scenarios" / d))
      if (e.path().extension() == ".json")
        out.push_back(fs::relative(e.path(), kEraSource).generic_string());
  std::sort(out.begin(), out.end());
  return out;
}

// The digest of `file` on `profile`, or "" when it does not load there.
std::string digest_of(const Scenario& sc, const std::string& profile) {
  RunOptions opts;
  opts.profile = profile;
  opts.keep_trace = false;
  auto r = run_scenario(sc, opts);
  if (std::holds_alternative<InputError>(r)) return "";
  return fmt::format("{:016x}", std::get<RunResult>(r).digest);
}

}  // namespace

TEST_CASE("every scenario keeps its trace on v5.15 .. v6.14 (traces/era-digests.txt)",
          "[golden][eras]") {
  if (std::getenv("BPFTSIM_UPDATE_GOLDEN") != nullptr) {
    std::ofstream out(kTable, std::ios::trunc);
    for (const std::string& f : scenario_files()) {
      const Scenario sc = testing::load(kEraSource / f);
      for (const char* v : kVersions)
        if (const std::string d = digest_of(sc, v); !d.empty())
          out << f << " " << v << " " << d << "\n";
    }
    return;
  }
  std::ifstream in(kTable);
  REQUIRE(in.good());
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> rows;
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string file, profile, digest;
    REQUIRE((ls >> file >> profile >> digest));
    rows[file].emplace_back(profile, digest);
    ++n;
  }
  CHECK(n >= 700);
  for (const auto& [file, want] : rows) {
    DYNAMIC_SECTION(file) {
      REQUIRE(fs::exists(kEraSource / file));
      const Scenario sc = testing::load(kEraSource / file);
      for (const auto& [profile, digest] : want) {
        INFO(file << " on " << profile);
        CHECK(digest_of(sc, profile) == digest);
      }
    }
  }
}
