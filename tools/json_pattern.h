// The `pattern` keyword of the scenario schema, checked without std::regex: std::regex's
// matcher recurses once per character, so a long string (a 100 000-character name) overflowed the
// stack. A Pattern is compiled into a Thompson NFA and matched by simulating every state at once
// (Pike's method), one pass over the string with a fixed amount of work per byte: time
// O(length x pattern size), memory O(pattern size), no recursion over the input.
//
// Syntax: the ECMAScript subset that schemas use. Literals; `.` (any byte but \n and \r);
// escapes \d \D \w \W \s \S and `\` before any punctuation; classes `[...]`/`[^...]` with ranges
// and those escapes; groups `(...)` and `(?:...)`; alternation `|`; quantifiers `*`, `+`, `?`,
// `{n}`, `{n,}`, `{n,m}` (n, m <= 1000); anchors `^` and `$`. Anything else (backreferences,
// lookaround, lazy quantifiers, \b, \u escapes) is refused when the pattern is compiled, so a
// schema cannot ask for more than is checked. Matching is on bytes (UTF-8 text: a non-ASCII
// character is several bytes, matched by `.` or a negated class byte by byte) and, as JSON Schema
// says, unanchored: the pattern may match anywhere unless `^`/`$` anchor it.
#pragma once

#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bpftsim::tools {

class Pattern {
 public:
  // Throws std::invalid_argument naming the position of an unsupported or malformed construct.
  explicit Pattern(const std::string& source);

  // Whether the pattern matches somewhere in `text`.
  bool search(std::string_view text) const;

  const std::string& source() const { return source_; }

 private:
  struct Insn {
    enum class Op : std::uint8_t { kByte, kSplit, kJump, kBegin, kEnd, kMatch };
    Op op = Op::kMatch;
    std::uint32_t x = 0;  // kByte: class index; kSplit/kJump: target
    std::uint32_t y = 0;  // kSplit: second target
  };
  struct Node;
  class Parser;

  std::uint32_t emit(Insn insn);
  void compile(const Node& node);
  std::uint32_t add_class(const std::bitset<256>& bytes);

  std::string source_;
  std::vector<Insn> prog_;
  std::vector<std::bitset<256>> classes_;
};

}  // namespace bpftsim::tools
