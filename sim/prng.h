// The simulator's one PRNG: xoshiro256** seeded through splitmix64. Integer-only, no std::
// distributions, so a seed gives the same stream on every compiler, standard library and build
// type. Known-answer tested in tests/unit/test_prng.cpp.
#pragma once

#include <cstdint>

namespace bpftsim::sim {

// splitmix64 (Steele, Lea, Flood 2014): used to expand a 64-bit seed into xoshiro state.
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next();

 private:
  std::uint64_t state_;
};

// xoshiro256** 1.0 (Blackman, Vigna 2018).
class Prng {
 public:
  explicit Prng(std::uint64_t seed);
  // Exact state, for known-answer tests against the reference implementation.
  static Prng from_state(std::uint64_t s0, std::uint64_t s1, std::uint64_t s2, std::uint64_t s3);
  std::uint64_t next_u64();
  std::uint32_t next_u32() { return static_cast<std::uint32_t>(next_u64() >> 32); }
  // Uniform in [0, bound) for bound >= 1, by Lemire's multiply-shift with rejection (unbiased).
  std::uint64_t below(std::uint64_t bound);
  // Uniform in [lo, hi] (inclusive), lo <= hi.
  std::int64_t between(std::int64_t lo, std::int64_t hi);
  // True with probability num/den (den >= 1).
  bool chance(std::uint64_t num, std::uint64_t den) { return below(den) < num; }

 private:
  std::uint64_t s_[4];
};

}  // namespace bpftsim::sim
