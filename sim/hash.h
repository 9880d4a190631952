// The byte hash of bpftsim: FNV-1a, 64 bits, over bytes. Scenario hashes in run files, the compile
// cache's keys, scheduler decision contexts and the model's stand-in for the kernel's jhash all use
// it, so a hash or key is stable for a given version of the tool (it is not a cryptographic hash
// and not meant to be). Trace digests fold 64-bit words instead (sim/trace.cpp: they run on every
// record, and a byte-wise loop was a third of the engine's time).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace bpftsim::sim {

class Hasher {
 public:
  static constexpr std::uint64_t kOffsetBasis = 0xcbf29ce484222325ULL;
  static constexpr std::uint64_t kPrime = 0x100000001b3ULL;
  static constexpr std::uint64_t kPrimeTo8 = [] {
    std::uint64_t p = 1;
    for (int i = 0; i < 8; ++i)
      p *= kPrime;
    return p;
  }();

  constexpr explicit Hasher(std::uint64_t basis = kOffsetBasis) : h_(basis) {}

  constexpr Hasher& bytes(const void* data, std::size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < n; ++i)
      h_ = (h_ ^ p[i]) * kPrime;
    return *this;
  }
  // An integer as its 8 little-endian bytes. Below 256 (step counts, ordinals), the seven zero
  // bytes above the first only multiply by kPrime each: one multiply by kPrime^8 does the same.
  constexpr Hasher& u64(std::uint64_t v) {
    if (v <= 0xff) {
      h_ = (h_ ^ v) * kPrimeTo8;
      return *this;
    }
    for (int i = 0; i < 8; ++i)
      h_ = (h_ ^ ((v >> (8 * i)) & 0xffu)) * kPrime;
    return *this;
  }
  // A string as its length, then its bytes (so that ("ab","c") and ("a","bc") differ).
  constexpr Hasher& str(std::string_view s) {
    u64(s.size());
    for (const char c : s)
      h_ = (h_ ^ static_cast<unsigned char>(c)) * kPrime;
    return *this;
  }
  constexpr std::uint64_t value() const { return h_; }
  // The 64 bits folded to 32 (for 32-bit hashes such as a hash map's bucket index).
  constexpr std::uint32_t value32() const { return static_cast<std::uint32_t>(h_ ^ (h_ >> 32)); }

 private:
  std::uint64_t h_;
};

// The state after the string `s` (Hasher().str(s)), computed at compile time: keys that all start
// with the same string continue from it, Hasher(str_state("jitter")).u64(k) being
// Hasher().str("jitter").u64(k) without hashing the string on every call.
consteval std::uint64_t str_state(std::string_view s) {
  return Hasher().str(s).value();
}

// FNV-1a 64 of `bytes`.
inline std::uint64_t hash_bytes(std::string_view bytes) {
  return Hasher().bytes(bytes.data(), bytes.size()).value();
}

}  // namespace bpftsim::sim
