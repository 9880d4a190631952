// See bpf_compile.h. clang is spawned with an argument vector; its stdout and stderr share one
// pipe (so a chatty compiler cannot block on a full second pipe) and become the error text.
#include "model/bpf_compile.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <string_view>

#include <fmt/format.h>

#include "sim/hash.h"

extern char** environ;

namespace bpftsim::model {
namespace {

namespace fs = std::filesystem;

struct SpawnResult {
  bool started = false;
  int exit_code = -1;            // -1 when killed by a signal
  std::string output;            // stdout and stderr, interleaved
  std::string error;             // why it could not be started
  bool timed_out = false;        // killed after the time limit
  bool output_too_long = false;  // killed after writing more than the output cap
};

// Output kept from a compiler run; beyond it the compiler is killed (a runaway #include loop
// printing errors, say).
constexpr std::size_t kMaxCompilerOutput = 1u << 20;
// Largest source or included file read (to hash it for the cache).
constexpr std::uintmax_t kMaxSourceBytes = 64u << 20;

// Runs argv[0] in a process group of its own, so that a timeout kills it and whatever it started.
SpawnResult run_capture(const std::vector<std::string>& argv, int timeout_s = 60) {
  SpawnResult result;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    result.error = std::strerror(errno);
    return result;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  std::vector<char*> args;
  for (const std::string& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    result.error = std::strerror(rc);
    return result;
  }
  result.started = true;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  char buf[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) {
      result.timed_out = true;
      break;
    }
    pollfd pfd{fds[0], POLLIN, 0};
    const int ready = ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) {
      result.output.append(buf, static_cast<std::size_t>(n));
      if (result.output.size() > kMaxCompilerOutput) {
        result.output_too_long = true;
        break;
      }
    } else if (n == 0 || errno != EINTR) {
      break;  // end of output: the compiler exited (or closed both streams)
    }
  }
  ::close(fds[0]);
  // The whole group: clang and any child it spawned (the cc1 it may run out of process).
  if (result.timed_out || result.output_too_long) ::kill(-pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// Removes, when it goes out of scope (every return path of a compilation), every file of `dir`
// named `stem.*` or `stem-*`: our temporaries (stem.tmp, stem.tmp.d, stem.tmp.deps) and those of
// a killed clang (it writes "stem-XXXXXXXX.tmp.tmp" next to its output "stem.tmp").
struct TempFiles {
  fs::path dir;
  std::string stem;
  ~TempFiles() {
    std::error_code ec;
    std::vector<fs::path> doomed;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.size() > stem.size() && name.compare(0, stem.size(), stem) == 0 &&
          (name[stem.size()] == '.' || name[stem.size()] == '-'))
        doomed.push_back(it->path());
    }
    for (const fs::path& p : doomed)
      fs::remove(p, ec);
  }
};

// Why `path` cannot be read in full for hashing ("" when it can): not a regular file, or too big.
std::string unreadable_reason(const fs::path& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec) return ec.message();
  if (fs::is_directory(st)) return "is a directory";
  if (!fs::is_regular_file(st)) return "is not a regular file";
  const std::uintmax_t size = fs::file_size(path, ec);
  if (ec) return ec.message();
  if (size > kMaxSourceBytes)
    return fmt::format("is {} bytes, more than the {} MiB limit", size, kMaxSourceBytes >> 20);
  return "";
}

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

// Two FNV-1a lanes (sim/hash.h) with different offset bases side by side: 128 bits, stable
// across platforms and standard libraries.
class StableHash {
 public:
  void add(std::string_view bytes) {
    a_.bytes(bytes.data(), bytes.size());
    b_.bytes(bytes.data(), bytes.size());
    // A separator, so that ("ab","c") and ("a","bc") differ.
    const unsigned char sep_a = 0xff, sep_b = 0xfe;
    a_.bytes(&sep_a, 1);
    b_.bytes(&sep_b, 1);
  }
  std::string hex() const { return fmt::format("{:016x}{:016x}", a_.value(), b_.value()); }

