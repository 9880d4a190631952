// Reading input files safely (this file mirrors no kernel code: it is the loader's and the tools'
// one gate for files named on the command line or in a scenario). Only regular files are read
// (a directory, a FIFO, /dev/zero or a socket is refused before it is opened for reading, so
// nothing blocks or reads forever), and only up to a size cap.
//
// Reasons are phrases that read after the file's name:
//   "x.json: cannot open the scenario file: No such file or directory" (read: "cannot read ...")
//   "/tmp: is a directory (expected a scenario file)"
//   "/dev/zero: is not a regular file (a character device; expected a scenario file)"
//   "big.json: is larger than 16777216 bytes (the limit for a scenario file)"
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace bpftsim::model {

// Caps. Scenarios and BPF C sources are hand-written (a source goes to clang whole); run files
// carry one line per scheduler decision; ELF objects are mapped by libelf and libbpf, not read
// whole, so their cap only refuses the absurd (ours are a few KiB; a foreign ELF may be large).
inline constexpr std::uint64_t kMaxScenarioBytes = 16ULL << 20;
inline constexpr std::uint64_t kMaxSourceBytes = 16ULL << 20;
inline constexpr std::uint64_t kMaxRunFileBytes = 64ULL << 20;
inline constexpr std::uint64_t kMaxObjectBytes = 1ULL << 30;

// Why `path` cannot be read as a `what` ("scenario file", "object file") of at most `max_bytes`,
// or nothing when it is a regular file within the cap. Does not open the file.
std::optional<std::string> check_input_file(const std::string& path, std::uint64_t max_bytes,
                                            const std::string& what);

// Reads `path` whole into `*out` under the same rules (and a read error's strerror); returns the
// reason it cannot, or nothing.
std::optional<std::string> read_input_file(const std::string& path, std::uint64_t max_bytes,
                                           const std::string& what, std::string* out);

}  // namespace bpftsim::model
