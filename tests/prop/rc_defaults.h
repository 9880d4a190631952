// The property binary's default case count. rapidcheck reads RC_PARAMS once, on first use (after
// static initialization), so setting it while statics are initialized gives every property 200
// cases unless the environment (ctest's long runs, tools/prop-long-run.sh) says otherwise.
// Each test case names kRcDefaults, so that the variable is kept.
#pragma once

#include <stdlib.h>

namespace bpftsim::prop {

inline const bool kRcDefaults = [] {
  ::setenv("RC_PARAMS", "max_success=200", /*overwrite=*/0);
  return true;
}();

}  // namespace bpftsim::prop
