// JSON scenarios (tools/scenario.h, tools/runner.h, tools/runfile.h) and the run/check/replay
// commands: every class of malformed input ends with exit 2 and a message naming the file and the
// place (JSON pointer and line, or the ELF section); a passing run exits 0; a failing run exits 1,
// prints the line that reproduces it and writes a run file whose replay has the same trace digest.
// Bad inputs are written into a fresh temporary directory, never into the source tree.
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tests/unit/tool_harness.h"
#include "tools/json_schema.h"
#include "tools/runfile.h"
#include "tools/runner.h"
#include "tools/scenario.h"

using namespace bpftsim;
using namespace bpftsim::tools;
using namespace bpftsim::testing;
namespace fs = std::filesystem;

namespace {

std::string seed_object() {
  return std::string(BPFTSIM_PROGS_DIR) + "/timer_seed.bpf.o";
}

std::string errors_object() {
  return std::string(BPFTSIM_PROGS_DIR) + "/timer_errors.bpf.o";
}

std::string nmi_object() {
  return std::string(BPFTSIM_PROGS_DIR) + "/timer_nmi.bpf.o";
}

// A one-CPU scenario on `object` (timer_nmi by default) with `top` spliced in at the top level
// (after "objects"), the timeline `timeline` and the expectations `expect`.
std::string small_scenario(const std::string& top, const std::string& timeline,
                           const std::string& expect, const std::string& name = "small",
                           const std::string& object = nmi_object()) {
  return R"({"name": ")" + name + R"(", "description": "d", "cpus": 1,
 "objects": [{"name": "t", "path": ")" +
         object + "\"}]," + top + R"(
 "timeline": [
)" + timeline +
         R"(
 ],
 "expect": )" +
         expect + "\n}\n";
}

// The seed selftest as a scenario on the prebuilt object; `expect_ok` is the expected t.ok.
std::string seed_scenario(const std::string& object, int expect_ok = 7,
                          const std::string& name = "seed") {
  return R"({
  "name": ")" +
         name + R"(",
  "description": "the seed selftest",
  "cpus": 2,
  "objects": [{"name": "t", "path": ")" +
         object + R"("}],
  "timeline": [
    {"at_ns": 0, "action": "attach", "prog": "t.test1", "expect_ret": 0},
    {"at_ns": 100, "action": "attach", "prog": "t.test2", "expect_ret": 0},
    {"at_ns": 200, "action": "run_fentry", "fentry": "bpf_fentry_test1", "expect_ret": 0},
    {"at_ns": 300, "action": "close", "link": "t.test1"},
    {"at_ns": 400, "action": "close", "link": "t.test2"},
    {"at_ns": 80000, "action": "exit"}
  ],
  "expect": {
    "globals_at": [{"at_ns": 70000, "globals": {"t.callback_check": 42, "t.bss_data": 10}}],
    "globals": {"t.err": 0, "t.ok": )" +
         std::to_string(expect_ok) + R"(},
    "findings": {},
    "alive": {"objects": 0, "armed_timers": 0, "maps": [], "progs": []}
  }
})";
}

// A minimal valid scenario with `timeline` spliced in.
std::string with_timeline(const std::string& object, const std::string& timeline) {
  return R"({"name": "bad", "description": "d", "cpus": 2,
 "objects": [{"name": "t", "path": ")" +
         object + R"("}],
 "timeline": [
)" + timeline +
         "\n]}\n";
}

const InputError& input_error(const ScenarioResult& r) {
  REQUIRE(std::holds_alternative<InputError>(r));
  return std::get<InputError>(r);
}

struct BadCase {
  const char* what;
  std::string text;
  std::string pointer;  // expected JSON pointer ("" : not checked)
  int line;             // expected line
  std::string needle;   // expected in the message
};

}  // namespace

