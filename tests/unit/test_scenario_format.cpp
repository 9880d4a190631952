// The scenario format's expectations of issue 10, through the built bpftsim binary:
// expect.load_error (objects that must fail to load), expect.any_of (alternatives), ranges and
// BTF fields of map values, maps at a time (at[].maps, maps_at), globals of any size and dotted
// global names, and every input error of a scenario reported at once.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "tests/unit/tool_harness.h"

using namespace bpftsim::testing;
namespace fs = std::filesystem;

namespace {

std::string prebuilt(const std::string& stem) {
  return std::string(BPFTSIM_PROGS_DIR) + "/" + stem + ".bpf.o";
}

std::string values_source() {
  return std::string(BPFTSIM_SOURCE_DIR) + "/tests/data/fmt_values.bpf.c";
}

// A one-CPU scenario of object `t` at `object` with `timeline` (actions, comma-separated) and
// `expect` (a JSON object).
std::string scenario(const std::string& name, const std::string& object,
                     const std::string& timeline, const std::string& expect,
                     const std::string& object_extra = "") {
  return R"({"name": ")" + name + R"(", "description": "d", "cpus": 1,
 "objects": [{"name": "t", "path": ")" +
         object + "\"" + object_extra + R"(}],
 "timeline": [)" +
         timeline + R"(],
 "expect": )" +
         expect + "\n}\n";
}

}  // namespace

TEST_CASE("load_error: a load that must fail, judged by its message", "[format]") {
  TempDir dir;
  const std::string unknown = prebuilt("vm_unknown_helper");
  dir.file("ok.json", scenario("le-ok", unknown, "",
                               R"({"load_error": "calls bpf_get_current_comm",
                                   "comment": "the model has no such helper"})"));
  const Cmd ok = run_tool("run ok.json --run-dir runs", dir.path);
  INFO(ok.out);
  CHECK(ok.code == 0);

  // The message does not contain the string: a failed run that prints the real message.
  dir.file("other.json", scenario("le-other", unknown, "", R"({"load_error": "rule stack_oob"})"));
  const Cmd other = run_tool("run other.json --run-dir runs", dir.path);
  INFO(other.out);
  CHECK(other.code == 1);
  CHECK_THAT(other.out, Catch::Contains("/expect/load_error: the objects failed to load with a "
                                        "message that does not contain 'rule stack_oob'"));
  CHECK_THAT(other.out, Catch::Contains("calls bpf_get_current_comm (helper 16)"));

  // Objects that load fail the run.
  dir.file("loads.json",
           scenario("le-loads", prebuilt("timer_seed"), "", R"({"load_error": "anything"})"));
  const Cmd loads = run_tool("run loads.json --run-dir runs", dir.path);
  INFO(loads.out);
  CHECK(loads.code == 1);
  CHECK_THAT(loads.out, Catch::Contains("expected the objects to fail to load with 'anything'; "
                                        "they loaded"));

  // Without load_error the same object is bad input, as before.
  dir.file("bad.json", scenario("le-bad", unknown, "", "{}"));
  const Cmd bad = run_tool("run bad.json", dir.path);
  INFO(bad.out);
  CHECK(bad.code == 2);
  CHECK_THAT(bad.out, Catch::Contains("bad.json:2:"));
  CHECK_THAT(bad.out, Catch::Contains("at /objects/0/path: cannot load object:"));

  // Only a scenario expecting a load error may have an empty timeline.
  dir.file("empty.json", scenario("le-empty", prebuilt("timer_seed"), "", "{}"));
  const Cmd empty = run_tool("run empty.json", dir.path);
  INFO(empty.out);
  CHECK(empty.code == 2);
  CHECK_THAT(empty.out, Catch::Contains("at /timeline: expected at least 1 action"));

  // Other expectations beside load_error are bad input: nothing runs to check them.
  dir.file("more.json",
           scenario("le-more", unknown, "", R"({"load_error": "x", "globals": {"t.a": 1}})"));
  const Cmd more = run_tool("run more.json", dir.path);
  INFO(more.out);
  CHECK(more.code == 2);
  CHECK_THAT(more.out, Catch::Contains("at /expect/globals: with load_error nothing runs"));

  // An object compiled without BTF (-g0 after the default -g): the loader's refusal is expected.
  dir.file("nobtf.json", scenario("le-nobtf", values_source(), "", R"({"load_error": "BTF"})",
                                  R"(, "cflags": ["-g0"])"));
  const Cmd nobtf = run_tool("run nobtf.json --run-dir runs", dir.path);
  INFO(nobtf.out);
  CHECK(nobtf.code == 0);

  // A kfunc the model does not know: the loader refuses it, naming it.
  dir.file("kfunc.bpf.c", R"(#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char _license[] SEC("license") = "GPL";
extern void bpf_rcu_read_lock(void) __ksym;
SEC("syscall")
int k(void* ctx) {
  bpf_rcu_read_lock();
  return 0;
}
)");
  dir.file("kfunc.json", scenario("le-kfunc", "kfunc.bpf.c", "",
                                  R"({"load_error": "kfunc call to 'bpf_rcu_read_lock'"})"));
  const Cmd kfunc = run_tool("run kfunc.json --run-dir runs", dir.path);
  INFO(kfunc.out);
  CHECK(kfunc.code == 0);

  // check treats them as any scenario: PASS rows for the passing ones, FAIL for the others.
  fs::create_directory(dir.path / "suite");
  fs::copy_file(dir.path / "ok.json", dir.path / "suite" / "ok.json");
  fs::copy_file(dir.path / "nobtf.json", dir.path / "suite" / "nobtf.json");
  const Cmd check = run_tool("check suite --run-dir runs", dir.path);
  INFO(check.out);
  CHECK(check.code == 0);
  CHECK_THAT(check.out, Catch::Contains("le-ok"));
  CHECK_THAT(check.out, Catch::Contains("PASS"));
  CHECK_THAT(check.out, !Catch::Contains("FAIL"));
}

TEST_CASE("any_of: at least one alternative must hold, besides the top level", "[format]") {
  TempDir dir;
  const std::string nmi = prebuilt("timer_nmi");
  const std::string in_nmi = R"({"at_ns": 0, "action": "run", "prog": "t.nmi_init",
                                 "context": "nmi"})";
  // nmi_init in NMI: the helper refuses, nmi_ret is -95 (-EOPNOTSUPP).
  dir.file("pass.json", scenario("any-pass", nmi, in_nmi, R"({"globals": {"t.callbacks": 0},
    "any_of": [{"globals": {"t.nmi_ret": 0}}, {"globals": {"t.nmi_ret": -95}}]})"));
  const Cmd pass = run_tool("run pass.json --run-dir runs", dir.path);
  INFO(pass.out);
  CHECK(pass.code == 0);

  // No alternative holds: each one's failures under its pointer.
  dir.file("none.json", scenario("any-none", nmi, in_nmi,
                                 R"({"any_of": [{"globals": {"t.nmi_ret": 0}},
                                                {"status": "stopped"}]})"));
  const Cmd none = run_tool("run none.json --run-dir runs", dir.path);
  INFO(none.out);
  CHECK(none.code == 1);
  CHECK_THAT(none.out, Catch::Contains("/expect/any_of: none of the 2 alternative(s) holds"));
  CHECK_THAT(none.out, Catch::Contains("alternative 0 (/expect/any_of/0):"));
  CHECK_THAT(none.out, Catch::Contains("/expect/any_of/0/globals/t.nmi_ret: t.nmi_ret is -95 at "
                                       "the end, expected 0"));
  CHECK_THAT(none.out, Catch::Contains("/expect/any_of/1/status: the run ended quiescent, "
                                       "expected stopped"));

  // An alternative holds but the top level does not: the run fails on the top level alone.
  dir.file("top.json", scenario("any-top", nmi, in_nmi, R"({"globals": {"t.nmi_ret": 0},
    "any_of": [{"globals": {"t.nmi_ret": -95}}]})"));
  const Cmd top = run_tool("run top.json --run-dir runs", dir.path);
  INFO(top.out);
  CHECK(top.code == 1);
  CHECK_THAT(top.out, Catch::Contains("/expect/globals/t.nmi_ret: t.nmi_ret is -95"));
  CHECK_THAT(top.out, !Catch::Contains("/expect/any_of"));

  // An alternative's `at` is an observer too, judged within the alternative.
  dir.file("at.json",
           scenario("any-at", nmi, in_nmi + R"(,
    {"at_ns": 5000, "action": "wait"})",
                    R"({"any_of": [{"at": [{"at_ns": 1000, "globals": {"t.nmi_ret": 0}}]},
                                            {"at": [{"at_ns": 1000, "globals": {"t.nmi_ret": -95}}]}]})"));
  const Cmd at = run_tool("run at.json --run-dir runs", dir.path);
  INFO(at.out);
  CHECK(at.code == 0);
  dir.file("at_fail.json",
           scenario("any-at-fail", nmi, in_nmi + R"(,
    {"at_ns": 5000, "action": "wait"})",
                    R"({"any_of": [{"at": [{"at_ns": 1000, "globals": {"t.nmi_ret": 0}}]}]})"));
  const Cmd at_fail = run_tool("run at_fail.json --run-dir runs", dir.path);
  INFO(at_fail.out);
  CHECK(at_fail.code == 1);
  CHECK_THAT(at_fail.out, Catch::Contains("      /expect/any_of/0/at/0/globals/t.nmi_ret: "
                                          "t.nmi_ret is -95 at t=1000, expected 0"));

  // Findings: the ABBA deadlock of reference 4.12 (one deadlock, the run stopped).
  const std::string abba = prebuilt("race_map_update");
  const std::string abba_timeline =
      R"({"at_ns": 0, "cpu": 0, "action": "run", "prog": "t.arm_abba"},
         {"at_ns": 2000, "cpu": 1, "action": "map_update", "map": "t.one_bucket", "key": 1,
          "value": "0x00000000000000000000000000000000"})";
  auto abba_scenario = [&](const std::string& name, const std::string& expect) {
    std::string text = scenario(name, abba, abba_timeline, expect);
    text.replace(text.find("\"cpus\": 1"), 9, "\"cpus\": 2");
    return dir.file(name + ".json", text);
  };
  // An alternative that names the finding holds; the other (default: no findings) does not.
  abba_scenario("abba-alt", R"({"globals": {"t.callbacks": 1},
    "any_of": [{"status": "quiescent"}, {"findings": {"deadlock": 1}, "status": "stopped"}]})");
  const Cmd alt = run_tool("run abba-alt.json --run-dir runs", dir.path);
  INFO(alt.out);
  CHECK(alt.code == 0);
  // Neither the top level nor the alternative names findings: "no findings" applies inside it.
  abba_scenario("abba-default", R"({"any_of": [{"status": "stopped"}]})");
  const Cmd dflt = run_tool("run abba-default.json --run-dir runs", dir.path);
  INFO(dflt.out);
  CHECK(dflt.code == 1);
  CHECK_THAT(dflt.out, Catch::Contains("/expect/any_of: none of the 1 alternative(s) holds"));
  CHECK_THAT(dflt.out, Catch::Contains("    unexpected finding: deadlock"));
  // The top level names the finding: its rule judges it, the alternative only its status.
  abba_scenario("abba-top", R"({"findings": {"deadlock": 1},
    "any_of": [{"status": "quiescent"}, {"status": "stopped"}]})");
  const Cmd tops = run_tool("run abba-top.json --run-dir runs", dir.path);
  INFO(tops.out);
  CHECK(tops.code == 0);

  // An alternative's names resolve like the top level's; any_of is not nested.
  dir.file("bad.json",
           scenario("any-bad", nmi, in_nmi, R"({"any_of": [{"globals": {"t.nmi_rte": 0}}]})"));
  const Cmd bad = run_tool("run bad.json", dir.path);
  INFO(bad.out);
  CHECK(bad.code == 2);
  CHECK_THAT(bad.out, Catch::Contains("at /expect/any_of/0/globals/t.nmi_rte: unknown global"));
  dir.file("nested.json", scenario("any-nested", nmi, in_nmi,
                                   R"({"any_of": [{"any_of": [{"status": "stopped"}]}]})"));
  const Cmd nested = run_tool("run nested.json", dir.path);
  INFO(nested.out);
  CHECK(nested.code == 2);
  CHECK_THAT(nested.out, Catch::Contains("at /expect/any_of/0/any_of: unknown key 'any_of'"));
}

