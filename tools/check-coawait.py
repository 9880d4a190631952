#!/usr/bin/env python3
"""Refuse any `co_await` inside a conditional (`?:`) or short-circuit (`&&`, `||`) expression.

GCC 12 evaluates the co_await arm of such an expression even when the other arm is taken (it
crashed LRU hash map updates, issue 7); the project writes if/else instead. A one-line grep misses
expressions split over several lines, so this scanner works on tokens: comments, string and
character literals and preprocessor lines are dropped, and for every `co_await` it walks outward
through the expression that holds it (its operands at each parenthesis level, then the enclosing
call or group as one operand of the level around it) up to the statement boundary (`;`, a block
brace, a control statement's condition, or the left side of an assignment), and reports a `?`,
`&&` or `||` met on the way.

Usage: check-coawait.py DIR_OR_FILE...   scan *.cpp/*.h below each, exit 1 naming each hit
       check-coawait.py --self-test       prove the scanner finds planted examples (and no others)
"""
import os
import re
import sys

TOKEN = re.compile(
    r"""
    (?P<raw>R"(?P<delim>[^()\\ ]{0,16})\((?:.|\n)*?\)(?P=delim)")
  | (?P<comment>//[^\n]*|/\*(?:.|\n)*?\*/)
  | (?P<string>"(?:\\.|[^"\\\n])*")
  | (?P<char>'(?:\\.|[^'\\\n])+')
  | (?P<number>\.?[0-9](?:[eEpP][+-]|[0-9A-Za-z_.'])*)
  | (?P<ident>[A-Za-z_][A-Za-z_0-9]*)
  | (?P<op>->\*?|<<=|>>=|<=>|::|\+\+|--|&&|\|\||[-+*/%&|^!=<>]=|<<|>>|[^\sA-Za-z_0-9])
  | (?P<ws>\s+)
""",
    re.VERBOSE,
)

CONTROL = {"if", "while", "for", "switch", "catch"}
# Tokens before an opening brace that make it a braced initializer inside an expression.
BRACE_INIT_BEFORE = {"=", ",", "(", "?", "return", "co_return", "co_yield", "co_await"}
KEYWORDS_BEFORE_BLOCK = {"else", "do", "try", "const", "noexcept", "override", "final", "mutable"}
ASSIGN = {"=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>="}
BAD = {"?", "&&", "||"}


def tokenize(text):
    """(kind, value, line) for each token, without comments, literals' contents or # lines."""
    out = []
    line = 1
    at_line_start = True
    pos = 0
    n = len(text)
    while pos < n:
        if at_line_start:
            m = re.match(r"[ \t]*#", text[pos:pos + 256])
            if m:  # a preprocessor line, with its backslash continuations
                end = pos
                while True:
                    nl = text.find("\n", end)
                    if nl < 0:
                        end = n
                        break
                    if text[nl - 1] == "\\":
                        end = nl + 1
                        line += 1
                        continue
                    end = nl
                    break
                pos = end
                continue
        m = TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"line {line}: cannot tokenize {text[pos:pos + 20]!r}")
        kind = m.lastgroup
        value = m.group(0)
        if kind == "delim":
            kind = "raw"
        if kind not in ("comment", "ws"):
            out.append((kind, value if kind in ("ident", "op") else kind, line))
        newlines = value.count("\n")
        line += newlines
        if newlines:
            at_line_start = True
        elif kind != "ws":
            at_line_start = False
        pos = m.end()
    return out


def matching(tokens):
    """Index of the partner of every bracket token."""
    pair = {}
    stack = []
    opens = {"(": ")", "[": "]", "{": "}"}
    for i, (_, v, _) in enumerate(tokens):
        if v in opens:
            stack.append(i)
        elif v in (")", "]", "}"):
            if stack and opens[tokens[stack[-1]][1]] == v:
                pair[i] = stack.pop()
                pair[pair[i]] = i
    return pair


def is_brace_init(tokens, i):
    """Whether the `{` at i opens a braced initializer (part of an expression), not a block."""
    if i == 0:
        return False
    kind, v, _ = tokens[i - 1]
    if v in BRACE_INIT_BEFORE:
        return True
    return kind == "ident" and v not in KEYWORDS_BEFORE_BLOCK


