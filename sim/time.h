// Virtual time: integer nanoseconds on one global clock owned by the Simulator.
#pragma once

#include <cstdint>

namespace bpftsim::sim {

using TimeNs = std::int64_t;

inline constexpr TimeNs kNsPerUs = 1'000;
inline constexpr TimeNs kNsPerMs = 1'000'000;
inline constexpr TimeNs kNsPerSec = 1'000'000'000;
inline constexpr TimeNs kTimeNever = INT64_MAX;

}  // namespace bpftsim::sim