namespace {

// Two runs of fmt_values' bump: vals[0] = {cnt 2, state 2, in {x 7, y -2}}, small[1] = -6,
// stats = {cnt 2, last -6, in {7, -2}}, tag "zbcdefghijk".
std::string bump_twice(const std::string& extra = "") {
  return R"({"at_ns": 0, "action": "run", "prog": "t.bump"},
    {"at_ns": 1000, "action": "run", "prog": "t.bump"})" +
         extra;
}

}  // namespace

TEST_CASE("map values: comparisons, sets and BTF struct members", "[format]") {
  TempDir dir;
  const std::string src = values_source();
  dir.file("pass.json",
           scenario("mv-pass", src,
                    bump_twice(R"(, {"at_ns": 2000, "action": "map_lookup", "map": "t.vals",
                      "key": 0, "expect_value": {"fields": {"cnt": 2, "in.y": "<=-1"}}},
                    {"at_ns": 2000, "action": "map_lookup", "map": "t.small", "key": 1,
                      "expect_value": {"in": [-6, -3]}})"),
                    R"({"maps": [
      {"map": "t.small", "key": 1, "value": "<=-6"},
      {"map": "t.small", "key": 1, "value": "!=0"},
      {"map": "t.vals", "key": 0,
       "value": {"fields": {"cnt": ">=2", "state": {"in": [1, 2]}, "in.x": 7, "in.y": -2}}},
      {"map": "t.vals", "key": 1, "value": {"fields": {"cnt": 0, "in.y": 0}}}]})"));
  const Cmd pass = run_tool("run pass.json --run-dir runs", dir.path);
  INFO(pass.out);
  CHECK(pass.code == 0);

  dir.file("fail.json",
           scenario("mv-fail", src,
                    bump_twice(R"(, {"at_ns": 2000, "action": "map_lookup", "map": "t.small",
                      "key": 1, "expect_value": ">=0"})"),
                    R"({"maps": [
      {"map": "t.small", "key": 1, "value": {"in": [-3, 0]}},
      {"map": "t.vals", "key": 0, "value": {"fields": {"cnt": ">=3", "in.y": ">=0", "in.x": 7}}}]})"));
  const Cmd fail = run_tool("run fail.json --run-dir runs", dir.path);
  INFO(fail.out);
  CHECK(fail.code == 1);
  CHECK_THAT(fail.out, Catch::Contains("/expect/maps/0/value: t.small[0x01000000] is -6, "
                                       "expected in [-3,0]"));
  CHECK_THAT(fail.out, Catch::Contains("/expect/maps/1/value/fields/cnt: "
                                       "t.vals[0x00000000].cnt is 2, expected >=3"));
  CHECK_THAT(fail.out, Catch::Contains("/expect/maps/1/value/fields/in.y: "
                                       "t.vals[0x00000000].in.y is -2, expected >=0"));
  CHECK_THAT(fail.out, !Catch::Contains("fields/in.x"));
  CHECK_THAT(fail.out,
             Catch::Contains("/timeline/2 t=2000 cpu 0: map_lookup t.small read -6, expected >=0"));

  // Bad input: members that cannot be expected, unknown members, a comparison of 40 bytes.
  struct Bad {
    std::string value, pointer, message;
  };
  for (const Bad& b : {
           Bad{R"({"fields": {"timer": 0}})", "/expect/maps/0/value/fields/timer",
               "member 'timer' of the value of t.vals is a struct bpf_timer: it reads as zero and "
               "cannot be expected (members: cnt, state, in, in.x, in.y, timer)"},
           Bad{R"({"fields": {"in": 0}})", "/expect/maps/0/value/fields/in",
               "member 'in' of the value of t.vals is a struct or union: name its members (in.x, "
               "in.y)"},
           Bad{R"({"fields": {"in.z": 0}})", "/expect/maps/0/value/fields/in.z",
               "the value of t.vals has no member 'in.z' (members: cnt, state, in, in.x, in.y, "
               "timer)"},
           Bad{R"(">=3")", "/expect/maps/0/value",
               "the value of t.vals is 40 bytes: a comparison needs a value of at most 8 bytes"},
           Bad{R"({"fields": {"cnt": "<=-1"}})", "/expect/maps/0/value/fields/cnt",
               "member 'cnt' of the value of t.vals is unsigned (BTF)"},
       }) {
    dir.file("bad.json",
             scenario("mv-bad", src, bump_twice(),
                      R"({"maps": [{"map": "t.vals", "key": 0, "value": )" + b.value + "}]}"));
    const Cmd bad = run_tool("run bad.json", dir.path);
    INFO(b.value << "\n" << bad.out);
    CHECK(bad.code == 2);
    CHECK_THAT(bad.out, Catch::Contains("at " + b.pointer + ": " + b.message));
  }
}

