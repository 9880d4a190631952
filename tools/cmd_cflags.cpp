// `bpftsim cflags [SOURCE]`: the exact clang flags bpftsim compiles BPF C with
// (model::bpf_compile_flags), so that an object compiled by hand has the same instructions, and
// therefore the same timing and digests, as one the scenario loader compiles. With a source, the
// whole command line to compile it (the object next to it, named as scenarios/CMakeLists.txt
// names ours).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "model/bpf_compile.h"
#include "tools/commands.h"

namespace bpftsim::tools {
namespace {

struct CflagsArgs {
  std::string source;
  std::string output;
};

std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789-_=./+,:@") == std::string::npos)
    return s;
  std::string q = "'";
  for (char c : s)
    q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

int cflags(const CflagsArgs& args) {
  namespace fs = std::filesystem;
  if (args.source.empty()) {
    const auto flags = model::bpf_compile_flags("");
    std::string line;
    for (const auto& f : flags)
      line += (line.empty() ? "" : " ") + shell_quote(f);
    std::printf("%s -I<the source's directory>\n", line.c_str());
    return kExitOk;
  }
  if (!model::is_bpf_source_path(args.source)) {
    std::fprintf(stderr, "bpftsim cflags: %s: expected a BPF C source (.c or .bpf.c)\n",
                 args.source.c_str());
    return kExitBadInput;
  }
  std::error_code ec;
  const fs::path src = fs::absolute(args.source, ec);
  std::string out = args.source;
  for (const char* ext : {".bpf.c", ".c"}) {
    const std::string e = ext;
    if (out.size() > e.size() && out.compare(out.size() - e.size(), e.size(), e) == 0) {
      out.resize(out.size() - e.size());
      break;
    }
  }
  out += ".bpf.o";
  if (!args.output.empty()) out = args.output;
  std::string line = "clang";
  for (const auto& f : model::bpf_compile_flags(src.parent_path().string()))
    line += " " + shell_quote(f);
  line += fmt::format(" -c {} -o {}", shell_quote(args.source), shell_quote(out));
  std::printf("%s\n", line.c_str());
  return kExitOk;
}

const Registrar kRegisterCflags{
    "cflags", [](CLI::App& app) {
      auto args = std::make_shared<CflagsArgs>();
      auto* sub = app.add_subcommand(
          "cflags",
          "Print the clang flags bpftsim compiles BPF C with (with SOURCE: the whole command)");
      sub->add_option("source", args->source, "a .bpf.c file");
      sub->add_option("-o,--output", args->output,
                      "the object the printed command writes (default: SOURCE with .bpf.o)");
      return std::function<int()>([args] { return cflags(*args); });
    }};

}  // namespace
}  // namespace bpftsim::tools
