// BPF helper entry points (kernel/bpf/helpers.c, the map helpers of include/linux/bpf.h's
// bpf_map_*_elem protos) as programs call them. Bytecode reaches them through the VM's helper
// dispatch; NativeProg programs (C++ stand-ins for bytecode) call these typed wrappers. Both go
// through the same model code, and every call leaves a "bpf_helper" trace record with its result.
#pragma once

#include <cstdint>
#include <vector>

#include "model/bpf_prog.h"
#include "sim/co.h"

namespace bpftsim::model {

class BpfMap;

namespace helpers {

// Value address of map[key] or 0 (bpf_map_lookup_elem).
sim::Co<std::uint64_t> map_lookup(ProgRun& r, BpfMap& map, const std::vector<std::uint8_t>& key);
sim::Co<std::int64_t> map_update(ProgRun& r, BpfMap& map, const std::vector<std::uint8_t>& key,
                                 const std::vector<std::uint8_t>& value, std::uint64_t flags);
sim::Co<std::int64_t> map_delete(ProgRun& r, BpfMap& map, const std::vector<std::uint8_t>& key);

// Convenience for u32 keys.
std::vector<std::uint8_t> u32_key(std::uint32_t k);

// The address of the struct bpf_timer in the value at `value_addr` of `map`.
std::uint64_t timer_of(const BpfMap& map, std::uint64_t value_addr);

sim::Co<std::int64_t> timer_init(ProgRun& r, std::uint64_t timer, BpfMap& map, std::uint64_t flags);
// `callback` is a value made by the program (NativeProg::callback(i) or a BPF_PSEUDO_FUNC).
sim::Co<std::int64_t> timer_set_callback(ProgRun& r, std::uint64_t timer, std::uint64_t callback);
sim::Co<std::int64_t> timer_start(ProgRun& r, std::uint64_t timer, std::uint64_t nsecs,
                                  std::uint64_t flags);
sim::Co<std::int64_t> timer_cancel(ProgRun& r, std::uint64_t timer);

}  // namespace helpers
}  // namespace bpftsim::model
