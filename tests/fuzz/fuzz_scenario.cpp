// libFuzzer harness: the scenario loader and validator, then the runner. The input bytes are a
// scenario file's text; they go through tools::parse_scenario (what `bpftsim run` and `check`
// call after reading the file: JSON, the schema, names resolved, objects compiled and loaded),
// anchored in scenarios/races/ so that the seed corpus's "../progs/<name>.bpf.c" objects resolve.
// A scenario that loads is then run (tools::run_scenario) with at most kMaxSteps steps and
// without keeping its trace, and its result is judged (failures are fine: the point is that
// every input ends as an InputError or a RunResult, never a crash, an abort or a hang).
#include <algorithm>
#include <cstdint>
#include <string>
#include <variant>

#include "tests/fuzz/fuzz_common.h"
#include "tools/runner.h"
#include "tools/scenario.h"

namespace {

constexpr std::uint64_t kMaxSteps = 20'000;
constexpr bpftsim::sim::TimeNs kMaxTimeNs = 10'000'000'000;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace tools = bpftsim::tools;
  using bpftsim::fuzz::fail;
  const std::string text(reinterpret_cast<const char*>(data), size);
  static const std::string file = BPFTSIM_SOURCE_DIR "/scenarios/races/fuzz-input.json";
  tools::ScenarioResult loaded = tools::parse_scenario(file, text);
  if (auto* e = std::get_if<tools::InputError>(&loaded)) {
    if (e->message.empty()) fail("an input error without a message");
    if (e->file != file) fail("an input error naming " + e->file);
    return 0;
  }
  tools::Scenario& sc = std::get<tools::Scenario>(loaded);

  sc.max_steps = std::min(sc.max_steps.value_or(kMaxSteps), kMaxSteps);
  sc.max_time_ns = std::min(sc.max_time_ns.value_or(kMaxTimeNs), kMaxTimeNs);
  tools::RunOptions opts;
  opts.keep_trace = false;
  auto ran = tools::run_scenario(sc, opts);
  if (auto* e = std::get_if<tools::InputError>(&ran))
    if (e->message.empty()) fail("a run's input error without a message");
  return 0;
}