 private:
  sim::Hasher a_{sim::Hasher::kOffsetBasis};
  sim::Hasher b_{0x6c62272e07bb0142ULL};
};

// What identifies a file's contents without reading it: size, mtime, ctime and inode (a rewrite,
// a replacement by rename or a `touch` changes one of them). `fresh` marks a file changed within
// the last kRecentNs: timestamps are coarse (a clock tick), so a second write in the same tick
// could keep them all, and such a stamp is never trusted later.
struct FileStamp {
  std::string text;  // "size:mtime_ns:ctime_ns:ino"
  bool fresh = false;
};
constexpr std::int64_t kRecentNs = 2'000'000'000;

std::optional<FileStamp> file_stamp(const fs::path& path) {
  struct ::stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  const auto ns = [](const struct timespec& ts) {
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
  };
  const std::int64_t mtime = ns(st.st_mtim), ctime = ns(st.st_ctim);
  struct timespec now {};
  ::clock_gettime(CLOCK_REALTIME, &now);
  FileStamp stamp;
  stamp.text = fmt::format("{}:{}:{}:{}", static_cast<std::uintmax_t>(st.st_size), mtime, ctime,
                           static_cast<std::uintmax_t>(st.st_ino));
  stamp.fresh = ns(now) - std::max(mtime, ctime) < kRecentNs;
  return stamp;
}

// `prog` as posix_spawnp finds it: itself when it names a path, else the first executable regular
// file of that name on $PATH; "" when there is none.
std::string resolve_program(const std::string& prog) {
  if (prog.find('/') != std::string::npos) return prog;
  const std::string path = env_or_empty("PATH");
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = path.find(':', start);
    std::string dir =
        path.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (dir.empty()) dir = ".";
    const fs::path candidate = fs::path(dir) / prog;
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec) && ::access(candidate.c_str(), X_OK) == 0)
      return candidate.string();
    if (end == std::string::npos) return "";
    start = end + 1;
  }
}

// Writes `text` to `path` through a temporary name and a rename (concurrent readers see the old
// file or the new one); a failure only loses the memo.
void write_atomically(const fs::path& path, const std::string& text) {
  static std::atomic<unsigned> serial{0};
  const fs::path tmp = fs::path(fmt::format("{}.{}.{}.tmp", path.string(), ::getpid(), serial++));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) {
      std::error_code ec;
      fs::remove(tmp, ec);
      return;
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) fs::remove(tmp, ec);
}

std::string read_whole(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::string bytes;
  in.seekg(0, std::ios::end);
  const std::streamoff n = in.tellg();
  if (n <= 0) return {};
  bytes.resize(static_cast<std::size_t>(n));
  in.seekg(0);
  in.read(bytes.data(), n);
  bytes.resize(static_cast<std::size_t>(in.gcount()));
  return bytes;
}

