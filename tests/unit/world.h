// The test fixture is the native-scenario World (scenarios/native/world.h).
#pragma once

#include "scenarios/native/world.h"

namespace bpftsim::testing {
using namespace bpftsim::native;  // NOLINT: tests use the fixture's names unqualified
}  // namespace bpftsim::testing
