// Compiling user-supplied BPF C: `bpftsim ... prog.bpf.c` runs the clang on PATH
// (clang -O2 -g -target bpf -mcpu=v3 -c, as scenarios/CMakeLists.txt does for our own programs)
// and caches the object, so that a scenario may name either a .bpf.c or a prebuilt .o.
//
// Cache: directory $BPFTSIM_CACHE_DIR, else $XDG_CACHE_HOME/bpftsim, else $HOME/.cache/bpftsim.
// The object's file name carries a hash of the source bytes, `clang --version` and the full
// flag list: editing the source, switching compilers or changing flags recompiles. Next to each
// object, a manifest lists the headers it included with a hash of each, and a cached object is
// used only while they all match. Objects are written to a temporary name and renamed, so
// concurrent runs never see a half-written object.
//
// Start-up cost: `clang --version` (~20 ms to spawn) is remembered in the cache directory
// (compiler-<hash>.id) under the compiler's resolved path and stamp (size, mtime, ctime, inode),
// and each manifest line carries its header's stamp, so an unchanged header is not read again.
// Any change to the compiler or a header changes its stamp; stamps less than 2 s old are not
// trusted (timestamps are coarse), so a file rewritten within one clock tick is still hashed.
//
// clang runs through posix_spawnp with an argument vector (no shell). Errors are returned,
// never thrown; the message names the source and carries clang's diagnostics.
#pragma once

#include <string>
#include <variant>
#include <vector>

#include "model/libbpf_loader.h"

namespace bpftsim::model {

struct BpfCompileOptions {
  // Compiler to run; empty = $BPFTSIM_CLANG if set, else "clang" looked up on PATH.
  std::string clang;
  // Cache directory; empty = the default described above.
  std::string cache_dir;
  // Appended after the default flags (e.g. "-DFOO=1", "-I/some/dir").
  std::vector<std::string> extra_flags;
  // Seconds clang may run before it (and its process group) is killed; 0 = $BPFTSIM_CLANG_TIMEOUT
  // if set, else 60.
  int timeout_s = 0;
};

struct BpfCompileError {
  std::string message;
};

// The flags bpftsim compiles a BPF C source with (before options.extra_flags): optimisation, BTF
// (-g: without it the loader has no map or timer layout), the BPF target and ISA v3 (the ISA
// changes the instruction stream, so the same scenario compiled with -mcpu=v1 has other timing
// and another digest), Debian's multiarch include directory (for <asm/types.h>) and the source's
// own directory. `bpftsim cflags` prints them; compiling by hand with them gives the same object.
std::vector<std::string> bpf_compile_flags(const std::string& source_dir);

// True for paths the CLI should compile rather than load (".c", which includes ".bpf.c").
bool is_bpf_source_path(const std::string& path);

// The cache directory the defaults resolve to (not created).
std::string bpf_default_cache_dir();

// Compiles `source_path` (or finds it in the cache) and returns the object's path.
std::variant<std::string, BpfCompileError> compile_bpf_source(
    const std::string& source_path, const BpfCompileOptions& options = {});

// Loads `path` with load_bpf_object(), compiling it first when it is a C source.
std::variant<ObjectSpec, LoadError> load_bpf_input(const std::string& path,
                                                   const BpfCompileOptions& options = {});

}  // namespace bpftsim::model