// The compiler's identity for the cache key: `clang --version`. Spawning clang costs ~20 ms, so
// the answer is memoised, in the process and in `cache_dir/compiler-<hash>.id`, under the
// compiler's resolved path and stamp: replacing, rewriting or touching the compiler asks again.
// (A wrapper script is identified by its own stamp: after changing what it runs, clear the cache.)
std::variant<std::string, BpfCompileError> clang_version(const std::string& clang,
                                                         const fs::path& cache_dir) {
  static std::mutex mutex;
  static std::map<std::string, std::string> cache;  // identity line -> version
  std::lock_guard<std::mutex> lock(mutex);
  const std::string resolved = resolve_program(clang);
  std::optional<FileStamp> stamp;
  std::error_code ec;
  if (!resolved.empty()) stamp = file_stamp(resolved);
  std::string identity;
  fs::path memo;
  if (stamp && !stamp->fresh) {
    const fs::path canonical = fs::canonical(resolved, ec);
    identity = fmt::format("compiler {}\nresolved {}\ncanonical {}\nstamp {}\n", clang, resolved,
                           ec ? std::string("?") : canonical.string(), stamp->text);
    if (auto it = cache.find(identity); it != cache.end()) return it->second;
    memo = cache_dir / fmt::format("compiler-{:016x}.id", sim::hash_bytes(clang + '\0' + resolved));
    const std::string text = read_whole(memo);
    if (text.size() > identity.size() && text.compare(0, identity.size(), identity) == 0) {
      std::string version = text.substr(identity.size());
      cache.emplace(identity, version);
      return version;
    }
  }
  SpawnResult r = run_capture({clang, "--version"});
  if (!r.started) return BpfCompileError{fmt::format("cannot run '{}': {}", clang, r.error)};
  if (r.exit_code != 0)
    return BpfCompileError{fmt::format("'{} --version' failed: {}", clang, r.output)};
  if (!identity.empty() && !r.output.empty()) {
    cache.emplace(identity, r.output);
    write_atomically(memo, identity + r.output);
  }
  return r.output;
}

// Debian keeps <asm/types.h> (needed by <linux/bpf.h>) under the multiarch directory, which
// clang -target bpf does not search.
std::vector<std::string> system_include_flags() {
#if defined(__x86_64__)
  const char* dir = "/usr/include/x86_64-linux-gnu";
#elif defined(__aarch64__)
  const char* dir = "/usr/include/aarch64-linux-gnu";
#else
  const char* dir = nullptr;
#endif
  std::error_code ec;
  if (dir == nullptr || !fs::exists(fs::path(dir) / "asm", ec)) return {};
  return {"-idirafter", dir};
}

}  // namespace

std::vector<std::string> bpf_compile_flags(const std::string& source_dir) {
  std::vector<std::string> flags = {"-O2", "-g", "-target", "bpf", "-mcpu=v3"};
  for (std::string& f : system_include_flags())
    flags.push_back(std::move(f));
  if (!source_dir.empty()) flags.push_back("-I" + source_dir);
  return flags;
}

namespace {

std::string file_stem_for_cache(const fs::path& source) {
  std::string stem = source.filename().string();
  for (const char* ext : {".bpf.c", ".c"}) {
    const std::size_t n = std::strlen(ext);
    if (stem.size() > n && stem.compare(stem.size() - n, n, ext) == 0) {
      stem.resize(stem.size() - n);
      break;
    }
  }
  for (char& c : stem)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) c = '_';
  return stem;
}

}  // namespace

bool is_bpf_source_path(const std::string& path) {
  return path.size() > 2 && path.compare(path.size() - 2, 2, ".c") == 0;
}

std::string bpf_default_cache_dir() {
  if (std::string dir = env_or_empty("BPFTSIM_CACHE_DIR"); !dir.empty()) return dir;
  if (std::string xdg = env_or_empty("XDG_CACHE_HOME"); !xdg.empty())
    return (fs::path(xdg) / "bpftsim").string();
  if (std::string home = env_or_empty("HOME"); !home.empty())
    return (fs::path(home) / ".cache" / "bpftsim").string();
  return (fs::temp_directory_path() / "bpftsim-cache").string();
}

namespace {
// The files a compilation read besides the source (from clang's -MD depfile), with a hash of each,
// so that a cached object is reused only while every header it included is unchanged.
std::vector<std::string> depfile_paths(const fs::path& depfile) {
  std::ifstream in(depfile, std::ios::binary);
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  std::vector<std::string> paths;
  const auto colon = text.find(": ");
  if (colon == std::string::npos) return paths;
  std::string cur;
  for (std::size_t i = colon + 2; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\\' && i + 1 < text.size() && (text[i + 1] == '\n' || text[i + 1] == '\r')) {
      continue;  // line continuation
    } else if (c == '\\' && i + 1 < text.size() && text[i + 1] == ' ') {
      cur += ' ';
      ++i;
    } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
      if (!cur.empty()) paths.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) paths.push_back(std::move(cur));
  return paths;
}

