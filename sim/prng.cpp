#include "sim/prng.h"

namespace bpftsim::sim {
namespace {
__extension__ typedef unsigned __int128 u128;
constexpr std::uint64_t rotl(std::uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}
}  // namespace

std::uint64_t SplitMix64::next() {
  std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

Prng::Prng(std::uint64_t seed) {
  SplitMix64 sm(seed);
  for (auto& word : s_)
    word = sm.next();
}

Prng Prng::from_state(std::uint64_t s0, std::uint64_t s1, std::uint64_t s2, std::uint64_t s3) {
  Prng p(0);
  p.s_[0] = s0;
  p.s_[1] = s1;
  p.s_[2] = s2;
  p.s_[3] = s3;
  return p;
}

std::uint64_t Prng::next_u64() {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

std::uint64_t Prng::below(std::uint64_t bound) {
  // 128-bit multiply: the high word is uniform in [0, bound) once the low word is outside the
  // biased zone [0, 2^64 mod bound). That zone lies below `bound`, so its end (a 64-bit division)
  // is computed only for a low word below `bound`: the same draws accepted and rejected.
  for (;;) {
    const u128 m = static_cast<u128>(next_u64()) * bound;
    const auto low = static_cast<std::uint64_t>(m);
    if (low >= bound || low >= (0 - bound) % bound) return static_cast<std::uint64_t>(m >> 64);
  }
}

std::int64_t Prng::between(std::int64_t lo, std::int64_t hi) {
  const std::uint64_t span = static_cast<std::uint64_t>(hi) - static_cast<std::uint64_t>(lo);
  if (span == ~std::uint64_t{0}) return static_cast<std::int64_t>(next_u64());
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(lo) + below(span + 1));
}

}  // namespace bpftsim::sim