TEST_CASE("the checked-in schema is the one compiled in, and uses only the supported subset",
          "[scenario]") {
  const std::string file =
      read_file(fs::path(BPFTSIM_SOURCE_DIR) / "scenarios" / "scenario.schema.json");
  CHECK(file == scenario_schema_text());
  CHECK_NOTHROW(JsonSchema(nlohmann::json::parse(file)));
  CHECK_THROWS_AS(JsonSchema(nlohmann::json::parse(R"({"type": "object", "if": {}})")),
                  std::invalid_argument);
  CHECK_THROWS_AS(JsonSchema(nlohmann::json::parse(R"({"$ref": "#/$defs/none"})")),
                  std::invalid_argument);
}

TEST_CASE("schema validator: pointer and expectation of the first violation", "[scenario]") {
  const JsonSchema s(nlohmann::json::parse(R"({
    "type": "object", "required": ["a"], "additionalProperties": false,
    "properties": {
      "a": {"type": "integer", "minimum": 1, "maximum": 3},
      "b": {"type": "array", "items": {"enum": ["x", "y"]}, "maxItems": 2},
      "c": {"type": "string", "pattern": "^0x[0-9a-f]+$"},
      "d": {"oneOf": [
        {"type": "object", "required": ["k"], "additionalProperties": false,
         "properties": {"k": {"const": "one"}, "n": {"type": "integer"}}},
        {"type": "object", "required": ["k"], "additionalProperties": false,
         "properties": {"k": {"const": "two"}, "s": {"type": "string"}}}]}
    }})"));
  auto v = [&](const char* text) { return s.validate(nlohmann::json::parse(text)); };
  CHECK_FALSE(v(R"({"a": 2, "b": ["x"], "c": "0x1f", "d": {"k": "two", "s": "z"}})"));
  REQUIRE(v(R"({})"));
  CHECK(v(R"({})")->message == "missing required key 'a'");
  CHECK(v(R"({"a": 4})")->pointer == "/a");
  CHECK(v(R"({"a": 4})")->message == "expected an integer in [1, 3], got integer 4");
  CHECK(v(R"({"a": "1"})")->message == "expected an integer in [1, 3], got string \"1\"");
  CHECK(v(R"({"a": 1, "zz": 0})")->pointer == "/zz");
  CHECK_THAT(v(R"({"a": 1, "zz": 0})")->message, Catch::Contains("unknown key 'zz'"));
  CHECK(v(R"({"a": 1, "b": ["x", "q"]})")->pointer == "/b/1");
  CHECK(v(R"({"a": 1, "b": ["x", "x", "x"]})")->message == "expected at most 2 element(s), got 3");
  CHECK_THAT(v(R"({"a": 1, "c": "12"})")->message, Catch::Contains("matching"));
  // oneOf told apart by the const of "k": the error is reported inside the chosen alternative.
  CHECK(v(R"({"a": 1, "d": {"k": "one", "n": "x"}})")->pointer == "/d/n");
  CHECK(v(R"({"a": 1, "d": {"k": "two", "n": 1}})")->pointer == "/d/n");
  CHECK(v(R"({"a": 1, "d": {"k": "three"}})")->pointer == "/d/k");
  CHECK(v(R"({"a": 1, "d": {"k": "three"}})")->message ==
        "expected one of \"one\", \"two\", got string \"three\"");
}

TEST_CASE("JSON positions: pointers to lines and columns", "[scenario]") {
  const std::string text = "{\n  \"a\": [1,\n    {\"b~/\": true}],\n  \"c\": \"x\\\"y\"\n}";
  const JsonPositions pos(text);
  CHECK(text_pos(text, pos.offset("/a")).line == 2);
  CHECK(text_pos(text, pos.offset("/a/1")).line == 3);
  CHECK(text_pos(text, pos.offset("/a/1/b~0~1")).line == 3);
  CHECK(text_pos(text, pos.offset("/a/1/b~0~1")).column == 6);
  CHECK(text_pos(text, pos.offset("/c")).line == 4);
  CHECK(text_pos(text, pos.offset("/c/missing/deeper")).line == 4);  // nearest ancestor
  CHECK_FALSE(pos.duplicate_key());
  CHECK(JsonPositions("{\"x\": 1, \"y\": {\"z\": 1, \"z\": 2}}").duplicate_key() == "/y/z");
}

TEST_CASE("every malformed-input class is an input error naming file, pointer and line",
          "[scenario]") {
  TempDir dir;
  const std::string obj = seed_object();
  const std::string ok_action = R"(  {"at_ns": 0, "action": "wait"})";
  // A real object whose section headers were damaged: the loader names the section.
  std::string elf = read_file(obj);
  REQUIRE(elf.size() > 64);
  std::uint64_t shoff = 0;
  std::memcpy(&shoff, elf.data() + 0x28, 8);
  const std::uint64_t size_field = shoff + 3 * 64 + 0x20;
  REQUIRE(size_field + 8 <= elf.size());
  const std::uint64_t huge = 0x7fffffff;
  std::memcpy(elf.data() + size_field, &huge, 8);
  dir.file("corrupt.o", elf);

  const std::vector<BadCase> cases = {
      {"invalid JSON", "{\"name\": \"x\",\n \"cpus\": ,\n}", "/cpus", 2, "invalid JSON"},
      {"invalid JSON (truncated)", "{\"name\": \"x\",\n \"cpus\": [1, 2", "", 2, "invalid JSON"},
      {"duplicate key", "{\"name\": \"x\", \"description\": \"d\",\n \"name\": \"y\"}", "/name", 2,
       "duplicate key"},
      {"wrong type (cpus)",
       "{\"name\": \"x\", \"description\": \"d\",\n \"cpus\": \"two\", \"objects\": [], "
       "\"timeline\": []}",
       "/cpus", 2, "expected an integer in [1, 64], got string \"two\""},
      {"wrong type (at_ns)", with_timeline(obj, R"(  {"at_ns": 1.5, "action": "wait"})"),
       "/timeline/0/at_ns", 4,
       "expected one of: an integer in [0, 1000000000000000]; or an object, got number 1.5"},
      {"unknown top-level field",
       "{\"name\": \"x\", \"description\": \"d\", \"cpus\": 1,\n \"colour\": 3}", "/colour", 2,
       "unknown key 'colour'"},
      {"unknown action field",
       with_timeline(
           obj, ok_action + ",\n  {\"at_ns\": 5, \"action\": \"exit\", \"prog\": \"t.test1\"}"),
       "/timeline/1/prog", 5, "unknown key 'prog'"},
      {"unknown action", with_timeline(obj, R"(  {"at_ns": 0, "action": "explode"})"),
       "/timeline/0/action", 4, "expected one of \"run\""},
      {"unknown program",
       with_timeline(obj,
                     ok_action + ",\n  {\"at_ns\": 5, \"action\": \"run\", \"prog\": \"t.tset1\"}"),
       "/timeline/1/prog", 5, "unknown program 't.tset1' (object 't' has programs: test1"},
      {"unknown map",
       with_timeline(obj, R"(  {"at_ns": 0, "action": "map_delete", "map": "t.arary", "key": 0})"),
       "/timeline/0/map", 4, "unknown map 't.arary'"},
      {"unknown object",
       with_timeline(obj, R"(  {"at_ns": 0, "action": "attach", "prog": "u.test1"})"),
       "/timeline/0/prog", 4, "unknown object 'u'"},
      {"unknown global",
       "{\"name\": \"x\", \"description\": \"d\", \"cpus\": 1,\n \"objects\": [{\"name\": \"t\", "
       "\"path\": \"" +
           obj +
           "\"}],\n \"timeline\": [{\"at_ns\": 0, \"action\": \"wait\"}],\n"
           " \"expect\": {\"globals\": {\"t.eror\": 0}}}",
       "/expect/globals/t.eror", 4, "unknown global variable 't.eror'"},
      {"times going backwards", with_timeline(obj, R"(  {"at_ns": 100, "action": "wait"},
  {"at_ns": 50, "action": "exit"})"),
       "/timeline/1/at_ns", 5, "time goes backwards"},
      {"cpu out of range", with_timeline(obj, R"(  {"at_ns": 0, "cpu": 2, "action": "exit"})"),
       "/timeline/0/cpu", 4, "cpu 2 does not exist"},
      {"key of the wrong size",
       with_timeline(
           obj, R"(  {"at_ns": 0, "action": "map_delete", "map": "t.array", "key": "0x0000"})"),
       "/timeline/0/key", 4, "expected 4 byte(s)"},
      {"missing object file", with_timeline("no/such/object.o", ok_action), "/objects/0/path", 2,
       "does not exist"},
      {"corrupt ELF", with_timeline("corrupt.o", ok_action), "/objects/0/path", 2, "section '"},
      {"unknown run context",
       with_timeline(obj,
                     R"(  {"at_ns": 0, "action": "run", "prog": "t.test1", "context": "softirq"})"),
       "/timeline/0/context", 4,
       "expected one of \"task\", \"hardirq\", \"nmi\", got string \"softirq\""},
      {"context on an action other than run",
       with_timeline(obj,
                     R"(  {"at_ns": 0, "action": "attach", "prog": "t.test1", "context": "nmi"})"),
       "/timeline/0/context", 4, "unknown key 'context'"},
      {"unknown fault site",
       small_scenario("\n \"faults\": [{\"site\": \"bpf_timer_init.kmalloc\"},\n   {\"site\": "
                      "\"slab.kmalloc\", \"count\": 1}],",
                      ok_action, "{}"),
       "/faults/1/site", 4,
       "expected one of \"bpf_timer_init.kmalloc\", \"htab.kmalloc\", got string \"slab.kmalloc\""},
      {"fault count 0",
       small_scenario("\n \"faults\": [{\"site\": \"htab.kmalloc\", \"count\": 0}],", ok_action,
                      "{}"),
       "/faults/0/count", 3, "expected an integer in [1, 1000000], got integer 0"},
      {"bad comparison string",
       small_scenario("", ok_action,
                      "{\"globals\": {\"t.init_ret\": 0,\n   \"t.nmi_ret\": \">-95\"}}"),
       "/expect/globals/t.nmi_ret", 7,
       "expected a value (N, \">=N\", \"<=N\", \"!=N\", {\"in\": [...]}), \"unset\" (the "
       "variable's initial value), all its bytes (\"0x...\" or a byte array, any size) or "
       "{\"fields\": {...}} (members of its BTF struct), got string \">-95\""},
      {"comparison out of range",
       small_scenario("", ok_action, "{\"globals\": {\"t.nmi_ret\": \">=99999999999999999999\"}}"),
       "/expect/globals/t.nmi_ret", 6, "'>=99999999999999999999' is out of range"},
      {"bound beyond a signed global",
       small_scenario("", ok_action, "{\"globals\": {\"t.nmi_ret\": \"<=9223372036854775808\"}}"),
       "/expect/globals/t.nmi_ret", 6,
       "'t.nmi_ret' is signed (BTF, 8 byte(s)): the bound <=9223372036854775808 is beyond its "
       "largest value"},
      {"negative bound on an unsigned global",
       "{\"name\": \"x\", \"description\": \"d\", \"cpus\": 1,\n \"objects\": [{\"name\": \"t\", "
       "\"path\": \"" +
           obj +
           "\"}],\n \"timeline\": [{\"at_ns\": 0, \"action\": \"wait\"}],\n"
           " \"expect\": {\"globals\": {\"t.ok\": \">=-1\"}}}",
       "/expect/globals/t.ok", 4, "'t.ok' is unsigned (BTF): a negative bound >=-1 orders nothing"},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const BadCase& c = cases[i];
    INFO(c.what);
    const std::string name = "bad" + std::to_string(i) + ".json";
    const fs::path file = dir.file(name, c.text);
    // Through the library.
    const ScenarioResult r = load_scenario(file.string());
    const InputError& e = input_error(r);
    INFO(e.text());
    CHECK(e.file == file.string());
    if (!c.pointer.empty()) CHECK(e.pointer == c.pointer);
    CHECK(e.line == c.line);
    CHECK_THAT(e.message, Catch::Contains(c.needle));
    // Through the binary: exit 2, one message naming file:line and the pointer.
    const Cmd cmd = run_tool("run " + name, dir.path);
    INFO(cmd.out);
    CHECK(cmd.code == 2);
    CHECK_THAT(cmd.out, Catch::Contains(name + ":" + std::to_string(c.line) + ":"));
    if (!c.pointer.empty()) CHECK_THAT(cmd.out, Catch::Contains("at " + c.pointer + ":"));
    CHECK_THAT(cmd.out, Catch::Contains(c.needle));
  }
  // A file that cannot be read at all.
  const Cmd missing = run_tool("run nowhere.json", dir.path);
  CHECK(missing.code == 2);
  CHECK_THAT(missing.out,
             Catch::Contains("nowhere.json: cannot open the scenario file: No such file or "
                             "directory"));
  // Bad flags are bad input too.
  CHECK(run_tool("run x.json --trace-format svg", dir.path).code == 2);
}

TEST_CASE(
    "a passing scenario exits 0; a failing one exits 1 with a reproduce line and a run "
    "file whose replay has the same digest",
    "[scenario]") {
  TempDir dir;
  dir.file("pass.json", seed_scenario(seed_object(), 7, "seed-pass"));
  dir.file("fail.json", seed_scenario(seed_object(), 8, "seed-fail"));

  const Cmd pass = run_tool("run pass.json --digest", dir.path);
  INFO(pass.out);
  CHECK(pass.code == 0);
  CHECK_THAT(pass.out, Catch::Contains("PASS seed-pass"));
  CHECK_FALSE(fs::exists(dir.path / "seed-pass.run.json"));

  const Cmd fail = run_tool("run fail.json --digest --run-dir runs", dir.path);
  INFO(fail.out);
  CHECK(fail.code == 1);
  CHECK_THAT(fail.out, Catch::Contains("FAIL seed-fail"));
  CHECK_THAT(fail.out, Catch::Contains("/expect/globals/t.ok: t.ok is 7 at the end, expected 8"));
  CHECK_THAT(fail.out, Catch::Contains("reproduce: bpftsim replay runs/seed-fail.run.json"));
  CHECK_THAT(fail.out, Catch::Contains("cpu 0: last 5 event(s)"));
  const fs::path run_file = dir.path / "runs" / "seed-fail.run.json";
  REQUIRE(fs::exists(run_file));
  const auto digest_at = fail.out.find("digest ");
  REQUIRE(digest_at != std::string::npos);
  const std::string digest = fail.out.substr(digest_at + 7, 16);

  const Cmd replay = run_tool("replay runs/seed-fail.run.json", dir.path);
  INFO(replay.out);
  CHECK(replay.code == 0);  // it fails again, the same way: reproduced
  CHECK_THAT(replay.out, Catch::Contains("digest " + digest));
  CHECK_THAT(replay.out, Catch::Contains("reproduced: the trace digest matches"));

  // The run file, read back.
  auto rf = read_run_file(run_file.string());
  REQUIRE(std::holds_alternative<RunFile>(rf));
  CHECK(std::get<RunFile>(rf).seed == 1);
  CHECK(std::get<RunFile>(rf).profile == "v5.15");
  CHECK(fmt::format("{:016x}", std::get<RunFile>(rf).digest) == digest);

  // Replay refuses a scenario that changed since.
  write_file(dir.path / "fail.json", seed_scenario(seed_object(), 9, "seed-fail"));
  const Cmd changed = run_tool("replay runs/seed-fail.run.json", dir.path);
  INFO(changed.out);
  CHECK(changed.code == 2);
  CHECK_THAT(changed.out, Catch::Contains("the scenario changed since the run (changed: the "
                                          "expectations)"));
  CHECK_THAT(changed.out, Catch::Contains("--seed 1 --profile v5.15"));
  CHECK_THAT(changed.out, Catch::Contains("--allow-changed"));
  // --allow-changed replays it leniently and says what changed; the recorded outcome (the same
  // expectation fails) comes back: exit 0.
  const Cmd allowed = run_tool("replay runs/seed-fail.run.json --allow-changed", dir.path);
  INFO(allowed.out);
  CHECK(allowed.code == 0);
  CHECK_THAT(allowed.out, Catch::Contains("changed: the expectations"));
  CHECK_THAT(allowed.out, Catch::Contains("reproduced"));
  // Whitespace only: nothing but formatting.
  write_file(dir.path / "fail.json", seed_scenario(seed_object(), 8, "seed-fail") + "\n\n");
  const Cmd ws = run_tool("replay runs/seed-fail.run.json --allow-changed", dir.path);
  INFO(ws.out);
  CHECK(ws.code == 0);
  CHECK_THAT(ws.out, Catch::Contains("changed: nothing but formatting"));
  CHECK_THAT(ws.out, Catch::Contains("reproduced: the trace digest matches"));

  // And a damaged run file is bad input naming the key.
  dir.file("broken.run.json", "{\"bpftsim_run\": 2, \"scenario\": 3}");
  const Cmd broken = run_tool("replay broken.run.json", dir.path);
  CHECK(broken.code == 2);
  CHECK_THAT(broken.out, Catch::Contains("broken.run.json:1:"));
}

TEST_CASE("check: every scenario under a path, a summary table, the worst exit code",
          "[scenario]") {
  TempDir dir;
  fs::create_directories(dir.path / "tree" / "sub");
  write_file(dir.path / "tree" / "a_pass.json", seed_scenario(seed_object(), 7, "a-pass"));
  write_file(dir.path / "tree" / "sub" / "b_fail.json", seed_scenario(seed_object(), 8, "b-fail"));
  write_file(dir.path / "tree" / "scenario.schema.json", "not a scenario");
  write_file(dir.path / "tree" / "old.run.json", "not a scenario");

  const Cmd one = run_tool("check tree/a_pass.json", dir.path);
  CHECK(one.code == 0);
  const Cmd failing = run_tool("check tree --run-dir runs", dir.path);
  INFO(failing.out);
  CHECK(failing.code == 1);
  CHECK_THAT(failing.out, Catch::Contains("2 scenario(s): 1 passed, 1 failed, 0 error(s)"));
  CHECK_THAT(failing.out, Catch::Contains("SCENARIO"));
  CHECK(failing.out.find('\r') == std::string::npos);  // no progress line off a terminal
  CHECK(fs::exists(dir.path / "runs" / "b-fail.run.json"));
  CHECK(failing.out.find("a-pass") < failing.out.rfind("b-fail"));  // sorted paths

  write_file(dir.path / "tree" / "c_bad.json", "{");
  const Cmd worst = run_tool("check tree --run-dir runs", dir.path);
  INFO(worst.out);
  CHECK(worst.code == 2);
  CHECK_THAT(worst.out, Catch::Contains("ERROR"));
  CHECK_THAT(worst.out, Catch::Contains("c_bad.json:1:"));
  fs::remove(dir.path / "tree" / "c_bad.json");

  // Other JSON is not a scenario: a Perfetto trace, a package.json, a run file.
  REQUIRE(run_tool("run tree/a_pass.json --trace tree/a.perfetto.json --trace-format perfetto",
                   dir.path)
              .code == 0);
  write_file(dir.path / "tree" / "package.json", R"({"name": "x", "version": "1.0.0"})");
  // One name twice: a warning. A crash of one scenario: a CRASH row, and the table.
  write_file(dir.path / "tree" / "sub" / "d_dup.json", seed_scenario(seed_object(), 7, "a-pass"));
  const Cmd mixed = run_shell("cd '" + dir.path.string() +
                              "' && BPFTSIM_TEST_CHECK_ABORT_ON=tree/sub/b_fail.json timeout 60 '" +
                              std::string(BPFTSIM_BINARY) + "' check tree --run-dir runs 2>&1");
  INFO(mixed.out);
  CHECK(mixed.code == 1);
  CHECK_THAT(mixed.out,
             Catch::Contains("3 scenario(s): 2 passed, 0 failed, 0 error(s), 1 crashed"));
  CHECK_THAT(mixed.out, Catch::Contains("CRASH tree/sub/b_fail.json"));
  CHECK_THAT(mixed.out, Catch::Contains("killed by signal 6"));
  CHECK_THAT(mixed.out,
             Catch::Contains("warning: tree/a_pass.json and tree/sub/d_dup.json are both "
                             "named 'a-pass'"));
  CHECK_THAT(mixed.out, !Catch::Contains("perfetto"));
  CHECK_THAT(mixed.out, !Catch::Contains("package.json"));
}

TEST_CASE(
    "runner: a scenario replays from its decisions to the same digest; seeds are "
    "deterministic",
    "[scenario]") {
  TempDir dir;
  const fs::path file = dir.file("s.json", seed_scenario(seed_object()));
  auto loaded = load_scenario(file.string());
  REQUIRE(std::holds_alternative<Scenario>(loaded));
  const Scenario& sc = std::get<Scenario>(loaded);
  CHECK(sc.hash == fnv1a64(read_file(file)));

  RunOptions opts;
  opts.seed = 3;
  auto first = run_scenario(sc, opts);
  auto again = run_scenario(sc, opts);
  REQUIRE(std::holds_alternative<RunResult>(first));
  REQUIRE(std::holds_alternative<RunResult>(again));
  const RunResult& a = std::get<RunResult>(first);
  INFO(fmt::format("{}", fmt::join(a.failures, "\n")));
  CHECK(a.passed());
  CHECK(a.status == sim::RunStatus::kQuiescent);
  CHECK(a.digest == std::get<RunResult>(again).digest);

  RunOptions replay;
  replay.seed = 3;
  replay.replay = a.decisions;
  auto r = run_scenario(sc, replay);
  REQUIRE(std::holds_alternative<RunResult>(r));
  CHECK(std::get<RunResult>(r).digest == a.digest);

  RunOptions bad_profile;
  bad_profile.profile = "v1.0";
  auto e = run_scenario(sc, bad_profile);
  REQUIRE(std::holds_alternative<InputError>(e));
  CHECK_THAT(std::get<InputError>(e).message, Catch::Contains("unknown kernel profile 'v1.0'"));
}

TEST_CASE("run context, faults and global comparisons are read into the scenario", "[scenario]") {
  TempDir dir;
  const fs::path file = dir.file(
      "s.json",
      small_scenario(R"(
 "faults": [{"site": "bpf_timer_init.kmalloc", "count": 2}, {"site": "htab.kmalloc"}],)",
                     R"(  {"at_ns": 0, "action": "run", "prog": "t.init_only"},
  {"at_ns": 10, "action": "run", "prog": "t.nmi_init", "context": "nmi"},
  {"at_ns": 20, "action": "run", "prog": "t.nmi_start", "context": "hardirq"},
  {"at_ns": 30, "action": "run", "prog": "t.nmi_start", "context": "task"})",
                     R"({"globals": {"t.init_ret": -12, "t.nmi_ret": "<=-22", "t.callbacks": ">=0",
   "t.start_ret": "!=0", "t.set_callback_ret": "99"}})"));
  auto loaded = load_scenario(file.string());
  if (auto* e = std::get_if<InputError>(&loaded)) FAIL(e->text());
  const Scenario& sc = std::get<Scenario>(loaded);
  REQUIRE(sc.faults.size() == 2);
  CHECK(sc.faults[0].site == model::FaultSite::kBpfTimerInitKmalloc);
  CHECK(sc.faults[0].count == 2);
  CHECK(sc.faults[1].site == model::FaultSite::kHtabKmalloc);
  CHECK(sc.faults[1].count == 1);
  REQUIRE(sc.timeline.size() == 4);
  CHECK(sc.timeline[0].context == RunContext::kTask);
  CHECK(sc.timeline[1].context == RunContext::kNmi);
  CHECK(sc.timeline[2].context == RunContext::kHardirq);
  CHECK(sc.timeline[3].context == RunContext::kTask);
  CHECK(sc.timeline[1].describe() == "run t.nmi_init in nmi");
  CHECK(sc.timeline[3].describe() == "run t.nmi_start");
  REQUIRE(sc.expect.globals.size() == 5);
  std::map<std::string, const GlobalExpect*> g;
  for (const auto& e : sc.expect.globals)
    g[e.global.text] = &e;
  CHECK(g.at("t.init_ret")->want.op == ValueExpect::Op::kEq);
  CHECK(g.at("t.init_ret")->want.text() == "-12");
  CHECK(g.at("t.init_ret")->global.sign == model::GlobalVar::Sign::kSigned);  // long
  CHECK(g.at("t.nmi_ret")->want.op == ValueExpect::Op::kLe);
  CHECK(g.at("t.nmi_ret")->want.text() == "<=-22");
  CHECK(g.at("t.callbacks")->want.op == ValueExpect::Op::kGe);
  CHECK(g.at("t.start_ret")->want.op == ValueExpect::Op::kNe);
  CHECK(g.at("t.start_ret")->want.text() == "!=0");
  CHECK(g.at("t.set_callback_ret")->want.op == ValueExpect::Op::kEq);  // "N" is equality
  CHECK(g.at("t.set_callback_ret")->want.text() == "99");

  // The run: the init allocation fails (-ENOMEM), the NMI init refuses (-EOPNOTSUPP), the start
  // in a hardirq and in a task find no timer (-EINVAL): nmi_ret ends at -22.
  auto run = run_scenario(sc);
  REQUIRE(std::holds_alternative<RunResult>(run));
  const RunResult& r = std::get<RunResult>(run);
  INFO(fmt::format("{}", fmt::join(r.failures, "\n")));
  CHECK(r.passed());
  std::vector<std::string> kinds;
  for (const auto& rec : r.trace().records())
    if (rec.event == "ctx_begin") {
      const auto* k = rec.field("kind");
      if (k && std::holds_alternative<std::string>(*k)) kinds.push_back(std::get<std::string>(*k));
    }
  CHECK(std::count(kinds.begin(), kinds.end(), "nmi") == 1);
  CHECK(std::count(kinds.begin(), kinds.end(), "hardirq") == 1);
}

