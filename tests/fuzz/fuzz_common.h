// Shared pieces of the libFuzzer harnesses (tests/fuzz/README in the top-level README's
// "Fuzzing" section): a scratch file per process for loaders that take a path, and fail(), the
// one way a harness reports a broken property (a libFuzzer-visible crash, like an assertion).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace bpftsim::fuzz {

// A property of the code under test does not hold: print why and abort, which libFuzzer reports
// as a crash and saves the input for.
[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "bpftsim fuzz: property violated: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

// A file of this process for loaders that read a path (one per process and suffix, overwritten
// by every input), on /dev/shm when it exists.
// Removed when the process exits normally (a crash leaves it; its name carries the pid).
class ScratchFile {
 public:
  explicit ScratchFile(const std::string& suffix) {
    const char* dir = std::getenv("TMPDIR");
    std::string base = dir != nullptr && *dir != '\0' ? dir : "/tmp";
    if (access("/dev/shm", W_OK) == 0) base = "/dev/shm";
    path_ = base + "/bpftsim-fuzz-" + std::to_string(getpid()) + suffix;
  }
  ~ScratchFile() { unlink(path_.c_str()); }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline void write_file(const std::string& path, const std::uint8_t* data, std::size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) fail("cannot write the scratch file " + path);
  if (size > 0 && std::fwrite(data, 1, size, f) != size) fail("short write to " + path);
  std::fclose(f);
}

// Output the code under test prints for people goes to /dev/null (libFuzzer reports on stderr).
inline void quiet_stdout() {
  if (std::freopen("/dev/null", "w", stdout) == nullptr) fail("cannot redirect stdout");
}

}  // namespace bpftsim::fuzz
