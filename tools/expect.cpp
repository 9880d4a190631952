#include "tools/expect.h"

#include <fmt/format.h>

#include <algorithm>

namespace bpftsim::tools {

namespace {

// The low `size` bytes of `v`, and their value sign-extended from bit 8*size-1.
std::uint64_t low_bytes(std::uint64_t v, std::uint32_t size) {
  return size >= 8 ? v : v & ((1ULL << (8 * size)) - 1);
}
std::int64_t sign_extended(std::uint64_t v, std::uint32_t size) {
  if (size >= 8) return static_cast<std::int64_t>(v);
  const std::uint64_t sign = 1ULL << (8 * size - 1);
  v = low_bytes(v, size);
  return static_cast<std::int64_t>((v ^ sign) - sign);
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

std::string ValueExpect::text() const {
  if (!written.empty()) return written;
  const char* prefix = op == Op::kGe ? ">=" : op == Op::kLe ? "<=" : op == Op::kNe ? "!=" : "";
  return negative ? fmt::format("{}{}", prefix, static_cast<std::int64_t>(value))
                  : fmt::format("{}{}", prefix, value);
}

bool ValueExpect::holds(std::uint64_t raw, std::uint32_t size, model::GlobalVar::Sign sign) const {
  switch (op) {
    case Op::kEq:
      return low_bytes(raw, size) == low_bytes(value, size);
    case Op::kNe:
      return low_bytes(raw, size) != low_bytes(value, size);
    case Op::kIn:
      return std::any_of(set.begin(), set.end(), [&](std::uint64_t v) {
        return low_bytes(raw, size) == low_bytes(v, size);
      });
    case Op::kGe:
    case Op::kLe:
      break;
  }
  const bool is_signed = sign == model::GlobalVar::Sign::kSigned ||
                         (sign == model::GlobalVar::Sign::kUnknown && negative);
  if (is_signed) {
    const std::int64_t have = sign_extended(raw, size);
    const auto want = static_cast<std::int64_t>(value);
    return op == Op::kGe ? have >= want : have <= want;
  }
  const std::uint64_t have = low_bytes(raw, size);
  return op == Op::kGe ? have >= value : have <= value;
}

std::string show_value(std::uint64_t raw, std::uint32_t size, model::GlobalVar::Sign sign) {
  const std::uint64_t u = low_bytes(raw, size);
  const std::int64_t s = sign_extended(raw, size);
  switch (sign) {
    case model::GlobalVar::Sign::kSigned:
      return std::to_string(s);
    case model::GlobalVar::Sign::kUnsigned:
      return std::to_string(u);
    case model::GlobalVar::Sign::kUnknown:
      break;
  }
  if (s >= 0) return std::to_string(u);
  return fmt::format("{} (as signed: {})", u, s);
}

std::string hex_bytes(const std::vector<std::uint8_t>& bytes) {
  std::string s = "0x";
  for (std::uint8_t b : bytes)
    s += fmt::format("{:02x}", b);
  return s;
}

namespace {

std::uint64_t read_le(const std::vector<std::uint8_t>& v, std::uint32_t off, std::uint32_t size) {
  std::uint64_t x = 0;
  for (std::uint32_t b = 0; b < size && b < 8 && off + b < v.size(); ++b)
    x |= std::uint64_t{v[off + b]} << (8 * b);
  return x;
}

}  // namespace

std::vector<ValueMatch::Mismatch> ValueMatch::mismatches(
    const std::vector<std::uint8_t>& value) const {
  std::vector<Mismatch> out;
  if (bytes && value != *bytes)
    out.push_back(Mismatch{"", "", hex_bytes(value), hex_bytes(*bytes)});
  if (want) {
    const std::uint64_t raw = read_le(value, 0, size);
    if (!want->holds(raw, size, sign))
      out.push_back(Mismatch{"", "", show_value(raw, size, sign), want->text()});
  }
  for (const FieldExpect& f : fields) {
    const std::uint64_t raw = read_le(value, f.offset, f.size);
    if (!f.want.holds(raw, f.size, f.sign))
      out.push_back(
          Mismatch{f.pointer, "." + f.path, show_value(raw, f.size, f.sign), f.want.text()});
  }
  return out;
}

std::string CountExpect::text() const {
  const char* prefix = op == Op::kGe ? ">=" : op == Op::kLe ? "<=" : "";
  return fmt::format("{}{}", prefix, n);
}

bool CountExpect::holds(std::uint64_t count) const {
  switch (op) {
    case Op::kEq:
      return count == n;
    case Op::kGe:
      return count >= n;
    case Op::kLe:
      return count <= n;
  }
  return false;
}

bool FindingMatch::matches(const sim::Finding& f) const {
  if (f.kind != kind || !contains(f.site, site) || !contains(f.object, object)) return false;
  std::size_t h = 0;
  for (const std::string& want : history) {
    while (h < f.history.size() && !contains(f.history[h], want))
      ++h;
    if (h == f.history.size()) return false;
    ++h;
  }
  if (!cycle) return true;
  const std::size_t n = cycle->size();
  if (f.cycle.size() != n) return false;
  for (std::size_t start = 0; start < n; ++start) {
    bool all = true;
    for (std::size_t i = 0; i < n && all; ++i) {
      const CyclePattern& p = (*cycle)[i];
      const sim::CycleEntry& e = f.cycle[(start + i) % n];
      all = (p.ctx.empty() || e.ctx_kind == p.ctx) && contains(e.waits_in, p.waits_in) &&
            contains(e.object, p.object);
    }
    if (all) return true;
  }
  return false;
}

std::string FindingMatch::text() const {
  std::string s = sim::finding_kind_name(kind);
  if (!site.empty()) s += fmt::format(" site~'{}'", site);
  if (!object.empty()) s += fmt::format(" object~'{}'", object);
  for (const std::string& h : history)
    s += fmt::format(" history~'{}'", h);
  if (cycle) {
    std::vector<std::string> parts;
    for (const CyclePattern& p : *cycle)
      parts.push_back(fmt::format("{}{}{}", p.ctx.empty() ? "*" : p.ctx,
                                  p.waits_in.empty() ? "" : " in " + p.waits_in,
                                  p.object.empty() ? "" : " on " + p.object));
    s += fmt::format(" cycle=[{}]", fmt::join(parts, ", "));
  }
  return s;
}

}  // namespace bpftsim::tools
