// Test support: conformance .data reader and assembler. See bpf_asm.h for the syntax.
#include "tests/unit/bpf_asm.h"

#include <fmt/format.h>

#include <cctype>
#include <map>
#include <sstream>

namespace bpftsim::testing {

using model::BpfInsn;

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
    s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
    s.remove_suffix(1);
  return s;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// One source line split into words: whitespace and commas separate, `[...]` stays one word
// (spaces inside brackets are dropped).
std::vector<std::string> split_words(std::string_view line) {
  std::vector<std::string> words;
  std::string cur;
  bool in_brackets = false;
  for (char c : line) {
    if (c == '[') in_brackets = true;
    if (c == ']') in_brackets = false;
    const bool sep = !in_brackets && (std::isspace(static_cast<unsigned char>(c)) || c == ',');
    if (in_brackets && std::isspace(static_cast<unsigned char>(c))) continue;
    if (sep) {
      if (!cur.empty()) words.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) words.push_back(std::move(cur));
  return words;
}

constexpr std::uint8_t kAlu = 0x04, kJmp = 0x05, kJmp32 = 0x06, kAlu64 = 0x07;
constexpr std::uint8_t kX = 0x08;

const std::map<std::string, std::uint8_t, std::less<>> kAluOps = {
    {"add", 0x00}, {"sub", 0x10},  {"mul", 0x20}, {"div", 0x30}, {"sdiv", 0x30},
    {"or", 0x40},  {"and", 0x50},  {"lsh", 0x60}, {"rsh", 0x70}, {"neg", 0x80},
    {"mod", 0x90}, {"smod", 0x90}, {"xor", 0xa0}, {"mov", 0xb0}, {"arsh", 0xc0}};

const std::map<std::string, std::uint8_t, std::less<>> kJmpOps = {
    {"jeq", 0x10},  {"jgt", 0x20}, {"jge", 0x30}, {"jset", 0x40}, {"jne", 0x50}, {"jsgt", 0x60},
    {"jsge", 0x70}, {"jlt", 0xa0}, {"jle", 0xb0}, {"jslt", 0xc0}, {"jsle", 0xd0}};

const std::map<std::string, std::int32_t, std::less<>> kAtomicOps = {
    {"add", 0x00}, {"or", 0x40}, {"and", 0x50}, {"xor", 0xa0}, {"xchg", 0xe1}, {"cmpxchg", 0xf1}};

std::uint8_t size_bits(std::string_view suffix) {
  if (suffix == "b") return 0x10;
  if (suffix == "h") return 0x08;
  if (suffix == "w") return 0x00;
  if (suffix == "dw") return 0x18;
  throw AsmError(fmt::format("unknown access size '{}'", suffix));
}

class Assembler {
 public:
  std::vector<BpfInsn> run(std::string_view source) {
    std::istringstream in{std::string(source)};
    std::string line;
    while (std::getline(in, line)) {
      ++line_no_;
      std::string_view text = line;
      if (auto hash = text.find('#'); hash != std::string_view::npos) text = text.substr(0, hash);
      auto words = split_words(trim(text));
      while (!words.empty() && ends_with(words.front(), ":")) {
        define_label(words.front().substr(0, words.front().size() - 1));
        words.erase(words.begin());
      }
      if (words.empty()) continue;
      try {
        encode(words);
      } catch (const AsmError& e) {
        throw AsmError(fmt::format("line {}: {}: {}", line_no_, trim(text), e.what()));
      }
    }
    if (!labels_.contains("exit") && first_exit_) labels_["exit"] = *first_exit_;
    for (const auto& fix : fixups_) {
      auto it = labels_.find(fix.label);
      if (it == labels_.end()) {
        throw AsmError(fmt::format("line {}: unknown label '{}'", fix.line, fix.label));
      }
      const std::int64_t rel =
          static_cast<std::int64_t>(it->second) - static_cast<std::int64_t>(fix.index) - 1;
      BpfInsn& insn = out_[fix.index];
      if (fix.in_imm) {
        insn.imm = static_cast<std::int32_t>(rel);
      } else {
        if (rel < INT16_MIN || rel > INT16_MAX) {
          throw AsmError(fmt::format("line {}: jump to '{}' too far", fix.line, fix.label));
        }
        insn.off = static_cast<std::int16_t>(rel);
      }
    }
    return std::move(out_);
  }

 private:
  struct Fixup {
    std::size_t index;
    std::string label;
    bool in_imm;
    int line;
  };

  void define_label(const std::string& name) {
    if (!labels_.emplace(name, out_.size()).second) {
      throw AsmError(fmt::format("line {}: duplicate label '{}'", line_no_, name));
    }
  }

  static std::uint8_t reg(std::string_view w) {
    if (w.size() < 3 || w.substr(0, 2) != "%r") throw AsmError(fmt::format("bad register '{}'", w));
    const std::uint64_t n = parse_number(w.substr(2));
    if (n > 10) throw AsmError(fmt::format("bad register '{}'", w));
    return static_cast<std::uint8_t>(n);
  }
  static bool is_reg(std::string_view w) { return w.size() > 1 && w[0] == '%'; }

  static std::int32_t imm32(std::string_view w) {
    const std::uint64_t v = parse_number(w);
    const auto sv = static_cast<std::int64_t>(v);
    if (sv < INT32_MIN || (sv > INT32_MAX && v > UINT32_MAX)) {
      throw AsmError(fmt::format("immediate '{}' does not fit in 32 bits", w));
    }
    return static_cast<std::int32_t>(static_cast<std::uint32_t>(v));
  }

  // `[%rN]`, `[%rN+off]` or `[%rN-off]`.
  static std::pair<std::uint8_t, std::int16_t> mem_operand(std::string_view w) {
    if (w.size() < 4 || w.front() != '[' || w.back() != ']') {
      throw AsmError(fmt::format("bad memory operand '{}'", w));
    }
    w = w.substr(1, w.size() - 2);
    const auto sign = w.find_first_of("+-");
    if (sign == std::string_view::npos) return {reg(w), 0};
    const auto off = static_cast<std::int64_t>(parse_number(w.substr(sign)));
    if (off < INT16_MIN || off > INT16_MAX) throw AsmError("memory offset does not fit in 16 bits");
    return {reg(w.substr(0, sign)), static_cast<std::int16_t>(off)};
  }

  static BpfInsn make(std::uint8_t code, std::uint8_t dst, std::uint8_t src, std::int16_t off,
                      std::int32_t imm) {
    BpfInsn i;
    i.code = code;
    i.regs = static_cast<std::uint8_t>(dst | (src << 4));
    i.off = off;
    i.imm = imm;
    return i;
  }

  // A jump target: `+N`/`-N` is a relative offset, anything else a label resolved at the end.
  std::int32_t target(std::string_view w, bool in_imm) {
    if (!w.empty() && (w[0] == '+' || w[0] == '-')) {
      return static_cast<std::int32_t>(static_cast<std::int64_t>(parse_number(w)));
    }
    fixups_.push_back({out_.size(), std::string(w), in_imm, line_no_});
    return 0;
  }

  static void want(const std::vector<std::string>& w, std::size_t n) {
    if (w.size() != n + 1) throw AsmError(fmt::format("expected {} operand(s)", n));
  }

  void encode(std::vector<std::string>& w) {
    const std::string m = w[0];
    if (m == "exit") {
      want(w, 0);
      if (!first_exit_) first_exit_ = out_.size();
      out_.push_back(make(kJmp | 0x90, 0, 0, 0, 0));
    } else if (m == "lddw") {
      want(w, 2);
      const std::uint64_t v = parse_number(w[2]);
      out_.push_back(make(0x18, reg(w[1]), 0, 0, static_cast<std::int32_t>(v)));
      out_.push_back(make(0, 0, 0, 0, static_cast<std::int32_t>(v >> 32)));
    } else if (m == "ja" || m == "ja32") {
      want(w, 1);
      if (m == "ja") {
        out_.push_back(make(kJmp, 0, 0, static_cast<std::int16_t>(target(w[1], false)), 0));
      } else {
        out_.push_back(make(kJmp32, 0, 0, 0, target(w[1], true)));
      }
    } else if (m == "call") {
      encode_call(w);
    } else if (m == "lock") {
      encode_atomic(w);
    } else if (m.starts_with("ldx")) {
      want(w, 2);
      std::string_view sz = std::string_view(m).substr(3);
      std::uint8_t mode = 0x60;
      if (sz.starts_with("s")) {
        mode = 0x80;
        sz.remove_prefix(1);
      }
      auto [src, off] = mem_operand(w[2]);
      out_.push_back(
          make(static_cast<std::uint8_t>(0x01 | mode | size_bits(sz)), reg(w[1]), src, off, 0));
    } else if (m.starts_with("stx")) {
      want(w, 2);
      auto [dst, off] = mem_operand(w[1]);
      out_.push_back(make(static_cast<std::uint8_t>(0x03 | 0x60 | size_bits(m.substr(3))), dst,
                          reg(w[2]), off, 0));
    } else if (m.starts_with("st") && m != "stx") {
      want(w, 2);
      auto [dst, off] = mem_operand(w[1]);
      out_.push_back(make(static_cast<std::uint8_t>(0x02 | 0x60 | size_bits(m.substr(2))), dst, 0,
                          off, imm32(w[2])));
    } else if (m.starts_with("be") || m.starts_with("le") || m.starts_with("swap") ||
               m.starts_with("bswap")) {
      want(w, 1);
      const auto digits = m.find_first_of("0123456789");
      if (digits == std::string::npos) throw AsmError("byte swap needs a width");
      const auto width =
          static_cast<std::int32_t>(parse_number(std::string_view(m).substr(digits)));
      const std::string kind = m.substr(0, digits);
      std::uint8_t code = kAlu | 0xd0;  // le
      if (kind == "be")
        code = kAlu | kX | 0xd0;
      else if (kind == "swap" || kind == "bswap")
        code = kAlu64 | 0xd0;
      else if (kind != "le")
        throw AsmError("unknown mnemonic");
      out_.push_back(make(code, reg(w[1]), 0, 0, width));
    } else if (kJmpOps.contains(m) ||
               (ends_with(m, "32") && kJmpOps.contains(m.substr(0, m.size() - 2)))) {
      want(w, 3);
      const bool is32 = !kJmpOps.contains(m);
      const std::uint8_t op = kJmpOps.find(is32 ? m.substr(0, m.size() - 2) : m)->second;
      std::uint8_t code = static_cast<std::uint8_t>((is32 ? kJmp32 : kJmp) | op);
      std::uint8_t src = 0;
      std::int32_t imm = 0;
      if (is_reg(w[2])) {
        code |= kX;
        src = reg(w[2]);
      } else {
        imm = imm32(w[2]);
      }
      const auto off = static_cast<std::int16_t>(target(w[3], false));
      out_.push_back(make(code, reg(w[1]), src, off, imm));
    } else {
      encode_alu(w);
    }
  }

  void encode_alu(const std::vector<std::string>& w) {
    std::string_view m = w[0];
    std::uint8_t cls = kAlu64;
    std::int16_t off = 0;
    if (m.starts_with("movsx")) {
      // movsx<from><width>: 832, 864, 1632, 1664, 3264.
      want(w, 2);
      const std::string_view spec = m.substr(5);
      if (spec.size() < 3) throw AsmError("unknown mnemonic");
      const std::string_view width = spec.substr(spec.size() - 2);
      cls = width == "32" ? kAlu : width == "64" ? kAlu64 : throw AsmError("unknown mnemonic");
      off = static_cast<std::int16_t>(parse_number(spec.substr(0, spec.size() - 2)));
      out_.push_back(
          make(static_cast<std::uint8_t>(cls | kX | 0xb0), reg(w[1]), reg(w[2]), off, 0));
      return;
    }
    if (ends_with(m, "32")) {
      cls = kAlu;
      m.remove_suffix(2);
    } else if (ends_with(m, "64")) {
      m.remove_suffix(2);
    }
    auto it = kAluOps.find(m);
    if (it == kAluOps.end()) throw AsmError("unknown mnemonic");
    if (m == "sdiv" || m == "smod") off = 1;
    if (m == "neg") {
      want(w, 1);
      out_.push_back(make(static_cast<std::uint8_t>(cls | it->second), reg(w[1]), 0, 0, 0));
      return;
    }
    want(w, 2);
    if (is_reg(w[2])) {
      out_.push_back(
          make(static_cast<std::uint8_t>(cls | kX | it->second), reg(w[1]), reg(w[2]), off, 0));
    } else {
      out_.push_back(
          make(static_cast<std::uint8_t>(cls | it->second), reg(w[1]), 0, off, imm32(w[2])));
    }
  }

  void encode_call(const std::vector<std::string>& w) {
    if (w.size() == 2 && is_reg(w[1])) {  // callx: register in dst
      out_.push_back(make(kJmp | kX | 0x80, reg(w[1]), 0, 0, 0));
    } else if (w.size() == 2) {
      out_.push_back(make(kJmp | 0x80, 0, 0, 0, imm32(w[1])));
    } else if (w.size() == 3 && w[1] == "helper") {
      out_.push_back(make(kJmp | 0x80, 0, 0, 0, imm32(w[2])));
    } else if (w.size() == 3 && w[1] == "local") {
      out_.push_back(make(kJmp | 0x80, 0, 1, 0, target(w[2], true)));
    } else if (w.size() == 3 && w[1] == "runtime") {
      out_.push_back(make(kJmp | 0x80, 0, 2, 0, imm32(w[2])));
    } else {
      throw AsmError("bad call operands");
    }
  }

  // lock [fetch] <op>[32] [%rD+off], %rS
  void encode_atomic(std::vector<std::string>& w) {
    std::size_t i = 1;
    bool fetch = false;
    if (i < w.size() && w[i] == "fetch") {
      fetch = true;
      ++i;
    }
    if (w.size() != i + 3) throw AsmError("bad lock operands");
    std::string_view op = w[i];
    std::uint8_t code = 0xdb;  // STX | ATOMIC | DW
    if (ends_with(op, "32")) {
      code = 0xc3;  // STX | ATOMIC | W
      op.remove_suffix(2);
    }
    auto it = kAtomicOps.find(op);
    if (it == kAtomicOps.end()) throw AsmError(fmt::format("unknown atomic operation '{}'", op));
    auto [dst, off] = mem_operand(w[i + 1]);
    out_.push_back(make(code, dst, reg(w[i + 2]), off, it->second | (fetch ? 0x01 : 0)));
  }

  std::vector<BpfInsn> out_;
  std::map<std::string, std::size_t, std::less<>> labels_;
  std::vector<Fixup> fixups_;
  std::optional<std::size_t> first_exit_;
  int line_no_ = 0;
};

std::vector<std::uint8_t> parse_hex_bytes(std::string_view text) {
  std::vector<std::uint8_t> out;
  std::istringstream in{std::string(text)};
  std::string word;
  while (in >> word) {
    if (word.starts_with("#")) {
      std::getline(in, word);
      continue;
    }
    if (word.size() != 2 || !std::isxdigit(static_cast<unsigned char>(word[0])) ||
        !std::isxdigit(static_cast<unsigned char>(word[1]))) {
      throw AsmError(fmt::format("bad memory byte '{}'", word));
    }
    out.push_back(static_cast<std::uint8_t>(std::stoul(word, nullptr, 16)));
  }
  return out;
}

}  // namespace

std::uint64_t parse_number(std::string_view text) {
  std::string_view s = trim(text);
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s.remove_prefix(2);
  }
  if (s.empty()) throw AsmError(fmt::format("bad number '{}'", text));
  std::uint64_t v = 0;
  for (char c : s) {
    int digit = -1;
    if (c >= '0' && c <= '9')
      digit = c - '0';
    else if (base == 16 && c >= 'a' && c <= 'f')
      digit = c - 'a' + 10;
    else if (base == 16 && c >= 'A' && c <= 'F')
      digit = c - 'A' + 10;
    if (digit < 0) throw AsmError(fmt::format("bad number '{}'", text));
    const std::uint64_t next =
        v * static_cast<std::uint64_t>(base) + static_cast<std::uint64_t>(digit);
    if ((next - static_cast<std::uint64_t>(digit)) / static_cast<std::uint64_t>(base) != v) {
      throw AsmError(fmt::format("number '{}' does not fit in 64 bits", text));
    }
    v = next;
  }
  return negative ? 0 - v : v;
}

