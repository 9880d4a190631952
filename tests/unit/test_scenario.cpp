// JSON scenarios (tools/scenario.h, tools/runner.h, tools/runfile.h) and the run/check/replay
// commands: every class of malformed input ends with exit 2 and a message naming the file and the
// place (JSON pointer and line, or the ELF section); a passing run exits 0; a failing run exits 1,
// prints the line that reproduces it and writes a run file whose replay has the same trace digest.
// Bad inputs are written into a fresh temporary directory, never into the source tree.
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tools/json_schema.h"
#include "tools/runfile.h"
#include "tools/runner.h"
#include "tools/scenario.h"

using namespace bpftsim;
using namespace bpftsim::tools;
namespace fs = std::filesystem;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
}

// A fresh directory under $TMPDIR, removed with the object.
struct TempDir {
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "bpftsim-scenario-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path file(const std::string& name, const std::string& text) const {
    write_file(path / name, text);
    return path / name;
  }
  fs::path path;
};

struct Cmd {
  int code = -1;
  std::string out;  // stdout and stderr
};

// Runs the built bpftsim with `args` in directory `cwd`.
Cmd run_tool(const std::string& args, const fs::path& cwd) {
  const std::string cmd =
      "cd '" + cwd.string() + "' && '" + std::string(BPFTSIM_BINARY) + "' " + args + " 2>&1";
  Cmd r;
  std::FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
    r.out.append(buf, n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string seed_object() {
  return std::string(BPFTSIM_PROGS_DIR) + "/timer_seed.bpf.o";
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
       "/timeline/0/at_ns", 4, "expected an integer >= 0"},
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
  CHECK_THAT(missing.out, Catch::Contains("nowhere.json: cannot read"));
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
  CHECK(replay.code == 1);  // it fails again, the same way
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
  CHECK_THAT(changed.out, Catch::Contains("the scenario changed since the run"));
  // And a damaged run file is bad input naming the key.
  dir.file("broken.run.json", "{\"bpftsim_run\": 1, \"scenario\": 3}");
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
