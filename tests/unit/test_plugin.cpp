// `bpftsim plugin` speaks the bpf_conformance runner's protocol: these tests run the built
// binary (BPFTSIM_BINARY) the way the runner does (memory as the first argument in the runner's
// "xx  xx  " format, program hex on stdin) and check stdout and the exit code; the last one
// drives the whole conformance suite through the plugin.
#include <sys/wait.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/unit/bpf_asm.h"

namespace {

struct Result {
  int exit_code = -1;
  std::string out;
};

// The runner's byte format: two hex digits and two spaces per byte.
std::string runner_hex(const std::vector<std::uint8_t>& bytes) {
  std::string s;
  char buf[8];
  for (auto b : bytes) {
    std::snprintf(buf, sizeof buf, "%02x  ", b);
    s += buf;
  }
  return s;
}

std::vector<std::uint8_t> insn_bytes(const std::vector<bpftsim::model::BpfInsn>& insns) {
  std::vector<std::uint8_t> out;
  for (const auto& in : insns) {
    const auto off = static_cast<std::uint16_t>(in.off);
    const auto imm = static_cast<std::uint32_t>(in.imm);
    const std::uint8_t b[8] = {in.code,
                               in.regs,
                               static_cast<std::uint8_t>(off),
                               static_cast<std::uint8_t>(off >> 8),
                               static_cast<std::uint8_t>(imm),
                               static_cast<std::uint8_t>(imm >> 8),
                               static_cast<std::uint8_t>(imm >> 16),
                               static_cast<std::uint8_t>(imm >> 24)};
    out.insert(out.end(), b, b + 8);
  }
  return out;
}

// Runs `bpftsim plugin '<memory>'` with `program` on stdin (through a temporary file).
Result run_plugin(const std::string& memory, const std::string& program) {
  const auto tmp = std::filesystem::temp_directory_path() /
                   ("bpftsim_plugin_test_" + std::to_string(::getpid()) + ".hex");
  {
    std::ofstream f(tmp);
    f << program << '\n';
  }
  const std::string cmd = std::string("'") + BPFTSIM_BINARY + "' plugin '" + memory + "' '' < '" +
                          tmp.string() + "' 2>/dev/null";
  Result r;
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[256];
  while (std::fgets(buf, sizeof buf, p) != nullptr)
    r.out += buf;
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::filesystem::remove(tmp);
  return r;
}

Result run_asm(const std::string& memory, const std::string& source) {
  return run_plugin(memory, runner_hex(insn_bytes(bpftsim::testing::assemble(source))));
}

}  // namespace

TEST_CASE("plugin: prints r0 in hex and exits 0", "[plugin]") {
  const auto r = run_asm("", "lddw %r0, 0x1122334455667788\nexit\n");
  CHECK(r.exit_code == 0);
  CHECK(r.out == "1122334455667788\n");
}

TEST_CASE("plugin: memory arrives in r1 (address) and r2 (length)", "[plugin]") {
  const auto r = run_asm("11  22  33  44  55  ", R"(
    ldxw %r0, [%r1+1]
    add %r0, %r2
    exit
  )");
  CHECK(r.exit_code == 0);
  CHECK(r.out == "55443327\n");  // 0x55443322 + 5
}

TEST_CASE("plugin: a fault prints the message and exits 1", "[plugin]") {
  const auto r = run_asm("00  01  ", "ldxdw %r0, [%r1+8]\nexit\n");
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("bad_access") != std::string::npos);
  CHECK(r.out.find("offset 8 of context 'mem'") != std::string::npos);
}

TEST_CASE("plugin: malformed program hex is bad input (exit 2)", "[plugin]") {
  CHECK(run_plugin("", "b7 00 00").exit_code == 2);
  CHECK(run_plugin("", "xyz").exit_code == 2);
}

TEST_CASE("plugin: the conformance suite through the plugin protocol", "[plugin][conformance]") {
  std::filesystem::path dir = BPFTSIM_CONFORMANCE_DIR;
  if (const char* env = std::getenv("BPFTSIM_CONFORMANCE_DIR"); env != nullptr && *env != 0) {
    dir = env;
  }
  if (!std::filesystem::is_directory(dir)) {
    WARN("SKIPPED: conformance directory " << dir.string() << " not found");
    return;
  }
  // Files that call the suite's own test helper (see test_conformance.cpp): the plugin must
  // refuse them cleanly (exit 1) rather than guess.
  const std::vector<std::string> need_suite_helpers = {"call_unwind_fail.data", "callx.data"};
  int passed = 0, refused = 0, expected_refused = 0;
  std::vector<std::string> failures;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".data") continue;
    const std::string name = entry.path().filename().string();
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    const auto c = bpftsim::testing::parse_conformance(text.str());
    const auto r = run_plugin(runner_hex(c.mem),
                              runner_hex(insn_bytes(bpftsim::testing::conformance_program(c))));
    const bool helper_case = std::find(need_suite_helpers.begin(), need_suite_helpers.end(),
                                       name) != need_suite_helpers.end();
    if (helper_case || c.error) {
      ++expected_refused;
      if (r.exit_code == 1) {
        ++refused;
      } else {
        failures.push_back(name + ": expected exit 1, got " + std::to_string(r.exit_code));
      }
      continue;
    }
    std::ostringstream want;
    want << std::hex << c.result.value_or(0) << '\n';
    if (r.exit_code == 0 && r.out == want.str()) {
      ++passed;
    } else {
      failures.push_back(name + ": exit " + std::to_string(r.exit_code) + ", output " + r.out);
    }
  }
  for (const auto& f : failures)
    UNSCOPED_INFO(f);
  CHECK(failures.empty());
  CHECK(refused == expected_refused);
  CHECK(passed > 300);
  WARN("plugin conformance: " << passed << " passed, " << refused << " refused as expected");
}
