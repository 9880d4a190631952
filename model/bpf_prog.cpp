#include "model/bpf_prog.h"

#include <fmt/format.h>

#include "model/bpf_vm.h"
#include "model/kernel.h"
#include "sim/assert.h"

namespace bpftsim::model {

BpfProg::BpfProg(Kernel& kernel, std::string n, ObjId o, std::uint32_t prog_id)
    : k(kernel), name(std::move(n)), obj(o), id(prog_id) {}

BpfProg::~BpfProg() = default;

NativeProg::NativeProg(Kernel& kernel, std::string n, ObjId o, std::uint32_t prog_id, Entry entry,
                       std::vector<Callback> callbacks)
    : BpfProg(kernel, std::move(n), o, prog_id),
      entry_(std::move(entry)),
      callbacks_(std::move(callbacks)) {}

std::uint64_t NativeProg::callback(std::size_t index) const {
  SIM_ASSERT(index < callbacks_.size(), "prog {} has no callback {}", name, index);
  return bpf_func_address(id, static_cast<std::uint32_t>(index));
}

bool NativeProg::owns_callback(std::uint64_t fn) const {
  return bpf_is_func_address(fn) && bpf_func_code_token(fn) == (id & 0xFFFF) &&
         bpf_func_pc(fn) < callbacks_.size();
}

std::string NativeProg::callback_name(std::uint64_t fn) const {
  return owns_callback(fn) ? callbacks_[bpf_func_pc(fn)].name : fmt::format("{:#x}", fn);
}

sim::Co<std::int64_t> NativeProg::run(sim::Context& ctx, std::array<std::uint64_t, 5> args) {
  ProgRun r{k, ctx, *this};
  co_return co_await entry_(r, args);
}

sim::Co<std::int64_t> NativeProg::run_callback(sim::Context& ctx, std::uint64_t fn,
                                               std::array<std::uint64_t, 5> args) {
  SIM_ASSERT(owns_callback(fn), "prog {} runs foreign callback {:#x}", name, fn);
  ProgRun r{k, ctx, *this};
  co_return co_await callbacks_[bpf_func_pc(fn)].body(r, args);
}

}  // namespace bpftsim::model
