// The failure report in BPF terms, through the binary: a finding names its time, CPU, context,
// program, timer callback, map and key, and the source line of the BPF instruction (from the
// object's BTF line info); the report prints each involved CPU's events around the finding (both
// CPUs of a deadlock cycle) and a one-line story per involved timer. The Perfetto rendering puts
// the finding on its context's track with those fields, and every helper call is a slice there.
#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "tests/unit/tool_harness.h"

using namespace bpftsim::testing;
using nlohmann::json;

namespace {

const std::string kScenarios = std::string(BPFTSIM_SOURCE_DIR) + "/scenarios";

// The 1-based number of the first line of `file` containing `needle` (the test finds the line
// in the source instead of trusting a number).
int line_of(const std::string& file, const std::string& needle) {
  std::ifstream in(file);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n)
    if (line.find(needle) != std::string::npos) return n;
  FAIL("no line with '" << needle << "' in " << file);
  return 0;
}

// A copy of race scenario `name` in `dir` (object paths made absolute) whose expectations are
// replaced by `expect`, so that the race's finding fails the run and the report is printed.
fs::path failing_copy(const TempDir& dir, const std::string& name, const json& expect) {
  std::ifstream in(kScenarios + "/races/" + name + ".json");
  json s = json::parse(in);
  for (auto& o : s["objects"])
    o["path"] = kScenarios + "/races/" + o["path"].get<std::string>();
  s["expect"] = expect;
  return dir.file(name + ".json", s.dump(2));
}

std::string escape(const std::string& s) {
  return std::regex_replace(s, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)");
}

}  // namespace

TEST_CASE("report: a use-after-free names program, source line, CPUs around it, timer story",
          "[report]") {
  TempDir dir;
  const fs::path s = failing_copy(dir, "4.9-cancel-vs-free", {{"findings", json::object()}});
  const Cmd c = run_tool("run " + s.string(), dir.path);
  INFO(c.out);
  REQUIRE(c.code == 1);
  const std::string src = kScenarios + "/progs/race_cancel_free.bpf.c";
  const int line = line_of(src, "cancel_ret = bpf_timer_cancel(&t->t);");
  // Where: time, CPU, context, program, kernel site, then the BPF source line and its text.
  CHECK(std::regex_search(
      c.out, std::regex(R"(finding: use_after_free at t=\d+ ns on cpu 0 in run t\.canceller )"
                        R"(\(program canceller\) in hrtimer_try_to_cancel, at race_cancel_free)"
                        R"(\.bpf\.c:)" +
                        std::to_string(line) +
                        R"( \(insn \d+\): cancel_ret = bpf_timer_cancel\(&t->t\);)")));
  // The freed timer's story: allocated on cpu 0, freed by cancel_and_free on cpu 1, then touched.
  CHECK(std::regex_search(c.out, std::regex(R"(timer \d+: kmalloc t=\d+ cpu0, .*kfree by )"
                                            R"(bpf_timer_cancel_and_free t=\d+ cpu1, )"
                                            R"(use_after_free t=\d+ cpu0)")));
  // The events around the finding, not the end of the run: the block ends with the marked
  // finding line, and every event shown is within the run's first 20 us (the run goes on to
  // 41 us of map frees after it).
  std::smatch m;
  REQUIRE(std::regex_search(c.out, m, std::regex(R"(cpu 0 around the finding \(t=(\d+) ns\):)")));
  const long finding_t = std::stol(m[1].str());
  const std::string after = m.suffix().str();
  const std::regex ev(R"(\n +(>?) ?\S+ +\[00(\d)\] +0\.(\d{9}) )");
  int shown = 0;
  bool marked = false;
  for (auto it = std::sregex_iterator(after.begin(), after.end(), ev);
       it != std::sregex_iterator() && !marked; ++it) {
    const long t = std::stol((*it)[3].str());
    CHECK(t <= finding_t);
    CHECK(t >= finding_t - 20000);
    marked = (*it)[1].str() == ">";
    ++shown;
  }
  CHECK(marked);
  CHECK(shown >= 3);
}

TEST_CASE("report: a deadlock shows both CPUs of its cycle and the callback's map and key",
          "[report]") {
  TempDir dir;
  const fs::path s = failing_copy(dir, "4.8-mutual-cancel", json::object());
  const Cmd c = run_tool("run " + s.string(), dir.path);
  INFO(c.out);
  REQUIRE(c.code == 1);
  const int line = line_of(kScenarios + "/progs/race_mutual_cancel.bpf.c",
                           "*ret = bpf_timer_cancel(&other->t);");
  CHECK(std::regex_search(
      c.out,
      std::regex(R"(finding: deadlock at t=\d+ ns on cpu \d in softirq/\d \(callback timer_cb\d )"
                 R"(of program timer\d_prog, map m\d key 0\), at race_mutual_cancel\.bpf\.c:)" +
                 std::to_string(line) + R"( \(insn \d+\): )" +
                 escape("*ret = bpf_timer_cancel(&other->t);"))));
  CHECK(c.out.find("cpu 0 around the finding") != std::string::npos);
  CHECK(c.out.find("cpu 1 around the finding") != std::string::npos);
  // Each CPU's block shows its context blocking in hrtimer_cancel.
  CHECK(std::regex_search(c.out,
                          std::regex(R"(softirq/0-\d+ +\[000\] .* block: on=hrtimer_cancel)")));
  CHECK(std::regex_search(c.out,
                          std::regex(R"(softirq/1-\d+ +\[001\] .* block: on=hrtimer_cancel)")));
  // A story for each of the two timers.
  CHECK(std::regex_search(c.out, std::regex(R"(timer (\d+): kmalloc .*deadlock t=\d+)")));
  const std::regex story(R"(\n +timer \d+: kmalloc)");
  const auto stories = std::distance(std::sregex_iterator(c.out.begin(), c.out.end(), story),
                                     std::sregex_iterator());
  CHECK(stories == 2);
}

