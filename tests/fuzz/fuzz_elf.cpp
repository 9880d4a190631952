// libFuzzer harness: the BPF ELF loader. The input bytes are written to a scratch `.o` file and
// go where a user's object goes:
//   * `bpftsim inspect FILE --json` and `bpftsim inspect FILE` (tools/cmd_inspect.cpp, driven
//     through its registered command with output to /dev/null): model::load_bpf_input
//     (model/libbpf_loader.h) and both renderings of what it found;
//   * model::bpf_object_check, as a scenario's `objects` entry is checked;
//   * model::bpf_object_load into a fresh Kernel (what `run` does when a scenario starts; it runs
//     the verifier, model::bpf_object_verify, first), then the Kernel's structural invariants.
// Bad objects must be LoadErrors (or exit 2 from inspect); nothing may crash, abort or throw.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "model/bpf_compile.h"
#include "model/bpf_object.h"
#include "model/kernel.h"
#include "model/libbpf_loader.h"
#include "sim/simulator.h"
#include "tests/fuzz/fuzz_common.h"
#include "tools/commands.h"

namespace {

using bpftsim::fuzz::fail;

int inspect(const std::string& path, bool json) {
  CLI::App app{"bpftsim"};
  std::function<int()> cmd = bpftsim::tools::command_registry().at("inspect")(app);
  std::vector<std::string> args = {path, "inspect"};  // CLI11 takes them in reverse
  if (json) args.insert(args.begin(), "--json");
  app.parse(args);
  return cmd();
}

}  // namespace

// libbpf asks malloc for sizes it computes from a malformed section (found: 2^64-272 for a
// program's instructions) and reports a NULL result as "failed to allocate memory", as the
// release tool does (exit 2); ASan would otherwise stop there with allocation-size-too-big.
extern "C" const char* __asan_default_options() {
  return "allocator_may_return_null=1";
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  bpftsim::fuzz::quiet_stdout();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace model = bpftsim::model;
  static const bpftsim::fuzz::ScratchFile scratch(".o");
  bpftsim::fuzz::write_file(scratch.path(), data, size);

  auto loaded = model::load_bpf_input(scratch.path());
  const int json_rc = inspect(scratch.path(), true);
  const int text_rc = inspect(scratch.path(), false);
  const int want = std::holds_alternative<model::LoadError>(loaded) ? bpftsim::tools::kExitBadInput
                                                                    : bpftsim::tools::kExitOk;
  if (json_rc != want || text_rc != want)
    fail("inspect exits " + std::to_string(json_rc) + " (--json) and " + std::to_string(text_rc) +
         " (text) for an object the loader " + (want == 0 ? "accepts" : "refuses"));
  if (std::holds_alternative<model::LoadError>(loaded)) return 0;
  const model::ObjectSpec& spec = std::get<model::ObjectSpec>(loaded);
  if (model::bpf_object_check(spec)) return 0;

  bpftsim::sim::SimConfig cfg;
  cfg.cpus = 2;
  cfg.keep_trace = false;
  bpftsim::sim::Simulator sim(cfg);
  model::Kernel k(sim);
  model::Process& proc = k.sys.new_process("loader");
  auto obj = model::bpf_object_load(k, proc, spec);
  (void)obj;
  for (const std::string& v : k.invariant_violations(false))
    fail("after loading the object: " + v);
  return 0;
}
