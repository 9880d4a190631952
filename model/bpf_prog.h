// struct bpf_prog (include/linux/filter.h, kernel/bpf/core.c, kernel/bpf/syscall.c): a loaded
// program, its refcount (held by fds, links, and by each timer whose callback it set), and the maps
// it uses (a refcnt on each, dropped when the program is freed). bpf_prog_put dropping the last
// reference frees the program one RCU grace period later (deferred to a workqueue when the put
// happens with interrupts off, as patch 01 of the series arranged).
//
// Two kinds of program run in the model: NativeProg, a C++ coroutine standing in for bytecode
// (tests and the race catalogue), and the VM program of model/bpf_vm (clang-compiled ELF). Both
// call the same helper entry points (model/helpers.h, model/bpf_timer.h).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/slab.h"
#include "sim/co.h"
#include "sim/context.h"

namespace bpftsim::model {

class Kernel;
class BpfMap;
class BpfProg;

// What a program run or a callback gets: the kernel, its context and the program.
struct ProgRun {
  Kernel& k;
  sim::Context& ctx;
  BpfProg& prog;
  // When the helper being called was entered (set by the bytecode dispatcher; -1: unknown), so
  // that its "bpf_helper" record carries its duration (a slice in the Perfetto rendering).
  sim::TimeNs call_ns = -1;
};

class BpfProg {
 public:
  BpfProg(Kernel& k, std::string name, ObjId obj, std::uint32_t id);
  virtual ~BpfProg();
  BpfProg(const BpfProg&) = delete;
  BpfProg& operator=(const BpfProg&) = delete;

  Kernel& k;
  const std::string name;
  const ObjId obj;
  const std::uint32_t id;
  std::int64_t refcnt = 1;
  bool freed = false;
  std::vector<BpfMap*> used_maps;  // one map refcnt each

  // Runs the program's entry with its context arguments (r1..r5); returns r0.
  virtual sim::Co<std::int64_t> run(sim::Context& ctx, std::array<std::uint64_t, 5> args) = 0;
  // Runs the callback subprogram `fn` (a value made by bpf_func_address) with (map, key, value).
  virtual sim::Co<std::int64_t> run_callback(sim::Context& ctx, std::uint64_t fn,
                                             std::array<std::uint64_t, 5> args) = 0;
  // Whether `fn` names a callback of this program.
  virtual bool owns_callback(std::uint64_t fn) const = 0;
  virtual std::string callback_name(std::uint64_t fn) const = 0;
};

// A program written in C++ against the helper entry points.
class NativeProg final : public BpfProg {
 public:
  using Entry = std::function<sim::Co<std::int64_t>(ProgRun&, std::array<std::uint64_t, 5>)>;
  struct Callback {
    std::string name;
    Entry body;  // args: map, key, value
  };

  NativeProg(Kernel& k, std::string name, ObjId obj, std::uint32_t id, Entry entry,
             std::vector<Callback> callbacks);

  // The value a program passes to bpf_timer_set_callback for its callback number `index`.
  std::uint64_t callback(std::size_t index) const;

  sim::Co<std::int64_t> run(sim::Context& ctx, std::array<std::uint64_t, 5> args) override;
  sim::Co<std::int64_t> run_callback(sim::Context& ctx, std::uint64_t fn,
                                     std::array<std::uint64_t, 5> args) override;
  bool owns_callback(std::uint64_t fn) const override;
  std::string callback_name(std::uint64_t fn) const override;

 private:
  Entry entry_;
  std::vector<Callback> callbacks_;
};

}  // namespace bpftsim::model
