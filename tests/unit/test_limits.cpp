// Issue 7: legal but hostile inputs end within seconds with exit 0, 1 or 2 and a message that
// says where and why, never a crash, a hang or gigabytes of memory. Each class runs through the
// built binary (also under ASan+UBSan in the sanitizer build):
//   huge maps and global data   refused when the object is opened, by inspect and run alike (2)
//   clang on a device or FIFO   #include "/dev/zero" refused, a blocking #include killed at the
//                               time limit; no temporary left in the compile cache (2)
//   costs near 2^63             a clean `limit` (1), or the schema's range error (2)
//   an action at 2^63-1 ns      the progress display on a terminal does not step empty time
//   runaway scenarios           steps, BPF instructions, trace records kept: `limit` (1) naming
//                               the limit and the flag that raises it
// Scenario and program files used here live in tests/data (not under scenarios/, which `check`
// runs); everything written goes to a fresh temporary directory.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "model/libbpf_loader.h"
#include "sim/simulator.h"
#include "tests/unit/tool_harness.h"
#include "tests/unit/world.h"
#include "tools/report.h"
#include "tools/runner.h"
#include "tools/scenario.h"

using namespace bpftsim;
using namespace bpftsim::testing;
namespace fs = std::filesystem;

namespace {

const fs::path kData = fs::path(BPFTSIM_SOURCE_DIR) / "tests" / "data";

// Runs `env_and_cmd` (a shell command line) in `cwd`; BPFTSIM is the built binary.
Cmd shell(const std::string& env_and_cmd, const fs::path& cwd) {
  return run_shell("cd '" + cwd.string() + "' && BPFTSIM='" + std::string(BPFTSIM_BINARY) +
                   "' && " + env_and_cmd + " 2>&1");
}

// bpftsim with a private compile cache in `dir`.
Cmd tool(const std::string& args, const TempDir& dir) {
  return shell("BPFTSIM_CACHE_DIR='" + (dir.path / "cache").string() + "' \"$BPFTSIM\" " + args,
               dir.path);
}

bool contains(const std::string& s, const std::string& what) {
  return s.find(what) != std::string::npos;
}

// Files of the compile cache whose name starts with '.' (temporaries).
std::vector<std::string> cache_temporaries(const TempDir& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir.path / "cache", ec), end; !ec && it != end; it.increment(ec))
    if (it->path().filename().string().rfind('.', 0) == 0)
      out.push_back(it->path().filename().string());
  return out;
}

std::string scenario_with_object(const fs::path& object, const std::string& prog) {
  return R"({"name": "huge", "description": "an object over the limits", "cpus": 1,
    "objects": [{"name": "t", "path": ")" +
         object.string() + R"("}],
    "timeline": [{"at_ns": 0, "cpu": 0, "action": "run", "prog": "t.)" +
         prog + R"("}], "expect": {}})";
}

}  // namespace

TEST_CASE("maps and global data over the size limits are refused at load, inspect and run alike",
          "[limits]") {
  TempDir dir;
  const fs::path array = kData / "big_array.bpf.c";
  const fs::path bss = kData / "big_bss.bpf.c";

  const Cmd ia = tool("inspect '" + array.string() + "'", dir);
  INFO(ia.out);
  CHECK(ia.code == 2);
  CHECK(contains(ia.out, "big_array.bpf.c"));
  CHECK(contains(ia.out, "map 'big' (array, max_entries 536870913, key_size 4, value_size 8)"));
  CHECK(contains(ia.out, "bpftsim's limit is 64.0 MiB per map"));
  const Cmd ra =
      tool("run '" + dir.file("a.json", scenario_with_object(array, "prog")).string() + "'", dir);
  INFO(ra.out);
  CHECK(ra.code == 2);
  CHECK(contains(ra.out, "a.json"));
  CHECK(contains(ra.out, "/objects/0/path"));
  CHECK(contains(ra.out, "bpftsim's limit is 64.0 MiB per map"));

  const Cmd ib = tool("inspect '" + bss.string() + "'", dir);
  INFO(ib.out);
  CHECK(ib.code == 2);
  CHECK(contains(ib.out, "big_bss.bpf.c"));
  CHECK(contains(ib.out, "section '.bss': 2147483647 bytes of global data"));
  CHECK(contains(ib.out, "per section"));
  const Cmd rb =
      tool("run '" + dir.file("b.json", scenario_with_object(bss, "prog")).string() + "'", dir);
  INFO(rb.out);
  CHECK(rb.code == 2);
  CHECK(contains(rb.out, "section '.bss'"));
  // Refused before anything is allocated: seconds, not the >10 s and ~5 GB of a 2 GiB .bss.
  CHECK(ib.seconds < 30);
  CHECK(rb.seconds < 30);
}