TEST_CASE("maps at a time: at[].maps and maps_at", "[format]") {
  TempDir dir;
  const std::string src = values_source();
  // After the first bump (t=0) and before the second (t=1000): cnt 1, small[1] = -3.
  dir.file("pass.json", scenario("ma-pass", src, bump_twice(), R"({
    "at": [{"at_ns": 500, "maps": [{"map": "t.vals", "key": 0, "value": {"fields": {"cnt": 1}}},
                                   {"map": "t.small", "key": 1, "value": -3}]}],
    "maps_at": [{"at_ns": 500, "maps": [{"map": "t.small", "key": 2, "present": false}]},
                {"at_ns": 5000, "maps": [{"map": "t.small", "key": 1, "value": "<=-6"}]}],
    "maps": [{"map": "t.small", "key": 1, "value": -6}]})"));
  const Cmd pass = run_tool("run pass.json --run-dir runs", dir.path);
  INFO(pass.out);
  CHECK(pass.code == 0);

  dir.file("fail.json", scenario("ma-fail", src, bump_twice(), R"({
    "at": [{"at_ns": 500, "maps": [{"map": "t.vals", "key": 0, "value": {"fields": {"cnt": 2}}}]}],
    "maps_at": [{"at_ns": 0, "maps": [{"map": "t.small", "key": 1}]}]})"));
  const Cmd fail = run_tool("run fail.json --run-dir runs", dir.path);
  INFO(fail.out);
  CHECK(fail.code == 1);
  CHECK_THAT(fail.out, Catch::Contains("/expect/at/0/maps/0/value/fields/cnt: "
                                       "t.vals[0x00000000].cnt is 1 at t=500, expected 2"));
  // At t=0 only the events due then have run: the first bump's task has not finished.
  CHECK_THAT(fail.out, Catch::Contains("/expect/maps_at/0/maps/0: t.small[0x01000000] is absent "
                                       "at t=0, expected present"));

  dir.file("bad.json", scenario("ma-bad", src, bump_twice(), R"({
    "maps_at": [{"at_ns": 500, "maps": [{"map": "t.nope", "key": 0}]}]})"));
  const Cmd bad = run_tool("run bad.json", dir.path);
  INFO(bad.out);
  CHECK(bad.code == 2);
  CHECK_THAT(bad.out, Catch::Contains("at /expect/maps_at/0/maps/0/map: unknown map 't.nope'"));
}