std::optional<std::string> file_hash(const fs::path& path) {
  if (!unreadable_reason(path).empty()) return std::nullopt;  // never read a device or a FIFO
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  StableHash h;
  h.add(read_whole(path));
  return h.hex();
}

// A manifest line: "<hash> <stamp> <path>", the stamp "-" when it was not to be trusted (the file
// had just changed). A header whose stamp is unchanged is not read again: its recorded hash
// stands. One whose stamp changed is hashed; if every hash still matches, the manifest is
// rewritten with the new stamps, so the next run reads nothing.
std::string manifest_line(const std::string& hash, const std::string& path) {
  const auto stamp = file_stamp(path);
  return fmt::format("{} {} {}\n", hash, stamp && !stamp->fresh ? stamp->text : "-", path);
}

bool manifest_current(const fs::path& manifest) {
  std::ifstream in(manifest);
  if (!in) return false;
  std::string line, refreshed;
  bool stale_stamps = false;
  while (std::getline(in, line)) {
    const auto sp1 = line.find(' ');
    const auto sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string::npos) return false;
    const std::string hash = line.substr(0, sp1), recorded = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const std::string path = line.substr(sp2 + 1);
    if (recorded != "-") {
      const auto stamp = file_stamp(path);
      if (stamp && !stamp->fresh && stamp->text == recorded) {
        refreshed += line + '\n';
        continue;
      }
    }
    const auto h = file_hash(path);
    if (!h || *h != hash) return false;
    refreshed += manifest_line(hash, path);
    stale_stamps = true;
  }
  if (stale_stamps) write_atomically(manifest, refreshed);
  return true;
}
}  // namespace