TEST_CASE(
    "global comparisons: holds in the variable's width and signedness; failures print "
    "the value as its type reads",
    "[scenario]") {
  auto expect = [](ValueExpect::Op op, std::int64_t n, std::uint32_t size,
                   model::GlobalVar::Sign sign) {
    GlobalExpect e;
    e.want.op = op;
    e.want.value = static_cast<std::uint64_t>(n);
    e.want.negative = n < 0;
    e.global.size = size;
    e.global.sign = sign;
    return e;
  };
  using Op = ValueExpect::Op;
  using Sign = model::GlobalVar::Sign;
  const std::uint64_t minus35_int = 0xffffffddULL;  // an int holding -35
  CHECK(expect(Op::kEq, -35, 4, Sign::kSigned).holds(minus35_int));
  CHECK(expect(Op::kEq, -35, 4, Sign::kUnknown).holds(minus35_int));
  CHECK_FALSE(expect(Op::kNe, -35, 4, Sign::kSigned).holds(minus35_int));
  CHECK(expect(Op::kNe, 0, 4, Sign::kSigned).holds(minus35_int));
  CHECK(expect(Op::kLe, -1, 4, Sign::kSigned).holds(minus35_int));
  CHECK_FALSE(expect(Op::kGe, 0, 4, Sign::kSigned).holds(minus35_int));
  CHECK(expect(Op::kGe, 0, 4, Sign::kUnsigned).holds(minus35_int));  // 4294967261
  CHECK(expect(Op::kGe, 4294967261, 4, Sign::kUnsigned).holds(minus35_int));
  CHECK(expect(Op::kLe, -35, 4, Sign::kUnknown).holds(minus35_int));  // signed: N < 0
  CHECK(expect(Op::kGe, 3, 8, Sign::kUnsigned).holds(3));
  CHECK_FALSE(expect(Op::kGe, 4, 8, Sign::kUnsigned).holds(3));
  CHECK(expect(Op::kLe, -1, 8, Sign::kSigned).holds(~0ULL));
  CHECK(expect(Op::kGe, 1, 8, Sign::kUnsigned).holds(~0ULL));

  CHECK(expect(Op::kEq, 0, 4, Sign::kSigned).show(minus35_int) == "-35");
  CHECK(expect(Op::kEq, 0, 4, Sign::kUnsigned).show(minus35_int) == "4294967261");
  CHECK(expect(Op::kEq, 0, 4, Sign::kUnknown).show(minus35_int) == "4294967261 (as signed: -35)");
  CHECK(expect(Op::kEq, 0, 4, Sign::kUnknown).show(7) == "7");
  CHECK(expect(Op::kEq, 0, 8, Sign::kSigned).show(~0ULL) == "-1");
  CHECK(expect(Op::kEq, 0, 1, Sign::kSigned).show(0x1ff) == "-1");  // only the low byte
  CHECK(expect(Op::kGe, -5, 8, Sign::kSigned).want.text() == ">=-5");
  CHECK(expect(Op::kNe, 0, 8, Sign::kSigned).want.text() == "!=0");
  // {"in": [0, -35]}: membership in the variable's width.
  GlobalExpect in = expect(Op::kIn, 0, 4, Sign::kSigned);
  in.want.set = {0, static_cast<std::uint64_t>(std::int64_t{-35})};
  CHECK(in.holds(minus35_int));
  CHECK(in.holds(0));
  CHECK_FALSE(in.holds(1));
}