TEST_CASE("globals of any size: bytes, fields and dotted member names", "[format]") {
  TempDir dir;
  const std::string src = values_source();
  // stats (24 bytes) = {cnt 2, last -6, in {7, -2}}; tag (12 bytes) = "zbcdefghijk".
  dir.file("pass.json", scenario("gl-pass", src, bump_twice(), R"({
    "globals": {"t.stats.cnt": 2, "t.stats.last": "<=-6", "t.stats.in.y": {"in": [-2, -1]},
                "t.tag": "0x7a62636465666768696a6b00",
                "t.stats": {"fields": {"cnt": ">=2", "in.x": 7}}, "t.plain": [5, 0, 0, 0]},
    "at": [{"at_ns": 0, "globals": {"t.stats.cnt": "unset",
                                    "t.tag": [97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 0]}},
           {"at_ns": 500, "globals": {"t.stats.last": -3}}]})"));
  const Cmd pass = run_tool("run pass.json --run-dir runs", dir.path);
  INFO(pass.out);
  CHECK(pass.code == 0);

  dir.file("fail.json", scenario("gl-fail", src, bump_twice(), R"({
    "globals": {"t.stats.cnt": ">=3", "t.stats": {"fields": {"in.y": 0}},
                "t.tag": "0x000000000000000000000000"},
    "at": [{"at_ns": 500, "globals": {"t.stats.in.x": 0}}]})"));
  const Cmd fail = run_tool("run fail.json --run-dir runs", dir.path);
  INFO(fail.out);
  CHECK(fail.code == 1);
  CHECK_THAT(fail.out, Catch::Contains("/expect/globals/t.stats.cnt: t.stats.cnt is 2 at the end, "
                                       "expected >=3"));
  CHECK_THAT(fail.out, Catch::Contains("/expect/globals/t.stats/fields/in.y: t.stats.in.y is -2 "
                                       "at the end, expected 0"));
  CHECK_THAT(fail.out, Catch::Contains("/expect/globals/t.tag: t.tag is 0x7a62636465666768696a6b00 "
                                       "at the end, expected 0x000000000000000000000000"));
  CHECK_THAT(fail.out, Catch::Contains("/expect/at/0/globals/t.stats.in.x: t.stats.in.x is 7 at "
                                       "t=500, expected 0"));

  struct Bad {
    std::string globals, pointer, message;
  };
  for (const Bad& b : {
           Bad{R"("t.stats": ">=1")", "/expect/globals/t.stats",
               "global 't.stats' is 24 bytes; only integers of 1 to 8 bytes can be compared"},
           Bad{R"("t.stats.nope": 1)", "/expect/globals/t.stats.nope",
               "global 't.stats' has no member 'nope' (members: cnt, last, in, in.x, in.y)"},
           Bad{R"("t.stats.in": 1)", "/expect/globals/t.stats.in",
               "member 'in' of global 't.stats' is a struct or union: name its members (in.x, "
               "in.y)"},
           Bad{R"("t.tag": "0x00")", "/expect/globals/t.tag", "expected 12 byte(s)"},
           Bad{R"("t.plain": {"fields": {"x": 1}})", "/expect/globals/t.plain/fields",
               "the global 't.plain' has no BTF struct or union type"},
       }) {
    dir.file("bad.json",
             scenario("gl-bad", src, bump_twice(), "{\"globals\": {" + b.globals + "}}"));
    const Cmd bad = run_tool("run bad.json", dir.path);
    INFO(b.globals << "\n" << bad.out);
    CHECK(bad.code == 2);
    CHECK_THAT(bad.out, Catch::Contains("at " + b.pointer + ": " + b.message));
  }

  // The .bss section as a map still reads the whole struct (its only variable).
  dir.file("bss.json", scenario("gl-bss", src, bump_twice(), R"({
    "maps": [{"map": "t..bss", "key": 0, "value": "0x0200000000000000faffffff07000000feff000000000000"}]})"));
  const Cmd bss = run_tool("run bss.json --run-dir runs", dir.path);
  INFO(bss.out);
  CHECK(bss.code == 0);

  // bpftsim timers --watch follows a member of a struct global.
  const Cmd watch = run_tool("timers pass.json --watch t.stats.last", dir.path);
  INFO(watch.out);
  CHECK(watch.code == 0);
  CHECK_THAT(watch.out, Catch::Contains("watch t.stats.last"));
  CHECK_THAT(watch.out,
             Catch::Matches("[\\s\\S]*\\n +0 +- +- +0\\n +[0-9]+ +0 +[0-9]+ +-3\\n +[0-9]+ "
                            "+0 +[0-9]+ +-6\\n[\\s\\S]*"));
}

