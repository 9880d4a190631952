// Every input safe (issue 7, the input side): numbers beyond their field's range, long strings,
// values that used to wrap, files that are no regular files or too large, deep nesting, the
// inner-template map name, and the errors that say why. Each class runs THROUGH THE BINARY under
// `timeout 20`, and each check asserts the exit code (0, 1 or 2), that the command ended within
// seconds, and that the message names the place (file:line, JSON pointer). Inputs are written into
// a fresh temporary directory.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "model/input_file.h"
#include "model/vm_prog.h"
#include "tests/unit/tool_harness.h"
#include "tools/json_pattern.h"
#include "tools/json_schema.h"
#include "tools/runfile.h"
#include "tools/scenario.h"

using namespace bpftsim;
using namespace bpftsim::tools;
using namespace bpftsim::testing;
namespace fs = std::filesystem;

namespace {

// The exit code, the time taken and each of `needles` in the output.
void expect_cmd(const Cmd& c, int code, const std::vector<std::string>& needles) {
  INFO(c.out.substr(0, 2000));
  CHECK(c.code == code);
  CHECK(c.seconds < kToolSeconds);
  for (const auto& n : needles)
    CHECK_THAT(c.out, Catch::Contains(n));
}

std::string replace_first(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

std::string progs(const std::string& name) {
  return std::string(BPFTSIM_PROGS_DIR) + "/" + name;
}

// A one-CPU scenario on timer_nmi with `top` spliced in at the top level, one wait action (or
// `timeline`) and `expect`.
std::string scenario(const std::string& top, const std::string& timeline = "",
                     const std::string& expect = "{}", const std::string& object = "") {
  const std::string obj = object.empty() ? progs("timer_nmi.bpf.o") : object;
  return "{\"name\": \"inputs\", \"description\": \"d\", \"cpus\": 1,\n" + top +
         "\n \"objects\": [{\"name\": \"t\", \"path\": \"" + obj + "\"}],\n \"timeline\": [\n" +
         (timeline.empty() ? std::string("  {\"at_ns\": 0, \"action\": \"wait\"}") : timeline) +
         "\n ],\n \"expect\": " + expect + "\n}\n";
}

struct Bad {
  const char* what;
  std::string text;
  std::string pointer;
  int line;
  std::string needle;
};

// Each case through the binary: exit 2 within seconds, "NAME:LINE:", "at POINTER:", the needle.
void expect_refused(const TempDir& dir, const std::vector<Bad>& cases, const std::string& cmd) {
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const Bad& c = cases[i];
    INFO(c.what);
    const std::string name = fmt::format("bad{}.json", i);
    dir.file(name, c.text);
    const Cmd r = run_tool(cmd + " " + name, dir.path);
    expect_cmd(r, 2,
               {name + ":" + std::to_string(c.line) + ":", "at " + c.pointer + ":", c.needle});
  }
}

// The schema as JSON, for walks over it.
nlohmann::json schema_json() {
  return nlohmann::json::parse(scenario_schema_text());
}

// Every subschema (objects only), depth first.
void each_subschema(const nlohmann::json& s, const std::string& where,
                    const std::function<void(const nlohmann::json&, const std::string&)>& fn) {
  if (!s.is_object()) return;
  fn(s, where);
  for (const auto& [k, v] : s.items()) {
    if (k == "properties" || k == "$defs") {
      for (const auto& [name, sub] : v.items())
        each_subschema(sub, where + "/" + k + "/" + name, fn);
    } else if (k == "items" || k == "additionalProperties") {
      each_subschema(v, where + "/" + k, fn);
    } else if (k == "anyOf" || k == "oneOf") {
      for (std::size_t i = 0; i < v.size(); ++i)
        each_subschema(v[i], fmt::format("{}/{}/{}", where, k, i), fn);
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Item 2: numbers

TEST_CASE("every integer and string of the schema is bounded, and the bounds cannot overflow",
          "[inputs]") {
  const nlohmann::json s = schema_json();
  std::size_t integers = 0, strings = 0;
  each_subschema(s, "", [&](const nlohmann::json& sub, const std::string& where) {
    if (!sub.contains("type")) return;
    INFO(where);
    if (sub["type"] == "integer") {
      ++integers;
      CHECK(sub.contains("minimum"));
      CHECK(sub.contains("maximum"));
    }
    if (sub["type"] == "string") {
      ++strings;
      CHECK(sub.contains("maxLength"));
    }
  });
  CHECK(integers > 10);
  CHECK(strings > 10);
  // Times, costs and jitter: the largest time plus a whole program run at the largest cost plus
  // the largest jitter stays far below 2^63 (the step arithmetic of sim/), and the jitter's
  // number of choices (jitter_ns + 1) fits the scheduler's 32-bit option count.
  const auto& defs = s["$defs"];
  const auto max_time = defs["ns"]["maximum"].get<std::int64_t>();
  const auto max_cost = defs["cost"]["maximum"].get<std::int64_t>();
  CHECK(s["properties"]["limits"]["properties"]["max_time_ns"]["maximum"].get<std::int64_t>() ==
        max_time);
  CHECK(s["properties"]["jitter_ns"]["$ref"] == "#/$defs/cost");
  for (const auto& [k, v] : s["properties"]["costs"]["properties"].items()) {
    INFO(k);
    if (k != "comment") CHECK(v["$ref"] == "#/$defs/cost");
  }
  const auto budget = static_cast<std::int64_t>(model::VmProg::kDefaultInsnBudget);
  CHECK(max_time <= std::numeric_limits<std::int64_t>::max() / 4);
  CHECK(budget * max_cost <= std::numeric_limits<std::int64_t>::max() / 4);
  CHECK(max_time + budget * max_cost + max_cost < std::numeric_limits<std::int64_t>::max() / 2);
  CHECK(static_cast<std::uint64_t>(max_cost) + 1 <= std::numeric_limits<std::uint32_t>::max());
}

TEST_CASE("numbers beyond their field's range are refused with file, line and pointer",
          "[inputs]") {
  TempDir dir;
  const std::vector<Bad> cases = {
      {"1e400 (nlohmann throws out_of_range)", scenario(" \"seed\": 1e400,"), "/seed", 2,
       "number 1e400 is out of range"},
      {"-1e400", scenario(" \"jitter_ns\": -1e400,"), "/jitter_ns", 2,
       "number -1e400 is out of range"},
      {"1e30", scenario(" \"seed\": 1e30,"), "/seed", 2,
       "expected an integer in [0, 18446744073709551615], got number 1e+30"},
      {"2^64", scenario(" \"seed\": 18446744073709551616,"), "/seed", 2,
       "integer 18446744073709551616 is out of range (64 bits"},
      {"-2^63-1",
       scenario("",
                "  {\"at_ns\": 0, \"action\": \"exit\", \"expect_ret\": "
                "-9223372036854775809}"),
       "/timeline/0/expect_ret", 5, "integer -9223372036854775809 is out of range"},
      {"-1 for an unsigned seed", scenario(" \"seed\": -1,"), "/seed", 2,
       "expected an integer in [0, 18446744073709551615], got integer -1"},
      {"-1 for a time", scenario("", "  {\"at_ns\": -1, \"action\": \"wait\"}"),
       "/timeline/0/at_ns", 5, "expected an integer in [0, 1000000000000000], got integer -1"},
      {"a time beyond the horizon",
       scenario("", "  {\"at_ns\": 9223372036854775807, \"action\": \"wait\"}"),
       "/timeline/0/at_ns", 5, "expected an integer in [0, 1000000000000000]"},
      {"max_time_ns beyond the horizon", scenario(" \"limits\": {\"max_time_ns\": 1e16},"),
       "/limits/max_time_ns", 2, "expected an integer in [1, 1000000000000000]"},
      {"max_steps", scenario(" \"limits\": {\"max_steps\": 1000000000001},"), "/limits/max_steps",
       2, "expected an integer in [1, 1000000000000]"},
      {"globals_at time",
       scenario("", "",
                "{\"globals_at\": [{\"at_ns\": 1000000000000001, "
                "\"globals\": {}}]}"),
       "/expect/globals_at/0/at_ns", 7, "expected an integer in [0, 1000000000000000]"},
      {"cpu -1", scenario("", "  {\"at_ns\": 0, \"cpu\": -1, \"action\": \"wait\"}"),
       "/timeline/0/cpu", 5, "expected an integer in [0, 63]"},
      {"a key beyond 64 bits",
       scenario("",
                "  {\"at_ns\": 0, \"action\": \"map_delete\", \"map\": \"t.timer_map\", "
                "\"key\": 99999999999999999999}"),
       "/timeline/0/key", 5, "integer 99999999999999999999 is out of range"},
      {"a finding count beyond 64 bits (string)",
       scenario("", "", "{\"findings\": {\"leak\": \">=99999999999999999999\"}}"),
       "/expect/findings/leak", 7, "count out of range"},
      {"args element -1",
       scenario("",
                "  {\"at_ns\": 0, \"action\": \"run\", \"prog\": \"t.init_only\", "
                "\"args\": [1, -1]}"),
       "/timeline/0/args/1", 5, "expected an integer in [0, 18446744073709551615]"},
  };
  expect_refused(dir, cases, "run");
  // The same numbers in a run file.
  const std::string run_file = R"({"bpftsim_run": 2, "tool_version": "0.1.0",
 "scenario": "x.json", "scenario_hash": "fnv1a64:0000000000000000", "name": "x",
 "profile": "v5.15", "seed": SEED, "decisions": "", "digest": "0000000000000000"})";
  for (const auto& [seed, needle] : std::vector<std::pair<std::string, std::string>>{
           {"1e400", "number 1e400 is out of range"},
           {"18446744073709551616", "integer 18446744073709551616 is out of range"},
           {"-1", "expected an integer 'seed' in [0, 2^64-1]"},
           {"1e30", "expected an integer 'seed' in [0, 2^64-1]"}}) {
    INFO(seed);
    std::string text = run_file;
    text.replace(text.find("SEED"), 4, seed);
    dir.file("n.run.json", text);
    expect_cmd(run_tool("replay n.run.json", dir.path), 2, {"n.run.json:3:", "at /seed:", needle});
  }
}

TEST_CASE("CLI integers: --seed and --budget are decimal and in range, or exit 2", "[inputs]") {
  TempDir dir;
  dir.file("ok.json", scenario(""));
  for (const std::string bad : {"-1", "99999999999999999999999", "18446744073709551616", "+1",
                                "0x10", "1e3", "' 7'", "''"}) {
    INFO(bad);
    expect_cmd(run_tool("run ok.json --seed " + bad, dir.path), 2,
               {"--seed: expected an integer in [0, 18446744073709551615]"});
    expect_cmd(run_tool("check ok.json --seed " + bad, dir.path), 2, {"--seed: expected"});
  }
  expect_cmd(run_tool("run ok.json --seed 18446744073709551615", dir.path), 0,
             {"seed=18446744073709551615"});
  expect_cmd(run_tool("run ok.json --seed 0", dir.path), 0, {"seed=0"});
  // plugin --budget: 1 .. 10^10 (0 would fault every program at its first instruction).
  const std::string loop = "--program '05 00 ff ff 00 00 00 00'";  // ja -1: a runaway loop
  for (const std::string bad : {"-1", "0", "10000000001", "18446744073709551615"}) {
    INFO(bad);
    expect_cmd(run_tool("plugin --budget " + bad + " " + loop, dir.path), 2,
               {"--budget: expected an integer in [1, 10000000000], got '" + bad + "'"});
  }
  expect_cmd(run_tool("plugin --budget 1000 " + loop, dir.path), 1,
             {"instruction budget of 1000 exhausted"});
}

// ---------------------------------------------------------------------------------------------
// Item 3: long strings

TEST_CASE("Pattern: the schema's regex subset, matched without recursion", "[inputs]") {
  const Pattern name("^[A-Za-z0-9][A-Za-z0-9._-]*$");
  CHECK(name.search("4.2-self-cancel"));
  CHECK_FALSE(name.search("-x"));
  CHECK_FALSE(name.search("a b"));
  CHECK_FALSE(name.search(""));
  const Pattern path("(\\.bpf\\.c|\\.c|\\.o)$");  // unanchored at the start
  CHECK(path.search("progs/x.bpf.c"));
  CHECK(path.search("x.o"));
  CHECK_FALSE(path.search("x.bpf"));
  CHECK_FALSE(path.search("x.o "));
  const Pattern hex("^(0x|hex:)([0-9a-fA-F]{2})+$");
  CHECK(hex.search("0x2a000000"));
  CHECK(hex.search("hex:FF"));
  CHECK_FALSE(hex.search("0x2a0"));
  CHECK_FALSE(hex.search("0x"));
  const Pattern cmp("^(>=|<=|!=)?-?[0-9]+$");
  CHECK(cmp.search("!=-35"));
  CHECK(cmp.search("12"));
  CHECK_FALSE(cmp.search(">-95"));
  const Pattern counted("^a{2,3}b{2}c{1,}$");
  CHECK(counted.search("aabbc"));
  CHECK(counted.search("aaabbccc"));
  CHECK_FALSE(counted.search("abbc"));
  CHECK_FALSE(counted.search("aaaabbc"));
  const Pattern classes("^[^\\d\\s][\\w.]?\\.$");
  CHECK(classes.search("x_."));
  CHECK(classes.search("x."));
  CHECK_FALSE(classes.search("1x."));
  CHECK_FALSE(classes.search("xx"));
  CHECK(Pattern("(a*)*b").search("aaab"));  // empty loops terminate
  CHECK_FALSE(Pattern("(a*)*b").search(std::string(100000, 'a')));
  // Anything the matcher does not implement is refused when the pattern is compiled.
  for (const char* bad : {"(a)\\1", "(?=a)", "a*?", "a**", "\\bword", "[b-a]", "(a", "a)", "*a",
                          "a{1001}", "\\u0041"}) {
    INFO(bad);
    CHECK_THROWS_AS(Pattern(bad), std::invalid_argument);
  }
  // Long inputs: one pass, no stack growth (std::regex recursed per character).
  const std::string long_name(1'000'000, 'a');
  CHECK(name.search(long_name));
  CHECK_FALSE(name.search(long_name + " "));
  CHECK(hex.search("0x" + std::string(1'000'000, 'f')));
}

TEST_CASE("a schema without maxLength still checks a 10^6-character string's pattern", "[inputs]") {
  const JsonSchema s(nlohmann::json::parse(
      R"({"type": "object", "properties": {"n": {"type": "string", "pattern": "^[a-z]+$"}}})"));
  nlohmann::json doc;
  doc["n"] = std::string(1'000'000, 'x');
  CHECK_FALSE(s.validate(doc));
  doc["n"] = std::string(1'000'000, 'x') + "7";
  REQUIRE(s.validate(doc));
  CHECK(s.validate(doc)->pointer == "/n");
}

TEST_CASE("100000- and 10^6-character strings are refused by length, with their place",
          "[inputs]") {
  TempDir dir;
  std::vector<Bad> cases;
  for (const std::size_t n : {std::size_t{100'000}, std::size_t{1'000'000}}) {
    const std::string a(n, 'a');
    const std::string digits(n, '7');
    cases.push_back({"name", replace_first(scenario(""), "\"inputs\"", "\"" + a + "\""), "/name", 1,
                     fmt::format("expected a string of at most 128 characters, got one of {}", n)});
    cases.push_back(
        {"count string", scenario("", "", "{\"findings\": {\"leak\": \">=" + digits + "\"}}"),
         "/expect/findings/leak", 7, "expected a finding count: N, \">=N\" or \"<=N\""});
    cases.push_back({"map name",
                     scenario("", "  {\"at_ns\": 0, \"action\": \"map_delete\", \"map\": \"t." + a +
                                      "\", \"key\": 0}"),
                     "/timeline/0/map", 5, "expected a string of at most 512 characters"});
    cases.push_back({"description", replace_first(scenario(""), "\"d\"", "\"" + a + "\""),
                     "/description", 1, "at most 4096 characters"});
    cases.push_back({"comment",
                     scenario("",
                              "  {\"at_ns\": 0, \"action\": \"wait\", "
                              "\"comment\": \"" +
                                  a + "\"}"),
                     "/timeline/0/comment", 5, "at most 4096 characters"});
  }
  expect_refused(dir, cases, "run");
}

TEST_CASE("nesting deeper than 64 levels is refused before parsing, without recursion",
          "[inputs]") {
  TempDir dir;
  const std::size_t depth = 1'000'000;
  const std::string deep = std::string(depth, '[') + std::string(depth, ']');
  dir.file("deep.json", "{\"name\": \"x\",\n \"description\": " + deep + "}");
  expect_cmd(run_tool("run deep.json", dir.path), 2,
             {"deep.json:2:", "at /description/0/0/0/", "nested deeper than 64 levels"});
  // Unterminated, in a run file.
  dir.file("deep.run.json", "{\"bpftsim_run\": 2,\n \"x\": " + std::string(depth, '{'));
  expect_cmd(run_tool("replay deep.run.json", dir.path), 2, {"deep.run.json:2:", "invalid JSON"});
  dir.file("deep2.run.json", "{\"bpftsim_run\": 2,\n \"x\": " + std::string(depth, '['));
  expect_cmd(run_tool("replay deep2.run.json", dir.path), 2,
             {"deep2.run.json:2:", "nested deeper than 64 levels"});
}

// ---------------------------------------------------------------------------------------------
// Item 4: values that wrapped

TEST_CASE("jitter_ns and costs are bounded; the largest jitter runs and replays exactly",
          "[inputs]") {
  TempDir dir;
  const std::vector<Bad> cases = {
      {"jitter 2^32-1 (was a SIGFPE)", scenario(" \"jitter_ns\": 4294967295,"), "/jitter_ns", 2,
       "expected an integer in [0, 1000000000], got integer 4294967295"},
      {"jitter 2^32 (was an unreplayable run file)", scenario(" \"jitter_ns\": 4294967296,"),
       "/jitter_ns", 2, "expected an integer in [0, 1000000000]"},
      {"insn_ns near 2^63 (was a negative step cost)",
       scenario(" \"costs\": {\"insn_ns\": 9223372036854775807},"), "/costs/insn_ns", 2,
       "expected an integer in [0, 1000000000]"},
      {"rcu_gp_min_ns", scenario(" \"costs\": {\"rcu_gp_min_ns\": 1000000001},"),
       "/costs/rcu_gp_min_ns", 2, "expected an integer in [0, 1000000000]"},
  };
  expect_refused(dir, cases, "run");
  // The largest jitter: a failing run (a wrong expectation) writes its decisions, jitter ones
  // with 10^9+1 options among them, and replay reads them back and reproduces the digest.
  dir.file("jitter.json",
           scenario(" \"jitter_ns\": 1000000000, \"costs\": {\"insn_ns\": 1000000000},",
                    "  {\"at_ns\": 0, \"action\": \"run\", \"prog\": \"t.init_set_callback\"},\n"
                    "  {\"at_ns\": 0, \"action\": \"run\", \"prog\": \"t.start_10us\"},\n"
                    "  {\"at_ns\": 1000, \"action\": \"exit\"}",
                    "{\"globals\": {\"t.init_ret\": 12345}}"));
  const Cmd run = run_tool("run jitter.json --run-dir runs", dir.path);
  expect_cmd(run, 1, {"FAIL inputs", "reproduce: bpftsim replay runs/inputs.run.json"});
  const std::string written = read_file(dir.path / "runs" / "inputs.run.json");
  CHECK_THAT(written, Catch::Contains(" 1000000001 "));
  CHECK_THAT(written, Catch::Contains("jitter "));
  expect_cmd(run_tool("replay runs/inputs.run.json", dir.path), 0,
             {"reproduced: the trace digest matches"});
}

// ---------------------------------------------------------------------------------------------
// Item 6: files

TEST_CASE("input files: only regular files, with a size cap, and strerror", "[inputs]") {
  TempDir dir;
  fs::create_directory(dir.path / "adir");
  REQUIRE(::mkfifo((dir.path / "fifo.json").c_str(), 0600) == 0);
  fs::create_symlink("/dev/zero", dir.path / "zero.json");
  // Scenario files.
  expect_cmd(run_tool("run /dev/zero", dir.path), 2,
             {"/dev/zero: is not a regular file (a character device; expected a scenario file)"});
  expect_cmd(run_tool("run zero.json", dir.path), 2, {"zero.json: is not a regular file"});
  expect_cmd(run_tool("run fifo.json", dir.path), 2, {"fifo.json: is not a regular file (a FIFO"});
  expect_cmd(run_tool("run adir", dir.path), 2,
             {"adir: is a directory (expected a scenario file)"});
  expect_cmd(run_tool("check /dev/zero", dir.path), 2, {"/dev/zero"});
  expect_cmd(run_tool("run missing.json", dir.path), 2,
             {"missing.json: cannot open the scenario file: No such file or directory"});
  // Larger than the cap (16 MiB): refused by size, not parsed.
  {
    std::ofstream big(dir.path / "big.json", std::ios::binary);
    big << "{\"name\": \"" << std::string(model::kMaxScenarioBytes, 'a') << "\"}";
  }
  expect_cmd(run_tool("run big.json", dir.path), 2,
             {"big.json: is larger than 16777216 bytes (the limit for a scenario file)"});
  if (::geteuid() != 0) {  // root reads whatever the mode says
    dir.file("secret.json", scenario(""));
    fs::permissions(dir.path / "secret.json", fs::perms::none);
    expect_cmd(run_tool("run secret.json", dir.path), 2,
               {"secret.json: cannot open the scenario file: Permission denied"});
  }
  // Object paths in a scenario, and inspect.
  fs::create_symlink("/dev/zero", dir.path / "zero.o");
  fs::create_directory(dir.path / "dir.o");
  dir.file("zobj.json", scenario("", "", "{}", "zero.o"));
  expect_cmd(run_tool("run zobj.json", dir.path), 2,
             {"zobj.json:3:", "at /objects/0/path:", "is not a regular file (a character device"});
  dir.file("dobj.json", scenario("", "", "{}", "dir.o"));
  expect_cmd(run_tool("run dobj.json", dir.path), 2,
             {"dobj.json:3:", "at /objects/0/path:", "is a directory"});
  dir.file("big.bpf.c", "");
  fs::resize_file(dir.path / "big.bpf.c", model::kMaxSourceBytes + 1);  // sparse
  dir.file("bigsrc.json", scenario("", "", "{}", "big.bpf.c"));
  expect_cmd(run_tool("run bigsrc.json", dir.path), 2,
             {"bigsrc.json:3:", "at /objects/0/path:",
              "is larger than 16777216 bytes (the limit for a BPF C source)"});
  expect_cmd(run_tool("inspect big.bpf.c", dir.path), 2,
             {"big.bpf.c: is larger than 16777216 bytes"});
  expect_cmd(run_tool("inspect /dev/zero", dir.path), 2, {"/dev/zero: is not a regular file"});
  expect_cmd(run_tool("inspect adir", dir.path), 2, {"adir: is a directory"});
  // Run files: the file itself, and the scenario it names.
  expect_cmd(run_tool("replay /dev/zero", dir.path), 2,
             {"/dev/zero: is not a regular file (a character device; expected a run file)"});
  expect_cmd(run_tool("replay adir", dir.path), 2, {"adir: is a directory"});
  const std::string named = R"({"bpftsim_run": 2, "tool_version": "0.1.0",
 "scenario": "SCEN", "scenario_hash": "fnv1a64:0000000000000000", "name": "x",
 "profile": "v5.15", "seed": 1, "decisions": "", "digest": "0000000000000000"})";
  for (const auto& [scen, needle] : std::vector<std::pair<std::string, std::string>>{
           {"/dev/zero", "is not a regular file"},
           {"fifo.json", "is not a regular file (a FIFO"},
           {"adir", "is a directory"},
           {"gone.json", "cannot open the scenario file: No such file or directory"}}) {
    std::string text = named;
    text.replace(text.find("SCEN"), 4, scen);
    dir.file("z.run.json", text);
    expect_cmd(run_tool("replay z.run.json", dir.path), 2,
               {"z.run.json:2:", "at /scenario:", "the scenario ", needle});
  }
  // Outputs: --trace and --run-dir say why they cannot be written.
  dir.file("ok.json", scenario(""));
  expect_cmd(run_tool("run ok.json --trace nodir/t.txt", dir.path), 2,
             {"--trace nodir/t.txt: cannot open for writing: No such file or directory"});
  expect_cmd(run_tool("run ok.json --trace adir", dir.path), 2, {"--trace adir: is a directory"});
  CHECK_FALSE(fs::exists(dir.path / "t.txt"));
  expect_cmd(run_tool("run ok.json --trace t.txt", dir.path), 0, {"PASS"});
  CHECK(fs::file_size(dir.path / "t.txt") > 0);
  dir.file("fail.json", scenario("", "", "{\"globals\": {\"t.init_ret\": 5}}"));
  expect_cmd(run_tool("run fail.json --run-dir ok.json/runs", dir.path), 1,
             {"ok.json/runs: cannot create the run directory: Not a directory"});
}

// ---------------------------------------------------------------------------------------------
// Item 8: the inner template's name

TEST_CASE("<object>.<outer>.inner names the inner map template (as inspect shows it)", "[inputs]") {
  TempDir dir;
  const std::string mim = progs("timer_mim.bpf.o");
  const Cmd inspect = run_tool("inspect '" + mim + "'", dir.path);
  expect_cmd(inspect, 0, {"inner outer_arr.inner"});
  // It resolves, with the template's own key/value sizes (value 24 bytes, the outer map's is 4);
  // no process holds an fd of it (libbpf closes it at load), so the syscalls see -EBADF.
  dir.file("inner.json",
           scenario("",
                    "  {\"at_ns\": 0, \"action\": \"map_lookup\", \"map\": \"t.outer_arr.inner\", "
                    "\"key\": 0, \"expect_ret\": -9},\n"
                    "  {\"at_ns\": 10, \"action\": \"map_update\", \"map\": \"t.outer_arr.inner\", "
                    "\"key\": 0, \"value\": \"0x" +
                        std::string(48, '0') +
                        "\", \"expect_ret\": -9},\n"
                        "  {\"at_ns\": 20, \"action\": \"map_update\", \"map\": \"t.outer_arr\", "
                        "\"key\": 0, \"value\": \"t.outer_arr.inner\", \"expect_ret\": -9},\n"
                        "  {\"at_ns\": 30, \"action\": \"close\", \"map\": \"t.outer_arr.inner\", "
                        "\"expect_ret\": -9},\n"
                        "  {\"at_ns\": 40, \"action\": \"exit\"}",
                    "{\"alive\": {\"maps\": []}}", mim));
  expect_cmd(run_tool("run inner.json", dir.path), 0, {"PASS inputs"});
  const std::vector<Bad> cases = {
      {"the template's size",
       scenario("",
                "  {\"at_ns\": 0, \"action\": \"map_update\", \"map\": \"t.outer_arr.inner\", "
                "\"key\": 0, \"value\": \"0x00000000\"}",
                "{}", mim),
       "/timeline/0/value", 5, "expected 24 byte(s) for this value of t.outer_arr.inner, got 4"},
      {"expect.maps",
       scenario("", "", "{\"maps\": [{\"map\": \"t.outer_arr.inner\", \"key\": 0}]}", mim),
       "/expect/maps/0/map", 7, "is the inner map template of 't.outer_arr'"},
      {"expect.alive.maps",
       scenario("", "", "{\"alive\": {\"maps\": [\"t.outer_arr.inner\"]}}", mim),
       "/expect/alive/maps/0", 7, "so after load it is never alive"},
      {"get_fd_by_id",
       scenario("",
                "  {\"at_ns\": 0, \"action\": \"get_fd_by_id\", \"map\": \"t.outer_arr.inner\"}",
                "{}", mim),
       "/timeline/0/map", 5, "so after load it has no id"},
      {"no template on a plain map",
       scenario("",
                "  {\"at_ns\": 0, \"action\": \"map_delete\", \"map\": \"t.inner_htab.inner\", "
                "\"key\": 0}",
                "{}", mim),
       "/timeline/0/map", 5,
       "unknown map 't.inner_htab.inner' (object 't' has maps: inner_htab, outer_arr, "
       "outer_arr.inner"},
  };
  expect_refused(dir, cases, "run");
}

// ---------------------------------------------------------------------------------------------
// Errors that say why

TEST_CASE("errors that say why: subcommands, run-file JSON, duplicate keys, unused decisions",
          "[inputs]") {
  TempDir dir;
  expect_cmd(run_tool("frobnicate x", dir.path), 2,
             {"bpftsim: unknown subcommand 'frobnicate' (subcommands: ", "check, ",
              "inspect, plugin, profiles, replay, run"});
  // A failing run, and its run file.
  dir.file("fail.json", scenario("",
                                 "  {\"at_ns\": 0, \"action\": \"run\", \"prog\": "
                                 "\"t.init_only\"},\n  {\"at_ns\": 0, \"action\": \"wait\"}",
                                 "{\"globals\": {\"t.init_ret\": 5}}"));
  expect_cmd(run_tool("run fail.json", dir.path), 1, {"FAIL inputs"});
  // Run files land in ./bpftsim-runs by default; a reproduced run exits 0.
  const std::string good = read_file(dir.path / "bpftsim-runs" / "inputs.run.json");
  REQUIRE(good.find("\"decisions\": \"tie ") != std::string::npos);
  expect_cmd(run_tool("replay bpftsim-runs/inputs.run.json", dir.path), 0, {"reproduced"});
  auto variant = [&](const std::string& from, const std::string& to) {
    std::string t = good;
    const auto at = t.find(from);
    REQUIRE(at != std::string::npos);
    t.replace(at, from.size(), to);
    dir.file("v.run.json", t);
    return run_tool("replay v.run.json", dir.path);
  };
  // Syntax errors: our position, no "[json.exception...]" prefix.
  const Cmd syntax = variant("\"seed\": 1,", "\"seed\": 1");
  expect_cmd(syntax, 2, {"v.run.json:10:", "invalid JSON: syntax error while parsing object"});
  CHECK_THAT(syntax.out, !Catch::Contains("json.exception"));
  expect_cmd(variant("\"seed\": 1,", "\"seed\": 1, \"seed\": 2,"), 2,
             {"v.run.json:9:", "at /seed:", "duplicate key"});
  expect_cmd(variant("\"seed\": 1,", "\"seed\": 1, \"colour\": 2,"), 2,
             {"v.run.json:9:", "at /colour:", "unknown key 'colour'"});
  // Decisions: strictly "kind key options chosen value", options fitting 32 bits.
  expect_cmd(variant("\"decisions\": \"tie ", "\"decisions\": \"jitter 1 4294967297 0 0\\ntie "), 2,
             {"v.run.json:10:", "at /decisions:", "decision line 1: options '4294967297'"});
  expect_cmd(variant("\"decisions\": \"tie ", "\"decisions\": \"tie 1 -1 0 0\\ntie "), 2,
             {"at /decisions:", "decision line 1: options '-1'"});
  expect_cmd(variant("\"decisions\": \"tie ", "\"decisions\": \"tie 2 0 0\\ntie "), 2,
             {"at /decisions:", "decision line 1: expected 'kind key options chosen value'"});
  expect_cmd(variant("\"decisions\": \"tie ", "\"decisions\": \"tie xyz 2 0 0\\ntie "), 2,
             {"at /decisions:", "decision line 1: key 'xyz' is not 1 to 16 hex digits"});
  // Decisions left over after the replayed run ended: refused, naming how many and where.
  const auto end = good.find("\",\n  \"digest\"");
  REQUIRE(end != std::string::npos);
  std::string extra = good;
  extra.insert(end, "tie 1 2 1 abc\\ntie 2 3 2 def\\n");
  dir.file("extra.run.json", extra);
  expect_cmd(run_tool("replay extra.run.json", dir.path), 2,
             {"extra.run.json:10:", "at /decisions:", "2 recorded decision(s) left unused"});
}
