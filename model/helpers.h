// BPF helper entry points (kernel/bpf/helpers.c, the map helpers of include/linux/bpf.h's
// bpf_map_*_elem protos) as programs call them. Bytecode reaches them through the VM's helper
// dispatch; NativeProg programs (C++ stand-ins for bytecode) call these typed wrappers. Both go
// through the same model code, and every call leaves a "bpf_helper" trace record with its result.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/bpf_prog.h"
#include "model/profile.h"
#include "sim/co.h"

namespace bpftsim::model {

class BpfMap;
class AddressSpace;

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
// The kfunc bpf_timer_cancel_async (2.21).
sim::Co<std::int64_t> timer_cancel_async(ProgRun& r, std::uint64_t timer);

// ---- Bytecode dispatch --------------------------------------------------------------------------
// A `call imm` of a VM program reaches dispatch() with the helper id (uapi enum bpf_func_id) and
// r1..r5. Arguments that are pointers are guest addresses, read and written through k.mem; an
// argument the verifier would have rejected (not a map, a key outside every region, a timer that
// is not a map value's bpf_timer) is a program_fault finding and ends the run.
//
// The helpers the model implements are one table in helpers.cpp (kHelperProtos: id and handler,
// as the kernel's bpf_func_proto); ids and names come from <linux/bpf.h> (model/uapi.h). Any
// other id is refused when the object is loaded (model/bpf_object.h), never at run time.

// The result of one dispatched call: r0, or `aborted` when the run must end (a program fault was
// reported or the simulation stopped). Trivially destructible: it crosses co_await.
struct HelperOutcome {
  bool aborted = false;
  std::uint64_t r0 = 0;
};

// What the dispatcher needs from the VM running the caller: to run one of the caller's
// subprograms on top of the current frames and get its r0 (bpf_loop's callback), the callback's
// instructions charged to the same run.
class SubprogRunner {
 public:
  virtual sim::Co<HelperOutcome> call_subprog(sim::Context& ctx, std::uint32_t pc,
                                              std::array<std::uint64_t, 5> args) = 0;

 protected:
  ~SubprogRunner() = default;
};

bool dispatch_supported(std::int32_t id);
// Whether the kernel of `profile` has helper `id` (bpf_func_proto lookup per era): bpf_loop
// arrived in v5.17 (KernelProfile::has_bpf_loop); the others the model implements are all in the
// seed. The loader refuses a program calling a helper its kernel lacks, as the verifier does
// ("unknown func bpf_loop#181").
bool helper_in_profile(std::int32_t id, const KernelProfile& profile);
// The model id of a kfunc by its name (a .ksyms extern), nullopt for one the model does not know.
std::optional<std::int32_t> kfunc_by_name(const std::string& name);
bool is_kfunc(std::int32_t id);
// "bpf_map_lookup_elem" for 1, ... (the uapi names with the bpf_ prefix); "helper <id>" past the
// table.
std::string helper_name(std::int32_t id);

sim::Co<HelperOutcome> dispatch(ProgRun& r, std::int32_t id, std::array<std::uint64_t, 5> args,
                                SubprogRunner& runner);

// bpf_trace_printk's formatting (kernel/trace/bpf_trace.c, v5.15): %d %i %u %x %X with l/ll
// modifiers, %s (a string read from guest memory; empty if unreadable, as bpf_bprintf_prepare
// leaves it), %%; at most three
// conversions. Returns false (the helper's -EINVAL) for anything else.
bool format_trace_printk(const AddressSpace& mem, const std::string& fmt,
                         std::array<std::uint64_t, 3> args, std::string* out);

}  // namespace helpers
}  // namespace bpftsim::model