def scan_level(tokens, pair, lo, hi):
    """Walk left from lo and right from hi at one bracket depth, over the operands of the
    expression that holds tokens[lo..hi], up to a separator. Returns (the `?`/`&&`/`||` met,
    index of the left separator, index of the right separator)."""
    bad = []
    i = lo - 1
    while i >= 0:
        v = tokens[i][1]
        if v in (")", "]", "}") and i in pair:
            if v == "}" and not is_brace_init(tokens, pair[i]):
                break
            i = pair[i] - 1
            continue
        if v in (";", ",", "{", "(", "[", "}") or v in ASSIGN:
            break
        if v in BAD:
            bad.append(i)
        i -= 1
    j = hi + 1
    while j < len(tokens):
        v = tokens[j][1]
        if v in ("(", "[", "{") and j in pair:
            if v == "{" and not is_brace_init(tokens, j):
                break
            j = pair[j] + 1
            continue
        if v in (";", ",", ")", "]", "}", "{") or v in ASSIGN:
            break
        if v in BAD:
            bad.append(j)
        j += 1
    return bad, i, j


def find_hits(text):
    tokens = tokenize(text)
    pair = matching(tokens)
    hits = []
    for idx, (_, v, line) in enumerate(tokens):
        if v != "co_await":
            continue
        lo = hi = idx
        bad = []
        while True:
            found, left, right = scan_level(tokens, pair, lo, hi)
            bad += found
            if left < 0 or right >= len(tokens):
                break
            lv = tokens[left][1]
            if lv not in ("(", "[", "{") or pair.get(left) != right:
                break  # a statement boundary, a separator, or the left side of an assignment
            if lv == "{" and not is_brace_init(tokens, left):
                break  # a block, or a lambda's body: another statement or function
            if lv == "(" and left > 0 and tokens[left - 1][1] in CONTROL:
                break  # the condition of if/while/for/switch is an expression of its own
            lo, hi = left, right  # the group (or a call's arguments) is one operand outside
        if bad:
            hits.append((line, sorted({tokens[b][1] for b in bad})))
    return hits


def scan_paths(paths):
    failures = 0
    files = []
    for p in paths:
        if os.path.isfile(p):
            files.append(p)
            continue
        for root, dirs, names in os.walk(p):
            dirs.sort()
            for name in sorted(names):
                if name.endswith((".cpp", ".h")):
                    files.append(os.path.join(root, name))
    for f in files:
        with open(f, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        for line, ops in find_hits(text):
            print(f"{f}:{line}: co_await inside {' / '.join(ops)}: write if/else (GCC 12 "
                  "evaluates the co_await arm of such an expression even when it is not taken)")
            failures += 1
    print(f"check-coawait: {len(files)} file(s), {failures} co_await(s) inside ?:, && or ||")
    return 1 if failures else 0


PLANTED = [  # (source, number of hits expected)
    ("fresh = lru_ ? lru_new : co_await alloc_elem(ctx, old);", 1),
    ("fresh = lru_\n    ? lru_new\n    : co_await alloc_elem(ctx,\n                         old);", 1),
    ("if (x && co_await f()) y();", 1),
    ("ok = a ||\n  // a comment ; { }\n  co_await g(1, 2);", 1),
    ("return cond ? Foo{co_await h()} : Foo{};", 1),
    ("co_return (co_await f()) && b;", 1),
    ("v = call(a, b ? c : co_await d(e));", 1),
    ("v = call(a, (b\n || co_await d()));", 1),
    ("x = co_await f() ? 1 : 2;", 1),
    ("auto&& r = co_await f();", 0),
    ("if (a && b) co_await f();", 0),
    ("if (a || b) {\n  x = co_await f();\n}", 0),
    ("x = a ? b : c;\nco_await f();", 0),
    ("// fresh = lru_ ? lru_new : co_await alloc_elem(ctx, old);\nco_await g();", 0),
    ('s = "a ? co_await b : c"; co_await f();', 0),
    ("/* a && co_await\n b */ co_await f(x ? 1 : 2);", 0),
    ("call(a && b, co_await f());", 0),
    ("auto l = [&](bool a) -> Co<void> { if (a) co_await f(); };\nx = a ? l : m;", 0),
    ("t = p ? [&]() -> Co<int> { co_return co_await f(); } : q;", 0),
    ("#define X(a) (a ? co_await b : c)\nco_await f();", 0),
    ("for (auto e : co_await list()) if (e && f) co_await g(e);", 0),
    ("switch (k) { case 1: co_await f(); break; }", 0),
]


def self_test():
    bad = 0
    for src, want in PLANTED:
        got = len(find_hits(src))
        if got != want:
            print(f"self-test FAILED: {got} hit(s), expected {want}, in:\n{src}\n")
            bad += 1
    print(f"check-coawait self-test: {len(PLANTED)} snippet(s), {bad} wrong")
    return 1 if bad else 0


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    if len(argv) < 2:
        print(__doc__)
        return 2
    return scan_paths(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