namespace {

// The lines of `out` that contain `needle`, and whether they come in this order.
bool in_order(const std::string& out, const std::vector<std::string>& needles) {
  std::size_t at = 0;
  for (const std::string& n : needles) {
    const std::size_t found = out.find(n, at);
    if (found == std::string::npos) return false;
    at = found + n.size();
  }
  return true;
}

}  // namespace

TEST_CASE("every input error at once, in document order, up to 20", "[format]") {
  TempDir dir;
  const std::string src = values_source();
  // Meaning errors: an object that does not exist (names of it say nothing more), an unknown
  // program, one action out of order (one error, not one per later action) on a CPU that does not
  // exist, a value of the wrong size, unknown globals and members.
  dir.file("meaning.json", R"({"name": "m", "description": "d", "cpus": 2,
 "objects": [{"name": "t", "path": ")" +
                               src + R"("},
             {"name": "u", "path": "missing.bpf.c"}],
 "timeline": [
   {"at_ns": 100, "action": "run", "prog": "t.bmp"},
   {"at_ns": 50, "action": "run", "prog": "t.bump", "cpu": 3},
   {"at_ns": 60, "action": "run", "prog": "u.anything"},
   {"at_ns": 70, "action": "map_lookup", "map": "u.m", "key": 0},
   {"at_ns": 80, "action": "map_lookup", "map": "t.small", "key": 0, "expect_value": "0x00"}
 ],
 "expect": {"globals": {"t.nope": 1, "u.x": 2, "t.stats": ">=1"},
            "maps": [{"map": "t.vals", "key": 0, "value": {"fields": {"zz": 1}}}]}}
)");
  const Cmd meaning = run_tool("run meaning.json", dir.path);
  INFO(meaning.out);
  CHECK(meaning.code == 2);
  CHECK(
      in_order(meaning.out,
               {"meaning.json:3:28: at /objects/1/path: object file 'missing.bpf.c' does not exist",
                "\nmeaning.json:5:", "at /timeline/0/prog: unknown program 't.bmp'",
                "\nmeaning.json:6:5: at /timeline/1/at_ns: time goes backwards: at_ns 50",
                "\nmeaning.json:6:", "at /timeline/1/cpu: cpu 3 does not exist",
                "\nmeaning.json:9:", "at /timeline/4/expect_value: expected 4 byte(s)",
                "\nmeaning.json:11:", "at /expect/globals/t.nope: unknown global variable",
                "\nmeaning.json:11:", "at /expect/globals/t.stats: global 't.stats' is 24 bytes",
                "\nmeaning.json:12:",
                "at /expect/maps/0/value/fields/zz: the value of t.vals "
                "has no member 'zz'",
                "\n8 errors\n"}));
  // Names of the object that failed to load are not reported again, nor later actions' times.
  CHECK_THAT(meaning.out, !Catch::Contains("u.anything"));
  CHECK_THAT(meaning.out, !Catch::Contains("u.m"));
  CHECK_THAT(meaning.out, !Catch::Contains("u.x"));
  CHECK_THAT(meaning.out, !Catch::Contains("/timeline/2/at_ns"));

  // Schema errors: all of them (the meaning checks need a document the schema admits).
  dir.file("schema.json", R"({"name": "s", "description": "d", "cpus": 2, "bogus": 1,
 "objects": [{"name": "t", "path": "x.o", "extra": 1}],
 "timeline": [
   {"at_ns": -1, "action": "run", "prog": "t.bmp"},
   {"at_ns": 50, "action": "rnu"},
   {"at_ns": 60, "action": "run", "prog": "t.x", "cpu": 99}
 ],
 "expect": {"status": "done"}}
)");
  const Cmd schema = run_tool("run schema.json", dir.path);
  INFO(schema.out);
  CHECK(schema.code == 2);
  CHECK(in_order(schema.out,
                 {"schema.json:1:", "at /bogus: unknown key 'bogus'",
                  "\nschema.json:2:", "at /objects/0/extra: unknown key 'extra'",
                  "\nschema.json:4:", "at /timeline/0/at_ns: expected an integer",
                  "\nschema.json:5:", "at /timeline/1/action: expected one of",
                  "\nschema.json:6:", "at /timeline/2/cpu: expected an integer in [0, 63]",
                  "\nschema.json:8:", "at /expect/status: expected one of", "\n6 errors\n"}));

  // At most 20: 25 unknown programs (meaning), then 25 CPUs out of range (schema).
  std::string meaning25, schema25;
  for (int i = 0; i < 25; ++i) {
    meaning25 += fmt::format("{}\n   {{\"at_ns\": {}, \"action\": \"run\", \"prog\": \"t.p{}\"}}",
                             i ? "," : "", i, i);
    schema25 += fmt::format(
        "{}\n   {{\"at_ns\": {}, \"action\": \"run\", \"prog\": \"t.bump\", "
        "\"cpu\": {}}}",
        i ? "," : "", i, 100 + i);
  }
  dir.file("many.json", scenario("many", src, meaning25, "{}"));
  const Cmd many = run_tool("run many.json", dir.path);
  INFO(many.out);
  CHECK(many.code == 2);
  CHECK(in_order(many.out, {"at /timeline/0/prog: unknown program 't.p0'",
                            "at /timeline/19/prog: unknown program 't.p19'",
                            "\n20 errors (stopped after 20)\n"}));
  CHECK_THAT(many.out, !Catch::Contains("/timeline/20/"));
  dir.file("many_schema.json", scenario("many-schema", src, schema25, "{}"));
  const Cmd many_schema = run_tool("run many_schema.json", dir.path);
  INFO(many_schema.out);
  CHECK(many_schema.code == 2);
  CHECK(in_order(many_schema.out, {"at /timeline/0/cpu: expected an integer in [0, 63]",
                                   "at /timeline/19/cpu:", "\n20 errors (stopped after 20)\n"}));
  CHECK_THAT(many_schema.out, !Catch::Contains("/timeline/20/"));

  // A syntax error stays one error: nothing can be checked after it.
  dir.file("syntax.json", "{\"name\": \"x\",\n \"cpus\": 1,,\n}\n");
  const Cmd syntax = run_tool("run syntax.json", dir.path);
  INFO(syntax.out);
  CHECK(syntax.code == 2);
  CHECK_THAT(syntax.out, Catch::Contains("syntax.json:2:"));
  CHECK_THAT(syntax.out, !Catch::Contains("errors"));

  // check prints every error of the scenario in its ERROR row.
  fs::create_directory(dir.path / "suite");
  fs::copy_file(dir.path / "meaning.json", dir.path / "suite" / "meaning.json");
  const Cmd check = run_tool("check suite", dir.path);
  INFO(check.out);
  CHECK(check.code == 2);
  CHECK_THAT(check.out, Catch::Contains("\n  suite/meaning.json:5:"));
  CHECK_THAT(check.out, Catch::Contains("\n  8 errors\n"));
}
