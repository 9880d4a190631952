#include "tools/json_pattern.h"

#include <fmt/format.h>

#include <limits>
#include <stdexcept>

namespace bpftsim::tools {

namespace {

constexpr int kMaxRepeat = 1000;             // {n,m} bounds
constexpr std::size_t kMaxProgram = 100000;  // NFA instructions after expanding {n,m}
constexpr int kMaxNesting = 100;             // groups within groups

std::bitset<256> byte_set(unsigned char c) {
  std::bitset<256> b;
  b.set(c);
  return b;
}

std::bitset<256> range_set(unsigned char lo, unsigned char hi) {
  std::bitset<256> b;
  for (unsigned c = lo; c <= hi; ++c)
    b.set(c);
  return b;
}

std::bitset<256> digit_set() {
  return range_set('0', '9');
}
std::bitset<256> word_set() {
  return range_set('0', '9') | range_set('A', 'Z') | range_set('a', 'z') | byte_set('_');
}
std::bitset<256> space_set() {
  // ECMAScript's \s on ASCII bytes: tab, LF, VT, FF, CR, space.
  return range_set('\t', '\r') | byte_set(' ');
}

}  // namespace

struct Pattern::Node {
  enum class Kind : std::uint8_t { kClass, kBegin, kEnd, kConcat, kAlt, kRepeat };
  Kind kind = Kind::kConcat;
  std::bitset<256> bytes;  // kClass
  std::vector<Node> kids;  // kConcat, kAlt; kRepeat: exactly one
  int min = 0;             // kRepeat
  int max = -1;            // kRepeat: -1 = unbounded
};

class Pattern::Parser {
 public:
  explicit Parser(const std::string& s) : s_(s) {}

  Node parse() {
    Node n = alternation(0);
    if (i_ < s_.size()) fail("unmatched ')'");
    return n;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw std::invalid_argument(
        fmt::format("pattern /{}/ at offset {}: {} (tools/json_pattern.h lists the supported "
                    "syntax)",
                    s_, i_, why));
  }
  bool eof() const { return i_ >= s_.size(); }
  char peek() const { return s_[i_]; }

  Node alternation(int nesting) {
    if (nesting > kMaxNesting) fail("groups nested too deeply");
    Node first = concatenation(nesting);
    if (eof() || peek() != '|') return first;
    Node alt;
    alt.kind = Node::Kind::kAlt;
    alt.kids.push_back(std::move(first));
    while (!eof() && peek() == '|') {
      ++i_;
      alt.kids.push_back(concatenation(nesting));
    }
    return alt;
  }

  Node concatenation(int nesting) {
    Node cat;
    cat.kind = Node::Kind::kConcat;
    while (!eof() && peek() != '|' && peek() != ')')
      cat.kids.push_back(repetition(nesting));
    return cat;
  }

  int number() {
    if (eof() || peek() < '0' || peek() > '9') fail("expected a number in {}");
    int n = 0;
    while (!eof() && peek() >= '0' && peek() <= '9') {
      n = n * 10 + (peek() - '0');
      if (n > kMaxRepeat) fail(fmt::format("repeat count above {}", kMaxRepeat));
      ++i_;
    }
    return n;
  }

  Node repetition(int nesting) {
    Node atom_node = atom(nesting);
    if (eof()) return atom_node;
    int min = 0;
    int max = -1;
    const char c = peek();
    if (c == '*') {
      ++i_;
    } else if (c == '+') {
      ++i_;
      min = 1;
    } else if (c == '?') {
      ++i_;
      max = 1;
    } else if (c == '{') {
      ++i_;
      min = number();
      max = min;
      if (!eof() && peek() == ',') {
        ++i_;
        max = !eof() && peek() == '}' ? -1 : number();
      }
      if (eof() || peek() != '}') fail("expected '}'");
      ++i_;
      if (max >= 0 && max < min) fail("{n,m} with m < n");
    } else {
      return atom_node;
    }
    if (atom_node.kind == Node::Kind::kBegin || atom_node.kind == Node::Kind::kEnd)
      fail("quantifier after an anchor");
    if (!eof() && (peek() == '?' || peek() == '*' || peek() == '+' || peek() == '{'))
      fail("lazy or repeated quantifier");
    Node rep;
    rep.kind = Node::Kind::kRepeat;
    rep.min = min;
    rep.max = max;
    rep.kids.push_back(std::move(atom_node));
    return rep;
  }

