// `bpftsim cflags`: an object compiled by hand with the printed command is the object the scenario
// loader compiles (same digest); an object without BTF says to add -g; a scenario's per-object
// cflags reach clang and are refused for a prebuilt object.
#include <catch2/catch.hpp>

#include <string>

#include "tests/unit/tool_harness.h"

using namespace bpftsim::testing;

namespace {

const std::string kCflagsSource =
    std::string(BPFTSIM_SOURCE_DIR) + "/scenarios/progs/race_cancel_free.bpf.c";

std::string scenario_for(const std::string& object, const std::string& extra = "") {
  return R"({"name": "cflags", "description": "4.9's actors", "cpus": 2,
 "objects": [{"name": "t", "path": ")" +
         object + "\"" + extra + R"(}],
 "timeline": [
  {"at_ns": 0, "cpu": 0, "action": "run", "prog": "t.setup"},
  {"at_ns": 10000, "cpu": 0, "action": "run", "prog": "t.canceller", "args": [75]},
  {"at_ns": 10189, "cpu": 1, "action": "map_update", "map": "t.m", "key": 0, "value": "0x00000000000000000000000000000000"},
  {"at_ns": 30000, "cpu": 1, "action": "exit"}],
 "expect": {"findings": {"allow_other_findings": true}}})";
}

std::string digest_of(const Cmd& c) {
  const auto at = c.out.find("digest ");
  return at == std::string::npos ? "" : c.out.substr(at, 24);
}

}  // namespace

TEST_CASE("cflags: a hand-compiled object runs exactly as the loader's own compile", "[cflags]") {
  TempDir dir;
  const Cmd flags = run_tool("cflags", dir.path);
  CHECK(flags.code == 0);
  CHECK_THAT(flags.out, Catch::Contains("-g -target bpf -mcpu=v3"));
  const Cmd cmd = run_tool("cflags " + kCflagsSource + " -o by_hand.o", dir.path);
  REQUIRE(cmd.code == 0);
  REQUIRE(cmd.out.rfind("clang ", 0) == 0);
  const std::string line = cmd.out.substr(0, cmd.out.find('\n'));
  const Cmd compiled = run_shell("cd '" + dir.path.string() + "' && " + line + " 2>&1");
  INFO(compiled.out);
  REQUIRE(compiled.code == 0);
  dir.file("src.json", scenario_for(kCflagsSource));
  dir.file("obj.json", scenario_for((dir.path / "by_hand.o").string()));
  const Cmd a = run_tool("run src.json --digest", dir.path);
  const Cmd b = run_tool("run obj.json --digest", dir.path);
  INFO(a.out << b.out);
  REQUIRE(!digest_of(a).empty());
  CHECK(digest_of(a) == digest_of(b));

  // Without -g there is no BTF: the loader says what to add.
  std::string no_g = line;
  no_g.replace(no_g.find(" -g "), 4, " ");
  no_g.replace(no_g.find("by_hand.o"), 9, "no_btf.o");
  REQUIRE(run_shell("cd '" + dir.path.string() + "' && " + no_g + " 2>&1").code == 0);
  dir.file("nog.json", scenario_for((dir.path / "no_btf.o").string()));
  const Cmd nog = run_tool("run nog.json", dir.path);
  CHECK(nog.code == 2);
  CHECK_THAT(nog.out, Catch::Contains("compile it with -g"));
  CHECK_THAT(nog.out, Catch::Contains("/objects/0/path"));
}

TEST_CASE("cflags: a scenario's object cflags reach clang; none for a prebuilt object",
          "[cflags]") {
  TempDir dir;
  // A flag that breaks the compile shows the flags got to clang.
  dir.file("bad.json",
           scenario_for(kCflagsSource, R"(, "cflags": ["-include", "no_such_helper.h"])"));
  const Cmd bad = run_tool("run bad.json", dir.path);
  CHECK(bad.code == 2);
  CHECK_THAT(bad.out, Catch::Contains("no_such_helper"));
  // A harmless define compiles and runs.
  dir.file("ok.json", scenario_for(kCflagsSource, R"(, "cflags": ["-DBPFTSIM_UNUSED_DEFINE=1"])"));
  CHECK(run_tool("run ok.json", dir.path).code == 0);
  const std::string out = run_tool("cflags " + kCflagsSource + " -o p.o", dir.path).out;
  REQUIRE(run_shell("cd '" + dir.path.string() + "' && " + out.substr(0, out.find('\n')) + " 2>&1")
              .code == 0);
  dir.file("obj.json", scenario_for((dir.path / "p.o").string(), R"(, "cflags": ["-DX=1"])"));
  const Cmd obj = run_tool("run obj.json", dir.path);
  CHECK(obj.code == 2);
  CHECK_THAT(obj.out, Catch::Contains("/objects/0/cflags"));
  CHECK_THAT(obj.out, Catch::Contains("cflags apply to a BPF C source"));
}