TEST_CASE("failing global comparisons name the pointer and print signed globals as signed",
          "[scenario]") {
  TempDir dir;
  // nmi_ret (long) ends at -95 (the helper refused in NMI); the expectations are all wrong.
  dir.file("fail.json",
           small_scenario(
               "", R"(  {"at_ns": 0, "action": "run", "prog": "t.nmi_init", "context": "nmi"})",
               R"({"globals": {"t.nmi_ret": ">=0", "t.init_ret": "!=99"},
  "globals_at": [{"at_ns": 5000, "globals": {"t.nmi_ret": "<=-96"}}]})",
               "cmp-fail"));
  const Cmd fail = run_tool("run fail.json --run-dir runs", dir.path);
  INFO(fail.out);
  CHECK(fail.code == 1);
  CHECK_THAT(fail.out, Catch::Contains(
                           "/expect/globals/t.nmi_ret: t.nmi_ret is -95 at the end, expected >=0"));
  CHECK_THAT(
      fail.out,
      Catch::Contains("/expect/globals/t.init_ret: t.init_ret is 99 at the end, expected !=99"));
  CHECK_THAT(fail.out,
             Catch::Contains("/expect/globals_at/0/globals/t.nmi_ret: t.nmi_ret is -95 at t=5000, "
                             "expected <=-96"));
  // The same program as a task: the helper works there, so nmi_ret is 0.
  dir.file(
      "pass.json",
      small_scenario("", R"(  {"at_ns": 0, "action": "run", "prog": "t.nmi_init"},
  {"at_ns": 10000, "action": "exit"})",
                     R"({"globals": {"t.nmi_ret": 0, "t.init_ret": "!=0", "t.callbacks": "<=0"}})",
                     "cmp-pass"));
  const Cmd pass = run_tool("run pass.json", dir.path);
  INFO(pass.out);
  CHECK(pass.code == 0);
}

