// What tests that drive the built bpftsim binary share: files in a fresh temporary directory, and
// running the tool with a time limit, capturing its exit code, output and duration.
#pragma once

#include <stdlib.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace bpftsim::testing {

namespace fs = std::filesystem;

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
}

// A fresh directory under $TMPDIR, removed with the object (even if a test took its permissions).
struct TempDir {
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "bpftsim-test-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  fs::path file(const std::string& name, const std::string& text) const {
    write_file(path / name, text);
    return path / name;
  }
  fs::path path;
};

struct Cmd {
  int code = -1;    // exit code; 124 when `timeout` had to stop it
  std::string out;  // stdout and stderr
  double seconds = 0;
};

// The seconds a command may take: bad input is refused at once and these runs are tiny; the
// margin is for sanitizer builds on a loaded machine.
inline constexpr double kToolSeconds = 20;

// Runs the shell command line `cmd` (stdout and stderr captured), timing it.
inline Cmd run_shell(const std::string& cmd) {
  Cmd r;
  const auto start = std::chrono::steady_clock::now();
  std::FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
    r.out.append(buf, n);
  const int status = ::pclose(p);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// Runs the built bpftsim (BPFTSIM_BINARY) with `args` in `cwd`, no standard input, stopped by
// `timeout` after kToolSeconds.
inline Cmd run_tool(const std::string& args, const fs::path& cwd) {
  return run_shell("cd '" + cwd.string() + "' && timeout -k 5 20 '" + std::string(BPFTSIM_BINARY) +
                   "' " + args + " 2>&1 </dev/null");
}

}  // namespace bpftsim::testing
