// `bpftsim timers`: one row per BPF timer (element, callbacks, starts/expiries/cancels, free,
// findings), from a scenario or a run file; --watch follows values through the run without
// changing it.
#include <catch2/catch.hpp>

#include <regex>
#include <string>

#include "tests/unit/tool_harness.h"

using namespace bpftsim::testing;

namespace {
const std::string k49 =
    std::string(BPFTSIM_SOURCE_DIR) + "/scenarios/races/4.9-cancel-vs-free.json";

bool has_line(const std::string& out, const std::string& re) {
  return std::regex_search(out, std::regex(re));
}
}  // namespace

TEST_CASE("timers: a row per timer of 4.9, with the use-after-free on the freed one", "[timers]") {
  TempDir dir;
  const Cmd c = run_tool("timers " + k49, dir.path);
  INFO(c.out);
  REQUIRE(c.code == 0);
  // T (m[0]): started once, cancelled, freed by the update's cancel_and_free, then touched.
  CHECK(has_line(c.out, R"(bpf_hrtimer#\d+ +m\[0\] +t=\d+ cpu0 +1 +0 +0 +- +1 +t=\d+ cpu1 by )"
                        R"(bpf_timer_cancel_and_free +use_after_free)"));
  // T2 (m2[0]): its long callback ran once.
  CHECK(has_line(c.out, R"(bpf_hrtimer#\d+ +m2\[0\] +t=\d+ cpu0 +1 +1 +1 +t2_long_cb +0 )"));
  // The same from the run file of a failing run (on the fixed profile the race is gone).
  REQUIRE(run_tool("run " + k49 + " --profile v5.15+2.9 --run-dir runs", dir.path).code == 1);
  const Cmd rf = run_tool("timers runs/4.9-cancel-vs-free.run.json", dir.path);
  INFO(rf.out);
  CHECK(rf.code == 0);
  CHECK_THAT(rf.out, Catch::Contains("FAIL 4.9-cancel-vs-free"));
  CHECK(has_line(rf.out, R"(bpf_hrtimer#\d+ +m\[0\] .* +-\n)"));  // no finding about T now
}

TEST_CASE("timers --watch: each change of a global and a map value, the run unchanged",
          "[timers]") {
  TempDir dir;
  const Cmd plain = run_tool("run " + k49 + " --digest", dir.path);
  const Cmd c = run_tool("timers " + k49 + " --watch t.t2_callbacks --watch 't.m[0]' --trace w.txt",
                         dir.path);
  INFO(c.out);
  REQUIRE(c.code == 0);
  // Watching does not change the run: the result line (with its digest) is the plain run's.
  CHECK(c.out.substr(0, c.out.find('\n')) == plain.out.substr(0, plain.out.find('\n')));
  // t2_callbacks: 0 at the start, 1 once T2's callback (on CPU 0, in its softirq) counted.
  CHECK(has_line(c.out, R"(watch t\.t2_callbacks\n.*\n +0 +- +- +0\n +\d+ +0 +\d+ +1\n)"));
  // m[0] as a lookup reads it (timer bytes zero), then gone with the map at exit.
  CHECK(has_line(c.out, R"(watch t\.m\[0\]\n.*\n +0 +- +- +0x0{32}\n +\d+ +1 +\d+ +absent)"));
  const std::string trace = read_file(dir.path / "w.txt");
  CHECK(has_line(trace, R"(watch: what=t\.t2_callbacks value=1)"));
  // Bad watch expressions are bad input.
  for (const char* bad : {"t.nope", "t.m[99999999999]", "x.y", "t.m[0x00]"}) {
    const Cmd b = run_tool("timers " + k49 + " --watch '" + std::string(bad) + "'", dir.path);
    INFO(b.out);
    CHECK(b.code == 2);
    CHECK_THAT(b.out, Catch::Contains("--watch"));
  }
}