TEST_CASE("an ELF whose .bss size field says 2^31-1 is refused quickly", "[limits]") {
  TempDir dir;
  // A real object with a .bss section, its section header's sh_size patched.
  const fs::path src = fs::path(BPFTSIM_PROGS_DIR) / "race_ctrl_c.bpf.o";
  std::ifstream in(src, std::ios::binary);
  REQUIRE(in);
  std::string elf{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  auto u16 = [&](std::size_t off) {
    std::uint16_t v;
    std::memcpy(&v, elf.data() + off, 2);
    return v;
  };
  auto u32 = [&](std::size_t off) {
    std::uint32_t v;
    std::memcpy(&v, elf.data() + off, 4);
    return v;
  };
  auto u64 = [&](std::size_t off) {
    std::uint64_t v;
    std::memcpy(&v, elf.data() + off, 8);
    return v;
  };
  const std::uint64_t shoff = u64(0x28);
  const std::uint16_t shentsize = u16(0x3a), shnum = u16(0x3c), shstrndx = u16(0x3e);
  const std::uint64_t strtab = u64(shoff + std::uint64_t{shstrndx} * shentsize + 0x18);
  bool patched = false;
  for (std::uint16_t i = 0; i < shnum; ++i) {
    const std::uint64_t sh = shoff + std::uint64_t{i} * shentsize;
    if (std::strcmp(elf.c_str() + strtab + u32(sh), ".bss") != 0) continue;
    const std::uint64_t size = 0x7fffffff;
    std::memcpy(elf.data() + sh + 0x20, &size, 8);
    patched = true;
  }
  REQUIRE(patched);
  const fs::path obj = dir.file("huge_bss.bpf.o", elf);
  const Cmd r = tool("inspect '" + obj.string() + "'", dir);
  INFO(r.out);
  CHECK(r.code == 2);
  CHECK(contains(r.out, "huge_bss.bpf.o"));
  CHECK(r.seconds < 30);
}

TEST_CASE("clang never hangs on an #include: devices refused, a blocking compile killed",
          "[limits]") {
  TempDir dir;
  dir.file("devzero.bpf.c", "#include \"/dev/zero\"\nint x;\n");
  const Cmd z = tool("inspect devzero.bpf.c", dir);
  INFO(z.out);
  CHECK(z.code == 2);
  CHECK(contains(z.out, "devzero.bpf.c: includes /dev/zero, which is not a regular file"));
  CHECK(cache_temporaries(dir).empty());

  // A FIFO nobody writes to: clang blocks opening it until the time limit kills it.
  REQUIRE(::mkfifo((dir.path / "fifo").c_str(), 0600) == 0);
  dir.file("fifo.bpf.c", "#include \"fifo\"\nint x;\n");
  const Cmd f = shell("BPFTSIM_CLANG_TIMEOUT=2 BPFTSIM_CACHE_DIR='" +
                          (dir.path / "cache").string() + "' \"$BPFTSIM\" inspect fifo.bpf.c",
                      dir.path);
  INFO(f.out);
  CHECK(f.code == 2);
  CHECK(contains(f.out, "fifo.bpf.c: clang did not finish within 2 s and was killed"));
  CHECK(contains(f.out, "BPFTSIM_CLANG_TIMEOUT"));
  CHECK(f.seconds < 20);
  INFO("left in the cache: " << cache_temporaries(dir).size());
  CHECK(cache_temporaries(dir).empty());

  const Cmd bad = shell("BPFTSIM_CLANG_TIMEOUT=soon \"$BPFTSIM\" inspect fifo.bpf.c", dir.path);
  CHECK(bad.code == 2);
  CHECK(contains(bad.out, "BPFTSIM_CLANG_TIMEOUT='soon' is not a number of seconds"));
}

TEST_CASE("step costs near 2^63 end the run cleanly, never wrap", "[limits]") {
  CHECK(sim::add_sat(sim::kTimeNever - 5, 10) == sim::kTimeNever);
  CHECK(sim::add_sat(7, 10) == 17);
  CHECK(sim::mul_sat(sim::kTimeNever / 2, 3) == sim::kTimeNever);
  CHECK(sim::mul_sat(3, ~std::uint64_t{0}) == sim::kTimeNever);
  CHECK(sim::mul_sat(3, 4) == 12);

  // Through the engine: a step whose cost takes the clock past 2^63-1 ns.
  World w(1);
  w.task_at(100, 0, "long step", [](sim::Context& c) -> sim::Co<void> {
    co_await c.step(10);
    co_await c.step(sim::kTimeNever - 50);
  });
  CHECK(w.run() == sim::RunStatus::kLimit);
  INFO(w.findings_text());
  REQUIRE(w.sim.findings().size() == 1);
  CHECK(w.sim.findings()[0].kind == sim::FindingKind::kLiveness);
  CHECK(contains(w.sim.findings()[0].message, "virtual time overflow"));

  // Through the binary: costs.insn_ns near 2^63 (the schema may refuse it: exit 2 naming the
  // place; or the run ends at the limit: exit 1). Never the old "negative step cost" abort.
  TempDir dir;
  const fs::path sc = dir.file("cost.json", R"({"name": "cost", "description": "huge insn cost",
    "cpus": 1, "costs": {"insn_ns": 9223372036854775000},
    "objects": [{"name": "t", "path": ")" + (kData / "spin_rearm.bpf.c").string() +
                                                R"("}],
    "timeline": [{"at_ns": 0, "cpu": 0, "action": "run", "prog": "t.arm"}], "expect": {}})");
  const Cmd r = tool("run '" + sc.string() + "' --run-dir .", dir);
  INFO(r.out);
  CHECK((r.code == 1 || r.code == 2));
  CHECK((contains(r.out, "virtual time overflow") || contains(r.out, "/costs/insn_ns")));
  CHECK_FALSE(contains(r.out, "internal error"));

  // Work at the very end of time (an action at 2^63-1 ns, the time limit raised to match).
  const fs::path end = dir.file("end.json", R"({"name": "end", "description": "the end of time",
    "cpus": 1, "limits": {"max_time_ns": 9223372036854775807},
    "objects": [{"name": "t", "path": ")" + (kData / "spin_rearm.bpf.c").string() +
                                                R"("}],
    "timeline": [{"at_ns": 9223372036854775807, "cpu": 0, "action": "run", "prog": "t.arm"}],
    "expect": {}})");
  const Cmd e = tool("run '" + end.string() + "' --run-dir .", dir);
  INFO(e.out);
  CHECK((e.code == 1 || e.code == 2));
  CHECK((contains(e.out, "virtual time overflow") || contains(e.out, "end.json")));
  CHECK_FALSE(contains(e.out, "internal error"));

  // A jitter of 2^32-1 ns once made a 32-bit option count of 0 (SIGFPE in the PRNG).
  for (const char* jitter : {"4294967295", "4294967296"}) {
    const fs::path js =
        dir.file("jitter.json", std::string(R"({"name": "jitter", "description": "huge jitter",
      "cpus": 1, "jitter_ns": )") + jitter +
                                    R"(,
      "objects": [{"name": "t", "path": ")" +
                                    (kData / "spin_rearm.bpf.c").string() + R"("}],
      "timeline": [{"at_ns": 0, "cpu": 0, "action": "run", "prog": "t.arm"}], "expect": {}})");
    const Cmd j = tool("run '" + js.string() + "' --run-dir .", dir);
    INFO(j.out);
    CHECK(j.code == 2);
    CHECK(contains(j.out, "jitter.json"));
    CHECK(contains(j.out, "/jitter_ns"));
  }
}

