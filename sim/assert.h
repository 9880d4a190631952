// Always-on assertions for simulator bugs. A failure prints the message, the source location and
// the run's seed, step and virtual time (from the Simulator that is running, if any), then aborts.
// Modeled kernel failures are never assertions: they are negative errno values or findings.
#pragma once

#include <fmt/format.h>

#include <string>

namespace bpftsim::sim {

[[noreturn]] void assert_fail(const char* file, int line, const char* expr, const std::string& msg);

}  // namespace bpftsim::sim

#define SIM_ASSERT(cond, ...)                                                             \
  do {                                                                                    \
    if (!(cond)) [[unlikely]]                                                             \
      ::bpftsim::sim::assert_fail(__FILE__, __LINE__, #cond, ::fmt::format(__VA_ARGS__)); \
  } while (0)