TEST_CASE("report: a program fault names the faulting source line", "[report]") {
  TempDir dir;
  const std::string src = kScenarios + "/progs/vm_faults.bpf.c";
  const json s = {{"name", "fault-line"},
                  {"description", "a null dereference, reported at its source line"},
                  {"cpus", 1},
                  {"objects", {{{"name", "t"}, {"path", src}}}},
                  {"timeline", {{{"at_ns", 0}, {"action", "run"}, {"prog", "t.null_deref"}}}}};
  const fs::path f = dir.file("fault.json", s.dump());
  const Cmd c = run_tool("run " + f.string(), dir.path);
  INFO(c.out);
  REQUIRE(c.code == 1);
  // The line of the dereference: the first "return *v;" after null_deref's definition.
  std::ifstream in(src);
  std::string text;
  int n = 0, line = 0;
  bool in_fn = false;
  while (std::getline(in, text) && line == 0) {
    ++n;
    if (text.find("null_deref(") != std::string::npos) in_fn = true;
    if (in_fn && text.find("return *v;") != std::string::npos) line = n;
  }
  REQUIRE(line > 0);
  CHECK(
      std::regex_search(c.out, std::regex(R"(finding: program_fault .*\(program null_deref\), )"
                                          R"(at vm_faults\.bpf\.c:)" +
                                          std::to_string(line) + R"( \(insn \d+\): return \*v;)")));
}

TEST_CASE("report: in Perfetto the finding sits on its context's track, helpers are slices",
          "[report]") {
  TempDir dir;
  const Cmd c = run_tool("run " + kScenarios + "/races/4.9-cancel-vs-free.json --trace t.json " +
                             "--trace-format perfetto",
                         dir.path);
  INFO(c.out);
  REQUIRE(c.code == 0);
  std::ifstream in(dir.path / "t.json");
  const json doc = json::parse(in);
  std::map<std::int64_t, std::string> thread_names;
  for (const auto& e : doc["traceEvents"])
    if (e["ph"] == "M" && e["name"] == "thread_name") thread_names[e["tid"]] = e["args"]["name"];
  int findings = 0, helper_slices = 0;
  for (const auto& e : doc["traceEvents"]) {
    if (e["ph"] == "i" && e["name"] == "finding") {
      ++findings;
      CHECK(thread_names[e["tid"]].rfind("run t.canceller", 0) == 0);
      CHECK(e["args"]["program"] == "canceller");
      CHECK(e["args"]["kind"] == "use_after_free");
      CHECK(e["args"]["source"].get<std::string>().rfind("race_cancel_free.bpf.c:", 0) == 0);
    }
    if (e["ph"] == "X" && e["cat"] == "helper") {
      ++helper_slices;
      CHECK(e["name"].get<std::string>().rfind("bpf_", 0) == 0);
      CHECK(e["dur"].get<double>() > 0);
    }
  }
  CHECK(findings == 1);
  CHECK(helper_slices >= 8);
}

TEST_CASE("traces/replay: every known race's run file replays it exactly, from any directory",
          "[report][replay-files]") {
  TempDir dir;
  const fs::path replays = fs::path(BPFTSIM_SOURCE_DIR) / "traces" / "replay";
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(replays))
    if (e.path().string().ends_with(".run.json")) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  // One per unscripted race of scenarios/explore/.
  std::size_t races = 0;
  for (const auto& e : fs::directory_iterator(fs::path(BPFTSIM_SOURCE_DIR) / "scenarios/explore"))
    races += e.path().extension() == ".json" ? 1 : 0;
  CHECK(files.size() == races);
  for (const auto& f : files) {
    INFO(f.string() << " (after a change of the traces, regenerate with tools/update-replays.sh)");
    const json rf = json::parse(read_file(f));
    CHECK(rf["outcome"].get<std::string>() != "pass");
    const Cmd c = run_tool("replay " + f.string(), dir.path);
    INFO(c.out);
    CHECK(c.code == 0);
    CHECK(c.out.find("reproduced: the trace digest matches the recorded run") != std::string::npos);
    // The recorded outcome ("deadlock", "use_after_free@site", or a failed expectation's
    // pointer) shows in the replayed run's failure report.
    const std::string outcome = rf["outcome"];
    CHECK(c.out.find(outcome.substr(0, outcome.find('@'))) != std::string::npos);
  }
}
