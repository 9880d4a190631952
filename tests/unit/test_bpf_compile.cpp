// The .bpf.c compile cache: an object is reused only while its source, the compiler, the flags
// and every header it included are unchanged.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

#include "model/bpf_compile.h"
#include "model/libbpf_loader.h"

namespace fs = std::filesystem;
using namespace bpftsim::model;

namespace {
void write(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::trunc) << text;
}

std::uint8_t data_byte(const std::string& object) {
  auto spec = load_bpf_object(object);
  REQUIRE(std::holds_alternative<ObjectSpec>(spec));
  const auto& s = std::get<ObjectSpec>(spec);
  auto idx = s.find_map(".data");
  REQUIRE(idx.has_value());
  REQUIRE(!s.maps[*idx].initial_data.empty());
  return s.maps[*idx].initial_data[0];
}
}  // namespace

TEST_CASE("a changed header recompiles a cached .bpf.c", "[compile]") {
  const fs::path dir =
      fs::temp_directory_path() / ("bpftsim-compile-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "cache");
  write(dir / "value.h", "#define VALUE 7\n");
  write(dir / "prog.bpf.c",
        "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n#include \"value.h\"\n"
        "unsigned char value = VALUE;\n"
        "SEC(\"syscall\") int get(void *ctx) { return value; }\n"
        "char LICENSE[] SEC(\"license\") = \"GPL\";\n");
  BpfCompileOptions opt;
  opt.cache_dir = (dir / "cache").string();
  auto first = compile_bpf_source((dir / "prog.bpf.c").string(), opt);
  REQUIRE(std::holds_alternative<std::string>(first));
  CHECK(data_byte(std::get<std::string>(first)) == 7);

  auto again = compile_bpf_source((dir / "prog.bpf.c").string(), opt);
  REQUIRE(std::holds_alternative<std::string>(again));
  CHECK(std::get<std::string>(again) == std::get<std::string>(first));
  CHECK(data_byte(std::get<std::string>(again)) == 7);

  write(dir / "value.h", "#define VALUE 9\n");
  auto changed = compile_bpf_source((dir / "prog.bpf.c").string(), opt);
  REQUIRE(std::holds_alternative<std::string>(changed));
  CHECK(data_byte(std::get<std::string>(changed)) == 9);
  fs::remove_all(dir);
}

namespace {
// A stand-in compiler: `--version` prints `version` and appends a line to `log`; a compile
// writes a one-byte "object" and a depfile naming `header`.
void write_fake_clang(const fs::path& p, const std::string& version, const fs::path& log,
                      const fs::path& header) {
  write(p,
        "#!/bin/sh\n"
        "if [ \"$1\" = --version ]; then echo " +
            version + "; echo v >> '" + log.string() +
            "'; exit 0; fi\n"
            "while [ $# -gt 0 ]; do case \"$1\" in -o) out=$2; shift;; -MF) dep=$2; shift;; "
            "esac; shift; done\n"
            "printf x > \"$out\"; printf 'o: " +
            header.string() + "\\n' > \"$dep\"\n");
  fs::permissions(p, fs::perms::owner_all);
}

std::size_t lines(const fs::path& p) {
  std::ifstream in(p);
  std::size_t n = 0;
  for (std::string l; std::getline(in, l);)
    ++n;
  return n;
}

std::string read(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
}  // namespace

TEST_CASE("the compiler's identity and the headers are memoised by stamp, never stale",
          "[compile]") {
  const fs::path dir =
      fs::temp_directory_path() / ("bpftsim-compile-id-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "cache");
  const fs::path log = dir / "version.log";
  write_fake_clang(dir / "cc-a", "fake-clang-1", log, dir / "h.h");
  write_fake_clang(dir / "cc-b", "fake-clang-2", log, dir / "h.h");  // same size, other output
  write(dir / "h.h", "#define H 1\n");
  write(dir / "p.bpf.c", "int x;\n");
  // Stamps of files changed in the last 2 s are not trusted (coarse timestamps): age them.
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  fs::copy_file(dir / "cc-a", dir / "clang", fs::copy_options::overwrite_existing);
  const auto aged = fs::last_write_time(dir / "cc-a");
  fs::last_write_time(dir / "clang", aged);
  BpfCompileOptions opt;
  opt.cache_dir = (dir / "cache").string();
  opt.clang = (dir / "clang").string();
  const auto compile = [&] {
    auto r = compile_bpf_source((dir / "p.bpf.c").string(), opt);
    REQUIRE(std::holds_alternative<std::string>(r));
    return std::get<std::string>(r);
  };

  // clang was just copied (fresh ctime): asked every time until it ages.
  const std::string first = compile();
  CHECK(compile() == first);
  CHECK(lines(log) == 2);

  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  CHECK(compile() == first);  // asked once more, now remembered (in the process and on disk)
  CHECK(compile() == first);
  CHECK(lines(log) == 3);
  bool memo = false;
  for (const auto& e : fs::directory_iterator(dir / "cache"))
    memo |= e.path().filename().string().rfind("compiler-", 0) == 0 &&
            read(e.path()).find("fake-clang-1") != std::string::npos;
  CHECK(memo);
  // The manifest recorded the aged header with its stamp.
  CHECK(read(first + ".deps").find(" - ") == std::string::npos);

  // Another compiler of the same size and mtime put in its place (a new inode and ctime): asked
  // again, another key.
  fs::rename(dir / "cc-b", dir / "clang");
  fs::last_write_time(dir / "clang", aged);
  const std::string second = compile();
  CHECK(second != first);
  CHECK(lines(log) == 4);
  // Rewritten in place with the first one's bytes: the first key again.
  fs::copy_file(dir / "cc-a", dir / "clang", fs::copy_options::overwrite_existing);
  fs::last_write_time(dir / "clang", aged);
  CHECK(compile() == first);
  CHECK(lines(log) == 5);

  // A header rewritten with the same size and its old mtime: its stamp (ctime) changed, so it is
  // hashed again and the cached object is not reused (the fake compiler writes the same bytes,
  // so the manifest is what shows it: rewritten, still naming the header).
  const auto header_time = fs::last_write_time(dir / "h.h");
  const auto deps_before = read(first + ".deps");
  write(dir / "h.h", "#define H 2\n");
  fs::last_write_time(dir / "h.h", header_time);
  CHECK(compile() == first);
  const auto deps_after = read(first + ".deps");
  CHECK(deps_after != deps_before);
  CHECK(deps_after.find((dir / "h.h").string()) != std::string::npos);
  fs::remove_all(dir);
}
