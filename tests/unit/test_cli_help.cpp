// What a user reads before writing a scenario: `run --help` lists the profiles and how fixes
// combine; `inspect` lists the global variables a scenario can name, with their initial values.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "model/profile.h"
#include "tests/unit/tool_harness.h"

using namespace bpftsim::testing;

TEST_CASE("run --help and check --help list every fix and how fixes combine", "[cli]") {
  TempDir dir;
  for (const char* cmd : {"run --help", "check --help"}) {
    const Cmd help = run_tool(cmd, dir.path);
    INFO(help.out);
    CHECK(help.code == 0);
    CHECK_THAT(help.out, Catch::Contains("joined with '+', e.g. v5.15+2.9+2.12"));
    for (const auto& v : bpftsim::model::kernel_versions())
      CHECK_THAT(help.out, Catch::Contains(v.name));
    for (const auto& f : bpftsim::model::profile_changes()) {
      CHECK_THAT(help.out, Catch::Contains("+" + f.id + "  " + f.title));
      std::string needs;
      for (const auto& r : f.requires_fixes)
        needs += (needs.empty() ? "+" : " +") + r;
      if (!needs.empty()) CHECK_THAT(help.out, Catch::Contains("(needs " + needs + ")"));
    }
  }
}

TEST_CASE("profiles lists every version with what it changes, and every single change", "[cli]") {
  TempDir dir;
  const Cmd c = run_tool("profiles", dir.path);
  INFO(c.out);
  CHECK(c.code == 0);
  std::size_t at = 0;
  for (const auto& v : bpftsim::model::kernel_versions()) {
    // In order, each on its own line, followed by the changes it adds.
    const auto line = c.out.find("\n" + v.name + "\n", at == 0 ? 0 : at - 1);
    REQUIRE(line != std::string::npos);
    at = line + 1;
    for (const auto& id : v.adds) {
      const auto* f = &bpftsim::model::profile_changes().front();
      for (const auto& g : bpftsim::model::profile_changes())
        if (g.id == id) f = &g;
      const auto row = c.out.find("+" + id, at);
      REQUIRE(row != std::string::npos);
      CHECK(c.out.find(f->title, row) != std::string::npos);
    }
  }
  CHECK_THAT(c.out, Catch::Contains("v5.15+2.1 is v5.16"));
  CHECK_THAT(c.out, Catch::Contains("not modelled: 2.3"));
  for (const auto& f : bpftsim::model::profile_changes())
    CHECK_THAT(c.out, Catch::Contains("+" + f.id));
  CHECK_THAT(c.out, Catch::Contains("(needs +2.9)"));
}

TEST_CASE("inspect lists the global variables with their sections and initial values", "[cli]") {
  TempDir dir;
  const std::string src =
      std::string(BPFTSIM_SOURCE_DIR) + "/scenarios/progs/race_cancel_free.bpf.c";
  const Cmd text = run_tool("inspect " + src, dir.path);
  INFO(text.out);
  REQUIRE(text.code == 0);
  CHECK_THAT(text.out, Catch::Contains("global variables (name them <object>.<GLOBAL>"));
  CHECK_THAT(text.out, Catch::Matches("[\\s\\S]*setup_start +\\.data +0 +8 +signed +99[\\s\\S]*"));
  CHECK_THAT(text.out, Catch::Matches("[\\s\\S]*t2_callbacks +\\.bss +0 +8 +signed +0[\\s\\S]*"));
  const Cmd json = run_tool("inspect --json " + src, dir.path);
  REQUIRE(json.code == 0);
  const auto doc = nlohmann::json::parse(json.out);
  bool found = false;
  for (const auto& m : doc["maps"])
    if (m["name"] == ".data")
      for (const auto& v : m["vars"])
        if (v["name"] == "cancel_ret") {
          found = true;
          CHECK(v["offset"] == 16);
          CHECK(v["size"] == 8);
          CHECK(v["sign"] == "signed");
        }
  CHECK(found);
}

TEST_CASE("a comment may stand in every section of a scenario, and changes nothing", "[cli]") {
  TempDir dir;
  const std::string obj =
      std::string(BPFTSIM_SOURCE_DIR) + "/scenarios/progs/race_cancel_free.bpf.c";
  auto scenario = [&](bool comments) {
    auto c = [&](const std::string& text) {
      return comments ? "\"comment\": \"" + text + "\", " : std::string();
    };
    return "{\"name\": \"cm\", \"description\": \"d\", " + c("top") + "\"cpus\": 1,\n" +
           " \"objects\": [{" + c("obj") + "\"name\": \"t\", \"path\": \"" + obj + "\"}],\n" +
           " \"costs\": {" + c("costs") + "\"insn_ns\": 1}, \"limits\": {" + c("limits") +
           "\"max_steps\": 100000},\n" + " \"faults\": [{" + c("fault") +
           "\"site\": \"htab.kmalloc\"}],\n" + " \"timeline\": [{" + c("action") +
           "\"at_ns\": 0, \"action\": \"run\", \"prog\": \"t.setup\"}],\n" + " \"expect\": {" +
           c("expect") + "\"findings\": {" + c("findings") + "\"leak\": 0}, \"alive\": {" +
           c("alive") + "\"armed_timers\": 0},\n" + "  \"finding_match\": [], \"maps\": [{" +
           c("map") + "\"map\": \"t.m\", \"key\": 0, \"present\": true}]}}\n";
  };
  dir.file("with.json", scenario(true));
  dir.file("without.json", scenario(false));
  const Cmd with = run_tool("run with.json --digest", dir.path);
  const Cmd without = run_tool("run without.json --digest", dir.path);
  INFO(with.out << without.out);
  CHECK(with.code == 0);
  CHECK(without.code == 0);
  CHECK(with.out.substr(with.out.find("digest ")) ==
        without.out.substr(without.out.find("digest ")));
}

TEST_CASE("expect_ret takes a set or a comparison: {\"in\": [0, -35]}, \"!=0\", \">=0\"", "[cli]") {
  TempDir dir;
  const std::string obj =
      std::string(BPFTSIM_SOURCE_DIR) + "/scenarios/progs/race_cancel_free.bpf.c";
  auto scenario = [&](const std::string& want) {
    return R"({"name": "ret", "description": "d", "cpus": 1,
 "objects": [{"name": "t", "path": ")" +
           obj + R"("}],
 "timeline": [{"at_ns": 0, "action": "run", "prog": "t.setup", "expect_ret": )" +
           want +
           R"(}],
 "expect": {"findings": {"allow_other_findings": true}}})";
  };
  // setup returns 0.
  for (const char* ok : {R"({"in": [0, -35]})", R"("!=1")", R"(">=0")", R"("<=0")", R"("0")"}) {
    dir.file("ok.json", scenario(ok));
    const Cmd c = run_tool("run ok.json", dir.path);
    INFO(ok << "\n" << c.out);
    CHECK(c.code == 0);
  }
  for (const char* bad : {R"({"in": [-35, 1]})", R"("!=0")", R"(">=1")"}) {
    dir.file("bad.json", scenario(bad));
    const Cmd c = run_tool("run bad.json", dir.path);
    INFO(bad << "\n" << c.out);
    CHECK(c.code == 1);
    CHECK_THAT(c.out, Catch::Contains("/timeline/0 t=0 cpu 0: run t.setup returned 0, expected"));
  }
  dir.file("in.json", scenario(R"({"in": [-35, 1]})"));
  CHECK_THAT(run_tool("run in.json", dir.path).out, Catch::Contains("expected in [-35,1]"));
}