std::vector<BpfInsn> assemble(std::string_view source) {
  return Assembler{}.run(source);
}

ConformanceCase parse_conformance(std::string_view text) {
  ConformanceCase c;
  std::map<std::string, std::string, std::less<>> sections;
  std::string* current = nullptr;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.starts_with("-- ")) {
      current = &sections[std::string(trim(std::string_view(line).substr(3)))];
      continue;
    }
    if (current != nullptr) {
      current->append(line);
      current->push_back('\n');
    }
  }
  if (auto it = sections.find("asm"); it != sections.end()) c.asm_text = it->second;
  if (auto it = sections.find("mem"); it != sections.end()) c.mem = parse_hex_bytes(it->second);
  if (auto it = sections.find("result"); it != sections.end()) {
    std::string_view r = trim(it->second);
    if (!r.empty()) c.result = parse_number(r.substr(0, r.find_first_of(" \t\n#")));
  }
  if (auto it = sections.find("error"); it != sections.end()) {
    c.error = std::string(trim(it->second));
  }
  if (auto it = sections.find("raw"); it != sections.end()) {
    c.has_raw = true;
    std::istringstream raw{it->second};
    std::string word;
    while (raw >> word) {
      const std::uint64_t v = parse_number(word);
      BpfInsn insn;
      insn.code = static_cast<std::uint8_t>(v);
      insn.regs = static_cast<std::uint8_t>(v >> 8);
      insn.off = static_cast<std::int16_t>(static_cast<std::uint16_t>(v >> 16));
      insn.imm = static_cast<std::int32_t>(static_cast<std::uint32_t>(v >> 32));
      c.raw.push_back(insn);
    }
  }
  return c;
}

std::vector<BpfInsn> conformance_program(const ConformanceCase& c) {
  return c.has_raw ? c.raw : assemble(c.asm_text);
}

}  // namespace bpftsim::testing