std::variant<std::string, BpfCompileError> compile_bpf_source(const std::string& source_path,
                                                              const BpfCompileOptions& options) {
  if (const std::string why = unreadable_reason(source_path); !why.empty())
    return BpfCompileError{fmt::format("{}: cannot compile: {}", source_path, why)};
  std::ifstream in(source_path, std::ios::binary);
  if (!in)
    return BpfCompileError{fmt::format("{}: cannot read: {}", source_path, std::strerror(errno))};
  const std::string source{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};

  std::string clang = options.clang;
  if (clang.empty()) clang = env_or_empty("BPFTSIM_CLANG");
  if (clang.empty()) clang = "clang";
  std::error_code ec;
  const fs::path src = fs::absolute(source_path, ec);
  std::vector<std::string> flags = bpf_compile_flags(src.parent_path().string());
  for (const std::string& f : options.extra_flags)
    flags.push_back(f);

  const fs::path dir = options.cache_dir.empty() ? bpf_default_cache_dir() : options.cache_dir;
  fs::create_directories(dir, ec);
  if (ec)
    return BpfCompileError{fmt::format("{}: cannot create cache directory {}: {}", source_path,
                                       dir.string(), ec.message())};
  auto version = clang_version(clang, dir);
  if (auto* e = std::get_if<BpfCompileError>(&version))
    return BpfCompileError{fmt::format("{}: {}", source_path, e->message)};

  StableHash hash;
  hash.add(source);
  hash.add(std::get<std::string>(version));
  for (const std::string& f : flags)
    hash.add(f);

  const fs::path object = dir / fmt::format("{}-{}.bpf.o", file_stem_for_cache(src), hash.hex());
  const fs::path manifest = fs::path(object.string() + ".deps");
  if (fs::exists(object, ec) && manifest_current(manifest)) return object.string();

  // Unique per process and per call, so that concurrent compilations never share a temporary.
  static std::atomic<unsigned> serial{0};
  const std::string tmp_stem =
      fmt::format(".{}.{}.{}", object.filename().string(), ::getpid(), serial++);
  const fs::path tmp = dir / (tmp_stem + ".tmp");
  std::vector<std::string> argv = {clang};
  argv.insert(argv.end(), flags.begin(), flags.end());
  const fs::path depfile = fs::path(tmp.string() + ".d");
  const fs::path tmp_manifest = fs::path(tmp.string() + ".deps");
  const TempFiles temps{dir, tmp_stem};  // gone on every return path
  argv.insert(argv.end(), {"-MD", "-MF", depfile.string(), "-c", src.string(), "-o", tmp.string()});
  int timeout_s = options.timeout_s > 0 ? options.timeout_s : 60;
  if (options.timeout_s <= 0) {
    if (const std::string env = env_or_empty("BPFTSIM_CLANG_TIMEOUT"); !env.empty()) {
      char* end = nullptr;
      errno = 0;
      const long v = std::strtol(env.c_str(), &end, 10);
      if (errno != 0 || end == env.c_str() || *end != '\0' || v < 1 || v > 86400)
        return BpfCompileError{
            fmt::format("{}: BPFTSIM_CLANG_TIMEOUT='{}' is not a number of seconds in 1..86400",
                        source_path, env)};
      timeout_s = static_cast<int>(v);
    }
  }
  SpawnResult r = run_capture(argv, timeout_s);
  if (!r.started)
    return BpfCompileError{fmt::format("{}: cannot run '{}': {}", source_path, clang, r.error)};
  if (r.timed_out)
    return BpfCompileError{fmt::format(
        "{}: clang did not finish within {} s and was killed (does it #include a FIFO or a "
        "device?); set BPFTSIM_CLANG_TIMEOUT=SECONDS to allow more",
        source_path, timeout_s)};
  if (r.output_too_long)
    return BpfCompileError{fmt::format(
        "{}: clang wrote more than {} KiB of messages and was killed; the first lines:\n{}",
        source_path, kMaxCompilerOutput >> 10, r.output.substr(0, 4096))};
  if (r.exit_code != 0)
    return BpfCompileError{
        fmt::format("{}: clang failed (exit {}):\n{}", source_path, r.exit_code, r.output)};
  {
    // The manifest of included files goes in first; the object's rename publishes the entry.
    std::ofstream out(tmp_manifest, std::ios::trunc);
    for (const std::string& dep : depfile_paths(depfile)) {
      if (fs::equivalent(dep, src, ec)) continue;  // the source itself is in the key
      if (const std::string why = unreadable_reason(dep); !why.empty())
        return BpfCompileError{fmt::format("{}: includes {}, which {}", source_path, dep, why)};
      if (auto h = file_hash(dep)) out << manifest_line(*h, dep);
    }
    out.close();
    fs::rename(tmp_manifest, manifest, ec);
  }
  fs::rename(tmp, object, ec);
  if (ec) {
    return BpfCompileError{
        fmt::format("{}: cannot store {}: {}", source_path, object.string(), ec.message())};
  }
  return object.string();
}

std::variant<ObjectSpec, LoadError> load_bpf_input(const std::string& path,
                                                   const BpfCompileOptions& options) {
  if (!is_bpf_source_path(path)) return load_bpf_object(path);
  auto compiled = compile_bpf_source(path, options);
  if (auto* e = std::get_if<BpfCompileError>(&compiled)) return LoadError{e->message};
  const std::string& object = std::get<std::string>(compiled);
  auto loaded = load_bpf_object(object);
  if (auto* e = std::get_if<LoadError>(&loaded)) {
    // Name the file the user gave, and the cached object the message is about.
    if (e->message.rfind(object + ": ", 0) == 0) e->message.erase(0, object.size() + 2);
    e->message = fmt::format("{} (compiled to {}): {}", path, object, e->message);
  }
  return loaded;
}

}  // namespace bpftsim::model
