// Virtual time: integer nanoseconds on one global clock owned by the Simulator.
#pragma once

#include <cstdint>

namespace bpftsim::sim {

using TimeNs = std::int64_t;

inline constexpr TimeNs kNsPerUs = 1'000;
inline constexpr TimeNs kNsPerMs = 1'000'000;
inline constexpr TimeNs kNsPerSec = 1'000'000'000;
inline constexpr TimeNs kTimeNever = INT64_MAX;

// Times and costs never wrap: sums and products saturate at kTimeNever (callers that must not
// reach it, such as the end of a step, check for it and end the run at a limit).
constexpr TimeNs add_sat(TimeNs a, TimeNs b) {
  TimeNs r = 0;
  if (__builtin_add_overflow(a, b, &r)) return b < 0 ? INT64_MIN : kTimeNever;
  return r;
}
constexpr TimeNs mul_sat(TimeNs a, std::uint64_t n) {
  TimeNs r = 0;
  if (n > static_cast<std::uint64_t>(kTimeNever) ||
      __builtin_mul_overflow(a, static_cast<TimeNs>(n), &r))
    return a < 0 ? INT64_MIN : kTimeNever;
  return r;
}

}  // namespace bpftsim::sim
