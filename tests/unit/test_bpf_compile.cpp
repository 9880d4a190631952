// The .bpf.c compile cache: an object is reused only while its source, the compiler, the flags
// and every header it included are unchanged.
#include <catch2/catch.hpp>

#include <unistd.h>
#include <filesystem>
#include <fstream>

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