TEST_CASE("the progress display skips empty virtual time (an action at 2^63-1 ns)", "[limits]") {
  TempDir dir;
  const fs::path sc =
      dir.file("far.json", R"({"name": "far", "description": "an action at the end of time",
    "cpus": 1, "objects": [{"name": "t", "path": ")" +
                               (kData / "spin_rearm.bpf.c").string() + R"("}],
    "timeline": [{"at_ns": 9223372036854775807, "cpu": 0, "action": "run", "prog": "t.arm"}],
    "expect": {}})");
  // The library with a progress callback: one call per slice that has events, not 2^43.
  auto loaded = tools::load_scenario(sc.string());
  if (auto* e = std::get_if<tools::InputError>(&loaded)) {
    // The schema may cap at_ns below 2^63-1 (then this input is refused with its place).
    CHECK(contains(e->text(), "/timeline/0/at_ns"));
    return;
  }
  tools::RunOptions opts;
  int calls = 0;
  opts.progress = [&](sim::TimeNs) { ++calls; };
  opts.max_insns = 10'000'000;
  auto ran = tools::run_scenario(std::get<tools::Scenario>(loaded), opts);
  REQUIRE(std::holds_alternative<tools::RunResult>(ran));
  CHECK(calls < 100);
  // And the binary on a terminal (script(1) gives it one): it ends, within seconds.
  const Cmd r = shell("BPFTSIM_CACHE_DIR='" + (dir.path / "cache").string() +
                          "' timeout 60 script -qec \"$BPFTSIM run far.json --run-dir . "
                          "--max-insns 10000000\" /dev/null",
                      dir.path);
  INFO(r.out);
  CHECK((r.code == 0 || r.code == 1));
  CHECK(contains(r.out, "far"));
  CHECK(r.seconds < 50);
}