  Node class_node(const std::bitset<256>& b) {
    Node n;
    n.kind = Node::Kind::kClass;
    n.bytes = b;
    return n;
  }

  // After a backslash: a class escape (\d ...) or one byte.
  std::bitset<256> escape(bool in_class) {
    if (eof()) fail("'\\' at the end");
    const char c = s_[i_++];
    switch (c) {
      case 'd':
        return digit_set();
      case 'D':
        return ~digit_set();
      case 'w':
        return word_set();
      case 'W':
        return ~word_set();
      case 's':
        return space_set();
      case 'S':
        return ~space_set();
      case 'n':
        return byte_set('\n');
      case 'r':
        return byte_set('\r');
      case 't':
        return byte_set('\t');
      case 'f':
        return byte_set('\f');
      case 'v':
        return byte_set('\v');
      default:
        break;
    }
    const auto u = static_cast<unsigned char>(c);
    if ((u >= '0' && u <= '9') || (u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || u >= 0x80) {
      --i_;
      fail(fmt::format("unsupported escape '\\{}'{}", c, in_class ? " in a class" : ""));
    }
    return byte_set(u);
  }

  Node bracket() {
    bool negate = false;
    if (!eof() && peek() == '^') {
      negate = true;
      ++i_;
    }
    std::bitset<256> set;
    while (true) {
      if (eof()) fail("unterminated '['");
      if (peek() == ']') {
        ++i_;
        break;
      }
      // One item: a byte, or a class escape (which cannot start a range).
      bool single = true;
      std::bitset<256> item;
      unsigned char lo = 0;
      if (peek() == '\\') {
        ++i_;
        item = escape(true);
        single = item.count() == 1;
        if (single)
          for (unsigned b = 0; b < 256; ++b)
            if (item.test(b)) lo = static_cast<unsigned char>(b);
      } else {
        lo = static_cast<unsigned char>(s_[i_++]);
        item = byte_set(lo);
      }
      if (single && i_ + 1 < s_.size() && peek() == '-' && s_[i_ + 1] != ']') {
        ++i_;
        unsigned char hi = 0;
        if (peek() == '\\') {
          ++i_;
          const std::bitset<256> h = escape(true);
          if (h.count() != 1) fail("class escape as a range bound");
          for (unsigned b = 0; b < 256; ++b)
            if (h.test(b)) hi = static_cast<unsigned char>(b);
        } else {
          hi = static_cast<unsigned char>(s_[i_++]);
        }
        if (hi < lo) fail("range out of order");
        item = range_set(lo, hi);
      }
      set |= item;
    }
    return class_node(negate ? ~set : set);
  }

  Node atom(int nesting) {
    const char c = s_[i_++];
    switch (c) {
      case '(': {
        if (!eof() && peek() == '?') {
          if (i_ + 1 < s_.size() && s_[i_ + 1] == ':') {
            i_ += 2;
          } else {
            fail("lookaround and named groups are not supported");
          }
        }
        Node inner = alternation(nesting + 1);
        if (eof() || peek() != ')') fail("unterminated '('");
        ++i_;
        return inner;
      }
      case '[':
        return bracket();
      case '.':
        return class_node(~(byte_set('\n') | byte_set('\r')));
      case '^': {
        Node n;
        n.kind = Node::Kind::kBegin;
        return n;
      }
      case '$': {
        Node n;
        n.kind = Node::Kind::kEnd;
        return n;
      }
      case '\\':
        return class_node(escape(false));
      case '*':
      case '+':
      case '?':
      case '{':
        --i_;
        fail("nothing to repeat");
      default:
        return class_node(byte_set(static_cast<unsigned char>(c)));
    }
  }

  const std::string& s_;
  std::size_t i_ = 0;
};

Pattern::Pattern(const std::string& source) : source_(source) {
  const Node root = Parser(source).parse();
  compile(root);
  emit(Insn{Insn::Op::kMatch, 0, 0});
}

std::uint32_t Pattern::emit(Insn insn) {
  if (prog_.size() >= kMaxProgram)
    throw std::invalid_argument(fmt::format(
        "pattern /{}/: more than {} NFA states (lower its repeat counts)", source_, kMaxProgram));
  prog_.push_back(insn);
  return static_cast<std::uint32_t>(prog_.size() - 1);
}

std::uint32_t Pattern::add_class(const std::bitset<256>& bytes) {
  for (std::size_t i = 0; i < classes_.size(); ++i)
    if (classes_[i] == bytes) return static_cast<std::uint32_t>(i);
  classes_.push_back(bytes);
  return static_cast<std::uint32_t>(classes_.size() - 1);
}

void Pattern::compile(const Node& n) {
  auto here = [&] { return static_cast<std::uint32_t>(prog_.size()); };
  switch (n.kind) {
    case Node::Kind::kClass:
      emit(Insn{Insn::Op::kByte, add_class(n.bytes), 0});
      return;
    case Node::Kind::kBegin:
      emit(Insn{Insn::Op::kBegin, 0, 0});
      return;
    case Node::Kind::kEnd:
      emit(Insn{Insn::Op::kEnd, 0, 0});
      return;
    case Node::Kind::kConcat:
      for (const Node& k : n.kids)
        compile(k);
      return;
    case Node::Kind::kAlt: {
      // split L1, next; L1: a; jump end; next: split L2, next2; ... last: z; end:
      std::vector<std::uint32_t> jumps;
      for (std::size_t a = 0; a < n.kids.size(); ++a) {
        if (a + 1 == n.kids.size()) {
          compile(n.kids[a]);
          break;
        }
        const std::uint32_t split = emit(Insn{Insn::Op::kSplit, 0, 0});
        prog_[split].x = here();
        compile(n.kids[a]);
        jumps.push_back(emit(Insn{Insn::Op::kJump, 0, 0}));
        prog_[split].y = here();
      }
      for (const std::uint32_t j : jumps)
        prog_[j].x = here();
      return;
    }
    case Node::Kind::kRepeat: {
      const Node& body = n.kids.front();
      for (int k = 0; k < n.min; ++k)
        compile(body);
      if (n.max < 0) {
        // loop: split body, out; body; jump loop; out:
        const std::uint32_t loop = emit(Insn{Insn::Op::kSplit, 0, 0});
        prog_[loop].x = here();
        compile(body);
        emit(Insn{Insn::Op::kJump, loop, 0});
        prog_[loop].y = here();
        return;
      }
      // (max - min) optional copies: split body, out; body; ... out:
      std::vector<std::uint32_t> splits;
      for (int k = n.min; k < n.max; ++k) {
        const std::uint32_t split = emit(Insn{Insn::Op::kSplit, 0, 0});
        prog_[split].x = here();
        splits.push_back(split);
        compile(body);
      }
      for (const std::uint32_t s : splits)
        prog_[s].y = here();
      return;
    }
  }
}

bool Pattern::search(std::string_view text) const {
  const std::size_t n = text.size();
  // mark[pc] == generation: pc already added at this position.
  std::vector<std::size_t> mark(prog_.size(), std::numeric_limits<std::size_t>::max());
  std::vector<std::uint32_t> waiting;  // kByte instructions waiting for the byte at `pos`
  std::vector<std::uint32_t> arrived;  // pcs reached by consuming the previous byte
  std::vector<std::uint32_t> stack;
  // Follows the empty transitions from `start` at `pos`; true when one reaches kMatch.
  auto add = [&](std::uint32_t start, std::size_t pos) {
    stack.push_back(start);
    while (!stack.empty()) {
      const std::uint32_t pc = stack.back();
      stack.pop_back();
      if (mark[pc] == pos) continue;
      mark[pc] = pos;
      const Insn& in = prog_[pc];
      switch (in.op) {
        case Insn::Op::kByte:
          waiting.push_back(pc);
          break;
        case Insn::Op::kSplit:
          stack.push_back(in.y);
          stack.push_back(in.x);
          break;
        case Insn::Op::kJump:
          stack.push_back(in.x);
          break;
        case Insn::Op::kBegin:
          if (pos == 0) stack.push_back(pc + 1);
          break;
        case Insn::Op::kEnd:
          if (pos == n) stack.push_back(pc + 1);
          break;
        case Insn::Op::kMatch:
          stack.clear();
          return true;
      }
    }
    return false;
  };
  for (std::size_t pos = 0;; ++pos) {
    waiting.clear();
    for (const std::uint32_t pc : arrived)
      if (add(pc, pos)) return true;
    if (add(0, pos)) return true;  // unanchored: a match may start at any position
    if (pos == n) return false;
    arrived.clear();
    const auto byte = static_cast<unsigned char>(text[pos]);
    for (const std::uint32_t pc : waiting)
      if (classes_[prog_[pc].x].test(byte)) arrived.push_back(pc + 1);
  }
}

}  // namespace bpftsim::tools