TEST_CASE("faults: the next count passes through the site fail, then it works again",
          "[scenario]") {
  TempDir dir;
  // init_ok_then_busy inits slot 0 twice, then a hash and an LRU hash timer.
  auto run = [&](int count) {
    const std::string name = "f" + std::to_string(count) + ".json";
    const std::string faults =
        count == 0 ? std::string()
                   : "\n \"faults\": [{\"site\": \"bpf_timer_init.kmalloc\", \"count\": " +
                         std::to_string(count) + "}],";
    const fs::path file = dir.file(
        name,
        small_scenario(faults, R"(  {"at_ns": 0, "action": "run", "prog": "t.init_ok_then_busy"},
  {"at_ns": 20000, "action": "exit"})",
                       R"({"alive": {"objects": 0}})", "faults", errors_object()));
    auto loaded = load_scenario(file.string());
    REQUIRE(std::holds_alternative<Scenario>(loaded));
    Scenario sc = std::get<Scenario>(loaded);
    auto r = run_scenario(sc);
    REQUIRE(std::holds_alternative<RunResult>(r));
    const RunResult& res = std::get<RunResult>(r);
    INFO(fmt::format("{}", fmt::join(res.failures, "\n")));
    CHECK(res.passed());
    std::vector<std::int64_t> rets;
    for (const auto& rec : res.trace().records())
      if (rec.event == "bpf_helper") {
        const auto* h = rec.field("helper");
        if (h && std::get<std::string>(*h) == "bpf_timer_init")
          rets.push_back(rec.int_field("ret"));
      }
    return rets;
  };
  CHECK(run(0) == std::vector<std::int64_t>{0, -16, 0, 0});
  CHECK(run(1) == std::vector<std::int64_t>{-12, 0, 0, 0});
  CHECK(run(3) == std::vector<std::int64_t>{-12, -12, -12, 0});
}