TEST_CASE("runaway scenarios end at a limit that says how to raise it", "[limits]") {
  TempDir dir;
  const std::string ctrl_c = (kData / "ctrl_c_one_second.json").string();

  // Steps (4.5-ctrl-c with the exit at 1 s: re-arming timers forever).
  const Cmd steps = tool("run '" + ctrl_c + "' --run-dir . --max-steps 100000", dir);
  INFO(steps.out);
  CHECK(steps.code == 1);
  CHECK(contains(steps.out, "status=limit"));
  CHECK(contains(steps.out, "step limit of 100000 reached"));
  CHECK(contains(steps.out, "--max-steps N or \"limits\": {\"max_steps\": N}"));

  // Trace records kept for a trace file.
  const Cmd recs =
      tool("run '" + ctrl_c + "' --run-dir . --trace t.txt --max-trace-records 20000", dir);
  INFO(recs.out);
  CHECK(recs.code == 1);
  CHECK(contains(recs.out, "trace record limit of 20000 records kept in memory reached"));
  CHECK(contains(recs.out, "--max-trace-records N, or run without --trace"));

  // BPF instructions (a callback spinning ~700k instructions per run, re-arming forever).
  const Cmd insns = tool(
      "run '" + (kData / "spin_rearm.json").string() + "' --run-dir . --max-insns 5000000", dir);
  INFO(insns.out);
  CHECK(insns.code == 1);
  CHECK(contains(insns.out, "status=limit"));
  CHECK(contains(insns.out, "BPF instruction limit of 5000000 reached"));
  CHECK(contains(insns.out, "--max-insns N"));

  // check passes the step limit on, and reports the limit the same way.
  const Cmd check = tool("check '" + ctrl_c + "' --run-dir . --max-steps 50000", dir);
  INFO(check.out);
  CHECK(check.code == 1);
  CHECK(contains(check.out, "step limit of 50000 reached"));
}

TEST_CASE("without a trace file only the tail of the trace stays in memory", "[limits]") {
  auto loaded = tools::load_scenario((kData / "ctrl_c_one_second.json").string());
  REQUIRE(std::holds_alternative<tools::Scenario>(loaded));
  tools::RunOptions opts;
  opts.full_trace = false;
  opts.max_steps = 200'000;
  auto ran = tools::run_scenario(std::get<tools::Scenario>(loaded), opts);
  REQUIRE(std::holds_alternative<tools::RunResult>(ran));
  const tools::RunResult& r = std::get<tools::RunResult>(ran);
  CHECK(r.status == sim::RunStatus::kLimit);
  CHECK(r.records > tools::kTailRecords);  // emitted (and digested)
  CHECK(r.trace().records().size() <= tools::kTailRecords);
  CHECK(r.trace().records().size() >= tools::kTailRecords / 2);
  CHECK(r.trace().dropped() + r.trace().records().size() == r.records);
  // The failure report still has the last events of the CPU.
  CHECK_FALSE(tools::last_events_per_cpu(r.trace(), {0}, 5).empty());
}
