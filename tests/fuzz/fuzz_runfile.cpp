// libFuzzer harness: the run-file reader (tools/runfile.h), which `bpftsim replay` calls first.
// The input bytes are written to a scratch `.run.json` file and read with tools::read_run_file.
// Properties: nothing crashes or throws; an error names the file and says what is wrong; a run
// file that reads is written back by run_file_json into one that reads to the same RunFile
// (every field, the decision list included).
//
// Seeds: with BPFTSIM_FUZZ_RUNFILE_SEEDS=DIR in the environment, the harness first runs a few of
// the tree's scenarios and writes their run files into DIR (tools/fuzz-long.sh and the CI smoke
// run pass that directory as a corpus too), so the seeds are always in the current format.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <variant>
#include <vector>

#include "tests/fuzz/fuzz_common.h"
#include "tools/runfile.h"
#include "tools/runner.h"
#include "tools/scenario.h"

namespace {

namespace tools = bpftsim::tools;
using bpftsim::fuzz::fail;

void write_seeds(const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<std::string> scenarios;
  for (const auto& e : fs::recursive_directory_iterator(BPFTSIM_SOURCE_DIR "/scenarios")) {
    const std::string name = e.path().filename().string();
    const auto ends = [&name](const std::string& s) {
      return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
    };
    if (e.is_regular_file() && ends(".json") && !ends(".schema.json") && !ends(".run.json"))
      scenarios.push_back(e.path().string());
  }
  std::sort(scenarios.begin(), scenarios.end());
  int written = 0;
  for (std::size_t i = 0; i < scenarios.size() && written < 6; i += 7) {
    auto loaded = tools::load_scenario(scenarios[i]);
    if (!std::holds_alternative<tools::Scenario>(loaded)) continue;
    const auto& sc = std::get<tools::Scenario>(loaded);
    tools::RunOptions opts;
    opts.keep_trace = false;
    auto ran = tools::run_scenario(sc, opts);
    if (!std::holds_alternative<tools::RunResult>(ran)) continue;
    auto path = tools::write_run_file(
        tools::make_run_file(sc, std::get<tools::RunResult>(ran), BPFTSIM_VERSION), dir);
    if (std::holds_alternative<std::string>(path)) ++written;
  }
  if (written == 0) fail("no run file seeds written into " + dir);
}

bool same(const tools::RunFile& a, const tools::RunFile& b) {
  return a.tool_version == b.tool_version && a.scenario == b.scenario && a.cwd == b.cwd &&
         a.scenario_hash == b.scenario_hash && a.name == b.name && a.profile == b.profile &&
         a.seed == b.seed && a.decisions == b.decisions && a.digest == b.digest &&
         a.status == b.status && a.failures == b.failures;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("BPFTSIM_FUZZ_RUNFILE_SEEDS"); dir != nullptr && *dir != '\0')
    write_seeds(dir);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bpftsim::fuzz::ScratchFile scratch(".run.json");
  static const bpftsim::fuzz::ScratchFile again(".again.run.json");
  const std::string text(reinterpret_cast<const char*>(data), size);
  bpftsim::fuzz::write_file(scratch.path(), data, size);
  auto read = tools::read_run_file(scratch.path());
  if (auto* e = std::get_if<tools::InputError>(&read)) {
    if (e->message.empty()) fail("an input error without a message");
    if (e->file != scratch.path()) fail("an input error naming " + e->file);
    return 0;
  }
  const tools::RunFile& f = std::get<tools::RunFile>(read);
  const std::string json = tools::run_file_json(f);
  bpftsim::fuzz::write_file(again.path(), reinterpret_cast<const std::uint8_t*>(json.data()),
                            json.size());
  auto reread = tools::read_run_file(again.path());
  if (auto* e = std::get_if<tools::InputError>(&reread))
    fail("a run file written back from one that read does not read: " + e->text());
  if (!same(f, std::get<tools::RunFile>(reread)))
    fail("a run file written back reads to a different RunFile");
  return 0;
}
